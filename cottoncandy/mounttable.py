"""The kernel's mount table as this process sees it (``/proc/self/mountinfo``): one reader for the
library (``mounted``, ``changes``) and the daemon's CLI (``ccfs.mounts``).

A ccfs mount has the filesystem type ``fuse.ccfs`` and the source ``ccfs:TARGET`` (``s3://bucket/prefix``
or a local folder). Reading the table never touches a mount, so it cannot hang on a stuck daemon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
CCFS_FSTYPE = "fuse.ccfs"
SOURCE_PREFIX = "ccfs:"
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    mountpoint: str
    fstype: str
    source: str
    #: ``major:minor`` of the mount's device; for FUSE the minor names its connection in fusectl
    device: str = ""

    @property
    def is_ccfs(self) -> bool:
        return self.fstype == CCFS_FSTYPE

    @property
    def target(self) -> str:
        """What a ccfs mount shows (``s3://bucket/prefix`` or a local folder); ``''`` for others."""
        return self.source[len(SOURCE_PREFIX):] if self.is_ccfs and self.source.startswith(SOURCE_PREFIX) else ""


def unescape(field: str) -> str:
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
        entries.append(MountEntry(int(fields[0]), unescape(fields[4]), unescape(tail[0]), unescape(tail[1]),
                                  fields[2]))
    return entries


def read(mountinfo: str = MOUNTINFO) -> list[MountEntry]:
    """The table's entries (none when it cannot be read)."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            return parse_mountinfo(fh.read())
    except OSError:
        return []


def ccfs_mounts(mountinfo: str = MOUNTINFO) -> list[MountEntry]:
    """Every ccfs mount this process sees."""
    return [entry for entry in read(mountinfo) if entry.target]
