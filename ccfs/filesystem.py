"""The filesystem without a kernel: paths in, stat dicts and bytes out; errors are exceptions.

``operations.py`` adapts this object to FUSE in a few lines per call; tests drive it directly.
Open pins the object version (ETag): every later read of that handle is a ranged GET carrying
``IfMatch``, so a replaced object gives ``ESTALE``, never mixed bytes.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cottoncandy import fastpaths
from cottoncandy.arrays import gzip_blocks
from cottoncandy.arrays.gzip_points import OpenFetches, decode_recording, point_fetch, records_points
from cottoncandy.cache.blocks import BlockCache
from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.buffers import BufferPool
from cottoncandy.cache.decoded import DecodedArray, DecodedArrayCache, decoded_version
from cottoncandy.cache.disk import DecodedOnDisk, DiskBackedFetch, KeptDecoded, kept_head
from cottoncandy.cache.first_blocks import FirstBlocks, ProbingStore
from cottoncandy.cache.folder import CacheFolder
from cottoncandy.cache.identity import object_identity
from cottoncandy.cache.inflated import BlockTable, Indexes
from cottoncandy.cache.prefetch import START_BYTES, ObjectReader, RangeFetch, joined
from cottoncandy.cache.seek_index import beside_metadata
from cottoncandy.cache.stretches import StretchReader
from cottoncandy.cache.tuning import StreamTuning
from cottoncandy.formats import codecs, pgzip
from cottoncandy.formats.raw import ArraySpec
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode, FolderNode, Node
from cottoncandy.namespace.streams import FolderStream
from cottoncandy.storage.base import ObjectInfo, ObjectStore
from cottoncandy.storage.errors import NoAnswer
from cottoncandy.writes.seam import ReadOnlyWriter, WriteHandle, Writer

from .errors import Refused
from .mountoptions import MountOptions as MountOptions  # where it was defined before ccfs.mountoptions
from .versions import OpenVersions

log = logging.getLogger("ccfs")
MiB = 2**20
XATTR_PREFIX = "user.cottoncandy."
#: reading this attribute of a path refreshes it (not listed by ``listxattr``; see ``refresh``)
REFRESH_XATTR = XATTR_PREFIX + "refresh"
#: the daemon's process id, asked of the mount's root by ``ccfs umount`` (which then waits for the
#: daemon to finish writing its disk cache); not listed by ``listxattr``
PID_XATTR = XATTR_PREFIX + "daemon-pid"
#: the daemon's fast paths, asked of the mount's root by ``ccfs info --mount``: JSON of whether they are
#: on, the fast requests refused by cause and the fallbacks by kind (``cottoncandy.fastpaths``); not listed
FAST_PATHS_XATTR = XATTR_PREFIX + "fast-paths"
#: the least memory one folder's listing may take, whatever ``--cache-size`` (bytes)
LISTING_MEMORY_MIN = 16 * MiB
#: at most this long is spent at unmount writing blocks still queued for the disk cache (seconds)
DISK_DRAIN_SECONDS = 20.0
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def fast_path_state() -> bytes:
    """This process's fast paths as ``FAST_PATHS_XATTR`` answers them (JSON)."""
    return json.dumps({"enabled": fastpaths.enabled(), "refused": fastpaths.refusals(),
                       "fallbacks": fastpaths.fallbacks()}, sort_keys=True).encode()


