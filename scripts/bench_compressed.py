"""Compressed rows of the mount benchmark (issue 27 item 6): one array stored raw and compressed four
ways, read through ccfs and through s3fs/rclone, on the local S3 server's loopback and remote-like.

Cases (same values, float32, rounded so they compress about 2x as real data does):

* ``raw``: the bound for every ccfs row, measured in the same round;
* ``gzip ours``: written by ``upload_raw_array`` (gzip with its ``cc-gzip-blocks`` index: read by block);
* ``gzip 0.4.0 first``: one level-9 gzip stream with 0.4.0's metadata, no index, on a fresh
  ``--cache-dir`` (the first open decodes it whole and keeps seek points);
* ``gzip 0.4.0 kept``: the same after a remount with that ``--cache-dir`` (the seek points kept);
* ``Zstd``, ``LZ4``: decoded whole on first open (no blocks), as 0.4.0's codecs are.

Rows per case, medians of ``rounds`` fresh mounts: ms to the first row (open + header + row 0),
one row in the middle, a 10-row slice elsewhere, then seconds for a whole-array mean over the same
map (what those rows left to fetch: codecs decoded whole on open have nothing left), MB the server
sent for each (its request log), daemon peak RSS; and ``download_raw_array(key).mean()`` in the
same round, the library's bound for the whole-array mean. s3fs and rclone see the compressed bytes
(``big/c-*`` as stored): no row of a compressed array can be read through them without reading the
whole object and decoding it in the reader, so their row figure is that (``cat`` of the object +
decode in this process).

    python scripts/bench_mount.py --compressed [--compressed-mib 64] [--rounds 3] [--networks ...]
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import bench_mount as bm
import numpy as np

CASES = ("raw", "gzip ours", "gzip 0.4.0 first", "gzip 0.4.0 kept", "Zstd", "LZ4")
#: object key of each stored array (the two 0.4.0 rows read one object)
KEYS = {"raw": "big/c-raw", "gzip ours": "big/c-gzip", "gzip 0.4.0 first": "big/c-gzip040",
        "gzip 0.4.0 kept": "big/c-gzip040", "Zstd": "big/c-zstd", "LZ4": "big/c-lz4"}
ROWS = ("first_ms", "row_ms", "slice_ms", "mean_s", "first_mb", "row_mb", "slice_mb", "mean_mb", "rss_mib")
LABELS = {"first_ms": "first row after open (ms)", "row_ms": "one row (ms)", "slice_ms": "10-row slice (ms)",
          "mean_s": "whole-array mean (s)", "first_mb": "  MB fetched: first row", "row_mb": "  MB fetched: one row",
          "slice_mb": "  MB fetched: 10-row slice", "mean_mb": "  MB fetched: mean", "rss_mib": "daemon peak RSS (MiB)",
          "lib_mean_s": "download_raw_array().mean() (s)", "body_mb": "object size (MB)"}


def values(rows: int) -> np.ndarray:
    """float32 with 8 bits after the point: compresses about 2x (noise would not compress at all)."""
    return np.round(np.random.default_rng(7).standard_normal((rows, bm.COLS), dtype=np.float32) * 256) / 256


def populate(endpoint: str, rows: int) -> dict[str, int]:
    """Store the array every way; return each key's object size."""
    os.environ.update(bm.env())
    import cottoncandy as cc

    cci = cc.get_interface(bm.BUCKET, endpoint_url=endpoint, verbose=False, force_bucket_creation=True)
    array = values(rows)
    cci.upload_raw_array(KEYS["raw"], array, compression=False)
    cci.upload_raw_array(KEYS["gzip ours"], array, compression="gzip")
    cci.upload_raw_array(KEYS["Zstd"], array, compression="Zstd")
    cci.upload_raw_array(KEYS["LZ4"], array, compression="LZ4")
    out = io.BytesIO()  # as 0.4.0 writes gzip: one level-9 GzipFile stream, its four metadata keys
    with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
        gz.write(array.tobytes())
    cci.store.put(KEYS["gzip 0.4.0 first"], out.getvalue(),
                  {"dtype": "<f4", "shape": f"{rows},{bm.COLS}", "compression": "gzip", "order": "C"})
    return {key: cci.store.head(key).size for key in set(KEYS.values())}


