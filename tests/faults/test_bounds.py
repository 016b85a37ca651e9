"""Bounds: the daemon's memory stays within --cache-size + 150 MB, files it makes are private or
follow the umask, nothing is left behind; slow or stalled answers are abandoned and retried, and a
reader blocked in a read can be killed."""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import cottoncandy as cc
from cottoncandy.cache.blocks import BlockCache
from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.buffers import BufferPool
from cottoncandy.cache.prefetch import ObjectReader
from cottoncandy.storage import LocalStore
from cottoncandy.storage.s3 import latency
from cottoncandy.storage.s3.latency import LatencyTracker
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse

#: they time how fast a stalled or signalled reader is let go, and a daemon's peak memory: CPU starvation
#: by other tests is not what they measure, so scripts/test.sh runs them after the rest, alone
pytestmark = pytest.mark.alone

MiB = 2**20
#: what --cache-size may be exceeded by: the interpreter, boto3, numpy, threads, replies
OVERHEAD = 150 * 10**6


def endpoint(cci) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url]


def daemon_of(mountpoint: Path) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "mount" in cmdline and str(mountpoint) in cmdline and proc.pid != os.getpid():
            return proc
    raise AssertionError(f"no daemon found for {mountpoint}")


READER = """
import random, sys, time
import numpy as np
paths, until, seed = sys.argv[1].split(","), float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
while time.time() < until:
    path = rng.choice(paths)
    kind = rng.random()
    if kind < 0.25:
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    elif kind < 0.5:
        np.load(path)
    else:
        a = np.load(path, mmap_mode="r")
        np.array(a[rng.randrange(a.shape[0])])
"""


# --- memory --------------------------------------------------------------------------------------
def test_prefetch_reservations_are_bounded_and_given_back() -> None:
    """Read-ahead is reserved in the budget before it is fetched: all readers together never hold
    more than ``ahead_limit``, and closing a file gives its reservation back."""
    data = np.random.default_rng(0).integers(0, 255, 8 * MiB, dtype=np.uint8).tobytes()
    budget = MemoryBudget(4 * MiB)  # ahead_limit: 2 MiB
    cache = BlockCache(4 * MiB, budget)
    pool = BufferPool(256 * 1024, keep=2, budget=budget)
    from concurrent.futures import ThreadPoolExecutor

    def fetch(start: int, end: int) -> memoryview:
        buffer = pool.take(end - start)
        buffer[:] = data[start:end]
        return buffer

    with ThreadPoolExecutor(4) as threads:
        readers = [ObjectReader(cache, threads, fetch, (f"k{i}", "e"), len(data), block_size=64 * 1024,
                                max_window=4 * MiB, run_size=256 * 1024, budget=budget) for i in range(3)]
        for offset in range(0, 2 * MiB, 128 * 1024):
            for reader in readers:
                assert reader.read(offset, 128 * 1024) == data[offset : offset + 128 * 1024]
                assert budget.ahead <= budget.ahead_limit
        assert budget.refused_ahead > 0  # three streams wanted more than the budget holds ahead
        for reader in readers:
            reader.close()
    assert budget.ahead == 0
    assert budget.used <= budget.limit + 256 * 1024  # the cache evicted to fit what is really held


def test_cache_evicts_to_the_memory_really_held() -> None:
    """A block is a view of its run: the run's whole buffer counts until its last block goes."""
    budget = MemoryBudget(2 * MiB)
    cache = BlockCache(2 * MiB, budget)
    pool = BufferPool(MiB, keep=0, budget=budget)
    for run in range(4):  # four 1 MiB runs; keep one 64 KiB block of each
        buffer = pool.take(MiB)
        ids = [("k", "e", run * 16 + i) for i in range(16)]
        _, futures = cache.claim(ids)
        cache.fulfil(ids, [buffer[i * 65536 : (i + 1) * 65536] for i in range(16)], futures)
        del buffer, futures
        cache.discard(ids[1:])
    assert cache.size <= 4 * 65536
    assert budget.used <= budget.limit  # views counted 256 KiB; the runs they pin were 4 MiB


