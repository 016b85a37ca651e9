"""A filesystem that knows nothing of cottoncandy: fsspec's base class plus boto3 ranged GETs.

What a user with the reference file and any S3 client has (s3fs is not installed in the test
venv: it pins aiobotocore, which pins botocore). If the references open through this, everything
they need is in the file.
"""

from __future__ import annotations

from typing import Any

import boto3
from fsspec import AbstractFileSystem


class PlainS3(AbstractFileSystem):  # type: ignore[misc]
    protocol = ("s3",)
    cachable = False

    def __init__(self, endpoint_url: str, **kwargs: Any):
        super().__init__(endpoint_url, **kwargs)
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        bucket, _, key = path.removeprefix("s3://").partition("/")
        extra = {"Range": f"bytes={start}-{end - 1}"} if start is not None and end is not None else {}
        return self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()  # type: ignore[no-any-return]


def open_reference_file(path: str, endpoint_url: str) -> Any:
    """The zarr group of a ``ccfs refs`` file, read with fsspec, zarr and boto3 only."""
    import zarr
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
    from fsspec.implementations.reference import ReferenceFileSystem
    from zarr.storage import FsspecStore

    plain = AsyncFileSystemWrapper(PlainS3(endpoint_url), asynchronous=True)
    fs = ReferenceFileSystem(fo=path, fs={"s3": plain}, asynchronous=True)
    return zarr.open_group(FsspecStore(fs, read_only=True, path=""), mode="r", zarr_format=2, use_consolidated=True)
