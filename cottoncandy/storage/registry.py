"""Every kind of store in one place: a URL scheme names the module that opens it.

``open_store('s3://bucket')``, ``open_store('/data/folder')`` (or ``file:///data/folder``) and
``open_store('memory://name')`` build stores for the command line and the mount;
``open_account('s3' | 'local' | ...)`` builds what ``get_interface(backend=...)`` holds (0.4.0's
backend names map to schemes here); ``store_from_spec`` rebuilds a store in a dask worker from its
``StoreSpec``. Callers learn what a store can do from ``store.capabilities``, never from its type.

A backend is one module that defines ``KIND = StoreKind(...)`` and one line in ``KINDS``
(``docs/BACKENDS.md``). Modules are imported on first use, so an unused backend costs nothing.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from ..config import Settings, load_settings
from .base import Account, ObjectStore, StoreSpec

#: URL scheme -> the module (relative to this package) whose ``KIND`` serves it; the first is the
#: default of ``ccfs mount BUCKET``, and the order is the order error messages list them in
KINDS: dict[str, str] = {
    "s3": ".s3",
    "file": ".local",
    "memory": ".memory",
}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class StoreOptions:
    """What opening a store may use; each kind takes what it needs and ignores the rest."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    #: ``config.ADDRESSING_STYLES`` (``ccfs mount --addressing-style``); ``None``: the profile's, else path
    #: style with an endpoint
    addressing_style: str | None = None
    #: settings already resolved (``get_interface``'s); else they are read from options.cfg and
    #: boto3's chain, with the three values above winning
    settings: Settings | None = None
    #: make a missing bucket or folder, where the kind makes buckets on first use
    create: bool = False

    def resolved_settings(self) -> Settings:
        if self.settings is not None:
            return self.settings
        return load_settings(False, False, self.endpoint_url or False, profile=self.profile, region=self.region,
                             addressing_style=self.addressing_style)


@dataclass(frozen=True)
class StoreKind:
    """One backend, as its module declares it (``KIND``)."""

    #: ``scheme://`` of its URLs (a key of ``KINDS``)
    scheme: str
    #: the store of one bucket (for ``paths`` kinds an absolute path) with these options
    open_bucket: Callable[[str, StoreOptions], ObjectStore]
    #: the account ``get_interface`` holds, from resolved settings
    account: Callable[[Settings], Account]
    #: the store a ``spec()`` describes, rebuilt in a worker process
    from_spec: Callable[[StoreSpec], ObjectStore]
    #: ``get_interface(backend=...)`` names besides the scheme (0.4.0 called ``file`` ``local``)
    backend_names: tuple[str, ...] = ()
    #: its buckets are folders of this machine: plain paths mean this kind, and are printed as paths
    paths: bool = False

    def url(self, bucket: str, key: str = "") -> str:
        """How a key of this kind is written (a path for ``paths`` kinds, else ``scheme://bucket/key``)."""
        if self.paths:
            return os.path.join(bucket, key) if key else bucket
        return f"{self.scheme}://{bucket}/{key}"


_loaded: dict[str, StoreKind] = {}
_load_lock = threading.Lock()


def kind_of(scheme: str) -> StoreKind:
    """The kind serving ``scheme``; ``ValueError`` for a scheme no module serves."""
    with _load_lock:
        if scheme not in _loaded:
            if scheme not in KINDS:
                raise ValueError(f"unknown store scheme {scheme!r} (known: {', '.join(KINDS)})")
            kind = importlib.import_module(KINDS[scheme], __package__).KIND
            if kind.scheme != scheme:
                raise RuntimeError(f"module {KINDS[scheme]} declares scheme {kind.scheme!r}, registered as {scheme!r}")
            _loaded[scheme] = kind
        return _loaded[scheme]


def default_scheme() -> str:
    """The scheme of a bare ``BUCKET`` (``ccfs mount BUCKET``): the first of ``KINDS``."""
    return next(iter(KINDS))


def path_kind() -> StoreKind:
    """The kind of plain filesystem paths."""
    return next(kind for kind in map(kind_of, KINDS) if kind.paths)


