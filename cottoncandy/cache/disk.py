"""A persistent block tier on local disk, shared by every mount that names the same folder.

Why: the memory cache dies with the daemon, so a remount (or a second mount of the bucket) fetched
every byte again; mountpoint-s3's disk cache re-reads hot data with no GET. Like the rest of
``cache/`` this tier is given a fetch function, not a store: ``DiskBackedFetch`` wraps the fetch an
``ObjectReader`` uses, answers each block of a requested stretch from disk when it can, fetches only
the missing stretches (one fill, i.e. one ranged GET, per stretch), and writes fetched blocks
through on a background thread. The memory ``BlockCache`` above it is untouched.

Layout of the folder (``DiskBlockStore.root``):

* one file per block, ``<2 hex>/<62 hex>``: the name is a SHA-256 of (object identity, ETag, byte
  range), so a rewritten object (new ETag) can never be answered with its old blocks, and two mounts
  with the same block geometry share files. The object identity (``identity.object_identity``) names
  the endpoint, the account where bucket names are not global, the bucket and the key: an object of
  the same name and ETag on another endpoint is another object. Each file is a 20-byte header
  (magic, XXH3-64 digest of the data, data length) then the data; a file whose length or digest
  does not match (truncated, torn by a crash, a flipped bit) is discarded with one log line and its
  block fetched again.
* ``index.sqlite``: one row per file (size, last use) and the total, in SQLite's WAL mode. Changes of
  the folder's contents happen inside ``BEGIN IMMEDIATE`` transactions, so the database's write lock
  is the folder's lock across processes. A block is stored in three steps: reserve (evict least
  recently used files until it fits, then count its row), write a temporary file, rename it into
  place if the row is still there (a group of blocks per transaction). So block files and
  temporaries together never exceed ``limit``, not even for a moment (the index adds about 100
  bytes per block). Last use is tracked here (atime
  may be ``noatime``); hits are recorded in memory and written in batches by the writer thread.

The folder is private (``private.py``): made 0700 with every level checked as ssh checks ``~/.ssh``
(refused, with one line saying why, when another local user could change it), subfolders 0700, files
0600 created and opened with ``O_NOFOLLOW`` (a link or a file of another user is not read). Files of an
older layout (``VERSION``, kept in the index) are removed when the folder is opened.

Files are written to a temporary name in their final folder and renamed into place, so a reader
sees a whole file or none. No fsync: a file torn by a power loss fails its check and is refetched,
which is cheaper than a flush per block. A reader that opened a file keeps reading it even if
another mount evicts (unlinks) it meanwhile (POSIX); a file gone before the open is a miss.
Writes are behind the reader, on one thread, through a bounded queue (``queue_bytes``). When the
disk falls that far behind the network, the fetch that brought a block waits for room, at most
``wait_for_room`` seconds (1 s), then drops the block (counted in ``dropped``), and so does every
fetch after it until the writer finishes a batch: a disk (or a shared index another mount holds)
that stopped costs a reader one such wait, not one per block. A dropped block is only a miss next
time. Why wait at all: the writer is one Python thread, and while every fetch thread ran on, each
of its many GIL hand-overs per block (open, write, close, the index) queued behind them; it fell
behind on any full-speed cold read, and a remount re-read 16-97 of 512 blocks from the network.
Waiting fetchers hold no GIL, so the writer catches up at disk speed: a cold read goes at the pace
of the slower of the disk and the network. (Waiting without a bound, as a first version did, made a
cold read with a cache folder far slower than one without.) Queued blocks are views of fetch buffers, so
they stay charged to the ``MemoryBudget`` until written. ``close`` writes what is queued, within a
time bound (``ccfs umount`` waits for the daemon to finish this, so a remount finds the blocks).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import xxhash

from .private import (
    UnsafeCacheFolder,
    create_private_file,
    open_private_file,
    prepare_database,
    private_folder,
    private_subfolder,
)
from .sqlite_index import open_index, transaction

log = logging.getLogger(__name__)

#: the layout's version, kept in the index (``PRAGMA user_version``): a folder of another version is
#: emptied when opened. 2: names include the endpoint and account (``identity.py``); files 0600
VERSION = 2
MAGIC = b"CCB2"
#: magic, XXH3-64 of the data, data length. XXH3 rather than CRC32: zlib's CRC32 ran at 0.6-1 GB/s
#: here and was most of the CPU of a re-read from disk; XXH3 runs at several GB/s
HEADER = struct.Struct("<4sQQ")
#: temporary files older than this (seconds) were left by a writer that died
STALE_TEMP_AGE = 3600.0
#: how often the writer thread records hits even when nothing is written (seconds)
TOUCH_INTERVAL = 1.0

Fill = Callable[[int, memoryview], None]  # fill(start, buffer): the object's bytes [start, start+len(buffer))
Allocate = Callable[[int], memoryview]


#: the name space of decoded blocks (``DecodedOnDisk``): byte ``i`` of a compressed array's decoded
#: bytes is not byte ``i`` of its body, so the two never share a name
DECODED = "decoded"


def block_name(identity: str, etag: str, start: int, end: int, space: str = "") -> str:
    """The file name of the object's bytes [start, end) in version ``etag`` (with ``space``: of its
    decoded bytes [start, end), see :data:`DECODED`)."""
    suffix = f"\0{space}" if space else ""
    return hashlib.sha256(f"{identity}\0{etag}\0{start}\0{end}{suffix}".encode()).hexdigest()


class DiskBlockStore:
    """Blocks on disk under ``root``, bounded to ``limit`` bytes (LRU by last use), shared by processes.

    ``reserved()`` (optional) is bytes this process keeps in the same folder by other means (the
    decoded-array spill files): blocks are evicted so that blocks + reserved stay within ``limit``.
    """

    def __init__(self, root: str | os.PathLike[str], limit: int,
                 reserved: Callable[[], int] | None = None, queue_bytes: int = 32 * 2**20,
                 wait_for_room: float = 1.0):
        self.root = private_folder(root)
        self.wait_for_room = max(0.0, float(wait_for_room))
        self.limit = max(0, int(limit))
        self.reserved = reserved or (lambda: 0)
        self.queue_bytes = max(1, int(queue_bytes))
        self.hits = 0
        self.misses = 0
        self.written = 0
        self.corrupt = 0
        self.evicted = 0
        self.dropped = 0  # blocks not written because the queue stayed full for ``wait_for_room``
        self.waited = 0  # waits of a fetch for room in the queue
        prepare_database(self.root / "index.sqlite")
        self._db = open_index(self.root / "index.sqlite")
        self._db_lock = threading.Lock()
        with self._transaction():
            if self._db.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                self._start_afresh()
            self._db.execute("CREATE TABLE IF NOT EXISTS entries "
                             "(name TEXT PRIMARY KEY, size INTEGER NOT NULL, used REAL NOT NULL)")
            self._db.execute("CREATE INDEX IF NOT EXISTS entries_used ON entries (used)")
            self._db.execute("CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL)")
            self._db.execute("INSERT OR IGNORE INTO totals VALUES (0, 0)")
            self._evict(0)  # a smaller limit than the last mount's: shrink now
        self._remove_stale_temporaries()
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, str, memoryview | None]] = deque()  # (op, name, data)
        self._queued = 0  # bytes of data queued
        self._busy = False
        self._closed = False
        self._stalled = False  # a wait for room timed out: fetches drop blocks until a batch is written
        self._touched: dict[str, float] = {}
        self._touched_lock = threading.Lock()
        self._folders: set[str] = set()  # fan-out folders known to exist
        self._claimed: set[str] = set()  # decoded arrays being written through (``KeptDecoded``)
        self._writer = threading.Thread(target=self._run, name="cc-disk-writer", daemon=True)
        self._writer.start()

    def _start_afresh(self) -> None:
        """Forget an older layout (transaction open): its rows, and its files (they may be readable by
        other users, and are named without the endpoint)."""
        self._db.execute("DROP TABLE IF EXISTS entries")
        self._db.execute("DROP TABLE IF EXISTS totals")
        removed = 0
        for folder in self._fanout_folders():
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
        if removed:
            log.info("disk cache: removed %d block file(s) of an older layout from %s", removed, self.root)
        self._db.execute(f"PRAGMA user_version = {VERSION}")

    def _fanout_folders(self) -> Iterator[str]:
        """The ``<2 hex>`` folders (real folders only: a link there is never followed)."""
        for entry in os.scandir(self.root):
            if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
                yield entry.path

    # --- reading -----------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.root / name[:2] / name[2:]

    def read_into(self, name: str, buffer: memoryview) -> bool:
        """Fill ``buffer`` from the block file ``name``: True on a hit; False if it is absent or was
        corrupt (then it is discarded; ``buffer``'s contents are undefined)."""
        try:
            fd = open_private_file(self.path(name))
        except FileNotFoundError:
            self.misses += 1
            return False
        except OSError as exc:  # a link (ELOOP), not a regular file, another user's file
            problem: str | None = exc.strerror if not isinstance(exc, UnsafeCacheFolder) else str(exc)
            problem = problem or str(exc)
        else:
            try:
                problem = self._read_checked(fd, buffer)
            finally:
                os.close(fd)
        if problem is None:
            self.hits += 1
            with self._touched_lock:
                self._touched[name] = time.time()
            return True
        self.corrupt += 1
        self.misses += 1
        log.warning("disk cache: discarded corrupt block file %s (%s); fetching it again", self.path(name), problem)
        self._enqueue("discard", name, None)
        return False

    @staticmethod
    def _read_checked(fd: int, buffer: memoryview) -> str | None:
        """What is wrong with the block file open as ``fd`` for a block of ``len(buffer)`` bytes, or None."""
        size = os.fstat(fd).st_size
        if size != HEADER.size + len(buffer):
            return f"{size} bytes, expected {HEADER.size + len(buffer)}"
        magic, digest, length = HEADER.unpack(os.pread(fd, HEADER.size, 0))
        if magic != MAGIC or length != len(buffer):
            return "bad header"
        done = 0
        while done < len(buffer):
            n = os.preadv(fd, [buffer[done:]], HEADER.size + done)
            if n <= 0:
                return f"short read ({done} of {len(buffer)} bytes)"
            done += n
        if xxhash.xxh3_64_intdigest(buffer) != digest:
            return "checksum mismatch"
        return None

    # --- writing -----------------------------------------------------------------------------
    def write(self, name: str, data: memoryview | bytes, patient: bool = False) -> bool:
        """Store ``data`` as block ``name`` in the background; waits only while the queue is full (at
        most ``wait_for_room``; ``patient``: as long as it takes, for a background writer such as
        :func:`keep_decoded`, which no reader waits on). False when it was not queued: too large for
        the folder, the store closed, or the queue still full (the block is dropped)."""
        if HEADER.size + len(data) > self.limit:
            return False
        return self._enqueue("write", name, memoryview(data), patient)

    def holds(self, name: str) -> bool:
        """Whether a file named ``name`` is there now (one ``lstat``: nothing is read or trusted; a read
        still checks it, :meth:`read_into`)."""
        try:
            os.lstat(self.path(name))
        except OSError:
            return False
        return True

    def claim(self, name: str) -> bool:
        """Take ``name`` for one writer in this process (False: another has it); :meth:`unclaim` gives it back."""
        with self._cond:
            if name in self._claimed:
                return False
            self._claimed.add(name)
            return True

    def unclaim(self, name: str) -> None:
        with self._cond:
            self._claimed.discard(name)

    def _enqueue(self, op: str, name: str, data: memoryview | None, patient: bool = False) -> bool:
        nbytes = len(data) if data is not None else 0
        with self._cond:
            if self._closed:
                return False
            deadline = time.monotonic() + self.wait_for_room
            while (nbytes and (patient or not self._stalled) and not self._closed and self._queued
                   and self._queued + nbytes > self.queue_bytes):
                left = deadline - time.monotonic()
                if patient:
                    self._cond.wait()
                    continue
                if left <= 0:  # the writer finished no batch in that time: drop at once until it does
                    self._stalled = True
                    break
                self.waited += 1
                self._cond.wait(left)
            if self._closed:
                return False
            if nbytes and self._queued and self._queued + nbytes > self.queue_bytes:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.info("disk cache: writing falls behind reading; %d block(s) not kept so far", self.dropped)
                return False
            self._queue.append((op, name, data))
            self._queued += nbytes
            self._cond.notify_all()
            return True

    def flush(self) -> None:
        """Wait until everything queued is on disk and in the index, hits included."""
        with self._cond:
            if self._closed:
                return
            self._queue.append(("touch", "", None))
            self._cond.notify_all()
            while self._queue or self._busy:
                self._cond.wait()

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued, record hits, stop the writer (idempotent). With ``timeout``, wait
        at most that long: False if the writer had not finished then (what is left is lost with the
        process; a block half-stored is a reserved row without a file, which the next write of that
        block or eviction clears, and a temporary file, removed by a later store once stale)."""
        with self._cond:
            if not self._closed:
                self._queue.append(("touch", "", None))
                self._closed = True
                self._cond.notify_all()
            left = len(self._queue)
        self._writer.join(timeout)
        if self._writer.is_alive():
            log.warning("disk cache: %d queued change(s) of %s not written within %.0f s", left, self.root,
                        timeout or 0)
            return False
        with self._db_lock:
            self._db.close()  # idempotent
        return True

    def _run(self) -> None:
        last_touch = time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    if not self._cond.wait(TOUCH_INTERVAL) and self._touched:
                        break
                if not self._queue and self._closed:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            try:
                due = time.monotonic() - last_touch >= TOUCH_INTERVAL or any(op == "touch" for op, _, _ in batch)
                self._apply(batch, touch=due)
                if due:
                    last_touch = time.monotonic()
            except Exception as exc:  # a full or broken disk must not stop reads: log once per batch
                log.warning("disk cache: could not update %s: %s", self.root, exc)
            finally:
                with self._cond:
                    self._queued -= sum(len(data) for _, _, data in batch if data is not None)
                    self._busy = False
                    self._stalled = False
                    self._cond.notify_all()

    def _apply(self, batch: list[tuple[str, str, memoryview | None]], touch: bool) -> None:
        """Forget discarded files and record hits (one transaction), then store each written block."""
        touched: dict[str, float] = {}
        if touch:
            with self._touched_lock:
                touched, self._touched = self._touched, {}
        discards = [name for op, name, _ in batch if op == "discard"]
        if discards or touched:
            with self._transaction():
                for name in discards:
                    self._forget(name)
                self._db.executemany("UPDATE entries SET used = ? WHERE name = ?",
                                     [(used, name) for name, used in touched.items()])
        self._store([(name, data) for op, name, data in batch if op == "write" and data is not None])

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: the index's write lock, held by one process at a time, is the folder's lock."""
        return transaction(self._db, self._db_lock)

    def _store(self, blocks: list[tuple[str, memoryview]]) -> None:
        """Reserve room (evicting), write temporary files, rename each into place if still reserved.

        The reservation is a row counted in the total before any byte is written, so block files and
        temporaries together never exceed the limit; a reservation another mount evicted before the
        rename is dropped (its temporary removed) rather than left as an uncounted file. Blocks go in
        groups (two transactions per group, not per block) of at most 8 MiB and an eighth of the limit.
        """
        cap = min(self.limit // 8, 8 * 2**20)
        group: list[tuple[str, memoryview]] = []
        size = 0
        for name, data in blocks:
            if group and size + HEADER.size + len(data) > cap:
                self._store_group(group)
                group, size = [], 0
            group.append((name, data))
            size += HEADER.size + len(data)
        if group:
            self._store_group(group)

    def _store_group(self, group: list[tuple[str, memoryview]]) -> None:
        reserved: list[tuple[str, memoryview]] = []
        with self._transaction():
            for name, data in group:
                size = HEADER.size + len(data)
                row = self._db.execute("SELECT size FROM entries WHERE name = ?", (name,)).fetchone()
                if row is not None and self.path(name).exists():  # another mount (or an earlier fetch) wrote it
                    self._db.execute("UPDATE entries SET used = ? WHERE name = ?", (time.time(), name))
                    continue
                if row is not None:  # reserved by a writer still at it or dead; or removed by hand
                    self._forget(name)
                self._evict(size)
                self._db.execute("INSERT INTO entries VALUES (?, ?, ?)", (name, size, time.time()))
                self._db.execute("UPDATE totals SET bytes = bytes + ? WHERE id = 0", (size,))
                reserved.append((name, data))
        temporaries: dict[str, Path] = {}
        try:
            for name, data in reserved:
                temporaries[name] = self._write_temporary(name, data)
            with self._transaction():
                for name, temporary in list(temporaries.items()):
                    if self._db.execute("SELECT 1 FROM entries WHERE name = ?", (name,)).fetchone() is not None:
                        os.replace(temporary, self.path(name))
                        del temporaries[name]
                        self.written += 1
        except BaseException:
            with self._transaction():
                for name, _ in reserved:
                    if name in temporaries or not self.path(name).exists():
                        self._forget(name)
            raise
        finally:
            for temporary in temporaries.values():
                temporary.unlink(missing_ok=True)

    def _write_temporary(self, name: str, data: memoryview) -> Path:
        folder = self.root / name[:2]
        if name[:2] not in self._folders:
            private_subfolder(self.root, name[:2])
            self._folders.add(name[:2])
        temporary = folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{name[2:10]}"
        fd = create_private_file(temporary)
        try:
            os.write(fd, HEADER.pack(MAGIC, xxhash.xxh3_64_intdigest(data), len(data)))
            view = data.cast("B") if data.format != "B" else data
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return temporary

    def _forget(self, name: str) -> None:
        """Remove one file and its row (transaction open)."""
        row = self._db.execute("SELECT size FROM entries WHERE name = ?", (name,)).fetchone()
        self.path(name).unlink(missing_ok=True)
        if row is not None:
            self._db.execute("DELETE FROM entries WHERE name = ?", (name,))
            self._db.execute("UPDATE totals SET bytes = bytes - ? WHERE id = 0", (row[0],))

    def _evict(self, extra: int) -> None:
        """Remove least recently used files until the total (+ ``extra``) fits (transaction open)."""
        limit = self.limit - self.reserved()
        while self._total() + extra > limit:
            oldest = self._db.execute("SELECT name FROM entries ORDER BY used LIMIT 256").fetchall()
            if not oldest:
                break
            for (name,) in oldest:
                self._forget(name)
                self.evicted += 1
                if self._total() + extra <= limit:
                    break

    def _total(self) -> int:
        return int(self._db.execute("SELECT bytes FROM totals WHERE id = 0").fetchone()[0])

    @property
    def usage(self) -> int:
        """Bytes of block files the index accounts for (all processes)."""
        with self._db_lock:
            return self._total()

    def _remove_stale_temporaries(self) -> None:
        cutoff = time.time() - STALE_TEMP_AGE
        for temporary in self._temporaries():
            try:
                if temporary.lstat().st_mtime < cutoff:
                    temporary.unlink()
            except FileNotFoundError:
                pass

    def _temporaries(self) -> Iterator[Path]:
        for folder in self._fanout_folders():
            yield from Path(folder).glob(".tmp-*")


class DiskBackedFetch:
    """A range fetch that answers blocks from a ``DiskBlockStore`` and fills only the missing stretches.

    ``fill(start, buffer)`` fetches the object's bytes into ``buffer`` (one ranged GET);
    ``allocate(n)`` gives the buffer a fetch returns (the reader's pool, charged to its budget).
    Blocks are aligned as the ``ObjectReader`` aligns them (``block_size``, ``origin``), so each block
    of a stretch is one file, shared with any mount of the same geometry.
    """

    def __init__(self, store: DiskBlockStore, identity: str, etag: str, fill: Fill, allocate: Allocate,
                 block_size: int, origin: int = 0):
        self.store = store
        self.identity = identity
        self.etag = etag
        self.fill = fill
        self.allocate = allocate
        self.block_size = block_size
        self.origin = origin

    def spans(self, start: int, end: int) -> list[tuple[int, int]]:
        """The block pieces [lo, hi) of the object's bytes [start, end)."""
        return _spans(start, end, self.block_size, self.origin)

    def __call__(self, start: int, end: int) -> memoryview:
        buffer = self.allocate(end - start)
        missing = [(lo, hi) for lo, hi in self.spans(start, end)
                   if not self.store.read_into(block_name(self.identity, self.etag, lo, hi),
                                               buffer[lo - start : hi - start])]
        for stretch in _stretches(missing):
            first, last = stretch[0][0], stretch[-1][1]
            self.fill(first, buffer[first - start : last - start])
            for lo, hi in stretch:
                self.store.write(block_name(self.identity, self.etag, lo, hi), buffer[lo - start : hi - start])
        return buffer


def kept_head(store: DiskBlockStore, identity: str, etag: str, fill: Fill, size: int) -> memoryview:
    """The object's first ``size`` bytes through the block tier (one file named by that range; one
    ranged GET the first time): the header a gzip body's block index is read from, so that a
    remount opens such an array without a request."""
    return DiskBackedFetch(store, identity, etag, fill, lambda n: memoryview(bytearray(n)), size)(0, size)


class DecodedOnDisk:
    """A range fetch of a compressed array's decoded bytes that answers blocks from a ``DiskBlockStore``
    and decodes only the missing stretches through ``fetch`` (the mount's reader of our gzip blocks
    and of seek points: ``cache.stretches``), writing what it decoded through.

    Why: the inflated blocks died with the daemon, so after a remount a row of a gzip array fetched
    and inflated its compressed blocks again while a raw array's row came from the disk tier. Decoded
    blocks are kept as raw ones are: same folder, same ``limit`` and LRU, same checks on reading
    (private files opened without following links, exact length, XXH3 digest: a replaced, linked or
    short file fails only itself and is decoded again from the store), named by (object identity,
    version, decoded range, :data:`DECODED`), the version being the ETag with the codec and decoded
    size (``decoded.decoded_version``: a body stored again with other metadata keeps its ETag).
    ``block_size``/``origin`` are the reader's, so each reader block is one file.
    """

    def __init__(self, store: DiskBlockStore, identity: str, etag: str,
                 fetch: Callable[[int, int], bytes | bytearray | memoryview], allocate: Allocate,
                 block_size: int, origin: int = 0):
        self.store = store
        self.identity = identity
        self.etag = etag
        self.fetch = fetch
        self.allocate = allocate
        self.block_size = block_size
        self.origin = origin

    def _name(self, lo: int, hi: int) -> str:
        return block_name(self.identity, self.etag, lo, hi, DECODED)

    def __call__(self, start: int, end: int) -> memoryview:
        spans = _spans(start, end, self.block_size, self.origin)
        buffer = self.allocate(end - start)
        missing = [(lo, hi) for lo, hi in spans if not self.store.read_into(self._name(lo, hi),
                                                                             buffer[lo - start : hi - start])]
        if len(missing) == len(spans):  # nothing kept: the inflater's own buffer is the answer, no copy
            del buffer
            decoded = memoryview(self.fetch(start, end)).cast("B")
            self._keep(start, decoded, spans)
            return decoded
        for stretch in _stretches(missing):
            first, last = stretch[0][0], stretch[-1][1]
            decoded = memoryview(self.fetch(first, last)).cast("B")
            buffer[first - start : last - start] = decoded
            self._keep(first, decoded, stretch)
        return buffer

    def _keep(self, start: int, decoded: memoryview, spans: list[tuple[int, int]]) -> None:
        """Write the decoded pieces ``spans`` (of ``decoded``, which begins at ``start``) through, each
        named by its range as ``DiskBackedFetch`` names raw ones (the reader asks for whole blocks)."""
        for lo, hi in spans:
            self.store.write(self._name(lo, hi), decoded[lo - start : hi - start])


class KeptDecoded:
    """A compressed array decoded whole (a codec without blocks: Zstd, LZ4, zlib, bz2, lzma; a 0.4.0 gzip
    body decoded on its first open), kept in the ``DiskBlockStore`` as :class:`DecodedOnDisk` keeps
    inflated blocks: the same files, named by (object identity, ETag, decoded range, :data:`DECODED`)
    in the reader's geometry (``block_size``, ``origin``), under the same limit, LRU and checks.

    Why: such an array was decoded into memory or a spill file that died with the daemon, so after a
    remount the first row of it fetched and decoded the whole body again. :meth:`start` writes every
    block of a decode through, on a thread of its own that waits for room in the store's queue rather
    than dropping blocks (no reader waits on it); :meth:`kept` tells an open whether a former mount
    kept the array (its first block's file is there), so that it reads it by block through a
    ``DecodedOnDisk`` whose misses decode the whole body again. Nothing read is trusted before
    ``read_into`` checked it: a damaged file fails only its block, which is decoded again.

    An array is kept only when it fits in the folder's limit beside this mount's spill files (its
    blocks and their headers): a larger one is not kept at all (one INFO line), since its own last
    blocks would evict its first ones.
    """

    def __init__(self, store: DiskBlockStore, identity: str, etag: str, size: int, block_size: int, origin: int):
        self.store = store
        self.identity = identity
        self.etag = etag
        self.size = size
        self.spans = _spans(0, size, block_size, origin) if size else []

    def _name(self, lo: int, hi: int) -> str:
        return block_name(self.identity, self.etag, lo, hi, DECODED)

    def kept(self) -> bool:
        """Whether the array's first block is on disk (kept by this or a former mount)."""
        return bool(self.spans) and self.store.holds(self._name(*self.spans[0]))

    def fits(self) -> bool:
        return self.size + len(self.spans) * HEADER.size <= self.store.limit - self.store.reserved()

    def start(self, read: Callable[[int, int], bytes | bytearray | memoryview], what: str) -> bool:
        """Write every block of the decoded array (``read(offset, length)``) through, in the background;
        False when it is not kept: empty, already kept or being kept, or too large (logged)."""
        if not self.spans or self.kept():
            return False
        first = self._name(*self.spans[0])
        if not self.store.claim(first):
            return False
        if not self.fits():
            log.info("disk cache: %s decodes to %d bytes, more than the cache folder's room (%d of %d bytes); "
                     "not kept across mounts", what, self.size, max(0, self.store.limit - self.store.reserved()),
                     self.store.limit)
            self._done(first)
            return False
        threading.Thread(target=self._write, args=(read, what, first), name="cc-disk-keep", daemon=True).start()
        return True

    def _write(self, read: Callable[[int, int], bytes | bytearray | memoryview], what: str, first: str) -> None:
        try:
            # the first block last: its file is what tells a later open that the array is kept
            for lo, hi in [*self.spans[1:], self.spans[0]]:
                if not self.store.write(self._name(lo, hi), memoryview(read(lo, hi - lo)), patient=True):
                    return
            self.store.flush()
            log.info("disk cache: kept the decoded %s (%d bytes in %d blocks) for later mounts", what, self.size,
                     len(self.spans))
        except Exception as exc:  # a spill file gone, a full disk: only this array is not kept
            log.warning("disk cache: could not keep the decoded %s: %s", what, exc)
        finally:
            self._done(first)

    def _done(self, first: str) -> None:
        self.store.unclaim(first)


def _spans(start: int, end: int, block_size: int, origin: int) -> list[tuple[int, int]]:
    """The block pieces [lo, hi) of bytes [start, end), blocks ``block_size`` long from ``-origin``."""
    cuts = []
    edge = (start + origin) // block_size * block_size - origin + block_size
    while edge < end:
        cuts.append(edge)
        edge += block_size
    bounds = [start, *cuts, end]
    return list(zip(bounds[:-1], bounds[1:]))


def _stretches(spans: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Contiguous runs of the (sorted) spans."""
    runs: list[list[tuple[int, int]]] = []
    for span in spans:
        if runs and runs[-1][-1][1] == span[0]:
            runs[-1].append(span)
        else:
            runs.append([span])
    return runs
