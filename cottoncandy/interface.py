"""The cottoncandy 0.4.0 API, as a thin facade over storage, formats and the array paths.

Names, arguments and defaults follow 0.4.0. Where we return more (an ``ObjectInfo`` from uploads
instead of ``None``), the extra is additive. Errors are built-ins naming the bucket and key.
"""

from __future__ import annotations

import errno
import html
import io
import logging
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .api_arrays import ArrayMethods
from .api_files import FileSystemMethods
from .arrays.npy_files import npy_bytes, open_npy_object, read_npy_body, write_npy_object
from .arrays.raw import first_look, read_array_spec, read_looked_array, write_raw_array
from .config import Settings
from .errors import EmptyNpyFile, NotABinaryBody, NotAPath, ObjectNotFound, OptionAdvice, advised
from .formats import objects
from .formats.npy import NPY_HEADER_LIMIT
from .formats.pgzip import visible_metadata
from .formats.raw import string_metadata
from .messages import say
from .names import cleans_object_name, require_key
from .printable import without_userinfo
from .progress import Progress, ProgressCallback
from .storage.base import Account, ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

#: how a ``.npz`` file (a zip archive, maybe empty) starts: ``np.load`` reads it as an ``NpzFile``
NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class CloudStream:
    """What ``download_stream`` returns (0.4.0's shape): a readable ``content`` and its ``metadata``."""

    content: BinaryIO
    metadata: Mapping[str, str]
    info: ObjectInfo


class InterfaceObject:
    """Base class, kept for ``isinstance`` checks written against 0.4.0."""


