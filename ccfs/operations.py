"""mfusepy adapter: a few lines per operation over ``CcFilesystem``; errors become errnos here."""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
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


def as_ctypes_source(data: bytes | bytearray | memoryview) -> Any:
    """What mfusepy can ``memmove`` from: cached blocks are memoryviews of writable buffers,
    lent to ctypes without a copy."""
    if isinstance(data, memoryview):
        if data.readonly:
            return data.tobytes()
        return (ctypes.c_char * len(data)).from_buffer(data)
    return data


class Operations(fuse.Operations):
    use_ns = True

    def __init__(self, filesystem: CcFilesystem, ttl: float, on_ready: Callable[[], None] | None = None):
        self.fs = filesystem
        self.ttl = ttl
        self.on_ready = on_ready

    @overrides
    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        if conn_info is not None:
            conn_info.max_readahead = max(conn_info.max_readahead, 2**20)
        if config_3 is not None:  # libfuse 3: kernel-side caching of attributes and pages
            config_3.entry_timeout = self.ttl
            config_3.attr_timeout = self.ttl
            config_3.negative_timeout = min(self.ttl, 30.0)
            config_3.kernel_cache = 1
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
    @mapped
    def open(self, path: str, flags: int) -> int:
        return self.fs.open(path, flags)

    @overrides
    @mapped
    def read(self, path: str, size: int, offset: int, fh: int) -> Any:
        return as_ctypes_source(self.fs.read(fh, size, offset))

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
