"""The contract every object store fulfils, and the helpers built only on that contract.

Byte ranges are half-open ``[start, end)`` everywhere (zarr's ``RangeByteRequest``); only
``http_ranges`` writes the inclusive HTTP ``bytes=a-b`` form. Stores raise built-in exceptions only
(see ``errors.py``): ``FileNotFoundError``, ``PermissionError``, ``OSError`` with ``ESTALE``/``EIO``,
``ValueError`` for keys a store cannot hold.
"""

from __future__ import annotations

import abc
import errno
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from .conditions import FULL_SUPPORT, ConditionalSupport, WriteCondition
from .upload_journal import UploadJournal

#: bytes-like things a store accepts as a body without copying them
Buffer = bytes | bytearray | memoryview
#: called with a byte count as a transfer makes progress (from worker threads)
Progress = Callable[[int], None]


class WholePart(bytearray):
    """A chunk of ``put_chunks`` that is exactly one part, handed over: a store that cuts chunks into
    parts of that size sends it as it is instead of copying it into a part of its own. The caller
    neither changes nor reuses it while the store may still refer to it (``writes.parts`` reuses
    one only once nothing else refers to it)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    ``metadata`` is ``None`` when the information came from a listing, which carries no user
    metadata; a ``head`` always fills it (``{}`` for none). Keys of ``metadata`` are lower case,
    as S3 returns them.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None
    metadata: Mapping[str, str] | None = None
    owner: str | None = None


def same_version(listed: ObjectInfo, known: ObjectInfo) -> bool:
    """Whether ``known`` (a HEAD, or a cached one) describes the version ``listed`` (a LIST entry) shows.

    ETag and size must match, and the modification time to the second when both carry one: a copy
    of an object onto itself with new metadata keeps its ETag but not its time, and LIST gives
    milliseconds where a HEAD's ``Last-Modified`` gives seconds.
    """
    if listed.etag != known.etag or listed.size != known.size:
        return False
    if listed.last_modified is None or known.last_modified is None:
        return True
    return int(listed.last_modified.timestamp()) == int(known.last_modified.timestamp())


@dataclass(frozen=True)
class Listing:
    """One folder level: sub-prefixes (with their trailing delimiter) and objects directly in it."""

    prefixes: list[str] = field(default_factory=list)
    objects: list[ObjectInfo] = field(default_factory=list)


@dataclass(frozen=True)
class Capabilities:
    """What a store can do beyond the contract's minimum, declared by the store (callers ask this,
    never the store's type)."""

    #: ``head_many`` answers many keys more cheaply than ``head`` from threads (S3: one thread, many sockets)
    batched_head: bool = False
    #: ``copy_from`` copies server-side from another bucket of the same account (S3: one endpoint)
    cross_bucket_copy: bool = False
    #: ``spec()`` rebuilds the store in another process (dask workers); never for in-memory stores
    other_processes: bool = False


@dataclass(frozen=True)
class StoreSpec:
    """A store as a worker process rebuilds it (``registry.store_from_spec``): small, picklable,
    hashable, secret-free.

    ``settings`` holds every non-secret setting (``config.shareable``); ``token`` names this
    process's full settings, credentials included, so a worker here or forked from here uses
    them (``config.recall``); any other process uses ``settings`` and its own credential chain.
    """

    scheme: str
    bucket: str
    settings: tuple[tuple[str, Any], ...] = ()
    token: str | None = None
    #: the bucket's region where the spec's process learned it (a bucket check's or a 301's
    #: ``x-amz-bucket-region``) and it is not the client's: a worker signs for it from its first request
    region: str | None = None


def check_range(start: int, end: int, size: int | None = None) -> None:
    """Reject ranges that are not half-open, non-negative and (when the size is known) in bounds."""
    if start < 0 or end < start:
        raise ValueError(f"invalid byte range [{start}, {end})")
    if size is not None and end > size:
        raise ValueError(f"byte range [{start}, {end}) is past the end of a {size}-byte object")


