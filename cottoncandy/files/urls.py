"""Where a command-line argument points: ``s3://bucket/key`` or a path of the local backend.

A local path names a file of the local layout: its store is the folder holding it and its key
the file name (``/data/b/sub/arr`` -> store ``/data/b/sub``, key ``arr``; the sidecar
``arr.meta.json`` sits beside it, so this is the same object whatever folder is taken as the
bucket). An existing directory is a store with an empty key. For a pattern, the store is the
deepest literal folder before the first wildcard.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field, replace

from ..names import clean_object_name, refuse_dot_components
from ..namespace.patterns import has_magic
from ..storage import registry
from ..storage.base import Account, ObjectStore

S3_SCHEME = "s3://"
#: how a name that is plainly a local path starts; other names without a scheme are local paths too to
#: ``ccfs ls``, ``info``, ``get``... (and buckets to ``ccfs mount``), which errors say when they name nothing
PATH_STARTS = ("/", "./", "../", "~")


@dataclass(frozen=True)
class Location:
    scheme: str  # a scheme of ``storage.registry.KINDS``: "s3", "file" (local paths), ...
    bucket: str  # bucket name, or the local folder used as the bucket
    key: str  # key or pattern inside it ("" for the bucket/folder itself)
    #: the key exactly as typed, when cleaning changed it (``s3://b/a//b``: ``a//b``, where ``key`` is
    #: ``a/b``); an object of exactly this name is what the URL means (``exactly``)
    typed: str | None = field(default=None, compare=False)

    def url(self, key: str | None = None) -> str:
        key = self.key if key is None else key
        return registry.kind_of(self.scheme).url(self.bucket, key)

    def store_url(self) -> str:
        """The URL of the store holding the location (``registry.open_store`` opens it)."""
        return f"{self.scheme}://{self.bucket}"


def parse_location(text: str) -> Location:
    """``s3://bucket/key`` (or another registered scheme) or a filesystem path (local backend).

    Keys are cleaned as the library cleans names (runs of ``/`` collapse, a trailing ``/``
    stays and means the folder); ``.`` and ``..`` levels are refused, as the library refuses them.
    """
    kind, rest = registry.split_url(text)
    if not kind.paths:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ValueError(f"no bucket name in {text!r} (expected {kind.scheme}://BUCKET/KEY)")
        typed, key = key, clean_object_name(key)  # as the library: 'a//b' is 'a/b'; a trailing '/' (the folder) is kept
        refuse_dot_components(key, repr(text))
        return Location(kind.scheme, bucket, key, typed if typed != key else None)
    path = rest
    if has_magic(path) and not os.path.lexists(path):  # an existing 'x[1]' is that file, not a pattern
        levels = path.split(os.sep)
        first = next(i for i, level in enumerate(levels) if has_magic(level))
        return Location(kind.scheme, os.sep.join(levels[:first]) or os.sep, "/".join(levels[first:]))
    if os.path.isdir(path):
        return Location(kind.scheme, path, "")
    return Location(kind.scheme, os.path.dirname(path), os.path.basename(path))


def parse_source(text: str) -> Location:
    """``parse_location`` of what a command reads (``ls``, ``info``, ``get``, ``rm``, a copy's source): a bare
    name whose first level is no local file or folder is a ``FileNotFoundError`` asking whether the ``s3://``
    URL was meant. The name keeps its meaning (a local path); only the error says more."""
    missing = missing_bare_name(text)
    if missing is not None:
        raise FileNotFoundError(errno.ENOENT, missing)
    return parse_location(text)


def missing_bare_name(text: str) -> str | None:
    """What to say of ``my-bucket/x`` (no scheme, not ``/``, ``./``, ``../``, ``~``) when there is no local
    ``my-bucket`` here; ``None`` when the name is no bare name or its first level exists (or is a pattern)."""
    if "://" in text or text.startswith(PATH_STARTS) or text.startswith("file:"):
        return None
    first, sep, _ = text.partition("/")
    if not first or first in (".", "..") or has_magic(first) or os.path.lexists(first):
        return None
    what, url = ("folder", S3_SCHEME + text) if sep else ("file or folder", f"{S3_SCHEME}{text}/")
    return f"no local {what} {first} (names without s3:// are local paths); did you mean {url}?"


def exactly(store: ObjectStore, location: Location) -> Location:
    """``location`` naming the object whose key is exactly what was typed, when cleaning changed the
    key (``s3://b/a//b``) and such an object exists: keys with empty parts (``a//b``, ``/a``) are
    addressable. A folder is always the cleaned name (``s3://b/a//`` is the folder ``a/``: a trailing
    ``/`` means "the folder", and runs of ``/`` collapse as in the library), and so is a key ending
    in ``/``; objects of such folders are reached one by one at their exact URLs, or with their parent."""
    typed = location.typed
    if not typed or typed.endswith("/") or not store.exists(typed):
        return location
    return replace(location, key=typed, typed=None)


def open_store(location: Location, *, endpoint_url: str | None = None, profile: str | None = None,
               region: str | None = None, addressing_style: str | None = None,
               create: bool = False) -> ObjectStore:
    """The store a location lives in (a local folder is created only when ``create``)."""
    return registry.open_store(location.store_url(), endpoint_url=endpoint_url, profile=profile, region=region,
                               addressing_style=addressing_style, create=create)


def account(scheme: str, *, endpoint_url: str | None = None, profile: str | None = None,
            region: str | None = None, addressing_style: str | None = None) -> Account:
    """The account of a scheme's buckets (``ccfs`` completes bucket names from it)."""
    options = registry.StoreOptions(endpoint_url=endpoint_url, profile=profile, region=region,
                                    addressing_style=addressing_style)
    return registry.kind_of(scheme).account(options.resolved_settings())