class Handle:
    """One open file: the pinned node and how its bytes are produced."""

    def __init__(self, node: FileNode, reader: ObjectReader | None, decoded: DecodedArray | None):
        self.node = node
        self.reader = reader
        self.decoded = decoded

    def read_pieces(self, size: int, offset: int) -> list[memoryview | bytes]:
        """The file's bytes [offset, offset+size) as a list of buffers (header, then cached
        blocks), so a FUSE reply is copied once, straight from the cache."""
        node = self.node
        end = min(node.size, offset + size)
        if offset >= end:
            return []
        header = node.header
        pieces: list[memoryview | bytes] = []
        if offset < len(header):
            pieces.append(header[offset : min(end, len(header))])
            offset = min(end, len(header))
            if offset >= end:
                return pieces
        body_offset = offset - len(header)
        length = end - offset
        if self.decoded is not None:
            body = [self.decoded.read(body_offset, length)]
        else:
            assert self.reader is not None
            body = self.reader.read_pieces(body_offset, length)
        got = sum(len(piece) for piece in body)
        if got != length:
            raise OSError(errno.EIO, f"{node.key}: short read at {body_offset} ({got} of {length} bytes)")
        pieces.extend(body)
        return pieces

    def read(self, size: int, offset: int) -> bytes:
        return joined(self.read_pieces(size, offset))


class DirectoryEntries:
    """``.``, ``..``, then a folder's entries in the order they are settled, each with its stat."""

    def __init__(self, stream: FolderStream, stat: Callable[[Node], dict[str, Any]]):
        self.stream = stream
        self.stat = stat

    def wait(self, index: int) -> bool:
        """Whether entry ``index`` exists, waiting while the folder is being listed (raises what
        made its listing fail)."""
        return index < 2 or self.stream.wait(index - 2)

    def ready(self, index: int) -> bool:
        """Whether entry ``index`` can be given without waiting."""
        return index < 2 or index - 2 < len(self.stream.entries)

    def __getitem__(self, index: int) -> tuple[str, dict[str, Any] | None]:
        if index < 2:
            return (".", "..")[index], None
        name, node = self.stream.entries[index - 2]
        return name, self.stat(node)


class ListedEntries:
    """A whole listing (``CcFilesystem.readdir``) with ``DirectoryEntries``' interface: ``.``, ``..``,
    then the entries (a folder holding folders made with ``mkdir``, which no LIST shows)."""

    def __init__(self, entries: list[tuple[str, dict[str, Any]]]):
        self.items: list[tuple[str, dict[str, Any] | None]] = [(".", None), ("..", None), *entries]

    def wait(self, index: int) -> bool:
        return index < len(self.items)

    def ready(self, index: int) -> bool:
        return index < len(self.items)

    def __getitem__(self, index: int) -> tuple[str, dict[str, Any] | None]:
        return self.items[index]