def as_byte_view(data: Buffer) -> memoryview:
    """A flat, read-only byte view of any contiguous buffer (arrays included) without a copy."""
    view = memoryview(data)
    if not view.contiguous:
        raise ValueError("upload buffers must be contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


@dataclass(frozen=True)
class CopiedRange:
    """Bytes ``[start, end)`` of the stored object ``key`` at version ``etag``: one piece of a
    ``compose``, copied by the store itself (S3: ``UploadPartCopy`` with ``CopySourceIfMatch``), so an
    untouched stretch of an object being rewritten is never sent again. A replaced source is ``ESTALE``."""

    key: str
    start: int
    end: int
    etag: str

    def __len__(self) -> int:
        return self.end - self.start


#: one piece of a composed object: bytes to send, or a stretch of a stored object to copy
Piece = Buffer | CopiedRange


#: bytes of a streamed body ``put_chunks`` keeps in memory before spilling to a temporary file
SPOOL_IN_MEMORY = 8 * 2**20
#: the smallest piece of a ``compose`` but the last (S3's smallest multipart part)
MIN_COMPOSE_PIECE = 5 * 2**20
#: the largest object S3 stores (5 TiB): a file a mount is asked to grow past it is ``EFBIG`` at once
MAX_OBJECT_SIZE = 5 * 2**40


class PrefixedStream:
    """A read-only stream of ``first`` followed by the rest of ``rest`` (no copy of either)."""

    def __init__(self, first: bytes, rest: BinaryIO):
        self._first = memoryview(first)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            head, self._first = bytes(self._first), memoryview(b"")
            return head + self._rest.read()
        if self._first:
            head, self._first = bytes(self._first[:size]), self._first[size:]
            return head
        return self._rest.read(size)


class ObjectStore(abc.ABC):
    """Bytes in and out of one bucket (or one local directory used as a bucket)."""

    #: the bucket's name (or the directory for the local store); used in error messages
    bucket: str
    #: bytes per ranged GET when a whole object is fetched in parallel
    part_size: int = 16 * 2**20
    #: ranged GETs in flight for one object
    concurrency: int = 8
    #: what this kind of store can do beyond the minimum (see ``Capabilities``)
    capabilities: Capabilities = Capabilities()

    # --- reading -----------------------------------------------------------------------------
    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Size, ETag and user metadata of ``key``; ``FileNotFoundError`` when it is missing."""

    @abc.abstractmethod
    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        """Bytes ``[start, end)`` of ``key``; ``OSError(ESTALE)`` if its ETag is not ``if_match``."""

    def readinto(self, key: str, start: int, buffer: memoryview, if_match: str | None = None) -> None:
        """Fill ``buffer`` with the object's bytes from ``start``; a short object is ``EIO``."""
        data = self.get_range(key, start, start + len(buffer), if_match)
        if len(data) != len(buffer):
            raise OSError(errno.EIO, f"{self.describe(key)}: short read ({len(data)} of {len(buffer)} bytes)")
        buffer[:] = data

    def read_start(self, key: str, buffer: memoryview) -> tuple[ObjectInfo, int]:
        """The object's info (as ``head`` gives it) and its first bytes into ``buffer`` (fewer when it
        is shorter): ``(info, bytes filled)``, both of one version.

        Why: a remote store answers a GET with the same headers as a HEAD (ETag, size, user
        metadata), so where a HEAD would be followed by a read of the first bytes (a lookup, then an
        open), one ranged GET does both. This default is a ``head`` and a read pinned to its ETag
        (two requests: for stores where a request costs nothing); ``S3Store`` sends one GET.
        """
        info = self.head(key)
        n = min(info.size, len(buffer))
        if n:
            self.readinto(key, 0, buffer[:n], if_match=info.etag)
        return info, n

    @abc.abstractmethod
    def open_read(self, key: str, if_match: str | None = None) -> BinaryIO:
        """A stream of the whole object, for decoders that work incrementally (gzip)."""

    def get(self, key: str) -> bytes:
        """The whole object (small objects: json, pickles, metadata files)."""
        with self.open_read(key) as stream:
            return stream.read()

    def download_into(self, key: str, buffer: memoryview, *, if_match: str | None = None,
                      offset: int = 0, progress: Progress | None = None) -> None:
        """Fill ``buffer`` from ``offset`` with ranged reads in parallel, straight into its memory."""
        total = len(buffer)
        if total == 0:
            return
        parts = [(s, min(s + self.part_size, total)) for s in range(0, total, self.part_size)]

        def fetch(start: int, end: int) -> None:
            self.readinto(key, offset + start, buffer[start:end], if_match)
            if progress is not None:
                progress(end - start)

        if len(parts) == 1:
            fetch(0, total)
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(parts)),
                                thread_name_prefix="cc-get") as pool:
            futures = [pool.submit(fetch, s, e) for s, e in parts]
            for fut in futures:
                fut.result()

    # --- writing -----------------------------------------------------------------------------
    @abc.abstractmethod
    def put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None = None,
            acl: str | None = None, progress: Progress | None = None, *,
            condition: WriteCondition | None = None) -> ObjectInfo:
        """Store ``data`` (a buffer, read without copying, or a binary stream) with user metadata.

        ``progress`` is called with the number of bytes as each part is sent. ``condition``
        (``conditions.WriteCondition``): store only if the key is absent (``CREATE``, else
        ``FileExistsError``) or still at a version (``overwrite(etag)``, else ``OSError(ESTALE)``),
        where the store honours it (``conditional_writes``); nothing is stored when it fails.
        """

    def record_uploads(self, journal: UploadJournal | None) -> None:
        """Write down every multipart upload this store starts, until it ends, in ``journal``
        (``upload_journal``: a mount's, so the next mount aborts what a killed daemon left). This
        default records nothing: stores without multipart uploads (memory, local)."""
        return None

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort the in-progress multipart upload ``upload_id`` of ``key`` (one recorded in an
        ``UploadJournal``); one already gone is no error. This default: no uploads, nothing to do."""
        return None

    def conditional_writes(self) -> ConditionalSupport:
        """Which ``condition`` s of ``put``/``put_chunks`` this store honours. This default (stores
        that check them in-process: memory, local) honours all; ``S3Store`` asks its endpoint."""
        return FULL_SUPPORT

    def put_chunks(self, key: str, chunks: Iterable[Buffer], metadata: Mapping[str, str] | None = None,
                   acl: str | None = None, progress: Progress | None = None, *,
                   head: Callable[[], bytes] | None = None, size_hint: int | None = None,
                   in_flight: int | None = None, condition: WriteCondition | None = None,
                   part_size: int | None = None) -> ObjectInfo:
        """Store ``head() + b"".join(chunks)``, where ``head`` is known only once ``chunks`` is exhausted.

        For bodies produced as they are uploaded (parallel gzip, whose header holds the block index).
        Stores that can, hold only a few parts at once (S3: the first part is sent last, at most
        ``in_flight`` others are being sent); this default spools the chunks to a temporary file.
        ``size_hint``: about how long the body is. ``part_size``: bytes per part where the store makes
        parts (default: the store's small streaming parts; the mount's writes ask for the library's
        part size, so 1 GiB is 64 parts, not 205).
        """
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            for chunk in chunks:
                spool.write(chunk)
            first = head() if head is not None else b""
            spool.seek(0)
            return self.put(key, PrefixedStream(first, spool), metadata, acl, progress,  # type: ignore[arg-type]
                            condition=condition)

    def compose(self, key: str, pieces: Iterable[Piece], metadata: Mapping[str, str] | None = None,
                acl: str | None = None, *, condition: WriteCondition | None = None,
                in_flight: int | None = None) -> ObjectInfo:
        """Store the concatenation of ``pieces`` as ``key`` in one write: the object appears whole or
        not at all. Pieces are taken lazily, in order; each but the last is at least
        ``MIN_COMPOSE_PIECE`` bytes (S3's smallest multipart part), so a store may make each piece one
        part. ``condition`` as for ``put``; ``in_flight``: at most this many pieces being sent at once
        (memory: that many sent pieces). This default streams the pieces through ``put_chunks`` (a
        ``CopiedRange`` is read with ``If-Match``): stores where a request costs nothing; ``S3Store``
        copies server-side."""
        def chunks() -> Iterator[Buffer]:
            for piece in pieces:
                if isinstance(piece, CopiedRange):
                    data = self.get_range(piece.key, piece.start, piece.end, if_match=piece.etag)
                    if len(data) != len(piece):
                        raise OSError(errno.EIO, f"{self.describe(piece.key)}: short read while composing "
                                                 f"{self.describe(key)}")
                    yield data
                else:
                    yield piece

        return self.put_chunks(key, chunks(), metadata, acl, condition=condition, in_flight=in_flight)

    @abc.abstractmethod
    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        """Server-side copy, keeping the user metadata; ``condition``: what must hold of ``dst`` when
        the copy lands (``storage.conditions``: absent, or at the version seen; else the loser's error).
        ``source_etag``: copy only that version of ``src`` (S3's ``CopySourceIfMatch``); another
        version, or none, is ``stale_source``'s ESTALE and nothing is written."""

    def copy_from(self, source: ObjectStore, src: str, dst: str) -> None:
        """Copy ``src`` of ``source`` (any store) to ``dst`` here, keeping the user metadata.

        Within one bucket this is ``copy``; a store whose ``capabilities.cross_bucket_copy`` is set
        overrides this to copy server-side from other buckets of its account. Otherwise the bytes
        stream through this process (pinned to the ETag seen, so a replaced source is ``ESTALE``).
        """
        if self.same_bucket(source):
            self.copy(src, dst)
            return
        info = source.head(src)
        with source.open_read(src, if_match=info.etag) as stream:
            self.put(dst, stream, dict(info.metadata or {}))

    def same_bucket(self, other: ObjectStore) -> bool:
        """Whether ``other`` serves the same bucket as this store (so ``copy`` reaches its keys)."""
        return other is self or (type(other) is type(self) and other.bucket == self.bucket)

    @abc.abstractmethod
    def delete_many(self, keys: Iterable[str], *, cleanup: bool = False) -> None:
        """Delete keys; missing keys are not an error (as in S3). ``cleanup``: this undoes a failed
        write, so a remote store retries for longer (the endpoint has just failed)."""

    def delete_versions(self, versions: Mapping[str, str | None]) -> list[str]:
        """Delete each key only while it is at the ETag given (``None``: whatever is there): a rename's
        old names after their copies, so another writer's newer version is never deleted unseen. The
        keys left because another version is there now are returned, in order; a key already gone is
        no error. Where the store ignores the condition (``conditional_writes().delete_if_match``) the
        delete is unconditional. This default asks HEAD first (a narrow race); stores that can make
        the check and the delete one step override it."""
        left = []
        for key, etag in versions.items():
            if etag is not None:
                try:
                    now = self.head(key).etag
                except FileNotFoundError:
                    continue
                if now.strip('"') != etag.strip('"'):
                    left.append(key)
                    continue
            self.delete_many([key])
        return left

    def owner(self, key: str) -> dict[str, str]:
        """Who owns ``key`` (``DisplayName``/``ID`` as S3 says), where the store can tell."""
        raise NotImplementedError(f"{type(self).__name__} does not record object owners")

    def delete(self, key: str) -> None:
        self.delete_many([key])

    # --- listing -----------------------------------------------------------------------------
    @abc.abstractmethod
    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        """One level under ``prefix`` (all pages): sub-prefixes and objects, in key order."""

    def list_dir_pages(self, prefix: str, delimiter: str = "/") -> Iterator[Listing]:
        """``list_dir`` a page at a time, as the pages arrive, in key order: a caller can start on
        the first thousand entries of a big folder while the rest is being listed (the mount's
        ``ls`` of 100,000 arrays HEADs page 1 while page 2 is on its way). Across pages, prefixes
        and objects are each in key order and every entry of a page sorts after every entry of the
        pages before it (S3's order), so what is known is complete up to the last entry seen.
        This default is one page, the whole level (stores where a request costs nothing)."""
        yield self.list_dir(prefix, delimiter)

    @abc.abstractmethod
    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, at any depth, in key order."""

    def list_page_after(self, prefix: str, start_after: str, max_keys: int = 1000) -> list[ObjectInfo]:
        """The objects one level under ``prefix`` whose keys sort after ``start_after``, in key
        order, at most ``max_keys`` (fewer: a sub-prefix on the way counts against the page too).

        Why: one page of a folder confirms the current version of up to ``max_keys`` neighbouring
        objects in one request (S3's ``StartAfter``), where a folder too big to LIST again whole
        would otherwise re-ask them one HEAD each. This default lists the whole level (stores where a
        request costs nothing); ``S3Store`` sends one LIST request.
        """
        objects = [info for info in self.list_dir(prefix).objects if info.key > start_after]
        return objects[:max_keys]

    def head_if_exists(self, key: str) -> ObjectInfo | None:
        """``head(key)``, or ``None`` when there is no such object (one request either way)."""
        try:
            return self.head(key)
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self.head_if_exists(key) is not None

    def head_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo | None]:
        """``head`` of many keys. A key maps to ``None`` when its answer was anything but the
        object's info (missing, refused, a fault): ask ``head`` for it to learn what it is.

        This fallback asks one key after another; a store with ``capabilities.batched_head``
        answers many at once, and only then is this cheaper than ``head`` from threads.
        """
        answers: dict[str, ObjectInfo | None] = {}
        for key in dict.fromkeys(keys):
            try:
                answers[key] = self.head(key)
            except OSError:
                answers[key] = None
        return answers

    # --- naming ------------------------------------------------------------------------------
    def describe(self, key: str | None = None) -> str:
        """How errors name an object of this store."""
        return f"s3://{self.bucket}/{key}" if key is not None else f"s3://{self.bucket}"

    def listing_where(self, prefix: str) -> str:
        """How errors name a listing of ``prefix``: the folder, and the endpoint where one answers."""
        return f"LIST of {self.describe(prefix)}"

    def cache_scope(self) -> str | None:
        """What names this bucket across processes in a persistent cache (endpoint and bucket, no
        secret), or ``None`` when metadata of this store must not outlive the process (memory) or
        costs nothing to ask again (local files)."""
        return None

    def change_scope(self) -> str | None:
        """What names this bucket to the local ccfs mounts told about its changes (``changes``):
        endpoint and bucket, no secret; ``None``: no mount can show this store (memory)."""
        return None

    def changed(self, keys: Iterable[str]) -> None:
        """Tell the local ccfs mounts of this bucket that ``keys`` were written or removed (best
        effort, bounded waits; see ``cottoncandy.changes``). Every write of a store calls this."""
        keys = list(keys)
        if keys:
            scope = self.change_scope()
            if scope is not None:
                from .. import changes

                changes.announce(self.bucket, scope, keys)

    def spec(self) -> StoreSpec:
        """Small picklable description from which a worker process can rebuild this store."""
        raise NotImplementedError(f"{type(self).__name__} cannot be rebuilt in another process")


class Account(abc.ABC):
    """The buckets of one backend (``get_interface`` holds one): bucket-level calls and per-bucket stores."""

    #: buckets are names the account lists (S3), not folders made on first use (local directories)
    named_buckets: bool = True

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """How messages and ``repr`` name where the buckets live."""

    @abc.abstractmethod
    def store(self, bucket: str) -> ObjectStore: ...

    @abc.abstractmethod
    def list_buckets(self) -> list[str]: ...

    @abc.abstractmethod
    def bucket_exists(self, bucket: str) -> bool: ...

    def check_bucket_name(self, bucket: str) -> None:
        """``ValueError`` (``InvalidBucketName``) for a name no bucket of this backend can have,
        before any request; every name passes where buckets are folders."""
        return None

    @abc.abstractmethod
    def create_bucket(self, bucket: str, acl: str | None = None) -> None: ...

    @abc.abstractmethod
    def delete_bucket(self, bucket: str) -> None: ...

    def native_bucket(self, bucket: str) -> Any:
        """What 0.4.0's ``get_bucket()`` returned for a bucket of this backend (S3: a boto3 ``Bucket``)."""
        return self.store(bucket)

    def native_object(self, bucket: str, key: str) -> Any:
        """What 0.4.0's ``get_object()`` returned (S3: a boto3 ``Object``); here the key's ``ObjectInfo``."""
        return self.store(bucket).head(key)


class MaybeStoredError(OSError):
    """A write failed (``EIO``) after the server may have carried it out: an answer was lost.

    Writers of several objects undo such a key too when they clean up, since it may be there.
    """


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``; Python 3.10 has no ``add_note``, so there the note is kept in
    ``__notes__`` by hand (where 3.11+ keeps it), rather than the cleanup raising AttributeError."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined]  # 3.10 has none


def stale_source(where: str) -> OSError:
    """The error of a copy whose source is no longer at the version asked (``copy``'s ``source_etag``):
    another writer replaced or removed it since it was seen; nothing was copied."""
    return OSError(errno.ESTALE, f"{where} was replaced or removed by another writer since it was seen; "
                                 "nothing was copied")


def check_copy_source(source_etag: str | None, current_etag: str | None, where: str) -> None:
    """For stores that check a copy's source themselves (memory, local): ``stale_source`` unless the
    source is at ``source_etag`` (``current_etag``: its ETag now, ``None`` when it is gone)."""
    if source_etag is not None and (current_etag is None or current_etag.strip('"') != source_etag.strip('"')):
        raise stale_source(where)


def delete_after_failure(store: ObjectStore, written: list[str], exc: BaseException, what: str = "object(s)") -> None:
    """Undo the objects a failed multi-object write managed to store, and say so on ``exc``.

    Used by every writer of several objects (dask parts, sparse parts, dict2cloud leaves) so a
    failure leaves nothing half-written, or names what could not be removed. ``written`` holds every
    key a write was *started* for, not only those acknowledged: a write whose answer was lost may
    have stored its object (deleting a key that is not there is no error).
    """
    if not written:
        return
    try:
        store.delete_many(written, cleanup=True)
        add_note(exc, f"cottoncandy: removed the {len(written)} {what} this write stored or may have stored")
    except OSError as cleanup:
        add_note(exc, f"cottoncandy: could not remove {len(written)} {what} already written "
                      f"(first {store.describe(written[0])}): {cleanup}")
