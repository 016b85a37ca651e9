#!/usr/bin/env python
"""Soak: N reader processes for M minutes against one ccfs mount, faults optional; prints the figures.

Everything runs on this machine and stops by itself: a local S3 server (moto, its own process),
optionally the fault proxy in front of it (its own process), one mount, and N reader processes.
Each reader loops until the deadline or ``--max-ops`` operations: a random row of a random array
(``np.load(mmap_mode='r')[i]``, checked against a per-row CRC) or a whole-file read (every byte,
checked against the array's CRC), made as ``--whole`` says: ``np.load(path)`` (the array in the
reader's memory), a stream of 1 MiB ``read``s (CRC as it goes), or either at random (``mixed``).
Arrays take ``--codecs`` in turn (gzip and raw by default). With ``--faults mixed`` the proxy starts
delaying, stalling, resetting and throttling a share of the requests for the last ``--fault-share``
of the run.

Printed at the end: operations, wrong answers (and wrong bytes), errors by errno, p50/p99/max
latency per kind of operation, and the daemon's peak RSS (sampled every 0.2 s) against the bound
``--cache-size`` + 150 MB; with ``--smaps``, what that peak was made of (the daemon's mappings at its
peak, from ``/proc/PID/smaps``: heap and malloc arenas, other anonymous maps, files).

    python scripts/soak.py --procs 8 --minutes 5 --cache-size 256M --faults mixed
    # issue 24's load: 2 GiB of arrays (8x the cache), half of the reads whole files
    python scripts/soak.py --procs 8 --arrays 8 --array-size 256M --file-share 0.5 --minutes 3 --smaps
"""

from __future__ import annotations

import argparse
import errno as errno_names
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

BUCKET = "soak"
COLS = 4096  # float32: 16 KiB rows
ACCESS, SECRET = "soak", "soak-secret"
MIXED_FAULTS = [  # the proxy's rules while faults are on (fractions of the matching requests)
    {"mode": "delay", "methods": ["GET"], "fraction": 0.10, "seconds": 3.0},
    {"mode": "stall", "methods": ["GET"], "fraction": 0.03, "seconds": 30.0},
    {"mode": "reset", "methods": ["GET", "HEAD"], "fraction": 0.03},
    {"mode": "truncate", "methods": ["GET"], "fraction": 0.02},
    {"mode": "slowdown", "methods": ["GET", "HEAD"], "fraction": 0.03},
    {"mode": "error500", "methods": ["GET"], "fraction": 0.02},
]


def env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "PYTHONUNBUFFERED": "1"}


