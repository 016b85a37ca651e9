"""Seek points of indexless gzip bodies (``formats.zran``), kept on disk beside the HEAD shelf.

Why: the points of a 0.4.0 gzip array cost one full decode to find; kept across mounts, every later
open (and remount) of the same version reads a row by fetching one stretch of the body instead of
decoding it whole. They live in the metadata folder (``<--cache-dir>/metadata``, else the user's
``~/.cache/ccfs/metadata``) in their own file, ``seekpoints.sqlite``, so the HEAD shelf's layout and
bound are untouched.

Key: ``identity.object_identity`` (endpoint, account where needed, bucket, key) plus the ETag and the
body's size: a record is only ever found for the version it was made from. Value: the record of
``zran.encode_index`` (zlib-compressed points and windows). Bound: :data:`DEFAULT_LIMIT` bytes of
records (about 0.3-1 % of the arrays they index, so 256 MiB indexes some 30-80 GB of arrays); the
least recently used records are evicted. One record is at most :data:`MAX_RECORD`.

Trust: the folder is private (``private.py``), the file 0600 and never opened through a link; what is
read back is still untrusted (a damaged disk, an edit): ``zran.decode_index`` checks every field
against the body, a record that fails is deleted and counted (``discarded``), and the caller decodes
whole. An unreadable file is discarded and rebuilt with one warning; any other SQLite error turns the
shelf off for the process (the mount decodes whole, as without it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..formats import zran
from .metadata import MetadataStore
from .private import prepare_database, private_folder, private_subfolder
from .sqlite_index import open_index, transaction

log = logging.getLogger(__name__)

FILENAME = "seekpoints.sqlite"
SCHEMA = 1
#: bound of the file's records (bytes of compressed records)
DEFAULT_LIMIT = 256 * 2**20
#: largest record kept (a 64 GiB array's points at the default span, compressed, is ~ 200 MiB
#: uncompressed windows at worst; larger arrays are decoded whole each time)
MAX_RECORD = 64 * 2**20
BUSY_SECONDS = 1.0


class SeekIndexShelf:
    """Records of seek points under ``folder``, bounded to ``limit`` bytes (LRU)."""

    def __init__(self, folder: str | os.PathLike[str], limit: int = DEFAULT_LIMIT):
        self.folder = private_folder(folder)
        self.path = self.folder / FILENAME
        self.limit = max(0, int(limit))
        self.hits = self.misses = self.written = self.discarded = self.evicted = 0
        self._lock = threading.Lock()
        self._off = False
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("seek points: discarded unreadable %s (%s); rebuilding it", self.path, exc)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        prepare_database(self.path)
        db = open_index(self.path, timeout=BUSY_SECONDS)
        try:
            row = db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
            with transaction(db, self._lock):
                if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                    db.execute("DROP TABLE IF EXISTS points")
                    db.execute(f"PRAGMA user_version = {SCHEMA}")
                db.execute("CREATE TABLE IF NOT EXISTS points (name TEXT PRIMARY KEY, record BLOB NOT NULL, "
                           "bytes INTEGER NOT NULL, used REAL NOT NULL)")
                db.execute("CREATE INDEX IF NOT EXISTS points_used ON points (used)")
                self._evict(db, 0)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def name(identity: str, etag: str, body_size: int) -> str:
        return f"{identity}\0{etag}\0{body_size}"

    def _failed(self, exc: sqlite3.Error, doing: str) -> None:
        if isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in ("locked", "busy")):
            log.debug("seek points: %s skipped, %s is busy", doing, self.path)
            return
        log.warning("seek points: %s failed (%s); not using %s in this process", doing, exc, self.path)
        self._off = True

    def recall(self, identity: str, etag: str, body_size: int, nbytes: int) -> list[zran.SeekPoint] | None:
        """The checked points of this version, or ``None`` (none kept, or a bad record, now deleted)."""
        if self._off:
            return None
        key = self.name(identity, etag, body_size)
        try:
            with self._lock:
                row = self._db.execute("SELECT record FROM points WHERE name = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            blob = row[0]
            try:
                if not isinstance(blob, bytes) or len(blob) > MAX_RECORD:
                    raise zran.IndexRecordError("record is not a blob of at most MAX_RECORD bytes")
                points = zran.decode_index(blob, body_size, nbytes)
            except zran.IndexRecordError as exc:
                self.forget(identity, etag, body_size, f"{exc}")
                return None
            with transaction(self._db, self._lock):
                self._db.execute("UPDATE points SET used = ? WHERE name = ?", (time.time(), key))
        except sqlite3.Error as exc:
            self._failed(exc, "reading")
            return None
        self.hits += 1
        return points

    def holds(self, identity: str, etag: str, body_size: int) -> bool:
        """Whether a record of this version is kept (not checked: ``recall`` checks it when used)."""
        if self._off:
            return False
        try:
            with self._lock:
                row = self._db.execute("SELECT 1 FROM points WHERE name = ?",
                                       (self.name(identity, etag, body_size),)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc, "reading")
            return False
        return row is not None

    def forget(self, identity: str, etag: str, body_size: int, why: str) -> None:
        """Delete a record found bad (one warning): the next open decodes whole and records again."""
        self.discarded += 1
        log.warning("seek points: dropped the record of %s (%s)", identity.rsplit("\0", 1)[-1], why)
        if self._off:
            return
        try:
            with transaction(self._db, self._lock):
                self._db.execute("DELETE FROM points WHERE name = ?", (self.name(identity, etag, body_size),))
        except sqlite3.Error as exc:
            self._failed(exc, "deleting")

    def remember(self, identity: str, etag: str, body_size: int, nbytes: int, points: list[zran.SeekPoint]) -> None:
        if self._off:
            return
        blob = zran.encode_index(points, body_size, nbytes)
        if len(blob) > min(MAX_RECORD, self.limit):
            return
        try:
            with transaction(self._db, self._lock):
                self._db.execute("DELETE FROM points WHERE name = ?", (self.name(identity, etag, body_size),))
                self._evict(self._db, len(blob))
                self._db.execute("INSERT INTO points VALUES (?, ?, ?, ?)",
                                 (self.name(identity, etag, body_size), blob, len(blob), time.time()))
            self.written += 1
        except sqlite3.Error as exc:
            self._failed(exc, "writing")

    def _evict(self, db: sqlite3.Connection, extra: int) -> None:
        total = int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM points").fetchone()[0])
        while total + extra > self.limit:
            oldest = db.execute("SELECT name, bytes FROM points ORDER BY used LIMIT 64").fetchall()
            if not oldest:
                break
            for name, size in oldest:
                db.execute("DELETE FROM points WHERE name = ?", (name,))
                total -= int(size) if isinstance(size, int) else 0
                self.evicted += 1
                if total + extra <= self.limit:
                    break

    @property
    def usage(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM points").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._off = True


def beside_metadata(metadata: MetadataStore | None, limit: int = DEFAULT_LIMIT) -> SeekIndexShelf | None:
    """The shelf of seek points in the HEAD shelf's folder; ``None`` without that shelf (the mount was
    told to keep no metadata) or when the file cannot be used (one warning: arrays are decoded whole)."""
    if metadata is None:
        return None
    try:
        return SeekIndexShelf(metadata.folder, limit)
    except (OSError, sqlite3.Error) as exc:
        log.warning("seek points: cannot use %s (%s); gzip arrays without an index are decoded whole",
                    metadata.folder / FILENAME, exc)
        return None


_in_folders: dict[str, SeekIndexShelf | None] = {}
_in_folders_lock = threading.Lock()


def in_cache_folder(folder: str | os.PathLike[str]) -> SeekIndexShelf | None:
    """The shelf a mount with ``--cache-dir`` of ``folder`` reads (``<folder>/metadata``), for the
    library's decodes: one per folder per process; ``None`` (one warning) when it cannot be used,
    and the download goes on without recording."""
    root = os.path.abspath(os.fspath(folder))
    with _in_folders_lock:
        if root not in _in_folders:
            try:
                _in_folders[root] = SeekIndexShelf(private_subfolder(private_folder(root), "metadata"))
            except (OSError, sqlite3.Error) as exc:
                log.warning("seek points: cannot use %s (%s); gzip arrays without an index are not indexed",
                            Path(root) / "metadata" / FILENAME, exc)
                _in_folders[root] = None
        return _in_folders[root]
