"""Changes made on this machine, told to the local ccfs mounts of the same bucket at once.

Why: a mount keeps each folder's listing for ``--metadata-ttl`` (300 s by default), so an array
uploaded by a script would not show in an already listed folder for minutes. A write through this
library (``put``, ``copy``, ``delete``: every upload, ``rm``, ``cp``, ``mv``) names the keys it
changed to each local mount of the same endpoint and bucket, whose daemon then asks the store about
those keys only (one HEAD each) and mends the listings it holds (``Namespace.changed``): no flush.

The channel: one ``SOCK_SEQPACKET`` Unix socket per daemon, in the abstract namespace
(``\\0ccfs-changes-<pid>``; no file to make, clean or leave behind), found through the mount table
and the root folder's ``user.cottoncandy.daemon-pid`` attribute. Each side checks the other with
``SO_PEERCRED``, which the kernel fills in and no process can forge:

- the sender talks only to the process the mount named (a squatter on the address learns nothing);
- the daemon listens only to its own user and root, as ``ccfs refresh`` does (a mount with
  ``allow_other`` does not let other users make it work); anything else is dropped with one line.

A message is a hint, never a fact: the daemon takes the keys from it, not their sizes or versions,
and asks the store. Everything in it is bounded before it is read (``MAX_MESSAGE`` bytes,
``MAX_KEYS`` keys of at most ``MAX_KEY_BYTES``), and so is every wait (``SEND_TIMEOUT``). Telling
is best effort: a mount that does not answer at once is skipped (it still sees the change after its
TTL, or ``ccfs refresh``), and the write itself never fails because of it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("cottoncandy.changes")

#: the root folder's attribute that names the daemon's process id (answered by the mount)
PID_XATTR = "user.cottoncandy.daemon-pid"
MAX_MESSAGE = 256 * 1024
MAX_KEYS = 1000
MAX_KEY_BYTES = 1024
#: seconds a sender waits for one mount (connect and send) before skipping it
SEND_TIMEOUT = 0.5
#: keys arriving within this many seconds of each other are applied together
BATCH_SECONDS = 0.05
MOUNTS = "/proc/self/mounts"
#: ``CCFS_TELL_MOUNTS=0`` in the environment: writes tell no mount (they show after the listing TTL)
ENV_SWITCH = "CCFS_TELL_MOUNTS"
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def address(pid: int) -> bytes:
    """The abstract socket address of the daemon with process id ``pid``."""
    return b"\0ccfs-changes-%d" % pid


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
            if not isinstance(key, str) or not key or "\0" in key or len(key.encode("utf-8", "replace")) > \
                    MAX_KEY_BYTES:
                raise ValueError(f"a key must be a non-empty string of at most {MAX_KEY_BYTES} bytes without NUL")
        return cls(scope, tuple(keys))


# --- the library's side --------------------------------------------------------------------------
def unescape(field: str) -> str:
    """A mount table field as the text it names: the kernel writes space, tab, newline and backslash
    as octal escapes (``\\040``) and every other character as is (UTF-8 included)."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def ccfs_mounts(mounts: str = MOUNTS) -> list[tuple[str, str]]:
    """(mountpoint, target) of every ccfs mount this process sees, from the mount table."""
    try:
        with open(mounts, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "fuse.ccfs" and fields[0].startswith("ccfs:"):
            found.append((unescape(fields[1]), unescape(fields[0][len("ccfs:"):])))
    return found


def local_mounts(bucket: str, mounts: str = MOUNTS) -> list[str]:
    """Mount points of the ccfs mounts of ``bucket`` (any prefix, any endpoint) this process sees."""
    found = []
    for mountpoint, target in ccfs_mounts(mounts):
        shown = target[len("s3://"):] if target.startswith("s3://") else target
        if shown.partition("/")[0] == bucket or target.rstrip("/") == bucket.rstrip("/"):
            found.append(mountpoint)
    return found


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    """``keys`` in groups that each fit one message."""
    group: list[str] = []
    size = 0
    for key in keys:
        if group and (len(group) == MAX_KEYS or size + len(key) * 6 + 8 > MAX_MESSAGE - 4096):
            yield group
            group, size = [], 0
        group.append(key)
        size += len(key) * 6 + 8  # a JSON string escapes a character into at most 6 bytes
    if group:
        yield group


def tell(mountpoint: str, change: Change, timeout: float = SEND_TIMEOUT) -> bool:
    """Send ``change`` to the daemon of the mount at ``mountpoint``; whether it was delivered."""
    try:
        pid = int(os.getxattr(mountpoint, PID_XATTR).decode("ascii"))
    except (OSError, ValueError):
        return False  # not a ccfs mount (any more), or its daemon does not answer
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.settimeout(timeout)
            sock.connect(address(pid))
            if peer(sock)[0] != pid:  # someone else holds the address: it learns nothing
                log.warning("the change channel of %s is held by another process; not told", mountpoint)
                return False
            sock.sendall(change.encode())
        return True
    except OSError as exc:
        log.debug("could not tell the mount at %s about a change: %s", mountpoint, exc)
        return False


def announce(bucket: str, scope: str | None, keys: Iterable[str]) -> int:
    """Tell every local ccfs mount of ``bucket`` that ``keys`` changed (``scope``: the endpoint and
    bucket, ``ObjectStore.change_scope``; ``None``: nothing to tell). How many mounts were told.
    Costs one read of the mount table when no ccfs mount is there; never raises."""
    if scope is None or os.environ.get(ENV_SWITCH) == "0":
        return 0
    try:
        mountpoints = local_mounts(bucket)
        if not mountpoints:
            return 0
        wanted = [key for key in dict.fromkeys(keys) if key and "\0" not in key
                  and len(key.encode("utf-8", "replace")) <= MAX_KEY_BYTES]
        told = 0
        for mountpoint in mountpoints:
            delivered = [tell(mountpoint, Change(scope, tuple(group))) for group in _chunks(wanted)]
            told += bool(delivered) and all(delivered)
        return told
    except Exception as exc:  # noqa: BLE001 - a write never fails because a mount could not be told
        log.debug("telling local mounts about a change failed: %s", exc)
        return 0


# --- the daemon's side ---------------------------------------------------------------------------
class ChangeListener:
    """Receives changes on this process's channel and hands each to ``apply(keys)`` (in the
    listener's thread, one message after another) when it is about ``scope`` and comes from the
    owner (``uid``) or root."""

    def __init__(self, scope: str, apply: Callable[[tuple[str, ...]], object], uid: int | None = None):
        self.scope = scope
        self.apply = apply
        self.uid = os.getuid() if uid is None else uid
        self.refused = 0
        self.applied = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Listen; whether the channel could be opened (the mount works without it)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.bind(address(os.getpid()))
            sock.listen(16)
        except OSError as exc:
            sock.close()
            log.warning("changes made by cottoncandy on this machine will show after the listing TTL: "
                        "cannot open the change channel (%s)", exc.strerror or exc)
            return False
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="ccfs-changes", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        """Accept messages one at a time; keys that arrive within ``BATCH_SECONDS`` of each other are
        applied together (a dask upload names each part in a message of its own: together, a folder
        named by many keys is LISTed once instead of HEADed key by key)."""
        assert self._sock is not None
        pending: list[str] = []
        while not self._stopping.is_set():
            self._sock.settimeout(BATCH_SECONDS if pending else 0.5)  # 0.5 s: how soon ``stop`` is noticed
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                if pending:
                    self._apply(pending)
                    pending = []
                continue
            except OSError:
                return
            with conn:
                try:
                    pending += self._one(conn)
                except Exception as exc:  # noqa: BLE001 - the daemon never dies of a message
                    log.error("change message not read: %s", exc)
            if len(pending) >= MAX_KEYS:
                self._apply(pending)
                pending = []

    def _apply(self, keys: list[str]) -> None:
        try:
            self.apply(tuple(dict.fromkeys(keys)))
            self.applied += 1
        except Exception as exc:  # noqa: BLE001 - the daemon never dies of a change
            log.error("change of %d key(s) not applied: %s", len(keys), exc)

    def _one(self, conn: socket.socket) -> tuple[str, ...]:
        """The keys of the message on ``conn``, if it is one to act on (else none, and one log line)."""
        pid, uid = peer(conn)
        if uid not in (0, self.uid):
            self.refused += 1
            log.warning("change message from uid %d (pid %d) refused: only uid %d and root may send them",
                        uid, pid, self.uid)
            return ()
        conn.settimeout(SEND_TIMEOUT)
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
