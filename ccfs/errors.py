"""Exception -> errno, in one table, and one log line per failure naming the object and reason."""

from __future__ import annotations

import errno
import logging

from cottoncandy import waits
from cottoncandy.writes.writable import AlreadySaid

log = logging.getLogger("ccfs")

class Refused(PermissionError):
    """An operation this caller may not ask for (EACCES; logged as a warning, not an error)."""


TABLE: tuple[tuple[type[BaseException], int], ...] = (
    (FileNotFoundError, errno.ENOENT),
    (PermissionError, errno.EACCES),
    (IsADirectoryError, errno.EISDIR),
    (NotADirectoryError, errno.ENOTDIR),
    (ValueError, errno.EIO),  # bad metadata, corrupt or truncated body, undecodable codec
)


def errno_for(exc: BaseException) -> int:
    """The errno a failed operation returns: ENOENT, EACCES, ESTALE, EROFS... or EIO."""
    for kind, code in TABLE:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, OSError) and exc.errno:
        return int(exc.errno)
    return errno.EIO


def report(op: str, path: str, exc: BaseException) -> int:
    """Log a failure once (misses quietly) and return its errno."""
    code = errno_for(exc)
    if isinstance(exc, AlreadySaid):  # the same refusal at a later close of that file: logged once
        log.debug("%s %s: %s (said before)", op, path, exc.strerror)
    elif code == errno.ENOENT:
        log.debug("%s %s: not found", op, path)
    elif code in (errno.EROFS, errno.ENOTSUP, errno.ENODATA):
        log.debug("%s %s: %s", op, path, errno.errorcode.get(code, code))
    elif isinstance(exc, Refused):  # a user the mount does not serve for this: not a fault of ours
        log.warning("%s %s refused: %s", op, path, exc)
    elif code == errno.EINTR:  # the reader was signalled (FUSE INTERRUPT): not a failure of ours
        log.info("%s %s: interrupted", op, path)
    elif isinstance(exc, waits.GaveUp):  # the mount is stopping: every request still waiting ends
        log.info("%s %s: %s", op, path, exc.strerror)
    else:
        log.error("%s %s failed (%s): %s", op, path, errno.errorcode.get(code, code), exc)
    return code
