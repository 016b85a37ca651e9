"""Changes made on this machine, told to the local ccfs mounts of the same bucket at once.

Why: a mount keeps each folder's listing for ``--metadata-ttl`` (300 s by default), so an array
uploaded by a script would not show in an already listed folder for minutes. A write through this
library (``put``, ``copy``, ``delete``: every upload, ``rm``, ``cp``, ``mv``) names the keys it
changed to each local mount of the same endpoint and bucket, whose daemon then asks the store about
those keys only (one HEAD each) and mends the listings it holds (``Namespace.changed``): no flush.

The channel: one ``SOCK_SEQPACKET`` Unix socket per mount, in the abstract namespace
(``\\0ccfs-changes-<major:minor>``, the mount's device: no file to make, clean or leave behind), found
through the mount table alone, so a writer never waits on a mount's daemon to find it. Each side
checks the other with ``SO_PEERCRED``, which the kernel fills in and no process can forge:

- the sender talks only to a process of its own user or root (another user squatting on the address
  learns nothing);
- the daemon listens only to its own user and root, as ``ccfs refresh`` does (a mount with
  ``allow_other`` does not let other users make it work); anything else is dropped with one line.

A message is a hint, never a fact: the daemon takes the keys from it, not their sizes or versions,
and asks the store. Everything in it is bounded before it is read (``MAX_MESSAGE`` bytes,
``MAX_KEYS`` keys of at most ``MAX_KEY_BYTES``), and so is every wait (``SEND_TIMEOUT``). Telling
is best effort: a mount that does not answer at once is skipped (it still sees the change after its
TTL, or ``ccfs refresh``), and the write itself never fails because of it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import mounttable

log = logging.getLogger("cottoncandy.changes")

MAX_MESSAGE = 192 * 1024  # under a Unix socket's default send buffer: one send carries a message
MAX_KEYS = 1000
MAX_KEY_BYTES = 1024
#: seconds a sender waits for one mount (connect and send) before skipping it
SEND_TIMEOUT = 0.5
#: seconds the daemon waits for the message of a connection its owner or root opened (a sender on a
#: loaded machine may be slow between connect and send; nobody else gets this far)
RECEIVE_TIMEOUT = 5.0
#: keys arriving within this many seconds of each other are applied together
BATCH_SECONDS = 0.05
#: messages read but not yet applied, at most (more are dropped: they show after the listing TTL)
QUEUED_MESSAGES = 256
#: seconds a new mount waits for its channel's address to come free: the kernel gives a device
#: number back at unmount, so a mount made just after another ended can find that mount's daemon
#: still holding the address for the moment it takes to exit
BIND_WAIT = 5.0
#: ``CCFS_TELL_MOUNTS=0`` in the environment: writes tell no mount (they show after the listing TTL)
ENV_SWITCH = "CCFS_TELL_MOUNTS"
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def address(device: str) -> bytes:
    """The abstract socket address of the mount whose device is ``device`` (``major:minor``)."""
    return b"\0ccfs-changes-" + device.encode("ascii")


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be named in a message, or ``None``."""
    if not isinstance(key, str) or not key or "\0" in key or len(key.encode("utf-8", "replace")) > MAX_KEY_BYTES:
        return f"a key must be a non-empty string of at most {MAX_KEY_BYTES} bytes without NUL"
    return None


def peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of ``sock``, as the kernel recorded it."""
    pid, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return pid, uid


@dataclass(frozen=True)
class Change:
    """What one message says: the store it is about (``scope``) and the keys written or removed."""

    scope: str
    keys: tuple[str, ...]

    def encode(self) -> bytes:
        return json.dumps({"v": 1, "scope": self.scope, "keys": list(self.keys)}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Change:
        """The change in ``data``; ``ValueError`` saying what is wrong with anything else."""
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"message of {len(data)} bytes (at most {MAX_MESSAGE})")
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON ({exc.__class__.__name__})") from None
        if not isinstance(body, dict) or body.get("v") != 1:
            raise ValueError("not a version-1 change message")
        scope, keys = body.get("scope"), body.get("keys")
        if not isinstance(scope, str) or not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise ValueError(f"needs a scope and a list of at most {MAX_KEYS} keys")
        for key in keys:
            problem = key_problem(key)
            if problem is not None:
                raise ValueError(problem)
        return cls(scope, tuple(keys))


# --- the library's side --------------------------------------------------------------------------
def local_mounts(bucket: str, mountinfo: str = mounttable.MOUNTINFO) -> list[mounttable.MountEntry]:
    """The ccfs mounts of ``bucket`` (any prefix, any endpoint) this process sees."""
    found = []
    for entry in mounttable.ccfs_mounts(mountinfo):
        target = entry.target
        shown = target[len("s3://"):] if target.startswith("s3://") else target
        if shown.partition("/")[0] == bucket or target.rstrip("/") == bucket.rstrip("/"):
            found.append(entry)
    return found


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    """``keys`` in groups that each fit one message (sizes measured as JSON spells them)."""
    group: list[str] = []
    size = 0
    for key in keys:
        cost = len(json.dumps(key)) + 2
        if group and (len(group) == MAX_KEYS or size + cost > MAX_MESSAGE - 4096):
            yield group
            group, size = [], 0
        group.append(key)
        size += cost
    if group:
        yield group


def tell(entry: mounttable.MountEntry, change: Change, timeout: float = SEND_TIMEOUT) -> bool:
    """Send ``change`` to the daemon of the mount ``entry``; whether it was delivered."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.settimeout(timeout)
            sock.connect(address(entry.device))
            _, uid = peer(sock)
            if uid not in (0, os.geteuid()):  # another user holds the address: it learns nothing
                log.warning("the change channel of %s is held by uid %d; not told", entry.mountpoint, uid)
                return False
            sock.sendall(change.encode())
        return True
    except OSError as exc:
        log.debug("could not tell the mount at %s about a change: %s", entry.mountpoint, exc)
        return False


