"""One SQLite file as a cache folder's index and lock, shared by processes.

Why one place: the disk block tier (``disk.py``) and the metadata shelf (``metadata.py``) both keep
an index that several mounts and library processes use at once. Both open it the same way (WAL, so
readers never wait for a writer; ``synchronous=NORMAL``: a power loss may lose the last
transactions, never tear one) and change it only inside ``BEGIN IMMEDIATE`` transactions, so the
database's write lock is the folder's lock across processes and every change is atomic.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def open_index(path: str | os.PathLike[str], timeout: float = 60.0) -> sqlite3.Connection:
    """A connection to the index at ``path`` (created if absent), in WAL mode, usable from any thread
    (callers serialise their use with one lock). ``timeout``: how long a change waits for another
    process's transaction before failing with "database is locked"."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error), holding ``lock`` meanwhile."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
