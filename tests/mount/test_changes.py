"""Writes made by cottoncandy on this machine show in a running mount at once (``cottoncandy.changes``).

Real mounts, the local S3 server, the real library: the folder is listed first (so its listing is
held for ``--metadata-ttl`` 600 s), then the library writes, and the mount shows the change in well
under a second without ``ccfs refresh``. The channel answers only the mount's owner and root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cottoncandy import changes, mounttable
from cottoncandy.namespace.facade import MANY_CHANGES
from tests.conftest import BUCKET
from tests.mountutil import ccfs, mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]
NOBODY = 65534
ATTR_TTL = 1.0  # ccfs mount's --attr-ttl default: how long the kernel keeps a file's size


def entry_of(mountpoint: Path) -> mounttable.MountEntry:
    """The mount table's entry of ``mountpoint``."""
    found = [e for e in mounttable.ccfs_mounts() if e.mountpoint == str(mountpoint)]
    assert found, mountpoint
    return found[-1]


def shows(check: Callable[[], bool], within: float = 1.0) -> float:
    """Seconds until ``check()`` holds; fails after ``within``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not shown within {within} s")
        time.sleep(0.01)
    return time.monotonic() - started


def loads_as(path: Path, expected: np.ndarray) -> bool:
    """Whether ``path`` loads as ``expected`` (a replaced file is read at the size the kernel holds
    until its attributes expire: numpy then says the file is short)."""
    try:
        return np.array_equal(np.load(path), expected)
    except ValueError:
        return False


def test_library_writes_show_in_an_already_listed_folder(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("d/a", np.arange(3.0))
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--metadata-ttl", "600") as m:
        assert os.listdir(m / "d") == ["a.npy"]
        assert not (m / "d" / "sub").exists()  # the kernel would remember this miss for a while

        cci.upload_raw_array("d/b", np.arange(4.0))
        shows(lambda: sorted(os.listdir(m / "d")) == ["a.npy", "b.npy"])
        assert np.array_equal(np.load(m / "d" / "b.npy"), np.arange(4.0))

        cci.upload_raw_array("d/sub/c", np.arange(5.0))  # a new folder: shown by its parent, and opens
        shows(lambda: "sub" in os.listdir(m / "d"))
        assert os.listdir(m / "d" / "sub") == ["c.npy"]
        assert np.array_equal(np.load(m / "d" / "sub" / "c.npy"), np.arange(5.0))

        cci.upload_raw_array("d/b", np.arange(6.0))  # replaced: the new version, once the kernel asks
        shows(lambda: loads_as(m / "d" / "b.npy", np.arange(6.0)), within=1.0 + ATTR_TTL)  # for the size again

        cci.mv("d/b", "d/moved")
        shows(lambda: sorted(os.listdir(m / "d")) == ["a.npy", "moved.npy", "sub"])
        cci.cp("d/a", "e/copy")
        shows(lambda: "e" in os.listdir(m) and os.listdir(m / "e") == ["copy.npy"])

        cci.rm("d/sub/c", recursive=False)  # the folder left empty leaves its parent
        shows(lambda: sorted(os.listdir(m / "d")) == ["a.npy", "moved.npy"])
        shows(lambda: not (m / "d" / "sub").exists(), within=1.0 + ATTR_TTL)  # the kernel's entry, then asks
    log = (tmp_path / "mnt0.log").read_text()
    assert "told of 1 changed key(s)" in log


def test_a_refreshed_folder_opens_at_once(cci, s3, tmp_path: Path,  # type: ignore[no-untyped-def]
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A change made elsewhere (no message): after ``ccfs refresh`` of the parent, the new folder is
    there the moment its parent shows it, although it was looked up (and missed) just before."""
    monkeypatch.setenv(changes.ENV_SWITCH, "0")
    cci.upload_raw_array("d/a", np.arange(3.0))
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--metadata-ttl", "600") as m:
        assert os.listdir(m / "d") == ["a.npy"]
        assert not (m / "d" / "new").exists()
        cci.upload_raw_array("d/new/x", np.arange(2.0))
        assert os.listdir(m / "d") == ["a.npy"] and not (m / "d" / "new").exists()  # nobody told it
        ccfs("refresh", str(m), "d")
        assert sorted(os.listdir(m / "d")) == ["a.npy", "new"]
        assert os.listdir(m / "d" / "new") == ["x.npy"]  # no kernel entry remembers the miss