class CcFilesystem:
    def __init__(self, store: ObjectStore, prefix: str = "", options: MountOptions | None = None,
                 writer: Callable[[Namespace], Writer] | None = None):
        """``writer``: makes, from the namespace, where every change goes (``cottoncandy.writes.seam``);
        ``None``: read-only (``EROFS``) unless ``options.rw``, then a ``StoreWriter``."""
        self.store = store
        self.options = options or MountOptions()
        # --cache-size is every buffer of data the daemon holds: a quarter for decoded (compressed)
        # arrays, the rest for fetched bytes -- cached blocks, runs in flight or fetched ahead, idle
        # pooled buffers -- all charged to one budget (see ``cottoncandy.cache.budget``)
        decoded_memory = self.options.cache_size // 4
        self.budget = MemoryBudget(self.options.cache_size - decoded_memory)
        self.blocks = BlockCache(self.options.cache_size - decoded_memory, self.budget)
        # --cache-dir: blocks kept across mounts, and this mount's spills (removed at unmount); without
        # it, a temporary folder for the spills only (see ``cottoncandy.cache.folder``)
        self.cache_folder = CacheFolder(self.options.cache_dir)
        self.metadata = self.cache_folder.open_metadata(self.options.metadata_cache_size) \
            if self.options.metadata_cache else None
        self.seek_points = beside_metadata(self.metadata)  # seek_point records of 0.4.0 gzip arrays
        self.open_point_fetches = OpenFetches()  # files open on one such version share its stretches
        self.decoded = DecodedArrayCache(decoded_memory, self.cache_folder.spill_dir, self.options.cache_dir_size)
        self.gzip_indexes = Indexes()  # block indexes of our gzip bodies, read once per version
        self.disk = self.cache_folder.open_blocks(self.options.cache_dir_size, lambda: self.decoded.spilled_bytes,
                                                  queue_bytes=min(32 * MiB, self.budget.limit // 4))
        # idle run buffers (charged to the budget while idle): a few, for the runs in flight
        self.buffers = BufferPool(self.options.prefetch_run,
                                  min(4, self.budget.ahead_limit // self.options.prefetch_run), self.budget,
                                  sizes=[MiB << i for i in range(6)])  # the run sizes tuning may pick
        # a lookup's HEAD is a GET of the first block, kept for the open that follows (one round trip
        # instead of two, see ``first_blocks``); with a disk tier, which may hold that block, a HEAD
        self.first_blocks = FirstBlocks(min(16 * MiB, self.budget.limit // 16))
        probe = min(self.options.block_size, MiB)  # a large --block-size is not fetched at every stat
        meta_store = store if self.disk is not None else ProbingStore(store, self.first_blocks, probe,
                                                                       self.buffers.take)
        self.probing = meta_store if isinstance(meta_store, ProbingStore) else None
        self.namespace = Namespace(meta_store, prefix, ttl=self.options.metadata_ttl, attr_ttl=self.options.attr_ttl,
                                   shelf=self.metadata.scoped(store) if self.metadata is not None else None)
        self.pool = ThreadPoolExecutor(max_workers=self.options.fetch_threads, thread_name_prefix="ccfs-fetch")
        # fetches a READ waits for, so that the waiting thread can give up when the reader is
        # signalled (``interrupted``: set by the FUSE layer; the default never interrupts)
        self.demand = ThreadPoolExecutor(max_workers=self.options.fetch_threads, thread_name_prefix="ccfs-demand")
        self.interrupted: Callable[[], bool] | None = None
        # set when the mount is told to stop: every request still waiting gives up (``give_up``)
        self.stopping = threading.Event()
        if hasattr(store, "listing_memory"):  # a store whose listings are bounded (S3)
            store.listing_memory = self.listing_memory
        #: every open file by number: a read handle, or a write handle of ``self.writer``
        self._handles: dict[int, Handle | WriteHandle] = {}
        self.versions = OpenVersions()
        self._next_fh = itertools.count(1)
        self._lock = threading.Lock()
        self.mounted_at = time.time()
        self.uid = os.getuid() if self.options.uid is None else self.options.uid
        self.gid = os.getgid() if self.options.gid is None else self.options.gid
        self.writer: Writer = writer(self.namespace) if writer is not None else self._make_writer()
        writable = 0o200 if self.writer.writable else 0  # the owner may write where the mount does
        self.folder_mode = stat.S_IFDIR | ((0o555 | writable) & ~self.options.umask)
        self.file_mode = stat.S_IFREG | ((0o444 | writable) & ~self.options.umask)
        self._closed = False

    def _make_writer(self) -> Writer:
        """The writer chosen at mount time: read-only unless ``--rw`` (``MountOptions.rw``)."""
        if not self.options.rw:
            return ReadOnlyWriter()
        from cottoncandy.writes.staged_kind import StagedFiles
        from cottoncandy.writes.staging import StagingArea
        from cottoncandy.writes.writable import StoreWriter

        from .mountoptions import write_settings

        # files that cannot stream are staged on disk, capped by --write-cache-size (``writes.staging``)
        settings = write_settings(self.options)
        staging = StagedFiles(self.store, StagingArea(self.options.cache_dir, self.options.write_cache_size),
                              settings.compression)
        return StoreWriter(self.store, self.namespace, settings, staging=staging)

    @property
    def listing_memory(self) -> int:
        """Memory one folder's listing may take (``MountOptions.listing_memory``)."""
        if self.options.listing_memory is not None:
            return self.options.listing_memory
        return max(LISTING_MEMORY_MIN, self.options.cache_size // 4)

    def give_up(self) -> int | None:
        """What a request waiting on the store gives up with (``cottoncandy.waits``): ``EIO`` once the
        mount is stopping, ``EINTR`` once the kernel interrupted it (its reader was signalled)."""
        if self.stopping.is_set():
            return errno.EIO
        interrupted = self.interrupted
        return errno.EINTR if interrupted is not None and interrupted() else None

    def _read_given_up(self) -> bool:
        """The read's check (``cache.prefetch``): interrupted, or the mount stopping."""
        return self.give_up() is not None

    def stop(self) -> None:
        """The mount is going away (SIGTERM, ``ccfs umount``): every request still waiting on the
        store gives up within ``waits.SLICE`` seconds, so libfuse's loop can end (idempotent)."""
        self.stopping.set()

    def close(self) -> None:
        """Stop fetching, drop the caches, remove the cache folder made at mount (idempotent)."""
        self.stop()
        if self._closed:
            return
        self._closed = True
        log.info("memory: at most %d MiB of fetched data held (budget %d MiB); %d read-ahead runs not started "
                 "for want of room", self.budget.peak >> 20, self.budget.limit >> 20, self.budget.refused_ahead)
        refused = fastpaths.refusals()
        if refused:  # each asked again through boto3 (``cottoncandy.fastpaths``)
            log.info("fast requests refused by the endpoint: %s", fastpaths.counts_line(refused))
        self.writer.close()  # staged files still open are stored (or kept), streams given up: recovery.settle
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.demand.shutdown(wait=False, cancel_futures=True)
        self.namespace.close()
        self.decoded.close()
        self.buffers.clear()
        self.cache_folder.close(timeout=DISK_DRAIN_SECONDS)
        if self.metadata is not None:
            self.metadata.close()
        if self.seek_points is not None:
            self.seek_points.close()

    # --- metadata ----------------------------------------------------------------------------
    def lookup(self, path: str) -> Node:
        return self.namespace.lookup(path)

    def _stat(self, node: Node) -> dict[str, Any]:
        """stat fields; times in integer nanoseconds (the FUSE layer runs with ``use_ns``)."""
        base = {"st_uid": self.uid, "st_gid": self.gid, "st_blksize": self.options.block_size}
        if isinstance(node, FolderNode):
            t = int(self.mounted_at * 1e9)
            return {**base, "st_mode": self.folder_mode, "st_nlink": 2, "st_size": 0,
                    "st_mtime": t, "st_ctime": t, "st_atime": t}
        t = int((node.info.last_modified.timestamp() if node.info.last_modified else self.mounted_at) * 1e9)
        return {**base, "st_mode": self.file_mode, "st_nlink": 1, "st_size": node.size,
                "st_mtime": t, "st_ctime": t, "st_atime": t, "st_blocks": (node.size + 511) // 512}

    def getattr(self, path: str) -> dict[str, Any]:
        pending = self.writer.pending(path)  # waits for a store its last release has under way
        refused = self.writer.release_refusal(path)  # a last close's failure, which no program heard
        if refused is not None:
            raise refused
        if pending is not None:  # a file being written: its size so far, not the store's answer
            t = time.time_ns()
            return {"st_uid": self.uid, "st_gid": self.gid, "st_blksize": self.options.block_size,
                    "st_mode": self.file_mode, "st_nlink": 1, "st_size": pending.size, "st_mtime": t,
                    "st_ctime": t, "st_atime": t, "st_blocks": (pending.size + 511) // 512}
        if self.writer.folder(path):  # made with mkdir, nothing stored in it yet
            return self._stat(FolderNode(path.strip("/"), ""))
        return self._stat(self.lookup(path))

    def readdir(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        made = {name: self._stat(FolderNode(name, "")) for name in self.writer.folders_in(path)}
        try:
            node = self.lookup(path)
        except FileNotFoundError:
            if self.writer.folder(path):  # made with mkdir, nothing stored in it yet
                return sorted(made.items())
            raise
        if not isinstance(node, FolderNode):
            raise NotADirectoryError(errno.ENOTDIR, f"not a folder: {path}")
        listed = {name: self._stat(child) for name, child in self.namespace.children(path).items()}
        return sorted({**made, **listed}.items())

    def readdir_stream(self, path: str) -> DirectoryEntries | ListedEntries:
        """``readdir`` as the folder's LIST pages arrive (``namespace.streams``): a reader of a big
        folder gets its first entries after one page and its HEADs, not after all of them. A folder
        holding folders made with ``mkdir`` (``writer.folders_in``) is listed whole (``readdir``)."""
        if self.writer.folder(path) or self.writer.folders_in(path):
            return ListedEntries(self.readdir(path))
        node = self.lookup(path)
        if not isinstance(node, FolderNode):
            raise NotADirectoryError(errno.ENOTDIR, f"not a folder: {path}")
        return DirectoryEntries(self.namespace.stream(path), self._stat)

    def statfs(self) -> dict[str, int]:
        return {"f_bsize": self.options.block_size, "f_frsize": 4096, "f_blocks": 2**40 // 4096,
                "f_bfree": 0, "f_bavail": 0, "f_files": 2**32, "f_ffree": 0, "f_namemax": 1024}

    # --- extended attributes -----------------------------------------------------------------
    def _xattrs(self, node: Node) -> dict[str, str]:
        if not isinstance(node, FileNode):
            return {}
        attrs = {"etag": node.info.etag.strip('"'), "key": node.key}
        if node.spec is not None:
            attrs.update(dtype=node.spec.dtype.str, shape=",".join(map(str, node.spec.shape)),
                         order=node.spec.order, compression=node.spec.compression_label)
        return {XATTR_PREFIX + k: v for k, v in attrs.items()}

    def listxattr(self, path: str) -> list[str]:
        return sorted(self._xattrs(self.lookup(path)))

    def changed(self, keys: tuple[str, ...]) -> None:
        """Keys written or removed on this machine (``cottoncandy.changes``): shown at once."""
        asked = self.namespace.changed(keys)
        log.info("told of %d changed key(s), %d asked about", len(keys), asked)

    def refresh(self, path: str = "") -> None:
        """Drop cached listings and attributes (of the folder ``path`` and the one holding it;
        all for ``''``): the next access asks the store."""
        self.namespace.refresh(path)
        log.info("refreshed %s", f"/{path.strip('/')}" if path.strip("/") else "every folder")

    def getxattr(self, path: str, name: str, caller_uid: int | None = None) -> bytes:
        """``caller_uid``: who asks (the FUSE request's uid; ``None``: this process). Only the
        mounting user and root may refresh: with ``allow_other`` anyone else could otherwise make the
        daemon drop its caches at will."""
        if name == REFRESH_XATTR:  # ``ccfs refresh``'s channel: a read-only mount refuses setxattr
            if caller_uid not in (None, 0, os.getuid()):
                raise Refused(errno.EACCES, f"only uid {os.getuid()} and root may refresh this mount")
            self.refresh(path)
            return b"refreshed"
        node = self.lookup(path)
        if name == PID_XATTR and isinstance(node, FolderNode) and node.path == "":
            return str(os.getpid()).encode()
        if name == FAST_PATHS_XATTR and isinstance(node, FolderNode) and node.path == "":
            return fast_path_state()
        value = self._xattrs(node).get(name)
        if value is None:
            raise OSError(errno.ENODATA, f"{path} has no attribute {name}")
        return value.encode()

    # --- files -------------------------------------------------------------------------------
    def open(self, path: str, flags: int = os.O_RDONLY) -> int:
        return self.open_file(path, flags)[0]

    def open_file(self, path: str, flags: int = os.O_RDONLY) -> tuple[int, bool]:
        """A handle pinned to one version of the file, and whether the kernel may keep the pages
        it has cached for this file (see ``versions``: False when the version changed). An open
        for writing goes to the writer (``EROFS`` on a read-only mount). A store its last release has
        under way (after ``close()`` returned) is waited for first: the open sees what it stored, or
        its refusal."""
        self.writer.pending(path)
        refused = self.writer.release_refusal(path)  # a last close's failure, which no program heard
        if refused is not None:
            raise refused
        if flags & WRITE_FLAGS:
            return self._number(self.writer.open(path, flags, self.lookup)), False
        node = self.lookup(path)
        if isinstance(node, FolderNode):
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder")
        if node.error:
            raise OSError(errno.EIO, node.error)
        node, keep_cache = self.versions.acquire(node)
        try:
            handle = self._make_handle(node)
        except BaseException:
            self.versions.release(node)
            raise
        return self._number(handle), keep_cache

    def _number(self, handle: Handle | WriteHandle) -> int:
        """A new file handle number for ``handle`` (read and write handles share the numbering)."""
        with self._lock:
            fh = next(self._next_fh)
            self._handles[fh] = handle
        return fh

    def _make_handle(self, node: FileNode) -> Handle:
        info, spec = node.info, node.spec
        first = self.first_blocks.take(info.key, info.etag)  # fetched by the lookup, with the metadata
        version = info.etag  # what names the bytes this handle reads: the body's, or one decode of it
        # decoded bytes by range: stretches of a 0.4.0 gzip array through its seek points (``gzip_points``),
        # or the blocks of an array a former mount decoded whole and kept (``disk.KeptDecoded``)
        stretches: RangeFetch | None = None
        if spec is not None and spec.compression is not None:
            inflating = self._inflating_reader(info, spec, first)  # our gzip bodies: block by block
            if inflating is not None:
                return Handle(node, inflating, None)
            version = decoded_version(info.etag, spec.compression, spec.nbytes)
            held = self.decoded.held((info.key, version))  # decoded already: no seek_point read needed
            stretches = self._seek_point_fetch(info, spec) if held is None else None
            kept = self._kept_decoded(node) if held is None and stretches is None else None
            if kept is not None and kept.kept():  # decoded whole by a former mount: its blocks are on disk
                stretches = lambda start, end: memoryview(self._decoded(info, spec).read(start, end - start))  # noqa: E731
            elif stretches is None:
                decoded = self._decoded(info, spec)
                if kept is not None:
                    kept.start(decoded.read, self.store.describe(info.key))
                return Handle(node, None, decoded)
            first = None  # seek_point reads: the lookup's first block holds compressed bytes

        def fetch(start: int, end: int) -> memoryview:
            # uninitialised (pooled) memory filled in place by the socket; the block cache and
            # FUSE replies share it without copies
            buffer = self.buffers.take(end - start)
            self._fill(info, start, buffer)
            return buffer

        body_size = spec.nbytes if spec is not None else info.size
        origin = len(node.header) % self.options.block_size
        range_fetch: RangeFetch = fetch
        if stretches is not None:  # decoded bytes by range (kept on disk too)
            range_fetch = self._decoded_on_disk(info, version, stretches, self.options.block_size, origin)
        elif self.disk is not None:  # blocks on disk first; only the missing stretches are fetched
            range_fetch = DiskBackedFetch(self.disk, object_identity(self.store, info.key), info.etag,
                                          lambda start, buffer: self._fill(info, start, buffer), self.buffers.take,
                                          self.options.block_size, origin)
        options = self.options
        tuning = StreamTuning(run_size=options.prefetch_run, max_window=options.max_prefetch,
                              block_size=options.block_size, connections=options.fetch_threads,
                              min_run=options.prefetch_run,
                              initial_window=options.first_prefetch) if options.adaptive_prefetch else None
        reader = ObjectReader(self.blocks, self.pool, range_fetch, (info.key, version), body_size,
                              block_size=options.block_size,
                              max_window=options.max_prefetch if tuning else options.first_prefetch,
                              run_size=options.prefetch_run, origin=origin, budget=self.budget,
                              interrupted=self._read_given_up if self.interrupted is not None else None,
                              demand=self.demand, tuning=tuning, progressive=range_fetch is fetch,
                              start_bytes=START_BYTES if stretches is None else 0)
        if first is not None:
            reader.seed(first)
        return Handle(node, reader, None)

    def _kept_decoded(self, node: FileNode) -> KeptDecoded | None:
        """Where a compressed array decoded whole is kept in ``--cache-dir`` for later mounts, in this
        reader's block geometry (``disk.KeptDecoded``); None without a cache folder, or for a 0.4.0 gzip
        body whose decode records seek points (later opens read it by stretches, kept on disk too)."""
        if self.disk is None or node.spec is None or records_points(node.info, node.spec, self.seek_points):
            return None
        version = decoded_version(node.info.etag, node.spec.compression or "", node.spec.nbytes)
        return KeptDecoded(self.disk, object_identity(self.store, node.info.key), version, node.spec.nbytes,
                           self.options.block_size, len(node.header) % self.options.block_size)

    def _decoded(self, info: ObjectInfo, spec: ArraySpec) -> DecodedArray:
        """The whole decoded array (decoded once per version); a 0.4.0 gzip body's decode also keeps
        its seek points for later opens (``gzip_points.decode_recording``)."""
        version = decoded_version(info.etag, spec.compression or "", spec.nbytes)
        return self.decoded.get((info.key, version), spec.nbytes, lambda out: decode_recording(
            self.store, info, spec, out, self.seek_points, object_identity(self.store, info.key)))

    def _seek_point_fetch(self, info: ObjectInfo, spec: ArraySpec) -> StretchReader | None:
        """Decoded bytes by stretches through kept seek points (``gzip_points.point_fetch``), or None."""
        def body(start: int, end: int) -> bytes:
            buffer = bytearray(end - start)
            self._fill(info, start, memoryview(buffer))
            return buffer  # a bytes-like the inflater takes

        return point_fetch(info, spec, self.seek_points, object_identity(self.store, info.key), body,
                           lambda start, end: self._decoded(info, spec).read(start, end - start), self.budget,
                           self.open_point_fetches, allocate=self.buffers.take)

    def _inflating_reader(self, info: ObjectInfo, spec: ArraySpec,
                          first: memoryview | None) -> ObjectReader | None:
        """A reader of the decoded bytes of a gzip body with our block index (``cc-gzip-blocks``) that
        fetches and inflates only the blocks a read covers (``cache.stretches`` over
        ``cache.inflated.BlockTable``), or ``None`` (another codec, no usable index: the index is
        checked whole here, and a forged one is not used).

        Its blocks are the gzip blocks (aligned to the body, not the file: a page-aligned READ may then
        join two blocks, which is cheaper than inflating one twice); read-ahead runs are whole blocks.
        """
        if spec.compression is None or not codecs.record(spec.compression).blocks:
            return None
        version = decoded_version(info.etag, spec.compression, spec.nbytes)
        index = self.gzip_indexes.get((info.key, version), lambda: gzip_blocks.block_index(
            self.store, info, spec.nbytes, first if first is not None else self._kept_gzip_head(info, spec)))
        if index is None:
            return None

        def body(start: int, end: int) -> bytearray:
            buffer = bytearray(end - start)
            self._fill(info, start, memoryview(buffer))
            return buffer

        def bad(why: str) -> None:
            log.warning("%s: gzip block does not fit its index (%s); decoding the whole array",
                        self.store.describe(info.key), why)

        table = BlockTable(index, spec.nbytes, self.store.describe(info.key))
        fetch = StretchReader(table, body, lambda start, end: self._decoded(info, spec).read(start, end - start),
                              bad, allocate=self.buffers.take, first=first, budget=self.budget)
        block, options = table.span, self.options
        return ObjectReader(self.blocks, self.pool, self._decoded_on_disk(info, version, fetch, block, 0),
                            (info.key, version), spec.nbytes, block_size=block,
                            max_window=max(block, options.first_prefetch),
                            run_size=max(1, options.prefetch_run // block) * block, budget=self.budget,
                            interrupted=self._read_given_up if self.interrupted is not None else None,
                            demand=self.demand)

    def _kept_gzip_head(self, info: ObjectInfo, spec: ArraySpec) -> memoryview | None:
        """The gzip header holding a body's block index through the ``--cache-dir`` block tier
        (``disk.kept_head``), or None: no cache folder, or an index value ``block_index`` refuses."""
        try:
            size = pgzip.parse_metadata((info.metadata or {}).get(pgzip.INDEX_KEY), spec.nbytes).header_size
        except pgzip.BlockIndexError:
            return None
        if self.disk is None or size > info.size:
            return None
        return kept_head(self.disk, object_identity(self.store, info.key), info.etag,
                         lambda start, buffer: self._fill(info, start, buffer), size)

    def _decoded_on_disk(self, info: ObjectInfo, version: str, fetch: RangeFetch, block_size: int,
                         origin: int) -> RangeFetch:
        """``fetch`` (decoded bytes of a compressed array, block by block) with its blocks kept in the
        ``--cache-dir`` block tier, so a remount reads them back instead of inflating them again
        (``disk.DecodedOnDisk``); ``fetch`` itself without a cache folder."""
        if self.disk is None:
            return fetch
        return DecodedOnDisk(self.disk, object_identity(self.store, info.key), version, fetch, self.buffers.take,
                             block_size, origin)

    def _fill(self, info: ObjectInfo, start: int, buffer: memoryview) -> None:
        """The pinned version's bytes from ``start`` into ``buffer``: one ranged GET with ``If-Match``."""
        try:
            self.store.readinto(info.key, start, buffer, if_match=info.etag)
        except FileNotFoundError as exc:  # an open file whose object is gone: a stale handle, as in NFS
            raise OSError(errno.ESTALE, f"{self.store.describe(info.key)} was deleted since it was opened") from exc
        except OSError as exc:  # no answer in time: the kernel's revalidation before it asks again is a HEAD
            if self.probing is not None and isinstance(exc, NoAnswer):
                self.probing.read_failed(info.key)
            raise

    def _handle(self, fh: int) -> Handle | WriteHandle:
        handle = self._handles.get(fh)  # one dict read: atomic under the GIL, no lock per READ
        if handle is None:
            raise OSError(errno.EBADF, f"no open file {fh}")
        return handle

    def _write_handle(self, fh: int) -> WriteHandle:
        handle = self._handle(fh)
        if isinstance(handle, Handle):
            raise OSError(errno.EBADF, f"file {fh} ({handle.node.path}) is open for reading only")
        return handle

    def read(self, fh: int, size: int, offset: int) -> bytes:
        return self._handle(fh).read(size, offset)

    def read_pieces(self, fh: int, size: int, offset: int) -> list[memoryview | bytes]:
        """``read`` as buffers to copy in order (what the FUSE reply is filled from)."""
        handle = self._handle(fh)
        if not isinstance(handle, Handle):
            return [handle.read(size, offset)]
        return handle.read_pieces(size, offset)

    def release(self, fh: int) -> None:
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is None:
            return
        if not isinstance(handle, Handle):
            self.writer.release(handle)
            return
        if handle.reader is not None:
            handle.reader.close()
        self.versions.release(handle.node)

    # --- changes: each goes to the writer chosen at mount time (``cottoncandy.writes.seam``) --
    def create(self, path: str, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
        return self._number(self.writer.create(path, flags))

    def write(self, fh: int, data: bytes, offset: int) -> int:
        return self.writer.write(self._write_handle(fh), offset, data)

    def flush(self, fh: int) -> None:
        """FLUSH (each ``close()`` of a descriptor): a write handle's commit point; nothing for reads."""
        handle = self._handle(fh)
        if not isinstance(handle, Handle):
            self.writer.flush(handle)

    def fsync(self, fh: int, datasync: bool = False) -> None:
        handle = self._handle(fh)
        if not isinstance(handle, Handle):
            self.writer.fsync(handle, datasync)

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        handle = self._handles.get(fh) if fh is not None else None
        self.writer.truncate(path, length, None if isinstance(handle, Handle) else handle)

    def unlink(self, path: str) -> None:
        self.writer.unlink(path)

    def rename(self, old: str, new: str) -> None:
        self.writer.rename(old, new)

    def mkdir(self, path: str) -> None:
        self.writer.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.writer.rmdir(path)
