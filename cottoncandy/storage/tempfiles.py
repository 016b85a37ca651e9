"""Temporary files that become the user's files: created beside the target, with the umask's mode.

Downloads are written to a temporary file and renamed into place, so a failed transfer never
leaves half a file under the real name. ``tempfile.mkstemp`` creates its file with mode 0600,
which the rename kept: every downloaded file was private whatever the umask said (``open``
would have made it ``0666 & ~umask``). ``create_temp`` gives the file the mode ``open`` would.
"""

from __future__ import annotations

import os
import tempfile


def current_umask() -> int:
    """The process's umask, read without changing it (Linux's /proc); else the set-and-restore dance."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def create_temp(folder: str | os.PathLike[str], prefix: str, suffix: str = "") -> tuple[int, str]:
    """``mkstemp`` in ``folder`` (an open descriptor and the path), with mode ``0666 & ~umask``."""
    fd, path = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd, path
