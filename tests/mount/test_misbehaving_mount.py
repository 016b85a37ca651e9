"""Real mounts of an endpoint whose answers are wrong (issue 24, items 1, 3 and 9; the modes of
``cottoncandy.testing.misbehave``): a folder whose LIST loops, overflows, or is an HTML page fails
alone and at once (EIO, or EFBIG past the listing limit); a reader waiting on a listing is let go
by a signal, SIGKILL included; SIGTERM and ``ccfs umount`` end the daemon within seconds whatever
its requests wait on; a file replaced while open gives ESTALE, never the new version's bytes.

Before the fixes, ``ls`` and ``stat`` sat in D state that SIGKILL did not clear, the daemon ignored
SIGTERM and ``ccfs umount`` hung. So no step here waits without a bound, and every mount is torn
down with ``hostile_mount``: ``ccfs umount`` with a timeout, then the daemon killed (which ends any
request still in the kernel) and the mountpoint detached; a process left in D state fails the test.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from ccfs import mounts
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET
from tests.mountutil import force_unmount, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]

#: seconds a reader or a command may take against a misbehaving endpoint before the test calls it a hang
BOUND = 20.0
#: a LIST that does not answer for this long is, for a test, one that never answers
FOREVER = 600.0


def state(pid: int) -> str:
    """A process's state letter (``D``: uninterruptible, waiting in the kernel); ``-`` once reaped."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "-"


def ccfs_bounded(*args: str, seconds: float = BOUND) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, "-m", "ccfs", *args], capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ccfs {' '.join(args)} still running after {seconds:.0f} s")


Readers = list[subprocess.Popen[bytes]]


@contextmanager
def hostile_mount(endpoint: str, tmp_path: Path, *extra: str) -> Iterator[tuple[Path, Path, Readers]]:
    """(mountpoint, daemon log, readers to reap); torn down whatever state the daemon is in."""
    mountpoint = tmp_path / f"mnt{len(list(tmp_path.glob('mnt*')))}"
    mountpoint.mkdir()
    log = tmp_path / f"{mountpoint.name}.log"
    result = ccfs_bounded("mount", BUCKET, str(mountpoint), "--endpoint-url", endpoint, "--log-file", str(log),
                          *extra, seconds=60)
    assert result.returncode == 0, result.stderr
    daemons = mounts.daemons_serving(str(mountpoint))
    readers: Readers = []
    try:
        yield mountpoint, log, readers
    finally:
        with suppress(subprocess.TimeoutExpired):
            subprocess.run([sys.executable, "-m", "ccfs", "umount", str(mountpoint)], capture_output=True, timeout=30)
        for pid in daemons:  # the last resort: a daemon gone ends every request it left in the kernel
            if mounts.process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if mounts.mount_at(str(mountpoint)) is not None:  # ismount() says no for a dead daemon's mount
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, timeout=10)
        force_unmount(mountpoint)
        stuck = []
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
            try:
                reader.wait(10)
            except subprocess.TimeoutExpired:
                stuck.append((reader.args, state(reader.pid)))
        assert not stuck, f"processes left waiting in the kernel: {stuck}"


def start(readers: Readers, *command: str) -> subprocess.Popen[bytes]:
    reader = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    readers.append(reader)
    return reader


