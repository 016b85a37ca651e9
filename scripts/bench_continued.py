#!/usr/bin/env python
"""Continued files through a ``--rw`` mount (issue 26): a write after a commit point, this tree's daemon
side by side with another tree's (``--before DIR``, e.g. ``git archive <commit> | tar -x -C DIR``), on
the local S3 server (loopback), rounds alternating between the two mounts.

Rows (medians of ``--rounds``):

* ``loop``: ``for i in $(seq 10); do /bin/echo line $i; done > f`` -- ten commands sharing one
  descriptor, each exit a FLUSH and a commit: wall seconds, PUTs and GETs of ``f`` per command;
* ``gzip array`` / ``zlib array``: ``--write-compression gzip`` (blocks) or ``zlib`` (none), ``--mib``
  MiB of int64 written and stored at a FLUSH (the close of a duplicate), then one 8-byte ``pwrite`` in
  the middle (seconds: the FUSE WRITE), and the last close (seconds: the commit, which encodes the
  array again); body bytes GET by each, and the daemon's peak RSS (``VmHWM``) over the run.

* ``r+ gzip row``: one row in the middle of a ``--rplus-mib`` MiB gzip array the library stored (32-bit
  values in int64: a body of ~0.63 of the array), changed through an ``r+`` memory map and flushed:
  seconds, MB fetched and sent, parts copied by the server.

    python scripts/bench_continued.py [--before DIR] [--rounds 5] [--mib 64] [--rplus-mib 256]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_DEFAULT_REGION="us-east-1")

from cottoncandy.config import Settings  # noqa: E402
from cottoncandy.storage.s3 import S3Account  # noqa: E402
from cottoncandy.testing.children import S3ServerChild  # noqa: E402

BUCKET = "bench-continued"
MiB = 2**20


@contextmanager
def mounted(tree: Path, endpoint: str, *extra: str) -> Iterator[tuple[Path, int]]:
    """A ``--rw`` mount by the daemon of ``tree`` (its ccfs and cottoncandy); the mountpoint and daemon pid."""
    mnt = Path(tempfile.mkdtemp(prefix="bench-cont-"))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-m", "ccfs", "mount", BUCKET, str(mnt), "--endpoint-url", endpoint, "--rw",
                    "--log-file", f"{mnt}.log", *extra], check=True, cwd=tree, env=env, capture_output=True)
    out = subprocess.run(["pgrep", "-f", f"ccfs mount {BUCKET} {mnt}"], capture_output=True, text=True)
    pid = int(out.stdout.split()[0])
    try:
        yield mnt, pid
    finally:
        subprocess.run([sys.executable, "-m", "ccfs", "umount", str(mnt)], cwd=tree, env=env, capture_output=True)
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        mnt.rmdir()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def of_key(server: S3ServerChild, key: str, method: str) -> list:  # type: ignore[type-arg]
    return [r for r in server.requests() if r.method == method and r.path.rstrip("/").endswith(f"/{key}")]


def loop(server: S3ServerChild, mnt: Path, name: str) -> dict[str, float]:
    server.clear_log()
    started = time.perf_counter()
    subprocess.run(["bash", "-c", f"for i in $(seq 10); do /bin/echo line $i; done > {mnt / name}"], check=True)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "puts/cmd": len(of_key(server, name, "PUT")) / 10,
            "gets/cmd": len(of_key(server, name, "GET")) / 10}


def array(server: S3ServerChild, mnt: Path, name: str, data: bytes, middle: int) -> dict[str, float]:
    fd = os.open(mnt / name, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    for at in range(0, len(data), 4 * MiB):
        os.write(fd, data[at : at + 4 * MiB])
    os.close(os.dup(fd))  # FLUSH: stored gzip
    server.clear_log()
    started = time.perf_counter()
    os.pwrite(fd, np.int64(-1).tobytes(), middle)
    write = time.perf_counter() - started
    write_get = sum(r.bytes_sent for r in of_key(server, name[:-4], "GET"))
    server.clear_log()
    started = time.perf_counter()
    os.close(fd)
    commit = time.perf_counter() - started
    commit_get = sum(r.bytes_sent for r in of_key(server, name[:-4], "GET"))
    return {"write s": write, "write GET MB": write_get / 1e6, "commit s": commit, "commit GET MB": commit_get / 1e6,
            "total s": write + commit}


def rplus_row(server: S3ServerChild, mnt: Path, key: str, values: np.ndarray) -> dict[str, float]:
    """One row in the middle of a gzip array the library stored, changed through an ``r+`` memory map
    and flushed (stored before the mount: ``upload``): the flush's seconds, bytes fetched and sent,
    parts copied by the server."""
    store = S3Account(Settings(endpoint_url=server.endpoint_url)).store(BUCKET)
    header = os.stat(mnt / f"{key}.npy").st_size - values.nbytes
    mapped = np.memmap(mnt / f"{key}.npy", dtype=values.dtype, mode="r+", offset=header, shape=values.shape)
    server.clear_log()
    started = time.perf_counter()
    mapped[len(values) // 2] = -1
    mapped.flush()
    seconds = time.perf_counter() - started
    del mapped
    log = server.requests()
    parts = [r for r in log if r.method == "PUT" and "partNumber" in r.query]
    return {"flush s": seconds, "GET MB": sum(r.bytes_sent for r in of_key(server, key, "GET")) / 1e6,
            "sent MB": sum(r.bytes_received for r in log if r.method == "PUT" and not r.copy_source) / 1e6,
            "copied parts": sum(1 for r in parts if r.copy_source), "body MB": store.head(key).size / 1e6}


def upload(server: S3ServerChild, keys: list[str], values: np.ndarray) -> None:
    from cottoncandy.arrays.raw import write_raw_array

    store = S3Account(Settings(endpoint_url=server.endpoint_url)).store(BUCKET)
    for key in keys:
        write_raw_array(store, key, values, compression="gzip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another tree whose daemon runs beside this one's")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rplus-mib", type=int, default=256, help="the gzip array of the r+ row")
    args = parser.parse_args()
    trees = {"after": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    values = (np.arange(args.mib * MiB // 8, dtype="<i8") % 1000).reshape(-1, 512)
    out = io.BytesIO()
    np.save(out, values)
    data = out.getvalue()
    middle = len(data) // 2
    with S3ServerChild() as server:
        S3Account(Settings(endpoint_url=server.endpoint_url)).create_bucket(BUCKET)
        results: dict[str, dict[str, list[float]]] = {}
        rows = (("loop", ()), ("gzip array", ("--write-compression", "gzip")),
                ("zlib array", ("--write-compression", "zlib")), ("r+ gzip row", ()))
        big = np.random.default_rng(1).integers(0, 2**32, size=(args.rplus_mib * MiB // 4096, 512)).astype("<i8")
        for row, extra in rows:
            for name in trees:
                results[f"{row} {name}"] = {}
            if row == "r+ gzip row":  # before the mounts: they list the bucket once
                upload(server, [f"{name}-rp{i}" for name in trees for i in range(args.rounds)], big)
            with contextmanager_all(trees, server.endpoint_url, extra) as mounts:
                for i in range(args.rounds):
                    for name, (mnt, _) in mounts.items():
                        if row == "loop":
                            got = loop(server, mnt, f"{name}-l{i}.txt")
                        elif row == "r+ gzip row":
                            got = rplus_row(server, mnt, f"{name}-rp{i}", big)
                        else:
                            got = array(server, mnt, f"{name}-{row[0]}{i}.npy", data, middle)
                        for k, v in got.items():
                            results[f"{row} {name}"].setdefault(k, []).append(v)
                for name, (_, pid) in mounts.items():
                    results[f"{row} {name}"]["peak RSS MiB"] = [peak_rss_mib(pid)]
    for row, figures in results.items():
        print(f"{row:18s} " + "  ".join(f"{k} {statistics.median(v):.3f}" for k, v in figures.items()))
    for row, key in (("loop", "seconds"), ("gzip array", "write s"), ("gzip array", "total s"),
                     ("zlib array", "write s"), ("zlib array", "total s"), ("r+ gzip row", "flush s")):
        if f"{row} before" in results:
            after, before = (statistics.median(results[f"{row} {n}"][key]) for n in ("after", "before"))
            print(f"{row}: after/before {key} = {after / before:.3f}x")


@contextmanager
def contextmanager_all(trees: dict[str, Path], endpoint: str,
                       extra: tuple[str, ...]) -> Iterator[dict[str, tuple[Path, int]]]:
    """One mount per tree, all at once."""
    with mounted(trees["after"], endpoint, *extra) as after:
        if "before" not in trees:
            yield {"after": after}
            return
        with mounted(trees["before"], endpoint, *extra) as before:
            yield {"after": after, "before": before}


if __name__ == "__main__":
    main()
