"""The read path at its bounds (issue 27 item 4): ``bench_mount.py --reads``, a few minutes.

Only ccfs's whole-file reads of one raw float32 array, each beside its bound measured in the same
round (this machine is shared and noisy: the ratios are medians of side-by-side pairs):

* sequential cold read (``os.read`` of 8 MiB until EOF, fresh mount) against 8 x 8 MiB ranged
  GETs in flight, from this process's warm client and from a new process (issue 27's bound);
* whole-file ``np.load`` (no mmap; fresh mount) against ``download_raw_array`` (fresh interface);
* a re-read of a file larger than ``--cache-size`` once the page cache let it go
  (``posix_fadvise(DONTNEED)``), against that mount's own first read;
* random 16 KiB rows through ``np.load(mmap_mode='r')``: GETs and MiB sent per row;
* the daemon's peak RSS against ``--cache-size`` + 150 MB.

``CCFS_BENCH_PYSPY=/path/to/py-spy`` attaches py-spy to the daemon during the cold read and the
np.load of the first round and writes collapsed stacks (``--format raw``) to ``CCFS_BENCH_PROFILES``
(the timings of that round then carry the profiler's cost).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import bench_mount as bm
import numpy as np

#: the mount's cache in the re-read row: smaller than the array, so the re-read must fetch again
SMALL_CACHE = "64M"


@contextmanager
def profiled(pid: int | None, name: str, enabled: bool) -> Iterator[None]:
    """py-spy recording the daemon ``pid`` while the block runs (``CCFS_BENCH_PYSPY``), else nothing."""
    spy = os.environ.get("CCFS_BENCH_PYSPY")
    if not (enabled and spy and pid):
        yield
        return
    out = os.path.join(os.environ.get("CCFS_BENCH_PROFILES", "/tmp"), f"ccfs-{name}.txt")
    proc = subprocess.Popen([spy, "record", "-p", str(pid), "-o", out, "-r", "250", "--threads", "--nonblocking",
                             "--format", "raw"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the first request
    try:
        yield
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)
        print(f"  profile: {out}", flush=True)


def mount_options(read_ahead: str) -> tuple[str, ...]:
    """The ccfs options of one ``--read-aheads`` entry: ``SIZE`` (``--read-ahead SIZE``) or
    ``SIZE/READ`` (the same, with the kernel's READs capped at READ bytes by ``-o max_read``: a
    deep read-ahead made of small READs); ``""``: the mount's defaults."""
    if not read_ahead:
        return ()
    size, _, read = read_ahead.partition("/")
    options: tuple[str, ...] = ("--read-ahead", size)
    if read:
        options += ("-o", f"max_read={parse_size(read)}")
    return options


def parse_size(text: str) -> int:
    """``128K``, ``1M`` or a number of bytes."""
    units = {"K": 2**10, "M": 2**20}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1:].upper() in units else int(text)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def forget_pages(path: str) -> None:
    """Drop the page cache's copy of ``path`` (the next read asks the daemon again)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def gets_of(endpoint: str) -> list[dict[str, Any]]:
    return [e for e in bm.server_log(endpoint) if e["method"] == "GET" and e["path"].endswith(bm.KEY)]


def measure(endpoint: str, rows: int, rounds: int, sample: list[int],
            read_aheads: list[str]) -> dict[str, list[float]]:
    """Each round measures every ``--read-ahead`` in ``read_aheads`` one after another (paired: the
    same minute of this shared machine); the rows of any but the mount's default carry `` ra=SIZE``."""
    import cottoncandy as cc

    bound = bm.Bound(endpoint, rows * bm.COLS * 4)
    bound.sequential()  # warm the client and the server once
    r: dict[str, list[float]] = {}

    for round_ in range(rounds):
        first = round_ == 0
        for ra in read_aheads:
            suffix = "" if not ra else f" ra={ra}"
            options = mount_options(ra)

            def add(key: str, value: float) -> None:
                r.setdefault(key + suffix, []).append(value)  # noqa: B023 - called in this iteration

            with bm.mount("ccfs", endpoint, options) as (mnt, path_of, pid):
                paired, fresh = bound.sequential(), bound.fresh_sequential()
                with profiled(pid, "sequential" + suffix.replace(" ", "-"), first):
                    cold = bm.read_all(path_of(bm.KEY))
                add("seq_cold_s", cold)
                add("bound_s", paired)
                add("fresh_bound_s", fresh)
                add("seq_vs_bound", paired / cold)
                add("seq_vs_fresh_bound", fresh / cold)
                add("rss_mib", bm.peak_rss_mib(pid))
            cci = cc.get_interface(bm.BUCKET, endpoint_url=endpoint, verbose=False)
            lib = timed(lambda: cci.download_raw_array(bm.KEY))  # noqa: B023 - called at once
            with bm.mount("ccfs", endpoint, options) as (mnt, path_of, pid):
                with profiled(pid, "np_load" + suffix.replace(" ", "-"), first):
                    load = timed(lambda: np.load(path_of(bm.KEY)))  # noqa: B023 - called at once
                add("np_load_s", load)
                add("lib_s", lib)
                add("np_load_vs_lib", load / lib)
                add("rss_mib", bm.peak_rss_mib(pid))
            if ra == read_aheads[0]:  # the cache policy's row: once a round
                with bm.mount("ccfs", endpoint, ("--cache-size", SMALL_CACHE, *options)) as (mnt, path_of, pid):
                    path = path_of(bm.KEY)
                    with profiled(pid, "small_cache", first):
                        first_read = bm.read_all(path)
                    forget_pages(path)
                    again = bm.read_all(path)
                    add("reread_first_s", first_read)
                    add("reread_s", again)
                    add("reread_vs_first", again / first_read)
            with bm.mount("ccfs", endpoint, options) as (mnt, path_of, pid):
                bm.server_log(endpoint, clear=True)
                began = time.perf_counter()
                arr = np.load(path_of(bm.KEY), mmap_mode="r")
                float(arr[0, 0])  # open and header outside the rows
                add("open_ms", (time.perf_counter() - began) * 1000)
                time.sleep(0.3)
                add("open_mib", sum(e["bytes_sent"] for e in gets_of(endpoint)) / 2**20)
                bm.server_log(endpoint, clear=True)
                lat = []
                for row in sample:
                    began = time.perf_counter()
                    float(arr[row].sum())
                    lat.append(time.perf_counter() - began)
                time.sleep(0.5)  # read-ahead the rows started lands in the log
                sent = gets_of(endpoint)
                add("row_ms", statistics.median(lat) * 1000)
                add("row_gets", len(sent) / len(sample))
                add("row_mib", sum(e["bytes_sent"] for e in sent) / len(sample) / 2**20)
                del arr
        print(f"  round {round_ + 1} (load {os.getloadavg()[0]:.1f}): "
              + ", ".join(f"{k} {v[-1]:.3f}" for k, v in r.items()), flush=True)
    return r