@needs_fuse
@pytest.mark.fuse
def test_daemon_rss_stays_within_cache_size_plus_overhead(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """8 reader processes, whole files (``np.load`` and 1 MiB reads) and random rows, raw and gzip
    arrays larger than the cache: the daemon's peak RSS stays under --cache-size + 150 MB (freed
    runs leave the process: ``cottoncandy.cache.allocator``)."""
    rows = 96 * MiB // (4096 * 4)
    base = np.broadcast_to(np.arange(rows, dtype=np.float32)[:, None], (rows, 4096))
    names = []
    for i, compression in enumerate(["gzip", "gzip", False, False]):
        cci.upload_raw_array(f"big/a{i}", base + i, compression=compression)
        names.append(f"big/a{i}.npy")
    cache = 64 * MiB
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-size", "64M") as m:
        daemon = daemon_of(m)
        until = time.time() + 20
        paths = ",".join(str(m / name) for name in names)
        readers = [subprocess.Popen([sys.executable, "-c", READER, paths, str(until), str(i)]) for i in range(8)]
        peak = 0
        try:
            while any(r.poll() is None for r in readers):
                peak = max(peak, daemon.memory_info().rss)
                time.sleep(0.1)
        finally:
            for r in readers:
                r.kill() if r.poll() is None else None
                r.wait()
        assert all(r.returncode == 0 for r in readers)
        loaded = np.load(m / names[0], mmap_mode="r")
        assert np.array_equal(loaded[[0, rows - 1]], base[[0, rows - 1]])
    assert peak < cache + OVERHEAD, f"daemon peak RSS {peak / 1e6:.0f} MB, bound {(cache + OVERHEAD) / 1e6:.0f} MB"


# --- files ---------------------------------------------------------------------------------------
@needs_fuse
@pytest.mark.fuse
def test_mount_leaves_no_cache_folder_and_its_log_is_private(cci, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    array = np.random.default_rng(4).random(300_000)  # random bytes: cheap for gzip level 9 (tests/datautil.py)
    cci.upload_raw_array("z/a", array, compression="gzip")  # spills: > cache/8
    old = os.umask(0o022)
    try:
        with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-size", "1M") as m:
            assert np.array_equal(np.load(m / "z/a.npy"), array)
            assert [p.name for p in scratch.iterdir() if p.name.startswith("ccfs-cache-")]  # made, and used
            log = next(tmp_path.glob("mnt*.log"))
            assert stat.S_IMODE(log.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in scratch.iterdir() if p.name.startswith("ccfs-cache-")] == []


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_downloaded_files_follow_the_umask(cci, tmp_path: Path, mask: int) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("u/a", np.arange(10), compression=False)
    cci.upload_json("u/j", {"a": 1})
    local = LocalStore(tmp_path / "local")
    old = os.umask(mask)
    try:
        cci.download_to_file("u/j", str(tmp_path / "j.json"))
        local.put("x/y", b"bytes")
        modes = {"download_to_file": tmp_path / "j.json", "local store object": tmp_path / "local" / "x" / "y"}
        for what, path in modes.items():
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, what
    finally:
        os.umask(old)


# --- slow answers --------------------------------------------------------------------------------
#: the bound on one read while answers are slow (issue 11: "no read over 15 s"); generous on
#: purpose: it tells a bounded read from one that waits out 60 s timeouts, not a fast from a slow one
READ_BOUND = 15.0


def via_proxy(proxy: FaultProxy):  # type: ignore[no-untyped-def]
    return cc.get_interface(BUCKET, endpoint_url=proxy.endpoint_url, verbose=False)


def timed_reads(path: Path, chunk: int = MiB) -> tuple[bytes, float]:
    """The file's bytes, read ``chunk`` at a time, and the longest single ``read``."""
    parts, longest = [], 0.0
    with open(path, "rb") as fh:
        while True:
            began = time.monotonic()
            part = fh.read(chunk)
            longest = max(longest, time.monotonic() - began)
            if not part:
                return b"".join(parts), longest
            parts.append(part)


def test_late_means_a_multiple_of_recent_latencies_within_limits() -> None:
    tracker = LatencyTracker()
    assert tracker.hedge_after() == latency.DEFAULT  # nothing seen yet
    for _ in range(64):
        tracker.record(0.001)  # loopback: hedging after 4 ms would hedge every hiccup
    assert tracker.hedge_after() == latency.FLOOR
    for _ in range(256):
        tracker.record(0.3)
    assert tracker.hedge_after() == pytest.approx(min(latency.CAP, latency.FACTOR * 0.3))
    for _ in range(256):
        tracker.record(30.0)  # a slow network does not hedge everything
    assert tracker.hedge_after() == latency.CAP


def test_a_late_get_is_hedged_and_the_first_answer_taken(fault_proxy: FaultProxy) -> None:
    body = np.random.default_rng(1).integers(0, 255, 3 * MiB, dtype=np.uint8)
    cci = via_proxy(fault_proxy)
    cci.upload_raw_array("h/a", body, compression=False)
    store = cci.store
    fast = store._signed_requests()
    assert fast is not None
    fault_proxy.set_rules([FaultRule("delay", methods=("GET",), seconds=8.0, limit=1)])
    out = memoryview(np.empty(MiB, dtype=np.uint8))
    began = time.monotonic()
    assert fast.get_into("h/a", MiB, out)
    assert bytes(out) == body[MiB : 2 * MiB].tobytes()
    assert fast.hedged == 1 and fault_proxy.count("delay") == 1
    assert time.monotonic() - began < 8.0  # the delayed answer was not waited for


def test_a_stalled_body_is_abandoned_and_retried(fault_proxy: FaultProxy) -> None:
    """A body that stops midway: abandoned after GET_BETWEEN_CHUNKS and asked again (library)."""
    data = np.random.default_rng(2).standard_normal((512, 1024))
    cci = via_proxy(fault_proxy)
    cci.upload_raw_array("st/a", data, compression=False)
    fault_proxy.set_rules([FaultRule("stall", methods=("GET",), seconds=120.0, limit=1)])
    began = time.monotonic()
    got = cci.download_raw_array("st/a")
    assert time.monotonic() - began < READ_BOUND
    assert np.array_equal(got, data) and fault_proxy.count("stall") == 1
    assert cci.store._signed_requests().abandoned >= 1


def test_every_get_stalling_is_a_clean_error_within_the_bound(fault_proxy: FaultProxy) -> None:
    cci = via_proxy(fault_proxy)
    cci.upload_raw_array("st/b", np.arange(300_000.0), compression=False)
    fault_proxy.set_rules([FaultRule("stall", methods=("GET",), seconds=60.0, after=1024)])
    began = time.monotonic()
    with pytest.raises(OSError) as caught:
        cci.download_raw_array("st/b")
    assert time.monotonic() - began < 4 * READ_BOUND  # 60 s x 6 attempts before
    assert "st/b" in str(caught.value)
    fault_proxy.clear()


@needs_fuse
@pytest.mark.fuse
def test_a_body_stalled_midway_fails_a_mount_read_within_the_bound(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """Every GET's body stops after 64 KiB: a read through the mount fails with EIO once the
    store's attempts are spent (3 x 4 s), not twice that: the kernel asks again for a READ that
    failed, and the daemon answers that second READ with the failure it has just seen (24 s before)."""
    cci = via_proxy(fault_proxy)
    cci.upload_raw_array("stall/a", np.arange(2_000_000.0), compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, expect_errors=True) as m:
        path = m / "stall/a.npy"
        assert path.stat().st_size > 0
        fault_proxy.set_rules([FaultRule("stall", methods=("GET",), seconds=60.0, after=64 * 1024)])
        began = time.monotonic()
        with pytest.raises(OSError) as caught, open(path, "rb") as fh:
            fh.read(4 * MiB)
        took = time.monotonic() - began
        fault_proxy.clear()
    assert caught.value.errno == errno.EIO
    assert fault_proxy.count("stall") > 0
    assert took < READ_BOUND, f"the read failed after {took:.1f} s"


@needs_fuse
@pytest.mark.fuse
def test_delayed_answers_keep_every_read_bounded(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """30% of GETs answer 3 s late: a whole-file read through the mount (64M cache) and a library
    download each finish, with no single read over the bound and the right bytes."""
    rows = 24 * MiB // (1024 * 8)
    data = np.random.default_rng(3).standard_normal((rows, 1024))
    cci = via_proxy(fault_proxy)
    cci.upload_raw_array("slow/a", data, compression=False)
    fault_proxy.set_rules([FaultRule("delay", methods=("GET",), fraction=0.3, seconds=3.0)])
    began = time.monotonic()
    assert np.array_equal(cci.download_raw_array("slow/a"), data)
    assert time.monotonic() - began < READ_BOUND
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, "--cache-size", "64M") as m:
        began = time.monotonic()
        raw, longest = timed_reads(m / "slow/a.npy")
        whole = time.monotonic() - began
        assert np.array_equal(np.load(io.BytesIO(raw)), data)
    assert fault_proxy.count("delay") > 0
    assert longest < READ_BOUND, f"one read took {longest:.1f} s"
    assert whole < 4 * READ_BOUND, f"the whole file took {whole:.1f} s"


#: a reader that waits in a READ: buffered (the kernel's read-ahead requests: a fatal signal ends
#: the wait) or O_DIRECT (a synchronous request: any signal makes the kernel send INTERRUPT, which
#: the daemon must answer, or the reader waits for the fetch whatever the signal)
#: a reader as a user runs it from a terminal: Ctrl-C raises KeyboardInterrupt. A process started in the
#: background by a shell without job control (``cmd &``, nohup, some CI runners) inherits SIGINT *ignored*,
#: and Python then leaves it ignored, so the reader would never see the signal: set the handler explicitly.
BLOCKED_READER = """
import mmap, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
fd = os.open(sys.argv[1], os.O_RDONLY | (os.O_DIRECT if sys.argv[2] == "direct" else 0))
buffer = mmap.mmap(-1, 1 << 20)
try:
    os.preadv(fd, [buffer], 0)
except KeyboardInterrupt:
    sys.exit(3)
except OSError as exc:
    sys.exit(4 if exc.errno == 4 else 5)
"""


@needs_fuse
@pytest.mark.fuse
@pytest.mark.parametrize("signum,mode,flags", [
    (signal.SIGTERM, "buffered", ()),  # default mount: a fatal signal ends the kernel's wait
    (signal.SIGKILL, "buffered", ()),
    (signal.SIGINT, "direct", ()),  # O_DIRECT READs are always synchronous: INTERRUPT, answered
    (signal.SIGINT, "buffered", ("--interruptible-reads",)),  # a handled signal: INTERRUPT, answered
    (signal.SIGINT, "direct", ("--interruptible-reads",)),
    (signal.SIGTERM, "direct", ("--interruptible-reads",)),
])
def test_a_reader_blocked_on_a_stalled_read_is_killed_at_once(fault_proxy: FaultProxy, tmp_path: Path, signum: int,
                                                               mode: str, flags: tuple[str, ...]) -> None:
    cci = via_proxy(fault_proxy)
    cci.upload_raw_array("k/a", np.arange(2_000_000.0), compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, *flags, expect_errors=True) as m:
        path = m / "k/a.npy"
        assert path.stat().st_size > 0
        fault_proxy.set_rules([FaultRule("stall", methods=("GET",), seconds=30.0, after=0)])
        reader = subprocess.Popen([sys.executable, "-c", BLOCKED_READER, str(path), mode])
        deadline = time.monotonic() + 10
        while fault_proxy.count("stall") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fault_proxy.count("stall") > 0  # the reader is now waiting on a stalled GET
        time.sleep(0.5)
        assert reader.poll() is None
        reader.send_signal(signum)
        began = time.monotonic()
        try:
            reader.wait(timeout=10)
        finally:
            reader.kill()
            reader.wait()
        assert time.monotonic() - began < 3.0, "the reader was not released by the signal"
        assert reader.returncode != 0
        fault_proxy.clear()
