#!/usr/bin/env python
"""gzip arrays written through a ``--rw --write-compression gzip`` mount (issues 26 and 27): ``np.save``
through the mount vs the library's ``upload_raw_array(compression='gzip')`` of the same array, then one
row read back through a new read-only mount (requests and bytes from the local server's log), and the
encoders alone in this process: the incremental block encoder the mount now uses
(``arrays.gzip_blocks.StreamedGzipBlocks``, fed 1 MiB pieces as FUSE WRITEs arrive) vs the one
``zlib`` gzip stream at level 6 the mount wrote before (``Codec.stream_encoder`` of gzip).

Medians of ``--rounds`` rounds, the tools alternating within a round (a burst of load on this shared
machine hits both alike); each ratio is printed beside the figure it is taken against.

    python scripts/bench_write_gzip.py [--mib 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_mount as bm  # noqa: E402  (server log, mounts)

MB = 1e6
COLS = 1024  # float64 -> 8 KiB rows


def encoders(array: np.ndarray, rounds: int) -> dict[str, list[float]]:
    """Seconds to encode ``array``'s bytes fed in 1 MiB pieces, and the body's size, per encoder."""
    from cottoncandy.arrays.gzip_blocks import StreamedGzipBlocks
    from cottoncandy.formats.raw import ArraySpec

    spec = ArraySpec(dtype=array.dtype, shape=array.shape, order="C", compression="gzip")
    data = memoryview(array.reshape(-1).view(np.uint8))
    out: dict[str, list[float]] = {"blocks s": [], "stream s": [], "blocks MB": [], "stream MB": []}
    for _ in range(rounds):
        started = time.perf_counter()
        enc = StreamedGzipBlocks(spec)
        size = sum(len(p) for i in range(0, len(data), 2**20) for p in enc.compress(data[i : i + 2**20]))
        size += sum(len(p) for p in enc.flush()) + len(enc.header())
        out["blocks s"].append(time.perf_counter() - started)
        out["blocks MB"].append(size / MB)
        started = time.perf_counter()
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        size = sum(len(z.compress(data[i : i + 2**20])) for i in range(0, len(data), 2**20)) + len(z.flush())
        out["stream s"].append(time.perf_counter() - started)
        out["stream MB"].append(size / MB)
    return out


def requests_of(endpoint: str, key: str) -> tuple[int, int]:
    hits = [r for r in bm.server_log(endpoint) if r["method"] in ("GET", "HEAD") and r["path"] == f"/{bm.BUCKET}/{key}"]
    return len(hits), sum(int(r.get("bytes_sent", 0)) for r in hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(bm.env())  # the local server's keys, a private metadata cache
    rows = args.mib * 2**20 // (COLS * 8)
    array = np.random.default_rng(27).integers(0, 1000, (rows, COLS)).astype("<f8")  # compresses to ~0.3

    import cottoncandy as cc
    from cottoncandy.testing.s3server import free_port

    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(free_port())],
                              stdout=subprocess.PIPE, text=True)
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    times: dict[str, list[float]] = {"mount": [], "library": []}
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bm.BUCKET)
        cci = cc.get_interface(bm.BUCKET, endpoint_url=endpoint, verbose=False)
        with bm.mount("ccfs", endpoint, extra=("--rw", "--write-compression", "gzip")) as (mnt, _path, _pid):
            os.makedirs(os.path.join(mnt, "w"), exist_ok=True)
            for r in range(args.rounds):
                started = time.perf_counter()
                np.save(os.path.join(mnt, f"w/m{r}.npy"), array)
                times["mount"].append(time.perf_counter() - started)
                started = time.perf_counter()
                cci.upload_raw_array(f"w/l{r}", array, compression="gzip")
                times["library"].append(time.perf_counter() - started)
                print(f"  round {r + 1}: mount {times['mount'][-1]:.2f} s, library {times['library'][-1]:.2f} s",
                      flush=True)
        same = cci.store.get("w/m0") == cci.store.get("w/l0")
        info = cci.store.head("w/m0")
        reads = []
        for r in range(args.rounds):
            with bm.mount("ccfs", endpoint) as (mnt, _path, _pid):
                bm.server_log(endpoint, clear=True)
                fd = os.open(os.path.join(mnt, "w/m0.npy"), os.O_RDONLY)
                try:
                    started = time.perf_counter()
                    row = (rows // 2 + 37 * r) % rows
                    got = os.pread(fd, COLS * 8, 128 + row * COLS * 8)
                    took = time.perf_counter() - started
                finally:
                    os.close(fd)
                assert got == array[row].tobytes()
                time.sleep(0.3)
                reads.append((took, *requests_of(endpoint, "w/m0")))
    finally:
        server.terminate()
        server.wait()
        bm.forget_metadata()
    enc = encoders(array, args.rounds)
    med = statistics.median
    pairs = [a / b for a, b in zip(times["mount"], times["library"])]
    print(f"\ngzip writes, loopback: np.save of {args.mib} MiB float64 (integers 0-999), "
          f"medians of {args.rounds} rounds")
    rounds = ", ".join(f"{p:.2f}" for p in pairs)
    print(f"  np.save via --rw --write-compression gzip: {med(times['mount']):.2f} s; upload_raw_array gzip "
          f"{med(times['library']):.2f} s; paired ratio {med(pairs):.2f}x (rounds {rounds})")
    print(f"  stored body: {info.size / MB:.1f} MB, index {info.metadata.get('cc-gzip-blocks')}; "
          f"byte for byte the library's: {same}")
    print(f"  one row through a new read-only mount (lookup included): {med([x[0] for x in reads]) * 1e3:.0f} ms, "
          f"{med([x[1] for x in reads]):.0f} requests, {med([x[2] for x in reads]) / MB:.2f} MB of a "
          f"{info.size / MB:.1f} MB body")
    print(f"  encoders in-process, fed 1 MiB pieces: blocks (2 threads, level 1) {med(enc['blocks s']):.2f} s -> "
          f"{med(enc['blocks MB']):.1f} MB; one zlib stream (level 6, before) {med(enc['stream s']):.2f} s -> "
          f"{med(enc['stream MB']):.1f} MB; speed-up {med(enc['stream s']) / med(enc['blocks s']):.1f}x")


if __name__ == "__main__":
    main()
