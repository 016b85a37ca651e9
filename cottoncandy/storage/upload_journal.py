"""A record of this process's in-progress multipart uploads, so the next mount can abort what a killed
daemon left (issue 26 item 4).

Why: a daemon killed between ``CreateMultipartUpload`` and its Complete or Abort leaves an upload
nobody will finish: no object (nothing partial is ever visible) but parts the bucket keeps, and
bills, forever. S3 cannot tag an upload in a way ``ListMultipartUploads`` shows, and aborting every
upload of a bucket would kill other writers' (another machine's, another user's, a script's). So each
mount records the ids *it* starts, before any part is sent, in a private file it holds locked while it
lives; at the next mount of the same bucket by the same user (same private cache folder, same
``scope``), the journals of daemons that are gone (their lock is free) are read and exactly their
unfinished uploads are aborted, then the journal is removed. Others' uploads are never touched: an
id is aborted only if this user's daemon wrote it down.

Layout: ``FOLDER/uploads-<hash of scope>-<pid>.jsonl``, one JSON line per event
(``{"start": id, "key": key}``, ``{"end": id}``), appended and flushed (not fsynced: a crash of the
machine loses at most the last lines, and S3's bucket lifecycle rule for incomplete uploads is the
backstop for that). Invariant: a journal file is locked (``flock``) by its writer for its whole life,
so a recovering mount never reads a live daemon's journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: how a recovery aborts one upload: (key, upload id); a missing upload is no error
Abort = Callable[[str, str], None]


def _scope_tag(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


class UploadJournal:
    """The uploads this process has started and not yet finished, on disk (see the module)."""

    def __init__(self, folder: str | os.PathLike[str], scope: str):
        self.folder = Path(folder)
        self.scope = scope
        self.path = self.folder / f"uploads-{_scope_tag(scope)}-{os.getpid()}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours for as long as we live
        self._lock = threading.Lock()
        self._open: dict[str, str] = {}  # upload id -> key

    def __repr__(self) -> str:
        return f"UploadJournal({str(self.path)!r}, {len(self._open)} open)"

    def _append(self, entry: dict[str, str]) -> None:
        os.write(self._fd, (json.dumps(entry) + "\n").encode())

    def started(self, key: str, upload_id: str) -> None:
        """``upload_id`` of ``key`` was created: recorded before any of its parts is sent."""
        with self._lock:
            self._open[upload_id] = key
            self._append({"start": upload_id, "key": key, "scope": self.scope})

    def ended(self, upload_id: str) -> None:
        """``upload_id`` was completed or aborted (or found gone)."""
        with self._lock:
            if self._open.pop(upload_id, None) is not None:
                self._append({"end": upload_id})

    def unfinished(self) -> dict[str, str]:
        """Upload id -> key of what this process has started and not ended."""
        with self._lock:
            return dict(self._open)

    def close(self) -> None:
        """The mount ends cleanly: with nothing open the journal goes; else it stays for the next mount."""
        with self._lock:
            if self._fd < 0:
                return
            if not self._open:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            os.close(self._fd)
            self._fd = -1


def read_unfinished(path: Path) -> dict[str, str]:
    """Upload id -> key of a journal file: started and not ended (lines that do not parse are skipped)."""
    started: dict[str, str] = {}
    with open(path, "rb") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("start"), str) and isinstance(entry.get("key"), str):
                started[entry["start"]] = entry["key"]
            elif isinstance(entry.get("end"), str):
                started.pop(entry["end"], None)
    return started


def recover(folder: str | os.PathLike[str], scope: str, abort: Abort) -> int:
    """Abort the unfinished uploads recorded by this user's daemons of ``scope`` that are gone; how
    many were aborted. A journal whose every abort succeeded is removed; one with a failure is kept
    (the next mount tries again), and each failure is logged once."""
    aborted = 0
    for path in sorted(Path(folder).glob(f"uploads-{_scope_tag(scope)}-*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live daemon's: never touched
            failed = False
            for upload_id, key in read_unfinished(path).items():
                try:
                    abort(key, upload_id)
                    aborted += 1
                    log.info("aborted multipart upload %s of %s left by a daemon that was stopped mid-upload",
                             upload_id, key)
                except OSError as exc:
                    failed = True
                    log.warning("could not abort multipart upload %s of %s left by a stopped daemon: %s",
                                upload_id, key, exc)
            if not failed:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return aborted
