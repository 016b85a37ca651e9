"""mfusepy adapter: a few lines per operation over ``CcFilesystem``; errors become errnos here.

Only mfusepy's public API (``Operations``, ``FuseOSError``) is used here; the overrides of its
internals that make the mount fast live in ``ccfs/libfuse.py``, behind the fast paths' fence.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy as fuse

from cottoncandy import waits

from .errors import report
from .filesystem import REFRESH_XATTR, XATTR_PREFIX, CcFilesystem, DirectoryEntries, ListedEntries

log = logging.getLogger("ccfs")
F = TypeVar("F", bound=Callable[..., Any])
overrides = fuse.overrides(fuse.Operations)


def mapped(method: F) -> F:
    """Run an operation; any failure becomes a ``FuseOSError`` with its errno and one log line.
    While it runs, its waits on the store give up when the kernel interrupts the request or the
    mount stops (``cottoncandy.waits``, ``CcFilesystem.give_up``)."""

    @functools.wraps(method)
    def wrapper(self: Operations, path: str, *args: Any) -> Any:
        previous = waits.install(self.fs.give_up)
        try:
            return method(self, path, *args)
        except fuse.FuseOSError:
            raise
        except BaseException as exc:  # never let an exception kill the daemon or become EINVAL
            raise fuse.FuseOSError(report(method.__name__, path, exc)) from exc
        finally:
            waits.restore(previous)

    return wrapper  # type: ignore[return-value]


#: libfuse 3's capability bits: the kernel may send READs (buffered read-ahead, O_DIRECT) as
#: background requests, which it never interrupts: the reader then waits in the kernel until the
#: answer, and only a fatal signal frees it
FUSE_CAP_ASYNC_READ = 1 << 0
FUSE_CAP_ASYNC_DIO = 1 << 15


def caller_uid() -> int:
    """The uid of the process whose request this thread answers; -1 (nobody: refused what only the
    owner may ask) when mfusepy cannot tell (its ``fuse_get_context`` needs its libfuse binding)."""
    try:
        return int(fuse.fuse_get_context()[0])
    except Exception:  # noqa: BLE001 - a broken binding refuses, it does not fail the request
        return -1


class Operations(fuse.Operations):
    use_ns = True

    def __init__(self, filesystem: CcFilesystem, ttl: float, on_ready: Callable[[], None] | None = None,
                 attr_ttl: float | None = None, sync_reads: bool = False, max_read: int = 0):
        self.fs = filesystem
        #: ``-o max_read``: libfuse 3 refuses to serve unless ``init`` asks for the same READ size
        self.max_read = max_read
        self.sync_reads = sync_reads
        self.ttl = ttl
        self.attr_ttl = ttl if attr_ttl is None else attr_ttl
        self.on_ready = on_ready
        #: called first by ``destroy`` (libfuse is about to free its session: see ``libfuse.SessionWatch``)
        self.on_destroy: Callable[[], None] | None = None
        self._folder_handles = itertools.count(1)

    @overrides
    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        if conn_info is not None:
            conn_info.max_readahead = max(conn_info.max_readahead, 2**20)
            if self.max_read and hasattr(conn_info, "max_read"):  # libfuse 3's conn_info carries it
                conn_info.max_read = self.max_read
            # O_DIRECT READs as requests their reader waits for: sent in the background, a reader
            # could not be freed even by SIGKILL until the fetch ended; now a signal sends INTERRUPT
            conn_info.want &= ~FUSE_CAP_ASYNC_DIO
            if self.sync_reads:  # the same for buffered reads and mmap faults (read-ahead)
                conn_info.want &= ~FUSE_CAP_ASYNC_READ
        if config_3 is not None:  # libfuse 3: kernel-side caching of attributes and pages
            config_3.entry_timeout = self.ttl
            # a file's size and version: asked again (GETATTR, a HEAD in the daemon) by the next
            # stat, open or read() after this long; the kernel then drops pages of an old version
            config_3.attr_timeout = self.attr_ttl
            # no name is remembered missing by the kernel: a miss costs a call to the daemon, which
            # remembers misses itself and forgets them when told of a change (``ccfs refresh``, a
            # write by cottoncandy on this machine), so a new name shows the moment its folder does
            config_3.negative_timeout = 0
            config_3.kernel_cache = 0  # not for every open: ``libfuse.Fuse.open`` decides per version
        if self.on_ready is not None:
            self.on_ready()

    @overrides
    def destroy(self, path: str) -> None:
        if self.on_destroy is not None:
            self.on_destroy()
        self.fs.close()

    @overrides
    @mapped
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        return self.fs.getattr(path)

    @overrides
    @mapped
    def readdir(self, path: str, fh: int) -> list[Any]:
        return [".", ".."] + [(name, attrs, 0) for name, attrs in self.fs.readdir(path)]

    @mapped
    def readdir_entries(self, path: str, fh: int) -> DirectoryEntries | ListedEntries:
        """The entries as they are listed (``libfuse.Fuse`` hands them out a reply at a time)."""
        return self.fs.readdir_stream(path)

    @mapped
    def readdir_listed(self, path: str, fh: int) -> ListedEntries:
        """The whole sorted listing, for a pass resumed after its streamed entries were dropped (a
        new visit could stream them in another order, and the kernel resumes by offset)."""
        return ListedEntries(self.fs.readdir(path))

    @overrides
    def opendir(self, path: str) -> int:
        return next(self._folder_handles)  # lets readdirplus keep one listing per pass

    @overrides
    @mapped
    def open(self, path: str, flags: int) -> int:
        """The fusepy-API open (it registers the callback); the mount's OPENs go to ``open_file``."""
        return self.fs.open(path, flags)

    @mapped
    def open_file(self, path: str, flags: int) -> tuple[int, bool]:
        """``open`` plus whether the kernel may keep the file's cached pages (``libfuse.Fuse.open``)."""
        return self.fs.open_file(path, flags)

    @overrides
    @mapped
    def read(self, path: str, size: int, offset: int, fh: int) -> Any:
        """The fusepy-API read (it registers the callback); the mount's READs go to ``read_pieces``."""
        return bytes(self.fs.read(fh, size, offset))

    @mapped
    def read_pieces(self, path: str, size: int, offset: int, fh: int) -> list[memoryview | bytes]:
        """``read`` as buffers to copy in order: what ``libfuse.Fuse.read`` fills the reply from."""
        return self.fs.read_pieces(fh, size, offset)

    @overrides
    @mapped
    def release(self, path: str, fh: int) -> int:
        self.fs.release(fh)
        return 0

    @overrides
    @mapped
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if not name.startswith(XATTR_PREFIX):  # ls -l asks every file for security.selinux and its ACL
            raise fuse.FuseOSError(errno.ENODATA)
        return self.fs.getxattr(path, name, caller_uid=caller_uid() if name == REFRESH_XATTR else None)

    @overrides
    @mapped
    def listxattr(self, path: str) -> list[str]:
        return self.fs.listxattr(path)

    @overrides
    @mapped
    def statfs(self, path: str) -> dict[str, int]:
        return self.fs.statfs()

    @overrides
    @mapped
    def access(self, path: str, amode: int) -> int:
        writer = self.fs.writer  # a file being written, a folder made here: not in the store yet
        if writer.pending(path) is None and not writer.folder(path):  # (chdir into one asks ACCESS)
            self.fs.lookup(path)
        if amode & 2 and not self.fs.writer.writable:  # W_OK
            raise fuse.FuseOSError(errno.EROFS)
        return 0

    # --- changes: each goes to the one writer chosen at mount time (``cottoncandy.writes.seam``;
    # read-only by default: EROFS, as before) -------------------------------------------------
    @overrides
    @mapped
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        """mfusepy passes the open flags as ``fi`` (three parameters: its non-raw form)."""
        return self.fs.create(path, int(fi) if isinstance(fi, int) else os.O_WRONLY | os.O_CREAT)

    @overrides
    @mapped
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return self.fs.write(fh, data, offset)

    @overrides
    @mapped
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self.fs.truncate(path, length, fh)
        return 0

    @overrides
    @mapped
    def flush(self, path: str, fh: int) -> int:
        self.fs.flush(fh)
        return 0

    @overrides
    @mapped
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self.fs.fsync(fh, bool(datasync))
        return 0

    @overrides
    @mapped
    def unlink(self, path: str) -> int:
        self.fs.unlink(path)
        return 0

    @overrides
    @mapped
    def mkdir(self, path: str, mode: int) -> int:
        self.fs.mkdir(path)
        return 0

    @overrides
    @mapped
    def rmdir(self, path: str) -> int:
        self.fs.rmdir(path)
        return 0

    @overrides
    @mapped
    def rename(self, old: str, new: str) -> int:
        self.fs.rename(old, new)
        return 0

    # --- what the store cannot keep: refused on a read-only mount, ignored on a writable one --
    def _refuse(self, path: str, *args: Any) -> int:
        raise fuse.FuseOSError(errno.EROFS)

    def _ignore(self, path: str) -> int:
        """Modes, owners and times are the store's: on a writable mount setting them is accepted
        and has no effect (``cp -p``, ``touch``), on a read-only one it is ``EROFS``."""
        if not self.fs.writer.writable:
            raise fuse.FuseOSError(errno.EROFS)
        return 0

    @overrides
    def chmod(self, path: str, mode: int) -> int:
        return self._ignore(path)

    @overrides
    def chown(self, path: str, uid: int, gid: int) -> int:
        return self._ignore(path)

    @overrides
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        return self._ignore(path)

    def _no_xattrs(self, path: str) -> int:
        """Extended attributes are not stored (the ``user.cottoncandy.*`` ones are read from the object's
        metadata): ``EROFS`` on a read-only mount, ``ENOTSUP`` on a writable one, the answer with which
        ``mv``/``cp -a`` skip xattrs and ACLs quietly (ACLs then fall back to ``chmod``) instead of
        printing one warning per attribute."""
        if not self.fs.writer.writable:
            raise fuse.FuseOSError(errno.EROFS)
        raise fuse.FuseOSError(errno.ENOTSUP)

    @overrides
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        return self._no_xattrs(path)

    @overrides
    def removexattr(self, path: str, name: str) -> int:
        return self._no_xattrs(path)

    @overrides
    def symlink(self, target: str, source: str) -> int:
        return self._refuse(target)

    @overrides
    def link(self, target: str, source: str) -> int:
        return self._refuse(target)

    @overrides
    def mknod(self, path: str, mode: int, dev: int) -> int:
        return self._refuse(path)
