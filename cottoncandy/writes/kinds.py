"""The kinds of file being written, as the writable seam sees them: ``FileKind``, and ``Staging``,
the plug-in point of the staged kind (issue 26 item 3).

A path open for writing is one ``writable.OpenFile`` holding one ``FileKind``. The seam hands each
WRITE to the kind if ``accepts`` says so; otherwise it asks ``Staging`` for a staged kind that takes
the file over (``adopt``), and without one the write fails with ``EOPNOTSUPP`` (one log line) and the
file is left as it was: nothing is ever stored out of order.

Commit points (what ``flush``/``fsync``/``release`` return): the ``ObjectInfo`` the store answered
when the kind stored its object just now (the seam then tells the namespace), or ``None`` when
nothing was stored by this call. A refusal is raised (``OSError``) and leaves no object and no
in-progress upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..namespace.nodes import FileNode
from ..storage.base import ObjectInfo
from ..storage.conditions import CREATE, WriteCondition, overwrite


@dataclass(frozen=True)
class Target:
    """Where a file being written goes: its path in the mount, the key of its bytes stored as they
    are, and the key of the raw array it becomes if it is a plain ``.npy`` (``None``: never an
    array). The reverse naming rule decides both (``namespace.tree.written``)."""

    path: str
    bytes_key: str
    array_key: str | None = None
    #: the object this file was opened over (``None``: a new name), and whether writes carry a
    #: condition (``storage.conditions``; ``False``: ``--last-writer-wins``)
    seen: ObjectInfo | None = None
    conditional: bool = True

    def condition(self, key: str) -> WriteCondition | None:
        """What a write of ``key`` requires (issue 26 item 5): the version seen at open still there
        when it is that object's key, else that no one created ``key`` meanwhile."""
        if not self.conditional:
            return None
        if self.seen is not None and key == self.seen.key:
            return overwrite(self.seen.etag)
        return CREATE


class FileKind(Protocol):
    """One way of producing the object of a file being written (streamed, staged)."""

    target: Target

    @property
    def key(self) -> str:
        """The key it is (or will be) stored under (an array's once its header says it is one)."""
        ...

    @property
    def size(self) -> int:
        """The file's size as written so far."""
        ...

    def accepts(self, offset: int, length: int) -> bool:
        """Whether a WRITE of ``length`` bytes at ``offset`` can be taken by this kind."""
        ...

    def write(self, offset: int, data: bytes) -> int: ...

    def read(self, size: int, offset: int) -> bytes: ...

    def can_truncate(self, length: int) -> bool: ...

    def truncate(self, length: int) -> None: ...

    def flush(self) -> ObjectInfo | None:
        """FLUSH (a ``close()``): a streamed file completes here; a staged one need not."""
        ...

    def fsync(self) -> ObjectInfo | None: ...

    def release(self) -> ObjectInfo | None:
        """The last handle closed: store what is complete, give up the rest (logged)."""
        ...

    def abort(self) -> None:
        """Give up: nothing stored, no in-progress upload left (idempotent)."""
        ...


class Staging(Protocol):
    """What the staged-writes kind provides (see ``writable``'s module docstring)."""

    def start(self, target: Target, existing: FileNode, flags: int) -> FileKind:
        """A staged file for an ``open`` of an existing object that is not a plain rewrite
        (``O_RDWR``, ``O_APPEND`` or no ``O_TRUNC`` on a non-empty file)."""
        ...

    def adopt(self, stream: FileKind) -> FileKind:
        """Take over ``stream`` (a ``streaming.StreamingFile``) when it got a WRITE or truncate it does
        not accept. ``stream.held()`` gives the bytes written so far while none has been uploaded
        (``None`` once parts are out: then ``stream.abort()`` and refuse, or resume another way)."""
        ...

    def keep(self, kind: FileKind) -> FileKind | None:
        """At a file's last release: a kind that keeps a short ``.npy`` (``open_memmap``'s header,
        close, reopen) staged and unstored for its reopen, or ``None``: commit (or give up) now."""
        ...

    def close(self) -> None:
        """The mount ends: staged files are gone (the writer gave up what was still open)."""
        ...