class CloudInterface(FileSystemMethods, ArrayMethods, InterfaceObject):
    """One bucket (or local directory): the whole 0.4.0 API (``cc.get_interface`` builds it).

    Every keyword 0.4.0 took is taken. ``threads=`` (0.4.0's per-call transfer concurrency) sets the
    concurrency of the calls that move many objects (trees, dask and sparse parts); single-object
    transfers ignore it, as the store sizes its own ranged reads and multipart uploads.
    """

    account: Account  # more than the mixins' ``InterfaceHost.account``: buckets too

    def __init__(self, bucket_name: str, account: Account, settings: Settings, *,
                 backend: str = "s3", verbose: bool = True, force_bucket_creation: bool = False,
                 show_buckets: bool = False):
        self.account = account
        self.settings = settings
        self.backend = backend
        self.verbose = verbose
        self._store: ObjectStore | None = None
        self._bucket = ""
        if bucket_name:
            self.set_bucket(bucket_name, force_bucket_creation=force_bucket_creation)
        if verbose and show_buckets and account.named_buckets:  # 0.4.0 listed them whenever verbose
            try:
                names = self.account.list_buckets()
                print("Available buckets:")
                for name in names:
                    print(name)
            except PermissionError:
                print("(not allowed to list buckets)")
        if account.named_buckets:
            say(log, f"Current bucket: {self._bucket}", verbose)

    def __repr__(self) -> str:
        endpoint = without_userinfo(self.account.endpoint)
        if not self.account.named_buckets:
            return f"cottoncandy.backend_interface on {endpoint} ({self._bucket})"
        return f"cottoncandy.backend_interface <bucket:{self._bucket} on {endpoint}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: bucket, endpoint, backend and the settings that shape transfers (never a secret)."""
        rows = {"bucket": self._bucket or "(none selected)", "backend": self.backend,
                "endpoint": without_userinfo(self.account.endpoint), "profile": self.settings.profile or "",
                "region": self.settings.region or "", "verbose": str(self.verbose),
                "threads": str(self.settings.threads)}
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in rows.items() if v != "")
        return f"<table><caption>cottoncandy interface</caption>{body}</table>"

    # --- buckets -----------------------------------------------------------------------------
    @property
    def bucket_name(self) -> str:
        return self._bucket

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            raise ValueError("no bucket selected: call set_bucket(name) first")
        return self._store

    def set_bucket(self, bucket_name: str, force_bucket_creation: bool = False) -> None:
        """Use ``bucket_name`` from now on (creating it if asked and missing)."""
        if not isinstance(bucket_name, str) or not bucket_name:
            raise ValueError("bucket_name must be a non-empty string")
        if self.settings.mandatory_bucket_prefix and not bucket_name.startswith(
                self.settings.mandatory_bucket_prefix) and self.account.named_buckets:
            bucket_name = self.settings.mandatory_bucket_prefix + bucket_name
        self.account.check_bucket_name(bucket_name)  # a name no store takes: say so, not "not found"
        if not self.account.bucket_exists(bucket_name):
            if force_bucket_creation or not self.account.named_buckets:
                self.account.create_bucket(bucket_name, self.settings.default_acl)
            else:
                advice = OptionAdvice(f"bucket not found: s3://{bucket_name}", "force_bucket_creation",
                                      "to create it")
                raise advised(FileNotFoundError(advice.render()), advice)
        self._store = self.account.store(bucket_name)
        self._bucket = self._store.bucket

    def get_bucket(self) -> Any:
        """The boto3 ``Bucket`` resource (S3), or the store (local backend)."""
        if self.account.named_buckets:  # by name: works even after rm_bucket of the current bucket
            return self.account.native_bucket(self._bucket)
        return self.store

    def exists_bucket(self, bucket_name: str) -> bool:
        return self.account.bucket_exists(bucket_name)

    def create_bucket(self, bucket_name: str, acl: str | None = None) -> None:
        self.account.create_bucket(bucket_name, acl or self.settings.default_acl)

    def rm_bucket(self, bucket_name: str) -> None:
        """Remove an empty bucket (``OSError`` if it still holds objects)."""
        self.account.delete_bucket(bucket_name)
        if bucket_name == self._bucket:
            self._store = None

    def show_buckets(self) -> None:
        for name in self.account.list_buckets():
            print(name)

    def pathjoin(self, a: str, *p: str) -> str:
        return posixpath.join(a, *p)

    # --- objects -----------------------------------------------------------------------------
    @cleans_object_name
    def exists_object(self, object_name: str, bucket_name: str | None = None, raise_err: bool = False) -> bool:
        """Whether an object (not a prefix) named ``object_name`` exists."""
        store = self.account.store(bucket_name) if bucket_name else self.store
        exists = store.exists(object_name)
        if raise_err and not exists:
            raise ObjectNotFound(errno.ENOENT, f"object not found: {store.describe(object_name)}")
        return exists

    @cleans_object_name
    def get_object(self, object_name: str, bucket_name: str | None = None) -> Any:
        """The boto3 ``Object`` resource (S3, as 0.4.0) or the object's ``ObjectInfo`` (local)."""
        if self.account.named_buckets:
            return self.account.native_object(bucket_name or self._bucket, object_name)
        return self.store.head(object_name)  # bucket_name is ignored here, as the local backend always did

    @cleans_object_name
    def get_object_info(self, object_name: str) -> ObjectInfo:
        """Size, ETag, last-modified time and user metadata of an object (one HEAD)."""
        return self.store.head(object_name)

    @cleans_object_name
    def get_metadata(self, object_name: str) -> dict[str, str]:
        """The object's user metadata (keys lower case)."""
        return visible_metadata(self.store.head(object_name).metadata)

    @cleans_object_name
    def upload_object(self, object_name: str, body: Any, acl: str | None = None, threads: int | None = None, *,
                      callback: ProgressCallback | None = None, **metadata: Any) -> ObjectInfo:
        """Store a file-like object or a bytes-like buffer as-is, with user metadata.

        ``callback``: progress in bytes, fsspec's convention (``cottoncandy.progress``), as for every transfer.
        """
        if not (isinstance(body, (bytes, bytearray, memoryview)) or hasattr(body, "__array_interface__")
                or callable(getattr(body, "read", None))):
            raise NotABinaryBody(f"body must be bytes-like or a binary file object (with read()), "
                                 f"not {type(body).__name__}")
        with self._progress(_body_size(body), f"upload {object_name}", callback) as progress:
            return self.store.put(object_name, body, string_metadata(metadata), acl=acl, progress=progress.update)

    @cleans_object_name
    def mpu_fileobject(self, object_name: str, file_object: BinaryIO, buffersize: int | None = None,
                       verbose: bool = True, acl: str | None = None, *, callback: ProgressCallback | None = None,
                       **metadata: Any) -> ObjectInfo:
        """Upload a file-like object (multipart above the threshold, parts streamed, never whole in memory)."""
        return self.upload_object(object_name, file_object, acl=acl, callback=callback, **metadata)

    @cleans_object_name
    def download_stream(self, object_name: str, threads: int | None = None) -> CloudStream:
        info = self.store.head(object_name)
        return CloudStream(self.store.open_read(object_name, if_match=info.etag), visible_metadata(info.metadata), info)

    @cleans_object_name
    def download_object(self, object_name: str, threads: int | None = None, *,
                        callback: ProgressCallback | None = None) -> bytes:
        """The object's bytes."""
        info = self.store.head(object_name)
        body = bytearray(info.size)
        with self._progress(info.size, f"download {object_name}", callback) as progress:
            self.store.download_into(object_name, memoryview(body), if_match=info.etag, progress=progress.update)
        return bytes(body)

    def upload_from_file(self, flname: str, object_name: str | None = None,
                         ExtraArgs: Mapping[str, Any] | None = None,  # noqa: N803
                         threads: int | None = None, *, callback: ProgressCallback | None = None) -> ObjectInfo:
        """Upload a local file (streamed, multipart when large). ``object_name`` defaults to ``flname``."""
        if not isinstance(flname, (str, os.PathLike)) or not isinstance(os.fspath(flname), str):
            raise NotAPath(f"flname must name a file (a str or os.PathLike), not {type(flname).__name__}")
        key = require_key(object_name if object_name is not None else os.fspath(flname))
        if not os.path.isfile(flname):
            raise ObjectNotFound(errno.ENOENT, f"no such file to upload: {flname}")
        acl = (ExtraArgs or {}).get("ACL")
        metadata = (ExtraArgs or {}).get("Metadata")
        with open(flname, "rb") as fh, \
                self._progress(os.fstat(fh.fileno()).st_size, f"upload {key}", callback) as progress:
            return self.store.put(key, fh, metadata, acl=acl, progress=progress.update)

    @cleans_object_name
    def download_to_file(self, object_name: str, file_name: str, threads: int | None = None, *,
                         callback: ProgressCallback | None = None) -> ObjectInfo:
        """Download to ``file_name`` atomically (a temporary file beside it, then a rename)."""
        from .files.transfers import write_object_to_file

        info = self.store.head(object_name)
        with self._progress(info.size, f"download {object_name}", callback) as progress:
            write_object_to_file(self.store, object_name, os.path.abspath(file_name), progress.update, info)
        return info

    # --- json / pickle -----------------------------------------------------------------------
    @cleans_object_name
    def upload_json(self, object_name: str, ddict: Any, acl: str | None = None, threads: int | None = None,
                    **metadata: Any) -> ObjectInfo:
        return self.store.put(object_name, objects.encode_json(ddict), string_metadata(metadata), acl=acl)

    @cleans_object_name
    def download_json(self, object_name: str, threads: int | None = None) -> Any:
        return objects.decode_json(self.download_object(object_name), self.store.describe(object_name))

    @cleans_object_name
    def upload_pickle(self, object_name: str, data_object: Any, acl: str | None = None,
                      threads: int | None = None, **metadata: Any) -> ObjectInfo:
        return self.store.put(object_name, objects.encode_pickle(data_object), string_metadata(metadata),
                              acl=acl)

    @cleans_object_name
    def download_pickle(self, object_name: str, threads: int | None = None) -> Any:
        return objects.decode_pickle(self.download_object(object_name), self.store.describe(object_name))

    # --- arrays ------------------------------------------------------------------------------
    @cleans_object_name
    def upload_npy_array(self, object_name: str, array: np.ndarray, acl: str | None = None,
                         threads: int | None = None, *, callback: ProgressCallback | None = None,
                         **metadata: Any) -> ObjectInfo:
        """Store exactly what ``np.save`` writes (no pickles); like ``np.save``, other values go through
        ``np.asanyarray`` (a list, a number, a string)."""
        if not isinstance(array, np.ndarray):
            array = np.asanyarray(array)  # what np.save (so 0.4.0) does
        if array.dtype.hasobject:  # np.save(allow_pickle=False) refuses these too
            raise ValueError(f"{object_name}: arrays of Python objects (dtype {array.dtype}) cannot be saved "
                             "without pickles; use upload_pickle")
        saved = npy_bytes(array)
        with self._progress(len(saved[0]) + len(saved[1]), f"upload {object_name}", callback) as progress:
            return write_npy_object(self.store, object_name, saved, string_metadata(metadata), acl=acl,
                                    progress=progress.update)

    @cleans_object_name
    def download_npy_array(self, object_name: str, threads: int | None = None, *,
                           callback: ProgressCallback | None = None) -> np.ndarray:
        found = open_npy_object(self.store, object_name)
        if found is not None:
            with self._progress(found.start + found.spec.nbytes, f"download {object_name}", callback) as progress:
                return read_npy_body(self.store, found, progress=progress.update)
        # not a header numpy reads without pickles: numpy's own words for what its first bytes are
        # (never the whole object: it may be anything, of any size)
        info = self.store.head(object_name)
        if info.size == 0:
            raise EmptyNpyFile(f"{self.store.describe(object_name)} is empty, not a .npy file (No data left in file)")
        first = self.store.get_range(object_name, 0, min(info.size, NPY_HEADER_LIMIT), if_match=info.etag)
        if first.startswith(NPZ_MAGIC):  # np.load (so 0.4.0) returns an NpzFile: its arrays load without pickles
            return np.load(io.BytesIO(self.download_object(object_name)), allow_pickle=False)
        try:
            np.load(io.BytesIO(first), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise ValueError(f"{self.store.describe(object_name)} is not a readable .npy file: {exc}") from exc
        raise ValueError(f"{self.store.describe(object_name)} is not a readable .npy file")

    @cleans_object_name
    def upload_raw_array(self, object_name: str, array: np.ndarray, compression: object = True,
                         acl: str | None = None, threads: int | None = None, *,
                         callback: ProgressCallback | None = None, **metadata: Any) -> ObjectInfo:
        """Upload an array's bytes with its dtype/shape/order/compression as metadata (0.4.0's format).

        ``compression``: ``True`` (the config default: gzip up to 2 GB, Zstd above), ``False``/``None``
        for none, or a codec name (``'gzip'``, ``'LZ4'``, ``'Zlib'``, ``'Zstd'``, ``'BZ2'``, ``'lzma'``...).
        Uncompressed uploads stream from the array's own memory. Extra keyword arguments (strings)
        become user metadata; the deprecated ``gzip=True/False`` still works.
        """
        from .formats.raw import validate_extra_metadata

        gzip_flag = metadata.pop("gzip", None)
        extra = validate_extra_metadata(metadata)
        with self._progress(getattr(array, "nbytes", 0), f"upload {object_name}", callback) as progress:
            return write_raw_array(self.store, object_name, array, compression, extra=extra, acl=acl,
                                   gzip_flag=gzip_flag, progress=progress.update, **self._encode_choice())

    def _encode_choice(self) -> dict[str, Any]:
        """The configured codec choice (``[compression]`` of options.cfg) for default compression."""
        return {"small_array": self.settings.small_array, "large_array": self.settings.large_array,
                "do_compression": self.settings.do_compression}

    def _progress(self, total: int | None, label: str, callback: ProgressCallback | None = None) -> Progress:
        """A bar for transfers big enough to wait for (when verbose and seen), and the caller's callback.
        ``total`` is what the transfer counts (an array's bytes, whatever is stored; an object's
        bytes), so the bar's threshold, its total and its count are the same bytes. ``None`` when
        unknown (a stream that cannot seek): the callback gets no size."""
        return Progress(total, label, enabled=self.verbose, threshold=True, callback=callback)

    @cleans_object_name
    def download_raw_array(self, object_name: str, buffersize: int = 2**16, threads: int | None = None, *,
                           callback: ProgressCallback | None = None, **kwargs: Any) -> np.ndarray:
        """Download a raw array straight into a new numpy array (parallel ranged GETs, no extra copy).

        ``buffersize``, ``threads`` and other keywords are accepted as 0.4.0 did and have no effect:
        the store sizes its own ranged reads and their concurrency.
        """
        look = first_look(self.store, object_name)  # one request: metadata, and a small body whole
        with self._progress(look.spec.nbytes, f"download {object_name}", callback) as progress:
            return read_looked_array(self.store, look, progress=progress.update)

    @cleans_object_name
    def get_array_spec(self, object_name: str) -> Any:
        """dtype, shape, order and compression of a raw array, from one HEAD."""
        return read_array_spec(self.store, object_name)[1]


def _body_size(body: Any) -> int | None:
    """Bytes a body will send, when that can be known without reading it (``None`` otherwise: no bar)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return memoryview(body).nbytes
    try:
        here = body.tell()
        size = body.seek(0, os.SEEK_END) - here
        body.seek(here)
        return int(size)
    except (AttributeError, OSError, ValueError):
        return None