def parse_size(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def start_process(args: list[str], what: str) -> tuple[subprocess.Popen[str], str]:
    """Start a helper that prints its URL on its first line; (process, url)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, env=env())
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("http"):
        proc.kill()
        raise SystemExit(f"{what} did not start")
    return proc, line


def daemon_pid(mountpoint: str) -> int | None:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "mount" in cmdline and mountpoint in cmdline and proc.pid != os.getpid():
            return proc.pid
    return None


def control(proxy: str, what: str, rules: list[dict] | None = None) -> None:
    data = json.dumps(rules or []).encode()
    urllib.request.urlopen(urllib.request.Request(f"{proxy}/_fault-proxy/{what}", data=data, method="POST"),
                           timeout=10).read()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- the reader process ----------------------------------------------------------------------------
def worker(spec_file: str, index: int, deadline: float, max_ops: int, out_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    rng = random.Random(index)
    latencies: dict[str, list[float]] = {"row": [], "file": []}
    errors: Counter[str] = Counter()
    wrong = wrong_bytes = ops = 0
    whole = spec.get("whole", "read")

    def save() -> None:  # after every operation: a reader killed at the deadline still reports
        tmp = out_file + ".tmp"
        Path(tmp).write_text(json.dumps({"latencies": latencies, "errors": errors, "wrong": wrong,
                                         "wrong_bytes": wrong_bytes, "ops": ops}))
        os.replace(tmp, out_file)

    while time.time() < deadline and ops < max_ops:
        array = rng.choice(spec["arrays"])
        path = os.path.join(spec["mountpoint"], array["name"] + ".npy")
        kind = "file" if rng.random() < spec["file_share"] else "row"
        began = time.monotonic()
        try:
            if kind == "row":
                row = rng.randrange(array["rows"])
                got = np.array(np.load(path, mmap_mode="r")[row])
                if zlib.crc32(got.tobytes()) != array["row_crcs"][row]:
                    wrong += 1
                    wrong_bytes += got.nbytes
            elif (whole if whole != "mixed" else rng.choice(["npload", "read"])) == "npload":
                got = np.load(path)
                if got.shape != tuple(array["shape"]) or zlib.crc32(got.tobytes()) != array["crc"]:
                    wrong += 1
                    wrong_bytes += got.nbytes
                del got
            else:  # streamed: 1 MiB reads, the CRC as they come (the reader holds one chunk)
                with open(path, "rb") as fh:
                    np.lib.format.read_magic(fh)
                    np.lib.format.read_array_header_1_0(fh)
                    crc, nbytes = 0, 0
                    while chunk := fh.read(2**20):
                        crc, nbytes = zlib.crc32(chunk, crc), nbytes + len(chunk)
                expected = int(np.prod(array["shape"])) * 4
                if nbytes != expected or crc != array["crc"]:
                    wrong += 1
                    wrong_bytes += max(nbytes, expected)
        except OSError as exc:
            errors[errno_names.errorcode.get(exc.errno or 0, str(exc.errno))] += 1
        except Exception as exc:  # a malformed answer (np.load of a cut file)
            errors[type(exc).__name__] += 1
        else:
            latencies[kind].append(time.monotonic() - began)
        if spec["drop_pages"]:  # forget this file's pages in the kernel: the next read asks the daemon again
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
            except OSError:
                pass
        ops += 1
        save()
    save()


# --- the driver --------------------------------------------------------------------------------------
def make_arrays(endpoint: str, count: int, nbytes: int, codecs: list[str]) -> list[dict]:
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    import cottoncandy as cc

    cci = cc.get_interface(BUCKET, endpoint_url=endpoint, verbose=False, force_bucket_creation=True)
    arrays = []
    rows = max(1, nbytes // (COLS * 4))
    for i in range(count):
        data = np.random.default_rng(i).standard_normal((rows, COLS), dtype=np.float32)
        codec = codecs[i % len(codecs)]  # gzip: decoded whole (spilled to a file when large); raw: by range
        cci.upload_raw_array(f"data/a{i}", data, compression=False if codec == "raw" else codec)
        arrays.append({"name": f"data/a{i}", "rows": rows, "shape": [rows, COLS], "crc": zlib.crc32(data.tobytes()),
                       "row_crcs": [zlib.crc32(r.tobytes()) for r in data]})
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--cache-size", default="256M")
    parser.add_argument("--arrays", type=int, default=4)
    parser.add_argument("--array-size", default="32M")
    parser.add_argument("--file-share", type=float, default=0.2, help="share of whole-file reads")
    parser.add_argument("--whole", choices=["read", "npload", "mixed"], default="mixed",
                        help="whole-file reads: 1 MiB read()s, np.load(path), or either at random")
    parser.add_argument("--codecs", default="gzip,raw", help="the arrays' codecs in turn (gzip, raw, ...)")
    parser.add_argument("--smaps", action="store_true",
                        help="print what the daemon's peak RSS was made of (its /proc/PID/smaps at the peak)")
    parser.add_argument("--faults", choices=["none", "mixed"], default="none")
    parser.add_argument("--fault-share", type=float, default=0.4, help="faults on for this last share of the run")
    parser.add_argument("--keep-pages", action="store_true",
                        help="let the kernel keep what was read (by default each reader drops a file's cached "
                             "pages after each operation, so reads reach the daemon and the store)")
    parser.add_argument("--max-ops", type=int, default=200_000, help="operations per reader at most")
    parser.add_argument("--worker", nargs=5, metavar=("SPEC", "INDEX", "DEADLINE", "MAX_OPS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec, index, deadline, max_ops, out = args.worker
        worker(spec, int(index), float(deadline), int(max_ops), out)
        return

    cache_size = parse_size(args.cache_size)
    work = Path(tempfile.mkdtemp(prefix="ccfs-soak-"))
    mountpoint = work / "mnt"
    mountpoint.mkdir()
    helpers: list[subprocess.Popen[str]] = []
    readers: list[subprocess.Popen[bytes]] = []
    mounted = False
    try:
        server, endpoint = start_process(["-m", "cottoncandy.testing.s3server"], "the S3 server")
        helpers.append(server)
        arrays = make_arrays(endpoint, args.arrays, parse_size(args.array_size), args.codecs.split(","))
        proxy = None
        if args.faults != "none":
            proc, proxy = start_process(["-m", "cottoncandy.testing.faultproxy", "--upstream", endpoint],
                                        "the fault proxy")
            helpers.append(proc)
        log_file = work / "ccfs.log"
        result = subprocess.run([sys.executable, "-m", "ccfs", "mount", f"{BUCKET}", str(mountpoint),
                                 "--endpoint-url", proxy or endpoint, "--cache-size", args.cache_size,
                                 "--log-file", str(log_file)], env=env(), capture_output=True, text=True,
                                timeout=120)
        if result.returncode:
            raise SystemExit(f"mount failed: {result.stderr}")
        mounted = True
        pid = daemon_pid(str(mountpoint))
        spec_file = work / "spec.json"
        spec_file.write_text(json.dumps({"mountpoint": str(mountpoint), "arrays": arrays,
                                         "file_share": args.file_share, "drop_pages": not args.keep_pages,
                                         "whole": args.whole}))
        began = time.time()
        deadline = began + args.minutes * 60
        faults_at = deadline - args.fault_share * args.minutes * 60 if proxy else float("inf")
        outs = [work / f"reader{i}.json" for i in range(args.procs)]
        for i in range(args.procs):
            readers.append(subprocess.Popen([sys.executable, __file__, "--worker", str(spec_file), str(i),
                                             str(deadline), str(args.max_ops), str(outs[i])], env=env()))
        import psutil

        daemon = psutil.Process(pid) if pid else None
        peak_rss = 0
        peak_maps: dict[str, int] = {}
        faults_on = False
        while any(r.poll() is None for r in readers) and time.time() < deadline + 60:
            if daemon is not None:
                try:
                    rss = daemon.memory_info().rss
                    if rss > peak_rss and args.smaps:
                        peak_maps = smaps_breakdown(daemon.pid) or peak_maps
                    peak_rss = max(peak_rss, rss)
                except psutil.NoSuchProcess:
                    print("the daemon died", file=sys.stderr)
                    daemon = None
            if proxy and not faults_on and time.time() >= faults_at:
                control(proxy, "rules", MIXED_FAULTS)
                faults_on = True
            time.sleep(0.2)
        hung = 0
        for reader in readers:
            if reader.poll() is None:  # still inside a read a minute past the deadline
                hung += 1
                reader.kill()
            reader.wait()
        report(args, cache_size, outs, peak_rss, hung, daemon is not None, time.time() - began, log_file)
        if peak_maps:
            print("daemon at its peak, resident MB by mapping: "
                  + ", ".join(f"{name} {size / 1e6:.0f}" for name, size in peak_maps.items()))
        if proxy:
            counts = json.loads(urllib.request.urlopen(f"{proxy}/_fault-proxy/counts", timeout=10).read())
            print(f"fault proxy: {counts}")
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
        if mounted:
            subprocess.run([sys.executable, "-m", "ccfs", "umount", str(mountpoint)], capture_output=True,
                           env=env(), timeout=60)
            if os.path.ismount(mountpoint):
                subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)
            time.sleep(0.5)  # the daemon's last lines: what it held at most
            log_file = work / "ccfs.log"
            if log_file.exists():
                for line in log_file.read_text().splitlines():
                    if "memory:" in line:
                        print("daemon:", line.split("ccfs: ", 1)[-1])
        for proc in helpers:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not os.environ.get("SOAK_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(work)


def smaps_breakdown(pid: int) -> dict[str, int]:
    """Resident bytes of a process by kind of mapping: the main heap (brk), malloc's thread arenas
    (anonymous maps inside 64 MiB-aligned reservations), other anonymous maps (large allocations:
    numpy buffers, thread stacks), file-backed maps (libraries, spill files being decoded)."""
    kinds: Counter[str] = Counter()
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return {}
    name = ""
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's first line
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if path == "[heap]":
                name = "heap"
            elif path.startswith("/"):
                name = "files"
            elif path:
                name = "other"
            else:
                name = "arenas" if lo % (64 << 20) == 0 and hi - lo <= 64 << 20 else "anon"
        elif fields[0] == "Rss:":
            kinds[name] += int(fields[1]) * 1024
    kinds["total"] = sum(kinds.values())
    return dict(kinds)


def report(args: argparse.Namespace, cache_size: int, outs: list[Path], peak_rss: int, hung: int,
           daemon_alive: bool, seconds: float, log_file: Path) -> None:
    latencies: dict[str, list[float]] = {"row": [], "file": []}
    errors: Counter[str] = Counter()
    ops = wrong = wrong_bytes = 0
    for out in outs:
        if not out.exists():
            continue
        result = json.loads(out.read_text())
        for kind, values in result["latencies"].items():
            latencies[kind].extend(values)
        errors.update(result["errors"])
        ops += result["ops"]
        wrong += result["wrong"]
        wrong_bytes += result["wrong_bytes"]
    log_errors = sum(" ERROR " in line for line in log_file.read_text().splitlines()) if log_file.exists() else 0
    bound = cache_size + 150 * 10**6
    print(f"soak: {args.procs} readers, {seconds:.0f} s, cache {args.cache_size}, faults {args.faults}"
          + (f" (last {args.fault_share:.0%})" if args.faults != "none" else ""))
    print(f"reads: {ops} ({len(latencies['row'])} rows ok, {len(latencies['file'])} whole files ok)")
    print(f"wrong answers: {wrong} ({wrong_bytes} bytes)")
    print(f"errors by errno: {dict(errors) or 'none'}")
    for kind, values in latencies.items():
        print(f"latency {kind}: p50 {percentile(values, 50) * 1000:.1f} ms, p99 {percentile(values, 99) * 1000:.1f} ms,"
              f" max {max(values, default=float('nan')) * 1000:.1f} ms")
    print(f"daemon peak RSS: {peak_rss / 1e6:.0f} MB (bound {bound / 1e6:.0f} MB: cache-size + 150 MB)"
          f"{'' if daemon_alive else ', DAEMON DIED'}")
    print(f"readers still blocked a minute after the deadline: {hung}; daemon log ERROR lines: {log_errors}")


if __name__ == "__main__":
    main()
