"""Whether a key can be a path of files on this machine, and if not, why (no I/O beyond ``pathconf``).

A key is any string; a path is parts that each name a file: not empty, not ``.`` or ``..``, no NUL,
and at most the filesystem's ``NAME_MAX`` bytes (255 on Linux's filesystems, counted in bytes of
the file system encoding). The local backend refuses keys that are no such path, and
``download_directory`` and ``ccfs cp`` into a folder skip them, each with this reason, and go on
with the other objects.
"""

from __future__ import annotations

import errno
import os

from ..printable import escape_controls

#: what POSIX promises when the filesystem does not say (``pathconf`` failing)
DEFAULT_NAME_MAX = 255
#: characters of an over-long part a message shows
SHOWN_CHARS = 40
#: errors of a file operation that say its name, not the disk or the permissions, is wrong: such an
#: object is skipped, the others are written (ENAMETOOLONG: a part or the whole path is too long;
#: EILSEQ: the filesystem refuses the name's characters)
NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ})


class NotAFileName(ValueError):
    """A key a store of files cannot hold (``ValueError``, as the store contract says); ``reason``
    says why without naming the key, for messages that name it their own way."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"invalid object key {key!r}: {reason}")
        self.key = key
        self.reason = reason


def name_max(folder: str | os.PathLike[str]) -> int:
    """Bytes a file name may have in ``folder``'s filesystem."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX
    return limit if limit and limit > 0 else DEFAULT_NAME_MAX


def _shown(part: str) -> str:
    part = escape_controls(part.encode("utf-8", "backslashreplace").decode("utf-8"))
    return part if len(part) <= SHOWN_CHARS else part[:SHOWN_CHARS] + "..."


def path_problem(parts: list[str], limit: int = DEFAULT_NAME_MAX) -> str | None:
    """Why ``parts`` (a key split at ``/``) cannot be a path of files, or ``None`` when they can."""
    for part in parts:
        if not part:
            return "it has an empty part ('//', or a '/' at an end), which cannot be a file name"
        if part in (".", ".."):
            return f"it has a {part!r} part, which is no file name ('.' and '..' are a folder and its parent)"
        if "\x00" in part:
            return "it holds a NUL character, which no file name can"
        try:
            size = len(os.fsencode(part))
        except UnicodeEncodeError:
            return f"its part '{_shown(part)}' holds characters no file name here can"
        if size > limit:
            return f"its part '{_shown(part)}' is {size} bytes, more than the {limit} a file name may have here"
    return None


def is_name_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a filesystem refusing one name (skip that object), not a failure of the disk."""
    return isinstance(exc, OSError) and exc.errno in NAME_ERRNOS
