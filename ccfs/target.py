"""What to mount: ``BUCKET[/PREFIX]``, ``s3://BUCKET/PREFIX`` or a local directory."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cottoncandy.names import clean_object_name, refuse_dot_components

LOCAL_STARTS = ("/", "./", "../", "~", "file://")


@dataclass(frozen=True)
class Target:
    backend: str  # "s3" or "local"
    bucket: str  # bucket name, or the directory for the local backend
    prefix: str = ""

    def __str__(self) -> str:
        if self.backend == "local":
            return self.bucket
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_target(text: str) -> Target:
    """``s3://b/p`` and ``b/p`` are S3; paths starting with ``/``, ``./``, ``../``, ``~`` are local."""
    if not text:
        raise ValueError("nothing to mount: give BUCKET[/PREFIX], s3://BUCKET/PREFIX or a local directory")
    if text.startswith("s3://"):
        text = text[len("s3://"):]
    elif text.startswith(LOCAL_STARTS):
        path = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
        return Target("local", path)
    bucket, _, prefix = text.partition("/")
    if not bucket:
        raise ValueError(f"no bucket name in {text!r}")
    prefix = clean_object_name(prefix).strip("/")
    refuse_dot_components(prefix, f"the prefix of {text!r}")
    return Target("s3", bucket, prefix)
