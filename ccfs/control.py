"""Talking to a running mount's daemon: ``ccfs refresh`` and SIGHUP.

Two channels, both needing no state of their own (no pid file, no socket):

- ``refresh(mountpoint, path)`` reads the attribute ``user.cottoncandy.refresh`` of ``path`` (or of
  its nearest ancestor the mount shows: a new upload is not visible yet) through the mount. A
  read-only mount refuses every write, setxattr included, so the request is a read; the daemon
  drops the cached listings and attributes of that folder (``Namespace.refresh``).
- ``fast_paths(mountpoint)`` reads ``user.cottoncandy.fast-paths`` of the mount's root: the daemon's
  fast requests refused by cause and its fallbacks (``ccfs info --mount``).
- SIGHUP to the daemon (``systemctl reload``, ``kill -HUP``) refreshes everything: ``sighup_refresh``
  installs it before libfuse sets its own handlers, which then leaves SIGHUP alone (libfuse only
  replaces a default handler; its own would have ended the mount).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import mounts
from .filesystem import FAST_PATHS_XATTR, REFRESH_XATTR

log = logging.getLogger("ccfs")


class RefreshError(Exception):
    """A refresh that cannot be asked for, with the reason."""


class DaemonError(RefreshError):
    """A mount's daemon that cannot be asked (not a ccfs mount, stopped, silent), with the reason."""


def refresh(mountpoint: str, path: str = "") -> str:
    """Ask the daemon of the ccfs mount at ``mountpoint`` to drop what it cached about ``path``
    (everything when empty); the path actually refreshed (``path`` or its nearest shown ancestor)."""
    entry = mounts.mount_at(mountpoint)
    if entry is None or not entry.is_ccfs:
        raise RefreshError(f"{mountpoint} is not a ccfs mount")
    if mounts.daemon_gone(entry.mountpoint):
        raise RefreshError(f"the daemon of {mountpoint} has stopped; unmount it: ccfs umount {mountpoint}")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise RefreshError(f"{path!r}: give a path inside the mount, without '..'")
    shown = shown_part(entry.mountpoint, parts)
    target = os.path.join(entry.mountpoint, *shown)
    try:
        os.getxattr(target, REFRESH_XATTR)
    except OSError as exc:
        raise RefreshError(f"could not refresh {target}: {exc.strerror or exc}") from None
    return "/".join(shown)


def fast_paths(mountpoint: str, timeout: float = 10.0) -> dict[str, Any]:
    """The fast-path state of the daemon of the ccfs mount at ``mountpoint``: ``enabled`` (bool),
    ``refused`` and ``fallbacks`` (counts by cause and kind, since the mount began)."""
    entry = mounts.mount_at(mountpoint)
    if entry is None or not entry.is_ccfs:
        raise DaemonError(f"{mountpoint} is not a ccfs mount")
    if mounts.daemon_gone(entry.mountpoint, timeout):
        raise DaemonError(f"the daemon of {mountpoint} has stopped; unmount it: ccfs umount {mountpoint}")

    def ask() -> bytes | OSError:
        try:
            return os.getxattr(entry.mountpoint, FAST_PATHS_XATTR)
        except OSError as exc:
            return exc

    answer = mounts.asked(ask, timeout, None)
    if answer is None:
        raise DaemonError(f"the daemon of {mountpoint} did not answer within {timeout:.0f} s")
    if isinstance(answer, OSError):
        raise DaemonError(f"the daemon of {mountpoint} does not say ({answer.strerror or answer}): "
                           f"it may be older than this ccfs")
    state = json.loads(answer)
    if not isinstance(state, dict):
        raise DaemonError(f"the daemon of {mountpoint} answered {answer[:80]!r}")
    return state


def shown_part(mountpoint: str, parts: list[str]) -> list[str]:
    """The longest start of ``parts`` the mount shows, found by reading folders, never by looking
    a name up: the kernel would remember a name found missing (its negative entry) for up to 30 s,
    hiding it after the refresh too."""
    shown: list[str] = []
    for part in parts:
        folder = os.path.join(mountpoint, *shown)
        try:
            names = os.listdir(folder)
        except NotADirectoryError:
            break  # ``shown`` names a file: refresh it (its folder is refreshed with it)
        except OSError as exc:
            raise RefreshError(f"could not read {folder}: {exc.strerror or exc}") from None
        if part not in names:
            break
        shown.append(part)
    return shown


@contextmanager
def sighup_refresh(refresh_all: Callable[[], None]) -> Iterator[bool]:
    """While inside, SIGHUP calls ``refresh_all`` (from a thread of its own); yields whether it could
    be set up (only the main thread may install signal handlers).

    The main thread sits in libfuse's loop, so a Python-level handler would not run until the
    mount ends: the signal is taken from Python's wakeup fd, which its C handler writes at once.
    """
    try:
        reader, writer = socket.socketpair()
    except OSError:
        yield False
        return
    writer.setblocking(False)
    try:
        previous = signal.signal(signal.SIGHUP, lambda *_: None)
        old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        reader.close()
        writer.close()
        yield False
        return

    def listen() -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGHUP in data:
                try:
                    refresh_all()
                except Exception as exc:  # the daemon never dies of a refresh
                    log.error("refresh on SIGHUP failed: %s", exc)

    thread = threading.Thread(target=listen, name="ccfs-sighup", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGHUP, previous if previous is not None else signal.SIG_DFL)
        writer.close()
        reader.shutdown(socket.SHUT_RDWR)
        reader.close()
