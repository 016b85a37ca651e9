"""The write seam: every change the mount is asked for goes to ONE ``Writer``, chosen at mount time.

Why one object: the FUSE face (``ccfs/operations.py``, ``ccfs/filesystem.py``) must not grow a branch
per write feature. It hands ``create``, ``write``, ``flush``, ``fsync``, ``release``, ``truncate``,
``unlink``, ``rename``, ``mkdir``, ``rmdir`` and an ``open`` with write flags to ``filesystem.writer``:

- ``ReadOnlyWriter`` (the default mount): each of them is ``EROFS``, exactly as before writes existed;
- ``writable.StoreWriter`` (``ccfs mount --rw``): each open for writing gives a ``WriteHandle``.

Handles: the filesystem numbers every open file from one counter; a number names either a read
handle (``ccfs.filesystem.Handle``: a pinned version served from the block cache) or a
``WriteHandle`` from here. Invariants a ``Writer`` keeps (docs/SEMANTICS.md, "Writes"):

- atomicity: a key appears whole or not at all (one PUT or one CompleteMultipartUpload carries the
  data and the metadata); a file given up (short ``.npy``, refused upload) leaves no object and no
  in-progress upload;
- visibility: once ``flush``/``release`` has stored a key, the namespace is told (``Namespace.stored``),
  so the next ``stat``/``ls`` on this machine shows it with no LIST;
- durability: ``flush``/``fsync`` return only after the store has answered, and raise its refusal;
- errors: an ``OSError`` with the errno the program should see, after one log line naming the key.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..namespace.nodes import Node

#: how a writer finds what a path shows now (``Namespace.lookup``: ``FileNotFoundError`` when nothing)
Lookup = Callable[[str], Node]


@runtime_checkable
class WriteHandle(Protocol):
    """One open-for-writing of a path (what a file handle number names, beside read handles)."""

    #: the path within the mount ('a/x.npy')
    path: str

    @property
    def key(self) -> str:
        """The key it is stored as (the reverse naming rule; an array's once its header says so)."""
        ...

    @property
    def size(self) -> int:
        """The file's size as written so far (``stat`` shows it while the file is open)."""
        ...

    def read(self, size: int, offset: int) -> bytes:
        """Bytes of the file as written so far (``O_RDWR``); ``EOPNOTSUPP`` where the kind cannot."""
        ...


class Writer(Protocol):
    """What the mount's write operations go to (see the module)."""

    #: whether this writer changes anything (``access(W_OK)``, the modes shown, FUSE's ``ro``)
    writable: bool

    def create(self, path: str, flags: int) -> WriteHandle: ...

    def open(self, path: str, flags: int, lookup: Lookup) -> WriteHandle: ...

    def write(self, handle: WriteHandle, offset: int, data: bytes) -> int: ...

    def flush(self, handle: WriteHandle) -> None: ...

    def fsync(self, handle: WriteHandle, datasync: bool) -> None: ...

    def release(self, handle: WriteHandle) -> None: ...

    def truncate(self, path: str, length: int, handle: WriteHandle | None) -> None: ...

    def unlink(self, path: str) -> None: ...

    def rename(self, old: str, new: str) -> None: ...

    def mkdir(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None: ...

    def pending(self, path: str) -> WriteHandle | None:
        """A file open for writing at ``path`` (``stat`` shows it, not the store's answer), or ``None``;
        a file whose last release is storing it is waited for first (then ``release_refusal`` has its
        refusal)."""
        ...

    def release_refusal(self, path: str) -> OSError | None:
        """The store's refusal of ``path`` at its last release (which no program hears), told once:
        the next ``open`` or ``stat`` of the path raises it; ``None`` when there is none."""
        ...

    def folder(self, path: str) -> bool:
        """Whether ``path`` is a folder made with ``mkdir`` that holds nothing stored yet."""
        ...

    def folders_in(self, path: str) -> list[str]:
        """Names of such folders directly in the folder ``path`` (``readdir`` adds them)."""
        ...

    def close(self) -> None:
        """The mount ends: uploads still open are given up (no object, no orphan upload)."""
        ...


def read_only(path: str) -> OSError:
    """The error of every change on a read-only mount."""
    return OSError(errno.EROFS, f"read-only mount (mount with --rw to write): cannot change {path}")


class ReadOnlyWriter:
    """The default mount's writer: every change is ``EROFS``, before any request to the store."""

    writable = False

    def create(self, path: str, flags: int) -> WriteHandle:
        raise read_only(path)

    def open(self, path: str, flags: int, lookup: Lookup) -> WriteHandle:
        raise OSError(errno.EROFS, f"read-only mount: cannot open {path} for writing")

    def write(self, handle: WriteHandle, offset: int, data: bytes) -> int:
        raise read_only(handle.path)

    def flush(self, handle: WriteHandle) -> None:
        raise read_only(handle.path)

    def fsync(self, handle: WriteHandle, datasync: bool) -> None:
        raise read_only(handle.path)

    def release(self, handle: WriteHandle) -> None:
        raise read_only(handle.path)

    def truncate(self, path: str, length: int, handle: WriteHandle | None) -> None:
        raise read_only(path)

    def unlink(self, path: str) -> None:
        raise read_only(path)

    def rename(self, old: str, new: str) -> None:
        raise read_only(old)

    def mkdir(self, path: str) -> None:
        raise read_only(path)

    def rmdir(self, path: str) -> None:
        raise read_only(path)

    def pending(self, path: str) -> WriteHandle | None:
        return None

    def release_refusal(self, path: str) -> OSError | None:
        return None

    def folder(self, path: str) -> bool:
        return False

    def folders_in(self, path: str) -> list[str]:
        return []

    def close(self) -> None:
        return None