def _as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python whose user is ``nobody`` (modules imported first, as root: the
    standard library may sit where nobody cannot read it)."""
    setuid = f"import os, socket; os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    return subprocess.run([sys.executable, "-c", setuid + code], capture_output=True, text=True, timeout=60,
                          cwd="/")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_only_the_owner_and_root_may_refresh_or_tell(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With ``allow_other`` every local user can read the mount; refreshing it and telling it of
    changes are for its owner and root: another user gets EACCES, and its messages are dropped."""
    cci.upload_raw_array("d/a", np.arange(3.0))
    tmp_path = Path(tempfile.mkdtemp(prefix="ccfs-other-", dir="/tmp"))  # pytest's own is 0700: nobody
    os.chmod(tmp_path, 0o755)                                            # could not reach the mount
    try:
        owner_and_root_only(cci, s3, tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def owner_and_root_only(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "-o", "allow_other",
                 "--metadata-ttl", "600") as m:
        assert os.listdir(m / "d") == ["a.npy"]
        attempt = _as_nobody(f"import os\ntry:\n    os.getxattr({str(m)!r}, 'user.cottoncandy.refresh')\n"
                             "except OSError as exc:\n    print(exc.errno)\nelse:\n    print('refreshed')")
        assert attempt.stdout.strip() == str(errno.EACCES), attempt
        device = entry_of(m).device
        message = changes.Change(f"s3 {s3.endpoint_url} {BUCKET}", ("d/a",)).encode()
        sent = _as_nobody(f"s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
                          f"s.connect({changes.address(device)!r})\ntry:\n    s.sendall({message!r})\n"
                          "except OSError:\n    pass  # the daemon may hang up first\nprint('sent')")
        assert sent.stdout.strip() == "sent", sent
        os.getxattr(m, "user.cottoncandy.refresh")  # the owner (root here) may
        deadline = time.monotonic() + 5
        log = tmp_path / "mnt0.log"
        while "refused: only uid" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert f"change message from uid {NOBODY}" in log.read_text()


def test_hostile_messages_fail_alone(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Garbage, oversized and wrong-scope messages are dropped with one line each; the mount goes on
    and the next good message works."""
    cci.upload_raw_array("d/a", np.arange(3.0))
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--metadata-ttl", "600") as m:
        assert os.listdir(m / "d") == ["a.npy"]
        entry = entry_of(m)
        scope = f"s3 {s3.endpoint_url} {BUCKET}"
        for data in (b"\xff\xfe not json", b"[]", b'{"v": 1, "scope": 5, "keys": []}',
                     changes.Change(scope, ("x" * 5000,)).encode(),
                     b'{"v": 1, "scope": "s", "keys": ["a\\u0000b"]}',
                     b"{" * (changes.MAX_MESSAGE + 10)):
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
                sock.settimeout(2)
                sock.connect(changes.address(entry.device))
                with contextlib.suppress(OSError):  # the oversized one may be refused by the kernel
                    sock.sendall(data)
        os.environ[changes.ENV_SWITCH] = "0"
        try:
            cci.upload_raw_array("d/b", np.arange(2.0))
        finally:
            del os.environ[changes.ENV_SWITCH]
        # another endpoint's bucket of the same name: not this mount's business
        assert changes.tell(entry, changes.Change("s3 http://elsewhere:1 " + BUCKET, ("d/b",)))
        time.sleep(0.3)
        assert os.listdir(m / "d") == ["a.npy"]
        assert changes.tell(entry, changes.Change(scope, ("d/b",)))
        shows(lambda: sorted(os.listdir(m / "d")) == ["a.npy", "b.npy"])
        log = (tmp_path / "mnt0.log").read_text()
        assert log.count("change message from pid") >= 4, log


def test_messages_close_together_are_applied_together(cci, s3, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A dask upload names each part in a message of its own: arriving together, they are applied as
    one change, and a folder named by many keys is LISTed once rather than HEADed key by key."""
    cci.upload_raw_array("d/a", np.arange(3.0))
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--metadata-ttl", "600") as m:
        assert os.listdir(m / "d") == ["a.npy"]
        monkeypatch.setenv(changes.ENV_SWITCH, "0")
        keys = [f"d/p{i:02d}" for i in range(40)]
        for key in keys:
            cci.upload_raw_array(key, np.arange(2.0))
        scope = f"s3 {s3.endpoint_url} {BUCKET}"
        entry = entry_of(m)
        assert all(changes.tell(entry, changes.Change(scope, (key,))) for key in keys)
        shows(lambda: len(os.listdir(m / "d")) == 41)
    told = [tuple(map(int, found)) for found in
            re.findall(r"told of (\d+) changed key\(s\), (\d+) asked about", (tmp_path / "mnt0.log").read_text())]
    assert sum(n for n, _ in told) == 40
    # messages close together went as one (how many arrive within the window depends on the machine's
    # load): a batch of more than MANY_CHANGES keys is answered by one LIST, with no HEAD
    assert len(told) < 40 and all(asked == 0 for n, asked in told if n > MANY_CHANGES), told
