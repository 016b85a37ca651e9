"""mfusepy adapter: a few lines per operation over ``CcFilesystem``; errors become errnos here."""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy as fuse

from .errors import report
from .filesystem import XATTR_PREFIX, CcFilesystem

log = logging.getLogger("ccfs")
F = TypeVar("F", bound=Callable[..., Any])
overrides = fuse.overrides(fuse.Operations)


def mapped(method: F) -> F:
    """Run an operation; any failure becomes a ``FuseOSError`` with its errno and one log line."""

    @functools.wraps(method)
    def wrapper(self: Operations, path: str, *args: Any) -> Any:
        try:
            return method(self, path, *args)
        except fuse.FuseOSError:
            raise
        except BaseException as exc:  # never let an exception kill the daemon or become EINVAL
            raise fuse.FuseOSError(report(method.__name__, path, exc)) from exc

    return wrapper  # type: ignore[return-value]


def fill(destination: int, pieces: list[memoryview | bytes]) -> int:
    """Copy ``pieces`` one after another to the address ``destination``; the bytes copied."""
    done = 0
    for piece in pieces:
        size = len(piece)
        if not size:
            continue
        if isinstance(piece, memoryview):  # a cached block is lent by address, kept alive by ``pieces``
            piece = piece.tobytes() if piece.readonly else ctypes.addressof(  # type: ignore[assignment]
                ctypes.c_char.from_buffer(piece))
        ctypes.memmove(destination + done, piece, size)
        done += size
    return done


def _libfuse_interrupted() -> Callable[[], bool] | None:
    """libfuse's ``fuse_interrupted()``: whether the kernel sent INTERRUPT for the request this
    thread serves (the reader got a signal). ``None`` where the loaded libfuse lacks it."""
    library = getattr(fuse, "_libfuse", None)
    check = getattr(library, "fuse_interrupted", None)
    if check is None:
        return None
    check.restype = ctypes.c_int
    check.argtypes = []
    return lambda: bool(check())


fuse_interrupted = _libfuse_interrupted()

#: libfuse 3's capability bits: the kernel may send READs (buffered read-ahead, O_DIRECT) as
#: background requests, which it never interrupts: the reader then waits in the kernel until the
#: answer, and only a fatal signal frees it
FUSE_CAP_ASYNC_READ = 1 << 0
FUSE_CAP_ASYNC_DIO = 1 << 15
READDIR_PLUS = 1  # fuse_readdir_flags: the kernel asked for attributes with the names
FILL_DIR_PLUS = 2  # fuse_fill_dir_flags: this entry carries its attributes
MAX_OPEN_PASSES = 1024


class Fuse(fuse.FUSE):
    """mfusepy's FUSE, with readdirplus.

    mfusepy hands libfuse only each entry's mode, so after a listing the kernel still sent one
    LOOKUP per entry to learn sizes and times (2,000 callbacks for ``ls -l`` of 2,000 arrays).
    Here an entry carries its whole stat when the kernel asks for it (libfuse 3 only). Entries go
    out with their offsets, as many as fit in each reply: libfuse before 3.17 drops the attributes
    of entries given with offset 0. One listing serves all the replies of one pass over a folder.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self._thread_state = threading.local()
        self._passes: dict[int, list[Any]] = {}  # directory handle -> the entries of its pass
        self._passes_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Every callback, on one of libfuse's threads.

        ctypes gives a foreign thread a fresh Python thread state for each callback and frees it
        after (an mmap, page faults and an munmap with a TLB shootdown on every core, each time:
        profiled at a tenth of the daemon's CPU on a sequential read). One extra
        ``PyGILState_Ensure`` on a thread's first callback keeps its state for the next ones.
        The cost: a few tens of KiB per libfuse worker thread that ever ran, until the daemon exits.
        """
        if not getattr(self._thread_state, "kept", False):
            ctypes.pythonapi.PyGILState_Ensure()
            self._thread_state.kept = True
        return super()._wrapper(func, *args, **kwargs)

    def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int) -> int:
        if not flags & READDIR_PLUS:
            return int(super().readdir_fuse_3(path, buf, filler, offset, fip, flags))
        handle = fip.contents.fh  # from ``Operations.opendir``: one per open folder
        with self._passes_lock:
            entries = self._passes.get(handle) if offset else None
        if entries is None:
            decoded = None if path is None else path.decode(self.encoding, self.errors)
            entries = self.operations.readdir(decoded, handle)
            with self._passes_lock:
                if len(self._passes) >= MAX_OPEN_PASSES:  # folders closed halfway through
                    self._passes.clear()
                self._passes[handle] = entries
        st = fuse.c_stat()
        for index in range(offset, len(entries)):
            item = entries[index]
            name, attrs = (item, None) if isinstance(item, str) else item[:2]
            ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
            if attrs:
                fuse.set_st_attrs(st, attrs, use_ns=self.use_ns)
            if filler(buf, name.encode(self.encoding, self.errors), st if attrs else None, index + 1,
                      FILL_DIR_PLUS if attrs else 0) != 0:
                return 0  # the reply is full: the kernel asks again from this offset
        if offset >= len(entries):  # the call that finds nothing left ends the pass
            with self._passes_lock:
                self._passes.pop(handle, None)
        return 0

    def open(self, path: bytes, fip: Any) -> int:
        """OPEN, with ``keep_cache`` decided per open: the kernel keeps a file's cached pages
        only while the version opened is the one they came from (``ccfs.versions``)."""
        info = fip.contents
        info.fh, keep_cache = self.operations.open_file(path.decode(self.encoding, self.errors), info.flags)
        info.keep_cache = int(keep_cache)
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        """The READ callback, lean: it runs once per 128 KiB of a sequential read, on the critical
        path of the kernel's read-ahead. The reply is copied once, from the cached blocks straight
        into libfuse's buffer (a reply spanning two blocks, or the header and a block, was first
        joined into a new ``bytes``: a second copy and a 128 KiB allocation)."""
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        pieces = self.operations.read_pieces(decoded, size, offset, fip.contents.fh)
        return fill(ctypes.addressof(buf.contents), pieces)

    def releasedir(self, path: bytes | None, fip: Any) -> int:
        with self._passes_lock:
            self._passes.pop(fip.contents.fh, None)
        return int(super().releasedir(path, fip))


