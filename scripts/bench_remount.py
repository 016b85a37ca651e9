"""A row of a compressed array after a remount with the same ``--cache-dir`` (issue 27 item 3).

For each case (raw; gzip with our block index; gzip as 0.4.0 wrote it, whose seek points a first
mount recorded; Zstd and LZ4, decoded whole and kept as blocks by the first mount), rounds of: a fresh
``--cache-dir``; [0.4.0 only: a mount that decodes it whole and keeps its seek points]; a mount that reads
one row ("cold": blocks fetched and inflated, or the body fetched and decoded whole, then kept in the
folder); a remount that reads the same row ("kept": its decoded blocks from the folder). Printed: GETs of
the array's object, MB the server sent, ms for ``np.load(mmap_mode='r')[row]``, medians of the rounds; on
loopback and remote-like (``--latency-ms`` to first byte, ``--mbps`` per connection).

    python scripts/bench_remount.py [--mib 64] [--rounds 3] [--networks loopback,remote]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench_compressed as bc
import bench_mount as bm
import numpy as np

CASES = ("raw", "gzip ours", "gzip 0.4.0", "Zstd", "LZ4")
KEYS = {"raw": bc.KEYS["raw"], "gzip ours": bc.KEYS["gzip ours"], "gzip 0.4.0": bc.KEYS["gzip 0.4.0 first"],
        "Zstd": bc.KEYS["Zstd"], "LZ4": bc.KEYS["LZ4"]}
#: cases decoded whole: the mount writes their blocks to the folder in the background after the decode
WHOLE = ("Zstd", "LZ4")


def kept_logged(mountpoint: str, timeout: float = 120.0) -> None:
    """Wait until the mount logged that it kept (or did not keep) a decoded array: an unmount stops that writer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(mountpoint + ".log") as log:
            text = log.read()
        if "kept the decoded" in text or "not kept across mounts" in text:
            return
        time.sleep(0.2)


def one_row(endpoint: str, cache_dir: str, key: str, row: int, whole: bool = False) -> tuple[float, float, float]:
    """(GETs, MB, ms) of one row read on a fresh mount of ``cache_dir``."""
    with bm.mount("ccfs", endpoint, ("--cache-dir", cache_dir)) as (mountpoint, path_of, _pid):
        bm.server_log(endpoint, clear=True)
        start = time.perf_counter()
        float(np.load(path_of(key), mmap_mode="r")[row].sum())
        ms = (time.perf_counter() - start) * 1000
        time.sleep(0.3)  # read-ahead lands in the log
        hits = [e for e in bm.server_log(endpoint) if e["method"] == "GET" and e["path"].endswith("/" + key)]
        if whole:
            kept_logged(mountpoint)
    return float(len(hits)), sum(e["bytes_sent"] for e in hits) / 1e6, ms


def measure(shaping: list[str], mib: float, rounds: int) -> dict[str, dict[str, tuple[float, float, float]]]:
    from cottoncandy.testing.s3server import free_port

    rows = int(mib * 2**20 // (bm.COLS * 4))
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(free_port()),
                               *shaping], stdout=subprocess.PIPE, text=True)
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    runs: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    try:
        bc.populate(endpoint, rows)
        for _ in range(rounds):
            for case in CASES:
                key, cache_dir = KEYS[case], tempfile.mkdtemp(prefix="bench-remount-")
                try:
                    if case == "gzip 0.4.0":  # the first open decodes whole and keeps the seek points
                        one_row(endpoint, cache_dir, key, 0)
                    cold = one_row(endpoint, cache_dir, key, rows // 2, case in WHOLE)
                    kept = one_row(endpoint, cache_dir, key, rows // 2)
                finally:
                    shutil.rmtree(cache_dir, ignore_errors=True)
                runs.setdefault(case, {}).setdefault("cold", []).append(cold)
                runs[case].setdefault("kept", []).append(kept)
                print(f"  {case}: cold {cold}, kept {kept}", flush=True)
    finally:
        server.terminate()
        server.wait()
    return {case: {when: tuple(statistics.median(r[i] for r in rs) for i in range(3))  # type: ignore[misc]
                   for when, rs in by.items()} for case, by in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=64.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--networks", default="loopback,remote")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--mbps", type=float, default=100.0)
    args = parser.parse_args()
    os.environ.update(bm.env())
    for network in args.networks.split(","):
        shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
        results = measure(shaping, args.mib, args.rounds)
        print(f"\n{args.mib:g} MiB float32, {network}, medians of {args.rounds}: one row after a remount "
              "(GETs / MB / ms)")
        for case, by in results.items():
            cells = "   ".join(f"{when} {g:.0f} / {mb:.2f} / {ms:.0f}" for when, (g, mb, ms) in by.items())
            print(f"  {case:12} {cells}")


if __name__ == "__main__":
    main()
