"""Build accounts and stores from settings, or a store from its picklable ``spec()`` in a worker."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from ..config import Settings, recall
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
                  region: str | None, token: str | None = None) -> ObjectStore:
    if kind == "local":
        return LocalStore(bucket, create=False)
    settings = recall(token, endpoint_url, profile, region)
    if settings is None:
        settings = Settings(endpoint_url=endpoint_url, profile=profile, region=region)
    return S3Account(settings).store(bucket)


def store_from_spec(spec: Mapping[str, object]) -> ObjectStore:
    """The store a ``spec()`` describes; one per process and spec (each worker makes its own client)."""
    return _cached_store(str(spec["kind"]), str(spec["bucket"]), spec.get("endpoint_url"),  # type: ignore[arg-type]
                         spec.get("profile"), spec.get("region"), spec.get("settings"))  # type: ignore[arg-type]


class StoreHandle:
    """A store that survives pickling: it travels as its ``spec()`` and is rebuilt once per process.

    Dask graphs hold handles, never clients, so tasks run on workers with no shared state. A
    store without a spec (the in-memory test store) stays usable in-process and refuses to pickle.
    """

    def __init__(self, store: ObjectStore):
        self._store: ObjectStore | None = store
        try:
            self.spec: Mapping[str, object] | None = dict(store.spec())
        except NotImplementedError:
            self.spec = None

    def get(self) -> ObjectStore:
        if self._store is None:
            self._store = store_from_spec(self.spec)  # type: ignore[arg-type]
        return self._store

    def __getstate__(self) -> dict[str, object]:
        if self.spec is None:
            raise TypeError(f"{self._store!r} cannot be sent to another process (it has no spec)")
        return {"spec": self.spec}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.spec = state["spec"]  # type: ignore[assignment]
        self._store = None

    def __repr__(self) -> str:
        return f"StoreHandle({self.spec or self._store!r})"
