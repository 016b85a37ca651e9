"""What a ``--rw`` mount does once when it starts, and once when it ends (issue 26 items 4, 5): clean up
after a daemon killed mid-upload, say which lost updates the store cannot catch, store at unmount the
staged files the kernel never released, and finish at the next mount what an unmount could not.

- ``open_journal``: aborts the unfinished multipart uploads the same user's earlier daemons of the same
  bucket recorded and did not end (``storage.upload_journal``: only ids they wrote down, never another
  writer's), then records this mount's own, in ``FOLDER/uploads`` (``--cache-dir``, else
  ``$XDG_CACHE_HOME/ccfs``; private, 0700). A store with no change scope (memory) keeps no journal.
- ``say_conditions``: one log line at mount time naming the conditional writes the endpoint ignores
  (``storage.conditions``: found by a probe of a few requests), or that ``--last-writer-wins`` turned
  them off; so a lost update the mount cannot refuse is a documented gap, not a surprise.
- ``settle`` (at unmount): files still open for writing when the mount ends (a memmap still mapped,
  an ``O_RDWR`` descriptor still open, or a last RELEASE the kernel dropped with the connection). A
  staged file that holds changes the daemon has is committed, as a local file system writes back what
  it was given before it unmounts; the wait is bounded (``UNMOUNT_COMMIT_SECONDS`` in all) and each
  outcome is one log line naming the key. With ``--cache-dir``, the file is first kept (a hard link and
  a manifest in ``writes/kept``) so that a commit refused, unfinished in time, or cut off by a kill is
  finished by ``recover`` at the next ``--rw`` mount. A file being streamed whose close never came, or
  a ``.npy`` shorter than its header promises, is given up as before: storing it would make a partial
  file visible.
- ``recover`` (at mount, after ``open_journal`` aborted the unfinished upload): each kept file is
  staged again over the version it was kept over and committed with the same condition (``If-Match``
  that version, ``If-None-Match`` for a new name), and encoded with the codec decided for it when it
  was staged (a new ``.npy``: that mount's ``--write-compression``, not the next mount's). A kept file
  whose object changed since, or whose commit is refused, stays kept and is logged with its path, never
  overwriting another's newer write.

Invariants: a kept pair (``NAME.json`` manifest, ``NAME.data`` the sparse file) is removed only once
its object is stored; the manifest is written before the link is made and read as untrusted input
(its keys are derived again from its path by the reverse naming rule, never taken from it; its codec
must be one the codec table allows, ``formats.codecs``).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..cache.private import private_folder, private_subfolder
from ..formats import codecs
from ..namespace.nodes import FileNode, Node
from ..storage import upload_journal
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.conditions import ConditionalSupport
from ..storage.upload_journal import UploadJournal
from .kinds import FileKind, Staging, Target
from .staged import Base, StagedFile
from .staged_kind import StagedFiles, StagedKind

log = logging.getLogger("cottoncandy.writes")


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/ccfs`` (``~/.cache/ccfs`` without it): where the journal lives without ``--cache-dir``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ccfs"


def open_journal(store: ObjectStore, folder: str | os.PathLike[str] | None = None) -> UploadJournal | None:
    """Recover what earlier daemons left, then record this mount's uploads (see the module); ``None``
    when the store has no change scope or the folder cannot be made private (logged)."""
    scope = store.change_scope()
    if scope is None:
        return None
    try:
        uploads = private_subfolder(private_folder(folder or default_folder()), "uploads")
        aborted = upload_journal.recover(uploads, scope, store.abort_upload)
        if aborted:
            log.info("%s: aborted %d multipart upload(s) an earlier daemon left unfinished", store.describe(), aborted)
        journal = UploadJournal(uploads, scope)
    except OSError as exc:
        log.warning("%s: no record of this mount's uploads (a daemon killed mid-upload leaves parts until the "
                    "bucket's lifecycle rule removes them): %s", store.describe(), exc)
        return None
    store.record_uploads(journal)
    return journal


def say_conditions(store: ObjectStore, last_writer_wins: bool) -> ConditionalSupport | None:
    """Log once which lost updates this mount cannot refuse; the store's support (``None`` when off)."""
    if last_writer_wins:
        log.info("%s: --last-writer-wins: writes carry no condition; a file created or changed meanwhile by "
                 "another writer is overwritten", store.describe())
        return None
    support = store.conditional_writes()
    gaps = support.gaps()
    if gaps:
        log.warning("%s: the store ignores %s: such a write by another writer meanwhile is overwritten, not "
                    "refused (EEXIST/ESTALE)", store.describe(), " and ".join(gaps))
    return support