def finished(reader: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        reader.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def errors(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if " ERROR " in line]


@pytest.fixture
def folders(cci) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """``loop/`` (the folder that misbehaves: rules match ``prefix=loop``) and ``ok/``."""
    arrays = {f"loop/a{i}": np.arange(10 * i + 10, dtype=np.int32) for i in range(3)}
    arrays["ok/b"] = np.ones((4, 4))
    for key, array in arrays.items():
        cci.upload_raw_array(key, array, compression=False)
    return arrays


# --- listings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["loop_token", "new_token", "overflow", "html", "cut_xml"])
def test_a_misbehaving_folder_fails_alone_and_at_once(folders, fault_proxy: FaultProxy, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      mode: str) -> None:
    fault_proxy.set_rules([FaultRule(mode, query="prefix=loop")])
    # --cache-size 64M: a folder's listing may take 16 MiB (a quarter, at least 16 MiB)
    with hostile_mount(fault_proxy.endpoint_url, tmp_path, "--cache-size", "64M") as (m, log, readers):
        began = time.monotonic()
        ls = start(readers, "ls", str(m / "loop"))
        assert finished(ls, BOUND), f"ls of a {mode} folder still running after {BOUND:.0f} s: {state(ls.pid)}"
        said = ls.stderr.read().decode() if ls.stderr else ""
        assert ls.returncode != 0, said
        expected = "File too large" if mode == "new_token" else "Input/output error"
        assert expected in said, said
        assert time.monotonic() - began < BOUND
        assert sorted(os.listdir(m / "ok")) == ["b.npy"]  # the other folders are served as before
        assert np.array_equal(np.load(m / "ok" / "b.npy"), folders["ok/b"])
        logged = " ".join(errors(log))
        assert fault_proxy.endpoint_url in logged and "s3://test-bucket/loop/" in logged, logged
        fault_proxy.clear()  # a failed listing is not kept: the folder is listed again, and shows
        assert sorted(os.listdir(m / "loop")) == ["a0.npy", "a1.npy", "a2.npy"]


# --- waits that end -----------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_signal_lets_go_of_a_reader_waiting_on_a_listing(folders, fault_proxy: FaultProxy, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          sig: int) -> None:
    fault_proxy.set_rules([FaultRule("delay", methods=("GET",), query="prefix=loop", seconds=FOREVER)])
    with hostile_mount(fault_proxy.endpoint_url, tmp_path) as (m, log, readers):
        waiting = [start(readers, "ls", str(m / "loop")), start(readers, "stat", str(m / "loop" / "a0.npy")),
                   start(readers, sys.executable, "-c", f"import os; os.listdir({str(m / 'loop')!r})")]
        time.sleep(1.5)
        assert all(reader.poll() is None for reader in waiting)  # they wait on the LIST
        for reader in waiting:
            reader.send_signal(sig)
        began = time.monotonic()
        for reader in waiting:
            assert finished(reader, 5), f"{reader.args} still waiting {time.monotonic() - began:.1f} s after " \
                                        f"{signal.Signals(sig).name}: state {state(reader.pid)}"
        assert sorted(os.listdir(m / "ok")) == ["b.npy"]  # the daemon serves on
        assert errors(log) == []  # an interrupted request is no failure of the mount


def test_sigterm_ends_the_daemon_whatever_its_requests_wait_on(folders, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    fault_proxy.set_rules([FaultRule("delay", methods=("GET",), query="prefix=loop", seconds=FOREVER)])
    with hostile_mount(fault_proxy.endpoint_url, tmp_path) as (m, log, readers):
        daemons = mounts.daemons_serving(str(m))
        assert len(daemons) == 1
        waiting = [start(readers, "ls", str(m / "loop")), start(readers, "ls", "-l", str(m / "loop"))]
        time.sleep(1.5)
        assert all(reader.poll() is None for reader in waiting)
        began = time.monotonic()
        os.kill(daemons[0], signal.SIGTERM)
        while mounts.process_alive(daemons[0]) and time.monotonic() - began < BOUND:
            time.sleep(0.05)
        took = time.monotonic() - began
        assert not mounts.process_alive(daemons[0]), f"the daemon ignored SIGTERM for {took:.0f} s"
        assert took < 12  # well within the stop's grace (5 s) on a quiet machine: 0.15 s measured
        for reader in waiting:
            assert finished(reader, 5) and reader.returncode != 0, state(reader.pid)
        assert mounts.mount_at(str(m)) is None  # unmounted, not left "not connected"
        text = log.read_text()
        assert "stopping: requests still waiting on the store give up" in text and "unmounted" in text
        assert errors(log) == []


def test_ccfs_umount_ends_a_mount_whose_requests_wait(folders, fault_proxy: FaultProxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("delay", methods=("GET",), query="prefix=loop", seconds=FOREVER)])
    with hostile_mount(fault_proxy.endpoint_url, tmp_path) as (m, log, readers):
        daemons = mounts.daemons_serving(str(m))
        waiting = [start(readers, "ls", str(m / "loop")), start(readers, "stat", str(m / "loop" / "a1.npy"))]
        time.sleep(1.5)
        began = time.monotonic()
        result = ccfs_bounded("umount", str(m))
        assert result.returncode == 0, result.stderr
        assert "was busy" in result.stderr and "stopped its daemon" in result.stderr
        assert time.monotonic() - began < 10
        assert mounts.mount_at(str(m)) is None
        assert not any(mounts.process_alive(pid) for pid in daemons)
        for reader in waiting:
            assert finished(reader, 5), state(reader.pid)


# --- bytes of one version -----------------------------------------------------------------------

def test_a_file_replaced_while_open_is_estale_even_if_the_endpoint_ignores_if_match(  # type: ignore[no-untyped-def]
        cci, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    old = np.arange(2_000_000, dtype=np.float64)  # 16 MB: rows read far apart are fetched one by one
    cci.upload_raw_array("v/arr", old, compression=False)
    fault_proxy.set_rules([FaultRule("ignore_if_match")])
    with hostile_mount(fault_proxy.endpoint_url, tmp_path, "--block-size", "64K") as (m, log, readers):
        with open(m / "v" / "arr.npy", "rb") as fh:
            header = fh.read(128)
            fh.seek(128 + 8 * 1_000_000)
            assert np.frombuffer(fh.read(8 * 16), dtype=np.float64).tolist() == old[1_000_000:1_000_016].tolist()
            cci.upload_raw_array("v/arr", -old, compression=False)  # replaced: same size, other bytes
            fh.seek(128 + 8 * 1_900_000)
            with pytest.raises(OSError) as caught:
                got = np.frombuffer(fh.read(8 * 16), dtype=np.float64)
                pytest.fail(f"read {got.tolist()} of another version" if got[0] < 0 else "read the old bytes")
            assert caught.value.errno == errno.ESTALE
        assert header[:6] == b"\x93NUMPY"
        assert fault_proxy.count("ignore_if_match") >= 1
        assert any("changed since it was opened" in line and "If-Match" in line for line in errors(log))


@pytest.mark.parametrize("mode", ["head_etag", "head_size"])
def test_a_head_that_disagrees_with_the_get_never_serves_wrong_bytes(cci, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path, mode: str) -> None:
    """With --cache-dir a lookup is a HEAD (without, one GET gives metadata and bytes together)."""
    array = np.arange(100_000, dtype=np.int64)
    cci.upload_raw_array("v/arr", array, compression=False)
    fault_proxy.set_rules([FaultRule(mode)])
    with hostile_mount(fault_proxy.endpoint_url, tmp_path, "--cache-dir", str(tmp_path / "cache")) as (m, log, _):
        with pytest.raises(OSError) as caught:
            np.load(m / "v" / "arr.npy")
        assert caught.value.errno in (errno.ESTALE, errno.EIO), caught.value
    assert fault_proxy.count(mode) >= 1
    plain = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    assert np.array_equal(plain.download_raw_array("v/arr"), array)  # one GET: metadata and bytes agree
