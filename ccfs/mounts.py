"""The kernel's mount table: what is mounted where, and whether a FUSE mount's daemon is gone.

``os.path.ismount`` cannot answer either question: it stats the path, and a FUSE mount whose
daemon died answers requests with ENOTCONN (or ECONNABORTED), which ``ismount`` reports as
"not a mount". So ``ccfs umount`` and ``ccfs mount`` read ``/proc/self/mountinfo`` instead: a
ccfs mount has the filesystem type ``fuse.ccfs`` (source ``ccfs:TARGET``); anything else is not
ours to unmount.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
CCFS_FSTYPE = "fuse.ccfs"
#: what the kernel answers on a FUSE mount whose daemon has gone
DEAD_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED)
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    mountpoint: str
    fstype: str
    source: str

    @property
    def is_ccfs(self) -> bool:
        return self.fstype == CCFS_FSTYPE


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\040``-style octal escapes."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Entries in mount order (a later entry on the same mountpoint is mounted over an earlier one)."""
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        entries.append(MountEntry(int(fields[0]), _unescape(fields[4]), _unescape(tail[0]), _unescape(tail[1])))
    return entries


def canonical(path: str) -> str:
    """The absolute path without symlinks, as mountinfo spells it; never fails on a dead mount."""
    return os.path.realpath(os.path.abspath(path))


def mount_at(path: str, mountinfo: str = MOUNTINFO) -> MountEntry | None:
    """The topmost mount whose mountpoint is ``path``, or ``None``."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            entries = parse_mountinfo(fh.read())
    except OSError:
        return None
    target = canonical(path)
    found = [e for e in entries if e.mountpoint == target]
    return found[-1] if found else None


def is_mounted(mount_id: int, mountinfo: str = MOUNTINFO) -> bool:
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            return any(e.mount_id == mount_id for e in parse_mountinfo(fh.read()))
    except OSError:
        return False


def daemon_gone(path: str) -> bool:
    """True for a FUSE mount whose daemon has died: the kernel answers ENOTCONN (or ECONNABORTED).

    Asks with ``statvfs``, which always reaches the daemon; ``stat`` may be answered from the
    kernel's attribute cache for a while after the daemon died.
    """
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno in DEAD_ERRNOS
    return False


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
