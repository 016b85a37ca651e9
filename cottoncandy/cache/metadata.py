"""A persistent shelf of HEAD answers on local disk, shared by mounts and library processes.

Why: a folder's names and sizes need one HEAD per array (the size of ``k.npy`` comes from the
metadata), and those HEADs were the whole cost of every visit after the first LIST: 20,000 HEADs
per ``ls -l`` of a 20,000-array folder on every remount. A LIST gives each object's ETag, size and
modification time for free, so a HEAD answer kept on disk can be reused whenever the LIST shows the
same version (``storage.base.same_version``): a remount or a re-listing of an unchanged folder
costs its LISTs and no HEAD, and an object whose ETag changed is HEADed again.

Trust: what is read back was written by this code but sits on a local disk where it may be
truncated, edited or damaged, and it came from the bucket in the first place. So rows are typed
SQLite columns and JSON (never pickles), each is checked as it is read (types, sizes, a metadata
object of strings) and a bad row is deleted and counted as a miss; a file SQLite cannot read
(not a database, a failed ``quick_check``) is discarded and rebuilt with one warning. A row is
only ever returned for the version a current LIST shows. No credential enters it: rows hold the
store's identity (``identity.store_identity``: endpoint, account where bucket names are not global,
bucket), keys, ETags, sizes, times and user metadata. The folder is private (``private.py``: 0700,
every level checked, refused with one warning when another user could change it) and the file is
created 0600 and never opened through a link.

Layout version: ``SCHEMA`` (SQLite's ``user_version``); a file of another version is emptied.

Layout: ``<folder>/metadata.sqlite`` (WAL; ``sqlite_index``), one row per (scope, key) holding the
last version seen, an estimate of its bytes, and its last use; a total per folder; least recently
used rows are evicted to keep the total within ``limit``. Several processes may use one folder at
once: every change is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from ..storage.base import ObjectInfo, ObjectStore, same_version
from .identity import store_identity
from .private import prepare_database, private_folder
from .sqlite_index import open_index, transaction

log = logging.getLogger(__name__)

#: 2: scopes are ``identity.store_identity`` (endpoint and account added)
SCHEMA = 2
FILENAME = "metadata.sqlite"
#: default bound of the shelf (bytes of rows as estimated by ``row_bytes``): ~200 bytes per object
DEFAULT_LIMIT = 256 * 2**20
#: a row's fixed cost in the estimate (columns, b-tree, index entries)
ROW_OVERHEAD = 96
#: user metadata larger than this is not kept (S3 allows 2 KiB; a local sidecar more)
MAX_METADATA = 16 * 2**10
#: how long a read or write of the shelf waits for another process's transaction (seconds)
BUSY_SECONDS = 1.0
#: a row used more recently than this is not written again just to record its use
TOUCH_AFTER = 3600.0
#: keys per SQL statement (SQLite's default variable limit is 32,766)
BATCH = 500


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/ccfs/metadata`` (``~/.cache/ccfs/metadata`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ccfs" / "metadata"


def enabled_by_environment() -> bool:
    """False with ``CCFS_METADATA_CACHE=0`` (or ``false``/``no``/``off``)."""
    return os.environ.get("CCFS_METADATA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def row_bytes(key: str, etag: str, metadata: str) -> int:
    return ROW_OVERHEAD + len(key.encode()) + len(etag) + len(metadata)


class MetadataStore:
    """HEAD answers under ``folder``, bounded to ``limit`` bytes (LRU), for every scope (bucket)."""

    def __init__(self, folder: str | os.PathLike[str], limit: int = DEFAULT_LIMIT):
        # it holds keys and user metadata of the user's buckets: private to the user (``private.py``)
        self.folder = private_folder(folder)
        self.path = self.folder / FILENAME
        self.limit = max(0, int(limit))
        self.hits = 0
        self.misses = 0
        self.written = 0
        self.evicted = 0
        self.discarded = 0  # rows that failed their check
        self.rebuilt = 0  # times the file was discarded as unreadable
        self._lock = threading.Lock()
        self._broken = False  # a rebuild failed too: the shelf is off for this process
        self._db = self._open()

    # --- the file ----------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        """Open (and check) the file; discard and rebuild it once if SQLite cannot read it."""
        try:
            return self._open_checked()
        except sqlite3.DatabaseError as exc:
            log.warning("metadata cache: discarded unreadable %s (%s); rebuilding it", self.path, exc)
            self.rebuilt += 1
            self._remove_files()
            return self._open_checked()

    def _open_checked(self) -> sqlite3.Connection:
        prepare_database(self.path)  # 0600 (SQLite's -wal and -shm files take its mode), not a link
        # a lookup waits on this shelf: another process's transaction is waited for briefly, then
        # the one read or write is skipped (``_failed``), never a 60 s stall in a FUSE callback
        db = open_index(self.path, timeout=BUSY_SECONDS)
        try:
            row = db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
            with transaction(db, self._lock):
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA:  # an older layout (or a file of something else): start afresh
                    db.execute("DROP TABLE IF EXISTS heads")
                    db.execute("DROP TABLE IF EXISTS scopes")
                    db.execute("DROP TABLE IF EXISTS totals")
                    db.execute(f"PRAGMA user_version = {SCHEMA}")
                db.execute("CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS heads (scope INTEGER NOT NULL, key TEXT NOT NULL, "
                           "etag TEXT NOT NULL, size INTEGER NOT NULL, modified REAL, metadata TEXT NOT NULL, "
                           "bytes INTEGER NOT NULL, used REAL NOT NULL, PRIMARY KEY (scope, key))")
                db.execute("CREATE INDEX IF NOT EXISTS heads_used ON heads (used)")
                db.execute("CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL)")
                db.execute("INSERT OR IGNORE INTO totals VALUES (0, 0)")
                self._evict(db, 0)  # a smaller limit than the last user's: shrink now
        except BaseException:
            db.close()
            raise
        return db

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _failed(self, exc: sqlite3.Error, doing: str) -> None:
        """An error of SQLite while in use. Another process holding the file for longer than
        ``BUSY_SECONDS``: this one read or write is skipped. A damaged file (SQLite's plain
        ``DatabaseError``: "malformed", "not a database"): rebuilt once, with one warning; other
        errors (a closed connection, a constraint) never delete a file other processes use. If the
        rebuild fails, or for any other error, the shelf is off for this process."""
        if isinstance(exc, sqlite3.OperationalError) and any(
                word in str(exc).lower() for word in ("locked", "busy")):
            log.debug("metadata cache: %s skipped, %s is busy (%s)", doing, self.path, exc)
            return
        if type(exc) is sqlite3.DatabaseError and not self._broken:
            log.warning("metadata cache: %s failed (%s); discarding %s and rebuilding it", doing, exc, self.path)
            self.rebuilt += 1
            with self._lock:
                self._db.close()
                self._remove_files()
            try:
                self._db = self._open_checked()
                return
            except (OSError, sqlite3.Error) as again:
                exc = again if isinstance(again, sqlite3.Error) else sqlite3.OperationalError(str(again))
        if not self._broken:
            log.warning("metadata cache: %s failed (%s); not using %s in this process", doing, exc, self.path)
        self._broken = True

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._broken = True

    def scoped(self, store: ObjectStore) -> ScopedShelf | None:
        """The shelf of ``store``'s bucket, or ``None`` for a store whose metadata is not kept."""
        return ScopedShelf(self, store_identity(store)) if store.cache_scope() else None

    # --- reading -----------------------------------------------------------------------------
    def recall(self, scope: str, listed: Iterable[ObjectInfo]) -> dict[str, ObjectInfo]:
        """The kept HEAD of each listed object whose version (ETag, size, time) is the listed one."""
        wanted = {info.key: info for info in listed}
        if not wanted or self._broken:
            return {}
        found: dict[str, ObjectInfo] = {}
        bad: list[str] = []
        used: list[str] = []
        now = time.time()
        try:
            with self._lock:
                scope_id = self._scope_id(scope, create=False)
                if scope_id is None:
                    self.misses += len(wanted)
                    return {}
                keys = list(wanted)
                for start in range(0, len(keys), BATCH):
                    part = keys[start : start + BATCH]
                    rows = self._db.execute(
                        f"SELECT key, etag, size, modified, metadata, used FROM heads WHERE scope = ? AND key IN "
                        f"({','.join('?' * len(part))})", (scope_id, *part)).fetchall()
                    for row in rows:
                        info = _checked_row(row)
                        if info is None:
                            bad.append(row[0] if isinstance(row[0], str) else "")
                            continue
                        listed_info = wanted.get(info.key)
                        if listed_info is not None and same_version(listed_info, info):
                            found[info.key] = info
                            if not isinstance(row[5], float | int) or now - row[5] > TOUCH_AFTER:
                                used.append(info.key)
            self.hits += len(found)
            self.misses += len(wanted) - len(found)
            if bad or used:
                with transaction(self._db, self._lock):
                    if bad:
                        self._delete(scope_id, bad)
                    self._db.executemany("UPDATE heads SET used = ? WHERE scope = ? AND key = ?",
                                         [(now, scope_id, key) for key in used])
            if bad:
                self.discarded += len(bad)
                log.warning("metadata cache: discarded %d unreadable rows of %s (asked again)", len(bad), scope)
        except sqlite3.Error as exc:
            self._failed(exc, "reading")
            return found
        return found

    # --- writing -----------------------------------------------------------------------------
    def remember(self, scope: str, infos: Iterable[ObjectInfo]) -> None:
        """Keep these HEAD answers (each replaces what was kept for its key), evicting the least
        recently used rows beyond ``limit``."""
        if self._broken:
            return
        rows = []
        now = time.time()
        for info in infos:
            if info.metadata is None:  # a LIST entry, not a HEAD answer
                continue
            text = json.dumps(dict(info.metadata), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            if len(text) > MAX_METADATA:
                continue
            size = row_bytes(info.key, info.etag, text)
            if size > self.limit:
                continue
            if not 0 <= info.size < 2**63:  # a size from the bucket that SQLite cannot hold: not kept
                continue
            try:
                modified = info.last_modified.timestamp() if info.last_modified is not None else None
                (info.key + info.etag + text).encode()  # SQLite stores UTF-8: no lone surrogates
            except (OverflowError, ValueError, OSError):
                continue
            rows.append((info.key, info.etag, info.size, modified, text, size, now))
        if not rows:
            return
        try:
            with transaction(self._db, self._lock):
                scope_id = self._scope_id(scope, create=True)
                assert scope_id is not None
                self._delete(scope_id, [row[0] for row in rows], count_only=True)
                total = sum(row[5] for row in rows)
                self._evict(self._db, total)
                self._db.executemany("INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     [(scope_id, *row) for row in rows])
                self._db.execute("UPDATE totals SET bytes = bytes + ? WHERE id = 0", (total,))
            self.written += len(rows)
        except sqlite3.Error as exc:
            self._failed(exc, "writing")
        except (OverflowError, ValueError) as exc:  # a value from the bucket SQLite refuses: not kept
            self.discarded += len(rows)
            log.warning("metadata cache: answers for %s not kept (%s)", scope, exc)

    # --- inside a transaction (or under the lock) ----------------------------------------------
    def _scope_id(self, scope: str, create: bool) -> int | None:
        row = self._db.execute("SELECT id FROM scopes WHERE name = ?", (scope,)).fetchone()
        if row is None and create:
            return int(self._db.execute("INSERT INTO scopes (name) VALUES (?)", (scope,)).lastrowid or 0)
        return int(row[0]) if row is not None else None

    def _delete(self, scope_id: int, keys: list[str], count_only: bool = False) -> None:
        """Remove the rows of ``keys`` (``count_only``: only take their bytes off the total; the
        caller replaces them)."""
        for start in range(0, len(keys), BATCH):
            part = keys[start : start + BATCH]
            where = f"scope = ? AND key IN ({','.join('?' * len(part))})"
            gone = self._db.execute(f"SELECT COALESCE(SUM(bytes), 0) FROM heads WHERE {where}",
                                    (scope_id, *part)).fetchone()[0]
            if not count_only:
                self._db.execute(f"DELETE FROM heads WHERE {where}", (scope_id, *part))
            self._db.execute("UPDATE totals SET bytes = bytes - ? WHERE id = 0", (int(gone or 0),))

    def _evict(self, db: sqlite3.Connection, extra: int) -> None:
        """Remove least recently used rows until the total (+ ``extra``) fits."""
        while self._total(db) + extra > self.limit:
            oldest = db.execute("SELECT rowid, bytes FROM heads ORDER BY used LIMIT 1024").fetchall()
            if not oldest:
                db.execute("UPDATE totals SET bytes = 0 WHERE id = 0")  # nothing left to count
                break
            freed = 0
            need = self._total(db) + extra - self.limit
            victims = []
            for rowid, size in oldest:
                victims.append((rowid,))
                freed += int(size) if isinstance(size, int) else 0
                if freed >= need:
                    break
            db.executemany("DELETE FROM heads WHERE rowid = ?", victims)
            db.execute("UPDATE totals SET bytes = bytes - ? WHERE id = 0", (freed,))
            self.evicted += len(victims)

    @staticmethod
    def _total(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT bytes FROM totals WHERE id = 0").fetchone()[0])

    @property
    def usage(self) -> int:
        """Bytes of rows the file accounts for (all processes)."""
        with self._lock:
            return self._total(self._db)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM heads").fetchone()[0])


_SHARED: dict[Path, MetadataStore | None] = {}
_SHARED_LOCK = threading.Lock()


def shared_shelf(store: ObjectStore, folder: str | os.PathLike[str] | None = None,
                 limit: int = DEFAULT_LIMIT) -> ScopedShelf | None:
    """This process's shelf for ``store`` (one ``MetadataStore`` per folder, opened on first use,
    ``default_folder()`` unless named): what the library and ``ccfs ls -l`` share with mounts.
    ``None`` when the store's metadata is not kept (``Settings(metadata_cache=False)``, a memory
    store), with ``CCFS_METADATA_CACHE=0``, or when the folder cannot be used (one warning)."""
    if not enabled_by_environment() or store.cache_scope() is None:
        return None
    path = Path(folder) if folder is not None else default_folder()
    with _SHARED_LOCK:
        if path not in _SHARED:
            try:
                _SHARED[path] = MetadataStore(path, limit)
            except (OSError, sqlite3.Error) as exc:
                log.warning("metadata cache: cannot use %s (%s); HEAD answers are not kept", path, exc)
                _SHARED[path] = None
        shared = _SHARED[path]
    return shared.scoped(store) if shared is not None else None


class ScopedShelf:
    """One bucket's part of a ``MetadataStore``: what ``namespace.attributes`` is given."""

    def __init__(self, store: MetadataStore, scope: str):
        self.store = store
        self.scope = scope

    def recall(self, listed: Iterable[ObjectInfo]) -> dict[str, ObjectInfo]:
        return self.store.recall(self.scope, listed)

    def remember(self, infos: Iterable[ObjectInfo]) -> None:
        self.store.remember(self.scope, infos)


def _checked_row(row: tuple[object, ...]) -> ObjectInfo | None:
    """The ``ObjectInfo`` of a row read back, or ``None`` if any column is not what was written."""
    key, etag, size, modified, metadata, _ = row
    if not (isinstance(key, str) and isinstance(etag, str) and isinstance(size, int) and not isinstance(size, bool)
            and size >= 0 and isinstance(metadata, str) and len(metadata) <= MAX_METADATA):
        return None
    if modified is not None and not isinstance(modified, float | int):
        return None
    try:
        values = json.loads(metadata)
        when = datetime.fromtimestamp(modified, timezone.utc) if modified is not None else None
    except (ValueError, OverflowError, OSError):
        return None
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        return None
    return ObjectInfo(key=key, size=size, etag=etag, last_modified=when, metadata=_frozen(values))


def _frozen(values: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in values.items()}