#: seconds an unmount waits, in all, for the commits of staged files still open (``settle``)
UNMOUNT_COMMIT_SECONDS = 20.0
#: where kept files wait for the next mount, under the staging folder (``--cache-dir/writes``)
KEPT_FOLDER = "kept"
#: bytes copied at a time when a kept file is staged again
REPLAY_CHUNK = 16 * 2**20
MANIFEST_VERSION = 1

#: what ``settle`` tells the namespace of an object it stored (``StoreWriter._stored``)
Stored = Callable[[ObjectInfo], None]


class Namespace(Protocol):
    """What ``recover`` needs of the mount's namespace (``namespace.facade.Namespace``)."""

    def lookup(self, path: str) -> Node: ...

    def written(self, path: str) -> tuple[str, str | None]: ...


@dataclass(frozen=True)
class Kept:
    """A staged file kept for the next mount: what its manifest says (validated). ``compression``:
    the codec decided for it when it was staged (``StagedKind.compression``; ``None``: raw, and what a
    manifest written before the field existed means)."""

    path: str
    base_etag: str | None
    size: int
    base_end: int
    dirty: list[tuple[int, int]]
    compression: str | None = None

    def to_json(self) -> str:
        return json.dumps({"version": MANIFEST_VERSION, "path": self.path, "base_etag": self.base_etag,
                           "size": self.size, "base_end": self.base_end, "dirty": self.dirty,
                           "compression": self.compression})

    @classmethod
    def parse(cls, text: str) -> Kept:
        """A manifest read back (``ValueError`` naming what is wrong: the cache folder is untrusted)."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
            raise ValueError("not a kept-file manifest of this version")
        path, etag, size, base_end, dirty = (doc.get(k) for k in ("path", "base_etag", "size", "base_end", "dirty"))
        if not isinstance(path, str) or not path or "\0" in path or path.startswith("/") or \
                posixpath.normpath(path) != path or path.split("/")[0] == "..":
            raise ValueError(f"bad path {path!r}")
        if etag is not None and not isinstance(etag, str):
            raise ValueError("bad base_etag")
        if not (isinstance(size, int) and isinstance(base_end, int) and 0 <= base_end <= size):
            raise ValueError("bad size")
        if not isinstance(dirty, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r) and 0 <= r[0] < r[1] <= size
                for r in dirty):
            raise ValueError("bad dirty ranges")
        return cls(path, etag, size, base_end, [(a, b) for a, b in dirty], _codec(doc.get("compression")))


def _codec(name: object) -> str | None:
    """A manifest's codec: ``None`` (raw), or the id of a codec the codec table allows; ``ValueError``
    for any other value (it chooses the encoder the next mount runs)."""
    if name is None:
        return None
    try:
        return codecs.codec_id(name)
    except ValueError as exc:
        raise ValueError(f"bad compression: {exc}") from None


def kept_folder(staging: StagedFiles) -> Path:
    return private_subfolder(staging.area.folder, KEPT_FOLDER)


def keep(kind: StagedKind, folder: Path) -> Path:
    """Keep ``kind``'s staged file for the next mount: its manifest, then a hard link to its bytes
    (flushed to disk); the manifest's path (``NAME.json``; the bytes are ``NAME.data``)."""
    staged = kind.staged
    with staged.lock:
        os.fsync(staged.fd)
        base = staged.base
        record = Kept(kind.target.path, base.info.etag if base is not None else None, staged.size,
                      staged.base_end, staged.dirty.runs(), kind.compression)
        name = f"{staged.file.name}-{time.time_ns()}"
        manifest = folder / f"{name}.json"
        fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(record.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.link(staged.file, folder / f"{name}.data")
    return manifest


#: the largest manifest read back (a file of a few thousand dirty ranges is a few hundred KiB)
MAX_MANIFEST = 16 * 2**20


def _open_kept(path: Path) -> int:
    """A descriptor of a kept file, refused unless it is a regular file of ours (the cache folder is
    untrusted: never through a link, never a FIFO or device that would block the mount's start)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError(errno.EPERM, f"{path} is not a regular file of this user")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_kept(path: Path, limit: int) -> bytes:
    """The bytes of the kept file ``path`` (``_open_kept``'s checks), at most ``limit`` of them."""
    fd = _open_kept(path)
    try:
        if os.fstat(fd).st_size > limit:
            raise ValueError(f"{path} is larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(limit)
    finally:
        os.close(fd)


def forget(manifest: Path) -> None:
    """A kept file is stored: its pair goes."""
    manifest.with_suffix(".data").unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)


class UnmountClock(Protocol):
    """The time ``settle`` bounds the unmount's commits by: what time it is, and a wait for a commit
    that ends at the commit's end or after ``seconds``, whichever comes first. A parameter so that a
    test decides when the bound runs out, with no race against a loaded machine's wall clock."""

    def now(self) -> float: ...

    def wait(self, worker: threading.Thread, seconds: float) -> None: ...


class WallClock:
    """The real one: ``time.monotonic`` and ``Thread.join``."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, worker: threading.Thread, seconds: float) -> None:
        worker.join(seconds)


def settle(store: ObjectStore, kinds: Iterable[FileKind], staging: Staging | None, keep_for_next: bool,
           stored: Stored, seconds: float | None = None, clock: UnmountClock | None = None) -> None:
    """The mount ends with ``kinds`` still open for writing (see the module): commit the staged ones
    holding changes, kept first when ``keep_for_next``; give up the rest. Waits ``seconds`` in all
    (``None``: ``UNMOUNT_COMMIT_SECONDS``) by ``clock`` (``None``: ``WallClock``)."""
    clock = clock or WallClock()
    deadline = clock.now() + (UNMOUNT_COMMIT_SECONDS if seconds is None else seconds)
    folder: Path | None = None
    for kind in kinds:
        key = store.describe(kind.key)
        try:
            staged = isinstance(kind, StagedKind) and kind.staged.changed
            short = isinstance(kind, StagedKind) and staged and kind.incomplete()
        except OSError as exc:  # the header of a staged object could not be read back
            log.error("%s not stored at unmount: %s", key, exc)
            kind.abort()
            continue
        if not staged or short:
            if short or not isinstance(kind, StagedKind):
                log.warning("%s not stored: the mount ended while it was open for writing (%s)", key,
                            "a .npy short of its data" if short else "its close never came")
            kind.abort()
            continue
        assert isinstance(kind, StagedKind)
        manifest = None
        if isinstance(staging, StagedFiles) and keep_for_next:
            try:
                folder = folder or kept_folder(staging)  # made when a file is to be kept, not before
                manifest = keep(kind, folder)
            except OSError as exc:
                log.warning("%s: could not be kept for the next mount (%s): committing it now is its only chance",
                            key, exc)
        _commit_at_unmount(kind, key, manifest, stored, max(0.0, deadline - clock.now()), clock)


def _commit_at_unmount(kind: StagedKind, key: str, manifest: Path | None, stored: Stored, seconds: float,
                       clock: UnmountClock) -> None:
    """Commit ``kind`` in a thread, waiting at most ``seconds`` (``clock.wait``); each outcome one log
    line. With no time left none is started: a commit begun now would create its upload after the
    mount stopped recording uploads (``StoreWriter.close``), and one cut off by the daemon's exit would
    be an orphan the next mount cannot find; the file stays kept (with ``--cache-dir``) for the next
    mount."""
    later = f"kept as {manifest.with_suffix('.data')}: the next --rw mount with this --cache-dir stores it" \
        if manifest is not None else "its changes are lost (no --cache-dir to keep them in)"
    if seconds <= 0:
        log.error("%s: not stored: the unmount's time for storing open files ran out; %s", key, later)
        kind.abort()
        return
    outcome: list[BaseException | ObjectInfo | None] = []

    def run() -> None:
        try:
            info = kind.fsync()
        except BaseException as exc:  # noqa: BLE001 - reported below, with the key
            outcome.append(exc)
            kind.abort()
            return
        if manifest is not None:
            forget(manifest)
        kind.abort()
        outcome.append(info)

    worker = threading.Thread(target=run, name="ccfs-unmount-commit", daemon=True)
    worker.start()
    clock.wait(worker, seconds)
    if not outcome:
        log.error("%s: not stored within %.0f s of the unmount; %s", key, seconds, later)
        return
    result = outcome[0]
    if isinstance(result, BaseException):
        log.error("%s: not stored at unmount: %s; %s", key, result, later)
        return
    if result is not None:
        stored(result)
    log.info("%s: stored at unmount (the file was still open: its last RELEASE never came)", key)


def recover(store: ObjectStore, namespace: Namespace, staging: Staging | None, conditional: bool,
            stored: Stored) -> int:
    """Store what earlier unmounts kept (see the module): how many were stored. Each failure is one
    log line with the kept file's path; the pair stays for the next mount."""
    if not isinstance(staging, StagedFiles):
        return 0
    folder = staging.area.folder / KEPT_FOLDER
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return 0
        folder = kept_folder(staging)  # a real folder of ours (not a link), 0700
    except FileNotFoundError:
        return 0
    except OSError as exc:  # UnsafeCacheFolder too
        log.error("%s: files kept at an earlier unmount are not read: %s", store.describe(), exc)
        return 0
    done = 0
    for manifest in sorted(folder.glob("*.json")):
        data = manifest.with_suffix(".data")
        try:
            record = Kept.parse(_read_kept(manifest, MAX_MANIFEST).decode())
            info = _store_kept(store, namespace, staging, record, data, conditional)
        except (OSError, ValueError) as exc:
            log.error("%s: a file kept at an earlier unmount is still not stored: %s (kept: %s)",
                      store.describe(), exc, data)
            continue
        forget(manifest)
        if info is not None:
            stored(info)
        log.info("%s: stored %s, kept at an earlier unmount", store.describe(info.key if info else ""), data.name)
        done += 1
    return done


def _store_kept(store: ObjectStore, namespace: Namespace, staging: StagedFiles, record: Kept, data: Path,
                conditional: bool) -> ObjectInfo | None:
    """Stage ``record`` again over the version it was kept over, and commit it."""
    if record.base_etag is None:
        bytes_key, array_key = namespace.written(record.path)
        target, key, base = Target(record.path, bytes_key, array_key, None, conditional), array_key or bytes_key, None
        try:
            namespace.lookup(record.path)
        except FileNotFoundError:
            pass
        else:
            if conditional:
                raise FileExistsError(errno.EEXIST, f"{record.path} was created meanwhile by another writer")
    else:
        node = namespace.lookup(record.path)
        if not isinstance(node, FileNode):
            raise IsADirectoryError(errno.EISDIR, f"{record.path} is a folder now")
        if node.info.etag != record.base_etag:  # even with --last-writer-wins: the kept file holds only its
            # changed ranges, and laid over another version they would store a mix of the two
            raise OSError(errno.ESTALE, f"{store.describe(node.key)} was replaced since the unmount")
        bytes_key, _ = namespace.written(record.path)
        target = Target(record.path, bytes_key, node.key, node.info, conditional) if node.is_array else \
            Target(record.path, node.key, None, node.info, conditional)
        key, base = node.key, Base(node.info, node.header, node.spec)
    source = _open_kept(data)
    staged = StagedFile(staging.area, store, record.path, key, base)
    try:
        if record.base_end < staged.size:
            staged.truncate(record.base_end)
        staged.truncate(record.size)
        for a, b in record.dirty:
            for start in range(a, b, REPLAY_CHUNK):
                chunk = os.pread(source, min(REPLAY_CHUNK, b - start), start)
                if len(chunk) != min(REPLAY_CHUNK, b - start):
                    raise OSError(errno.EIO, f"{data} is shorter than its manifest says")
                staged.write(start, chunk)
        return StagedKind(staged, target, record.compression).fsync()
    finally:
        os.close(source)
        staged.discard()