def sent_mb(endpoint: str, key: str) -> float:
    """MB the server sent for GETs of ``key`` since the log was last cleared (after read-ahead lands)."""
    time.sleep(0.3)
    return sum(e["bytes_sent"] for e in bm.server_log(endpoint)
               if e["method"] == "GET" and e["path"].endswith("/" + key)) / 1e6


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reads(endpoint: str, path: str, key: str, rows: int) -> dict[str, float]:
    """First row (open included), one row, a 10-row slice, the whole mean, and the MB each fetched."""
    r: dict[str, float] = {}
    bm.server_log(endpoint, clear=True)
    start = time.perf_counter()
    arr = np.load(path, mmap_mode="r")
    float(arr[0].sum())
    r["first_ms"] = (time.perf_counter() - start) * 1000
    r["first_mb"] = sent_mb(endpoint, key)
    for name, rows_of in (("row", slice(rows // 2, rows // 2 + 1)), ("slice", slice(rows // 3, rows // 3 + 10))):
        bm.server_log(endpoint, clear=True)
        r[f"{name}_ms"] = timed(lambda: float(arr[rows_of].sum())) * 1000  # noqa: B023 (called at once)
        r[f"{name}_mb"] = sent_mb(endpoint, key)
    bm.server_log(endpoint, clear=True)
    r["mean_s"] = timed(lambda: float(arr.mean(dtype="f8")))
    r["mean_mb"] = sent_mb(endpoint, key)
    return r  # the map goes with this frame, so the mount can be unmounted


def measure_ccfs(endpoint: str, case: str, rows: int, cache_dir: str) -> dict[str, float]:
    """One round of one case on a fresh mount (``cache_dir``: its --cache-dir)."""
    key = KEYS[case]
    r: dict[str, float] = {}
    with bm.mount("ccfs", endpoint, ("--cache-dir", cache_dir)) as (_, path_of, pid):
        r.update(reads(endpoint, path_of(key), key, rows))
        r["rss_mib"] = bm.peak_rss_mib(pid)
    return r


def measure_library(endpoint: str, case: str) -> float:
    """Seconds for ``download_raw_array(key).mean()``: the library's bound for the whole-array mean."""
    import cottoncandy as cc

    cci = cc.get_interface(bm.BUCKET, endpoint_url=endpoint, verbose=False)
    return timed(lambda: float(cci.download_raw_array(KEYS[case]).mean(dtype="f8")))


def measure_peer(tool: str, endpoint: str, case: str, nbytes: int) -> dict[str, float]:
    """s3fs/rclone see the object's compressed bytes: a row costs the whole object read and decoded here."""
    from cottoncandy.formats import codecs

    key = KEYS[case]
    r: dict[str, float] = {}
    with bm.mount(tool, endpoint) as (_, path_of, pid):
        bm.server_log(endpoint, clear=True)
        start = time.perf_counter()
        with open(path_of(key), "rb") as fh:
            body = fh.read()
        if case != "raw":
            out = bytearray(nbytes)
            codecs.decode_into(body, "gzip" if case.startswith("gzip") else case, memoryview(out))
        r["first_ms"] = (time.perf_counter() - start) * 1000
        r["first_mb"] = sent_mb(endpoint, key)
        r["rss_mib"] = bm.peak_rss_mib(pid)
    return r


def measure_network(args: Any, shaping: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    from cottoncandy.testing.s3server import free_port

    rows = int(args.compressed_mib * 2**20 // (bm.COLS * 4))
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(free_port()),
                               *shaping], stdout=subprocess.PIPE, text=True)
    bm.SERVER_PID = server.pid
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    runs: dict[str, list[dict[str, float]]] = {}
    try:
        sizes = populate(endpoint, rows)
        for _ in range(args.rounds):  # each round: every case once, so ratios compare runs minutes apart at most
            kept = tempfile.mkdtemp(prefix="bench-ccfs-kept-")
            for case in CASES:
                bm.forget_metadata()
                cache_dir = kept if case.startswith("gzip 0.4.0") else tempfile.mkdtemp(prefix="bench-ccfs-c-")
                r = measure_ccfs(endpoint, case, rows, cache_dir)
                r["lib_mean_s"] = measure_library(endpoint, case) if case != "gzip 0.4.0 kept" else float("nan")
                runs.setdefault(f"ccfs {case}", []).append(r)
                if cache_dir != kept:
                    shutil.rmtree(cache_dir, ignore_errors=True)
                print(f"  {case}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)
            shutil.rmtree(kept, ignore_errors=True)
        for peer in [p for p in args.peers.split(",") if p]:
            if shutil.which(peer) is None:
                print(f"{peer}: not installed (CCFS_PEERS=1 bash scripts/provision.sh)")
                continue
            for case in ("raw", "gzip ours", "Zstd", "LZ4"):
                try:
                    runs.setdefault(f"{peer} {case}", []).append(measure_peer(peer, endpoint, case, rows * bm.COLS * 4))
                except Exception as exc:  # a peer failing must not hide the others
                    print(f"{peer} {case}: failed ({exc})")
    finally:
        server.terminate()
        server.wait()
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    return medians, sizes


def report(network: str, results: dict[str, dict[str, float]], sizes: dict[str, int], mib: float) -> None:
    print(f"\n{mib:g} MiB float32 array ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sorted(sizes.items()))}), "
          f"{network}; medians of fresh mounts")
    names = list(results)
    for start in range(0, len(names), 6):
        cols = names[start:start + 6]
        print(f"{'':34}" + "".join(f"{n.removeprefix('ccfs '):>18}" for n in cols))
        for key in (*ROWS, "lib_mean_s"):
            cells = [results[n].get(key) for n in cols]
            print(f"{LABELS[key]:34}" + "".join(f"{c:>18.2f}" if c is not None and c == c else f"{'-':>18}"
                                                for c in cells))
    raw = results.get("ccfs raw")
    if not raw:
        return
    print("ratios (bound: the raw array through ccfs, same rounds; mean also vs download_raw_array().mean())")
    for case in CASES[1:]:
        c = results.get(f"ccfs {case}")
        if c:
            print(f"  {case}: first row {c['first_ms'] / raw['first_ms']:.2f}x raw, "
                  f"one row {c['row_ms'] / raw['row_ms']:.2f}x, 10 rows {c['slice_ms'] / raw['slice_ms']:.2f}x, "
                  f"mean {c['mean_s'] / raw['mean_s']:.2f}x raw"
                  + (f", {c['mean_s'] / c['lib_mean_s']:.2f}x download_raw_array" if c['lib_mean_s'] == c['lib_mean_s']
                     else ""))
    print("  s3fs/rclone rows: whole object read + decoded here (they see compressed bytes)")


def run(args: Any) -> None:
    for network in args.networks.split(","):
        shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
        label = ("loopback" if network == "loopback"
                 else f"remote-like ({args.latency_ms:g} ms to first byte, {args.mbps:g} MB/s per connection)")
        print(f"compressed arrays, {label}...", flush=True)
        results, sizes = measure_network(args, shaping)
        report(label, results, sizes, args.compressed_mib)
