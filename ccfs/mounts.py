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
import threading
from collections.abc import Callable
from typing import TypeVar

from cottoncandy.mounttable import CCFS_FSTYPE, MOUNTINFO, MountEntry, parse_mountinfo

__all__ = ["CCFS_FSTYPE", "MOUNTINFO", "MountEntry", "parse_mountinfo"]

T = TypeVar("T")

#: what the kernel answers on a FUSE mount whose daemon has gone
DEAD_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED)


def canonical(path: str) -> str:
    """The absolute path without symlinks, as mountinfo spells it; never fails on a dead mount.

    Only the folder holding the last part is resolved: resolving the last part itself stats it,
    and a mount's root answers a stat only when its daemon does (a daemon whose threads all wait
    would hold the caller). A mountpoint is never a link, so nothing is lost for mountpoints."""
    absolute = os.path.abspath(path)
    parent, name = os.path.split(absolute)
    return os.path.join(os.path.realpath(parent), name) if name else os.path.realpath(absolute)


def mount_at(path: str, mountinfo: str = MOUNTINFO) -> MountEntry | None:
    """The topmost mount whose mountpoint is ``path`` (or the path a link there names), or ``None``."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            entries = parse_mountinfo(fh.read())
    except OSError:
        return None
    target = canonical(path)
    found = [e for e in entries if e.mountpoint == target]
    if not found and asked(lambda: os.path.islink(target), 2.0, False):  # a link to a mountpoint: follow it
        resolved = asked(lambda: os.path.realpath(target), 2.0, target)
        found = [e for e in entries if e.mountpoint == resolved]
    return found[-1] if found else None


def is_mounted(mount_id: int, mountinfo: str = MOUNTINFO) -> bool:
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            return any(e.mount_id == mount_id for e in parse_mountinfo(fh.read()))
    except OSError:
        return False


def daemon_gone(path: str, timeout: float | None = None) -> bool:
    """True for a FUSE mount whose daemon has died: the kernel answers ENOTCONN (or ECONNABORTED).

    Asks with ``statvfs``, which always reaches the daemon; ``stat`` may be answered from the
    kernel's attribute cache for a while after the daemon died. ``timeout``: a daemon that has not
    answered by then is taken as alive (see ``asked``).
    """
    def ask() -> bool:
        try:
            os.statvfs(path)
        except OSError as exc:
            return exc.errno in DEAD_ERRNOS
        return False

    return ask() if timeout is None else bool(asked(ask, timeout, False))


def asked(question: Callable[[], T], timeout: float, unanswered: T) -> T:
    """``question()``, or ``unanswered`` if it has not returned within ``timeout`` seconds.

    For calls into a FUSE mount whose daemon may not answer (all its threads waiting): the call goes
    on in a daemon thread, waiting in the kernel until the daemon answers or its connection ends --
    ``ccfs umount`` then ends it (this process cannot exit while that call waits)."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(question()), name="ccfs-ask", daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else unanswered


def abort_connection(entry: MountEntry) -> bool:
    """End a FUSE mount's kernel connection through fusectl (``/sys/fs/fuse/connections/N/abort``,
    allowed to the mount's owner): every request waiting on it fails at once and the daemon's loop
    ends. False where fusectl is not mounted or the connection is not there."""
    _, sep, minor = entry.device.partition(":")
    if not sep or not minor.isdigit():
        return False
    try:
        with open(f"/sys/fs/fuse/connections/{minor}/abort", "w") as fh:
            fh.write("1")
    except OSError:
        return False
    return True


def daemons_serving(mountpoint: str) -> list[int]:
    """Processes that look like the ccfs daemon of ``mountpoint`` (a last resort, for a daemon that
    does not answer the question of its process id, ``ccfs.mount.daemon_pid``): a ``ccfs mount``
    holding ``/dev/fuse`` open whose arguments name the mountpoint -- the daemon is a fork of the
    command that mounted it, and has since left the folder it was started in, so a relative name
    is resolved against the folder its shell named (``PWD`` in its environment); without one, a
    relative name matches nothing (a daemon of another folder's ``mnt`` is never taken for ours)."""
    target = canonical(mountpoint)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                words = [arg.decode(errors="surrogateescape") for arg in fh.read().split(b"\0") if arg]
            if "ccfs" not in " ".join(words[:3]) or "mount" not in words:
                continue
            holds_fuse = any(os.readlink(f"/proc/{name}/fd/{fd}") == "/dev/fuse"
                             for fd in os.listdir(f"/proc/{name}/fd"))
        except OSError:
            continue
        started_in = _environment(int(name)).get("PWD", "")
        named = any(os.path.normpath(word if os.path.isabs(word) else os.path.join(started_in, word)) == target
                    for word in words[words.index("mount") + 1:] if os.path.isabs(word) or started_in)
        if holds_fuse and named and process_alive(int(name)):
            found.append(int(name))
    return found


def _environment(pid: int) -> dict[str, str]:
    """Process ``pid``'s environment as it started (empty when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            pairs = [item.decode(errors="surrogateescape").partition("=") for item in fh.read().split(b"\0") if item]
    except OSError:
        return {}
    return {key: value for key, _, value in pairs}


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