LABELS = [("sequential read cold (s)", "seq_cold_s"), ("  8x8 MiB GETs, this process (s)", "bound_s"),
          ("  8x8 MiB GETs, new process (s)", "fresh_bound_s"),
          ("  throughput / in-process bound", "seq_vs_bound"),
          ("  throughput / new-process bound (issue 27)", "seq_vs_fresh_bound"),
          ("np.load whole, no mmap (s)", "np_load_s"), ("  download_raw_array (s)", "lib_s"),
          ("  np.load / download_raw_array", "np_load_vs_lib"),
          (f"first read, --cache-size {SMALL_CACHE} (s)", "reread_first_s"),
          ("  re-read, pages dropped (s)", "reread_s"), ("  re-read / first read", "reread_vs_first"),
          ("np.load(mmap_mode='r') open + first row (ms)", "open_ms"), ("  MiB fetched by that open", "open_mib"),
          ("random row, median (ms)", "row_ms"), ("  GETs per row", "row_gets"), ("  MiB per row", "row_mib"),
          ("daemon peak RSS (MiB)", "rss_mib")]


def run(args: argparse.Namespace) -> None:
    import random

    from cottoncandy.testing.s3server import free_port

    rows = int(args.gib * 2**30 // (bm.COLS * 4))
    read_aheads = ["", *(ra for ra in args.read_aheads.split(",") if ra)]
    sample = random.Random(1).sample(range(rows), min(args.rows, 30))
    for network in args.networks.split(","):
        shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
        label = ("loopback" if network == "loopback"
                 else f"remote-like ({args.latency_ms:g} ms to first byte, {args.mbps:g} MB/s per connection)")
        server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port",
                                   str(free_port()), *shaping], stdout=subprocess.PIPE, text=True)
        try:
            endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
            print(f"{label}: {rows}x{bm.COLS} float32 ({rows * bm.COLS * 4 / 2**20:.0f} MiB), "
                  f"{args.rounds} rounds", flush=True)
            bm.populate(endpoint, rows, 0, 0)
            loads = [os.getloadavg()[0]]
            r = measure(endpoint, rows, args.rounds, sample, read_aheads)
            loads.append(os.getloadavg()[0])
        finally:
            server.terminate()
            server.wait()
            bm.forget_metadata()
        print(f"\n{label}: medians of {args.rounds} rounds (ratios: medians of per-round pairs; "
              f"1-minute load average {loads[0]:.1f} before, {loads[1]:.1f} after)")
        for ra in read_aheads:
            suffix = f" ra={ra}" if ra else ""
            if suffix:
                print(f"  --read-ahead {ra}:")
            for text, key in LABELS:
                if key + suffix in r:
                    values = r[key + suffix]
                    middle = max(values) if key == "rss_mib" else statistics.median(values)
                    print(f"  {text:46} {middle:10.3f}   " + " ".join(f"{v:.3f}" for v in values))
        print(f"  (targets: sequential >= 0.9 of the new-process bound; np.load <= 1.5x; re-read <= 1.0x; "
              f"1 GET per row; RSS <= {bm.CACHE} + 150 MB)\n", flush=True)
