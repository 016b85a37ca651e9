"""Build accounts and stores from settings, or a store from its picklable ``spec()`` in a worker."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from ..config import Settings
from .base import ObjectStore
from .local import LocalAccount, LocalStore
from .s3 import S3Account

Account = S3Account | LocalAccount
BACKENDS = ("s3", "local")


def make_account(backend: str, settings: Settings) -> Account:
    if backend == "s3":
        return S3Account(settings)
    if backend == "local":
        return LocalAccount()
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


@lru_cache(maxsize=16)
def _cached_store(kind: str, bucket: str, endpoint_url: str | None, profile: str | None,
                  region: str | None) -> ObjectStore:
    if kind == "local":
        return LocalStore(bucket, create=False)
    settings = Settings(endpoint_url=endpoint_url, profile=profile, region=region)
    return S3Account(settings).store(bucket)


def store_from_spec(spec: Mapping[str, object]) -> ObjectStore:
    """The store a ``spec()`` describes; one per process and spec (each worker makes its own client)."""
    return _cached_store(str(spec["kind"]), str(spec["bucket"]), spec.get("endpoint_url"),  # type: ignore[arg-type]
                         spec.get("profile"), spec.get("region"))  # type: ignore[arg-type]