def backend_kind(backend: str) -> StoreKind:
    """The kind ``get_interface(backend=...)`` names: a scheme or an alias such as 0.4.0's ``local``."""
    for kind in map(kind_of, KINDS):
        if backend == kind.scheme or backend in kind.backend_names:
            return kind
    names = [name for kind in map(kind_of, KINDS) for name in (*kind.backend_names, kind.scheme)]
    raise ValueError(f"backend must be one of {', '.join(names)}, not {backend!r}")


def known_urls() -> str:
    """What URLs are understood, for error messages."""
    return ", ".join(f"{scheme}:// URLs" for scheme in KINDS) + " and local paths"


def split_url(url: str) -> tuple[StoreKind, str]:
    """The kind a URL names and the rest of it after ``scheme://`` (for paths: the absolute path)."""
    match = _SCHEME.match(url)
    if match is None:
        if url.startswith("file:") and "://" not in url:  # 'file:/data/x', as 0.4.0-era scripts wrote
            url = url[len("file:"):]
        if "://" in url:
            raise ValueError(f"{url!r} is not a URL: only {known_urls()} are understood")
        return path_kind(), os.path.abspath(os.path.expanduser(url))
    scheme = match.group(1).lower()
    if scheme not in KINDS:
        raise ValueError(f"{url!r}: unknown scheme {scheme}:// (only {known_urls()} are understood)")
    kind, rest = kind_of(scheme), url[match.end():]
    if kind.paths:
        return kind, os.path.abspath(os.path.expanduser(rest))
    return kind, rest


def open_store(url: str, *, create: bool = False, settings: Settings | None = None,
               endpoint_url: str | None = None, profile: str | None = None, region: str | None = None,
               addressing_style: str | None = None) -> ObjectStore:
    """The store of the bucket (or folder) ``url`` names: ``s3://BUCKET``, a path or ``file://PATH``,
    ``memory://NAME``. ``create``: make a missing folder (kinds whose buckets are made on use); the
    rest are ``StoreOptions``'s."""
    kind, rest = split_url(url)
    bucket = rest
    if not kind.paths:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ValueError(f"no bucket name in {url!r} (expected {kind.scheme}://BUCKET)")
        if key:
            raise ValueError(f"{url!r} names a key; a store is opened by its bucket ({kind.scheme}://{bucket})")
    options = StoreOptions(endpoint_url=endpoint_url, profile=profile, region=region,
                           addressing_style=addressing_style, settings=settings, create=create)
    return kind.open_bucket(bucket, options)


def open_account(backend: str, settings: Settings) -> Account:
    """What ``get_interface(backend=...)`` holds: the buckets of one backend."""
    return backend_kind(backend).account(settings)


@lru_cache(maxsize=16)
def _cached_store(spec: StoreSpec) -> ObjectStore:
    return kind_of(spec.scheme).from_spec(spec)


def store_from_spec(spec: StoreSpec) -> ObjectStore:
    """The store a ``spec()`` describes; one per process and spec (each worker makes its own client)."""
    return _cached_store(spec)


class StoreHandle:
    """A store that survives pickling: it travels as its ``spec()`` and is rebuilt once per process.

    Dask graphs hold handles, never clients, so tasks run on workers with no shared state. A
    store that cannot live in another process (``capabilities.other_processes`` false: the
    in-memory store) stays usable in-process and refuses to pickle.
    """

    def __init__(self, store: ObjectStore):
        self._store: ObjectStore | None = store
        self.spec: StoreSpec | None = None
        if store.capabilities.other_processes:
            self.spec = store.spec()

    def get(self) -> ObjectStore:
        if self._store is None:
            assert self.spec is not None  # set by __setstate__
            self._store = store_from_spec(self.spec)
        return self._store

    def __getstate__(self) -> dict[str, object]:
        if self.spec is None:
            raise TypeError(f"{self._store!r} cannot be sent to another process (it has no spec)")
        return {"spec": self.spec}

    def __setstate__(self, state: dict[str, StoreSpec]) -> None:
        self.spec = state["spec"]
        self._store = None

    def __repr__(self) -> str:
        return f"StoreHandle({self.spec or self._store!r})"