class Operations(fuse.Operations):
    use_ns = True

    def __init__(self, filesystem: CcFilesystem, ttl: float, on_ready: Callable[[], None] | None = None,
                 attr_ttl: float | None = None, sync_reads: bool = False):
        self.fs = filesystem
        self.sync_reads = sync_reads
        self.ttl = ttl
        self.attr_ttl = ttl if attr_ttl is None else attr_ttl
        self.on_ready = on_ready
        self._folder_handles = itertools.count(1)

    @overrides
    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        if conn_info is not None:
            conn_info.max_readahead = max(conn_info.max_readahead, 2**20)
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
            config_3.negative_timeout = min(self.ttl, 30.0)
            config_3.kernel_cache = 0  # not for every open: ``Fuse.open`` decides per version
        if self.on_ready is not None:
            self.on_ready()

    @overrides
    def destroy(self, path: str) -> None:
        self.fs.close()

    @overrides
    @mapped
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        return self.fs.getattr(path)

    @overrides
    @mapped
    def readdir(self, path: str, fh: int) -> list[Any]:
        return [".", ".."] + [(name, attrs, 0) for name, attrs in self.fs.readdir(path)]

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
        """``open`` plus whether the kernel may keep the file's cached pages (``Fuse.open``)."""
        return self.fs.open_file(path, flags)

    @overrides
    @mapped
    def read(self, path: str, size: int, offset: int, fh: int) -> Any:
        """The fusepy-API read (it registers the callback); the mount's READs go to ``read_pieces``."""
        return bytes(self.fs.read(fh, size, offset))

    @mapped
    def read_pieces(self, path: str, size: int, offset: int, fh: int) -> list[memoryview | bytes]:
        """``read`` as buffers to copy in order: what ``Fuse.read`` fills the reply from."""
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
        return self.fs.getxattr(path, name)

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
        self.fs.lookup(path)
        if amode & 2:  # W_OK
            raise fuse.FuseOSError(errno.EROFS)
        return 0

    # --- a read-only mount: every change is EROFS --------------------------------------------
    def _refuse(self, path: str, *args: Any) -> int:
        raise fuse.FuseOSError(errno.EROFS)

    @overrides
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        return self._refuse(path)

    @overrides
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return self._refuse(path)

    @overrides
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        return self._refuse(path)

    @overrides
    def unlink(self, path: str) -> int:
        return self._refuse(path)

    @overrides
    def mkdir(self, path: str, mode: int) -> int:
        return self._refuse(path)

    @overrides
    def rmdir(self, path: str) -> int:
        return self._refuse(path)

    @overrides
    def rename(self, old: str, new: str) -> int:
        return self._refuse(old)

    @overrides
    def chmod(self, path: str, mode: int) -> int:
        return self._refuse(path)

    @overrides
    def chown(self, path: str, uid: int, gid: int) -> int:
        return self._refuse(path)

    @overrides
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        return self._refuse(path)

    @overrides
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        return self._refuse(path)

    @overrides
    def removexattr(self, path: str, name: str) -> int:
        return self._refuse(path)

    @overrides
    def symlink(self, target: str, source: str) -> int:
        return self._refuse(target)

    @overrides
    def link(self, target: str, source: str) -> int:
        return self._refuse(target)

    @overrides
    def mknod(self, path: str, mode: int, dev: int) -> int:
        return self._refuse(path)
