"""The staged kind of file being written (``kinds.FileKind``) and the seam's plug-in that makes it
(``kinds.Staging``): whatever cannot stream is staged, never refused (issue 26 items 3 and 4).

Commit points, and why:

* ``flush`` (every ``close()``) stores nothing: the pages of a shared mmap may still follow it
  (``np.lib.format.open_memmap`` closes its file before a single data byte is written);
* ``fsync`` (what ``memmap.flush()`` sends) stores the file as it is and reports the store's refusal
  to the program (EIO, ENOSPC, EACCES, ESTALE ...); nothing is stored when nothing changed;
* the last ``release`` stores what is still changed; a refusal there reaches no program, so it is
  logged with the key (``writable`` logs it) and the file is given up;
* a ``.npy`` with fewer data bytes than its header promises is never stored: at its last release it is
  *kept*, staged and invisible to the store, so that its reopen (``open_memmap``: header, close,
  reopen ``O_RDWR``, extend, map) finds it; a kept file nobody completes is given up at unmount, logged.

Nothing partial is ever visible: each store is one ``ObjectStore.compose`` (``commit``).
"""

from __future__ import annotations

import errno
import logging
from dataclasses import replace

from .. import waits
from ..namespace.nodes import FileNode
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.conditions import WriteCondition
from .commit import Incomplete, commit, layout_of
from .kinds import FileKind, Target
from .staged import Base, StagedFile
from .staging import StagingArea

log = logging.getLogger("cottoncandy.writes")


class StagedKind:
    """A file staged on disk (``staged.StagedFile``) with the commit points of the module docstring.
    ``compression``: the mount's ``--write-compression``, the codec of a ``.npy`` that replaces no
    stored array (a new name, or a stored non-array that becomes one: as a streamed file gets); one
    replacing an array keeps that array's codec (``commit.layout_of``). Methods are called under the
    open file's lock (``writable.OpenFile``)."""

    def __init__(self, staged: StagedFile, target: Target, compression: str | None = None):
        self.staged = staged
        self.target = target
        self.compression = compression
        self.stored: ObjectInfo | None = None

    @property
    def key(self) -> str:
        return self.stored.key if self.stored is not None else self.target.array_key or self.target.bytes_key

    @property
    def size(self) -> int:
        return self.staged.size

    def accepts(self, offset: int, length: int) -> bool:
        return True

    def write(self, offset: int, data: bytes) -> int:
        return self.staged.write(offset, data)

    def read(self, size: int, offset: int) -> bytes:
        return self.staged.read(size, offset)

    def can_truncate(self, length: int) -> bool:
        return True

    def truncate(self, length: int) -> None:
        self.staged.truncate(length)

    def incomplete(self) -> bool:
        """Whether it is a ``.npy`` still short of the data its header promises."""
        try:
            layout_of(self.staged, self.target.array_key, self.target.bytes_key, self.compression)
        except Incomplete:
            return True
        return False

    def _store(self) -> ObjectInfo | None:
        if not self.staged.changed:
            return None
        try:
            self.stored = commit(self.staged, self.target.array_key, self.target.bytes_key, self._condition(),
                                 self.compression)
        except Incomplete as short:
            log.info("%s: not stored yet: %s", self.target.path, short)
            return None
        return self.stored

    def _condition(self) -> WriteCondition | None:
        """The commit's condition (issue 26 item 5): ``If-Match`` of the version the staged file
        started from, or last stored, else the one it was opened over (a stream taken over: no base),
        where it is stored under that key; else ``If-None-Match``. ``Incomplete`` as ``commit`` would raise it."""
        key = layout_of(self.staged, self.target.array_key, self.target.bytes_key, self.compression).key
        base = self.staged.base
        return replace(self.target, seen=base.info if base is not None else self.target.seen).condition(key)

    def flush(self) -> ObjectInfo | None:
        return None  # see the module: mmap pages may still follow a close

    def fsync(self) -> ObjectInfo | None:
        return self._store()

    def release(self) -> ObjectInfo | None:
        """The last close: store what changed, then drop the staged file. Not given up when the mount
        starts stopping (``waits``: a RELEASE answers nobody, and a commit given up here would lose
        the file's bytes); the kernel never interrupts a RELEASE."""
        try:
            with waits.giving_up(None):
                return self._store()
        finally:
            self.staged.discard()

    def abort(self) -> None:
        self.staged.discard()


class StagedFiles:
    """The plug-in of ``writable.StoreWriter`` (``kinds.Staging``): staged kinds in one ``StagingArea``.
    ``compression``: the mount's ``--write-compression`` (``None``: raw), given to every staged kind
    it makes, whichever way it was staged (an open to change a stored file in place, a stream taken
    over, a file continued after a commit point); which codec then applies is ``commit.layout_of``'s
    one rule (a stored array's own codec, else this one)."""

    def __init__(self, store: ObjectStore, area: StagingArea, compression: str | None = None):
        self.store = store
        self.area = area
        self.compression = compression

    def start(self, target: Target, existing: FileNode, flags: int) -> FileKind:
        """An existing object opened to be changed in place: nothing is fetched until it is read."""
        base = Base(existing.info, existing.header, existing.spec)
        key = existing.key
        log.info("%s: staged for writing in place (%s, %d bytes)", target.path, self.store.describe(key), base.size)
        return StagedKind(StagedFile(self.area, self.store, target.path, key, base), target, self.compression)

    def adopt(self, stream: FileKind) -> FileKind:
        """A file being streamed got a write out of order: what it holds moves to a staged file."""
        held = stream.held()  # type: ignore[attr-defined]
        if held is None:  # parts are out already: they cannot be taken back
            stream.abort()
            raise OSError(errno.EOPNOTSUPP, f"{self.store.describe(stream.key)}: a write out of order after "
                                            "parts of the file were uploaded; write it again from the start")
        staged = StagedFile(self.area, self.store, stream.target.path, stream.key)
        try:
            staged.write(0, held)
        except BaseException:
            staged.discard()
            raise
        stream.abort()  # frees its memory; nothing of it was uploaded
        return StagedKind(staged, stream.target, self.compression)

    def keep(self, kind: FileKind) -> FileKind | None:
        """At a file's last release: the kind that keeps a short ``.npy`` staged for its reopen, or
        ``None`` when the file is to be committed (or given up) now."""
        if isinstance(kind, StagedKind):
            return kind if kind.incomplete() else None
        expected = getattr(kind, "expected_size", None)
        if expected is None or kind.size >= expected:
            return None
        return self.adopt(kind)

    def close(self) -> None:
        self.area.close()
