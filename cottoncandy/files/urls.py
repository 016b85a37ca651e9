"""Where a command-line argument points: ``s3://bucket/key`` or a path of the local backend.

A local path names a file of the local layout: its store is the folder holding it and its key
the file name (``/data/b/sub/arr`` -> store ``/data/b/sub``, key ``arr``; the sidecar
``arr.meta.json`` sits beside it, so this is the same object whatever folder is taken as the
bucket). An existing directory is a store with an empty key. For a pattern, the store is the
deepest literal folder before the first wildcard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import Settings, load_settings
from ..names import clean_object_name, refuse_dot_components
from ..namespace.patterns import has_magic
from ..storage.base import ObjectStore
from ..storage.local import LocalStore
from ..storage.s3 import S3Account

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class Location:
    backend: str  # "s3" or "local"
    bucket: str  # bucket name, or the local folder used as the bucket
    key: str  # key or pattern inside it ("" for the bucket/folder itself)

    def url(self, key: str | None = None) -> str:
        key = self.key if key is None else key
        if self.backend == "local":
            return os.path.join(self.bucket, key) if key else self.bucket
        return f"{S3_SCHEME}{self.bucket}/{key}"


def parse_location(text: str) -> Location:
    """``s3://bucket/key`` (S3) or a filesystem path (local backend).

    S3 keys are cleaned as the library cleans names (runs of ``/`` collapse, a trailing ``/``
    stays and means the folder); ``.`` and ``..`` levels are refused, as the library refuses them.
    """
    if text.startswith(S3_SCHEME):
        bucket, _, key = text[len(S3_SCHEME):].partition("/")
        if not bucket:
            raise ValueError(f"no bucket name in {text!r} (expected s3://BUCKET/KEY)")
        key = clean_object_name(key)  # as the library: 'a//b' is 'a/b'; a trailing '/' (the folder) is kept
        refuse_dot_components(key, repr(text))
        return Location("s3", bucket, key)
    if "://" in text:
        raise ValueError(f"{text!r}: only s3:// URLs and local paths are understood")
    path = os.path.abspath(os.path.expanduser(text.removeprefix("file:")))
    if has_magic(path) and not os.path.lexists(path):  # an existing 'x[1]' is that file, not a pattern
        levels = path.split(os.sep)
        first = next(i for i, level in enumerate(levels) if has_magic(level))
        return Location("local", os.sep.join(levels[:first]) or os.sep, "/".join(levels[first:]))
    if os.path.isdir(path):
        return Location("local", path, "")
    return Location("local", os.path.dirname(path), os.path.basename(path))


def open_store(location: Location, *, endpoint_url: str | None = None, profile: str | None = None,
               region: str | None = None, create: bool = False) -> ObjectStore:
    """The store a location lives in (for the local backend, created only when ``create``)."""
    if location.backend == "local":
        return LocalStore(location.bucket, create=create)
    settings: Settings = load_settings(False, False, endpoint_url or False, profile=profile, region=region)
    return S3Account(settings).store(location.bucket)


def s3_account(*, endpoint_url: str | None = None, profile: str | None = None,
               region: str | None = None) -> S3Account:
    return S3Account(load_settings(False, False, endpoint_url or False, profile=profile, region=region))