def announce(bucket: str, scope: str | None, keys: Iterable[str]) -> int:
    """Tell every local ccfs mount of ``bucket`` that ``keys`` changed (``scope``: the endpoint and
    bucket, ``ObjectStore.change_scope``; ``None``: nothing to tell). How many mounts were told.
    Costs one read of the mount table when no ccfs mount is there; never raises."""
    if scope is None or os.environ.get(ENV_SWITCH) == "0":
        return 0
    try:
        entries = local_mounts(bucket)
        if not entries:
            return 0
        wanted = [key for key in dict.fromkeys(keys) if key_problem(key) is None]
        told = 0
        for entry in entries:
            delivered = [tell(entry, Change(scope, tuple(group))) for group in _chunks(wanted)]
            told += bool(delivered) and all(delivered)
        return told
    except Exception as exc:  # noqa: BLE001 - a write never fails because a mount could not be told
        log.debug("telling local mounts about a change failed: %s", exc)
        return 0


# --- the daemon's side ---------------------------------------------------------------------------
class ChangeListener:
    """Receives changes on the channel of the mount ``device`` and hands each to ``apply(keys)`` when
    it is about ``scope`` and comes from the owner (``uid``) or root. One thread reads messages (each
    read bounded by ``RECEIVE_TIMEOUT``), another applies them, so a slow store never keeps a writer
    waiting to connect; keys that arrive within ``BATCH_SECONDS`` of each other are applied together
    (a dask upload names each part in a message of its own: together, a folder named by many keys
    is LISTed once instead of HEADed key by key)."""

    def __init__(self, scope: str, apply: Callable[[tuple[str, ...]], object], uid: int | None = None):
        self.scope = scope
        self.apply = apply
        self.uid = os.getuid() if uid is None else uid
        self.refused = 0
        self.applied = 0
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._queue: queue.Queue[tuple[str, ...]] = queue.Queue(maxsize=QUEUED_MESSAGES)
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self, device: str) -> bool:
        """Listen on the channel of the mount ``device``; whether it could be opened (the mount
        works without it). An address still held (by the daemon of an earlier mount of the same
        device number, exiting) is tried again for up to ``BIND_WAIT`` seconds."""
        deadline = time.monotonic() + BIND_WAIT
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                sock.bind(address(device))
                sock.listen(64)
                break
            except OSError as exc:
                sock.close()
                if (exc.errno == errno.EADDRINUSE and time.monotonic() < deadline
                        and not self._stopping.is_set()):
                    time.sleep(0.05)
                    continue
                log.warning("changes made by cottoncandy on this machine will show after the listing TTL: "
                            "cannot open the change channel (%s)", exc.strerror or exc)
                return False
        sock.settimeout(0.5)  # how soon ``stop`` is noticed
        with self._lock:
            if self._stopping.is_set():  # stopped while binding
                sock.close()
                return False
            self._sock = sock
        self._threads = [threading.Thread(target=self._receive, name="ccfs-changes-in", daemon=True),
                         threading.Thread(target=self._apply_loop, name="ccfs-changes", daemon=True)]
        for thread in self._threads:
            thread.start()
        return True

    def stop(self) -> None:
        """Stop listening; may be called more than once. The address is given back first, before
        the threads end, so a new mount of the same device number can take it at once."""
        self._stopping.set()
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes an accept() in progress
            sock.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2)

    def _receive(self) -> None:
        failing = False
        while not self._stopping.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # out of descriptors, buffers...: the channel stays, after a pause
                if self._stopping.is_set():
                    return
                if not failing:
                    log.warning("change channel: %s; retrying", exc)
                failing = True
                time.sleep(0.1)
                continue
            failing = False
            with conn:
                try:
                    keys = self._one(conn)
                except Exception as exc:  # noqa: BLE001 - the daemon never dies of a message
                    log.error("change message not read: %s", exc)
                    continue
            if keys:
                try:
                    self._queue.put_nowait(keys)
                except queue.Full:
                    self.dropped += 1
                    if self.dropped == 1 or self.dropped % 1000 == 0:
                        log.warning("%d change message(s) dropped: more arrive than the store answers "
                                    "(they show after the listing TTL)", self.dropped)

    def _apply_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                pending = list(self._queue.get(timeout=0.5))
            except queue.Empty:
                continue
            while len(pending) < MAX_KEYS:
                try:
                    pending += self._queue.get(timeout=BATCH_SECONDS)
                except queue.Empty:
                    break
            try:
                self.apply(tuple(dict.fromkeys(pending)))
                self.applied += 1
            except Exception as exc:  # noqa: BLE001 - the daemon never dies of a change
                log.error("change of %d key(s) not applied: %s", len(pending), exc)

    def _one(self, conn: socket.socket) -> tuple[str, ...]:
        """The keys of the message on ``conn``, if it is one to act on (else none, and one log line)."""
        pid, uid = peer(conn)
        if uid not in (0, self.uid):
            self.refused += 1
            log.warning("change message from uid %d (pid %d) refused: only uid %d and root may send them",
                        uid, pid, self.uid)
            return ()
        conn.settimeout(RECEIVE_TIMEOUT)
        try:
            data = conn.recv(MAX_MESSAGE + 1)
            change = Change.decode(data)
        except (OSError, ValueError) as exc:
            self.refused += 1
            log.warning("change message from pid %d refused: %s", pid, exc)
            return ()
        if change.scope != self.scope:
            return ()  # another endpoint's bucket of the same name, or another bucket: not this mount's
        return change.keys
