#!/usr/bin/env python
"""Mount benchmark: ccfs vs direct boto3 (the upper bound) vs s3fs-fuse and rclone, in one run.

All read the same bytes from one local S3 server (moto, range-aware, in its own process, with a
request log). Every "cold" figure is taken on a fresh mount. Peers that are not installed are
reported as such (``CCFS_PEERS=1 bash scripts/provision.sh`` installs Debian's s3fs and rclone).

Loopback is not a network: every table is measured twice, on the server as it is and on the same
server answering like a remote S3 (``--latency-ms`` before each response's first byte, ``--mbps``
per connection; 20 ms and 100 MB/s by default, DESIGN's figures for S3 in-region). Requests per
operation come from the server's log, daemon CPU from ``/proc/PID/stat``. Each table ends with the
fast requests the ccfs daemons had refused by cause (``ccfs info --mount`` before each unmount): each
was asked again through boto3, so anything but 0 means the figures carry extra requests.

    python scripts/bench_mount.py [--gib 1] [--arrays 2000] [--rows 100] [--big-folder 100000]
                                  [--networks loopback,remote] [--latency-ms 20] [--mbps 100] [--auth]
    python scripts/bench_mount.py --compressed [--compressed-mib 64] [--rounds 3]   # compressed arrays only
    python scripts/bench_mount.py --reads --gib 0.25 [--rounds 3] [--read-aheads 512K,1M,1M/128K]   # the read path only

``--auth``: the server checks every request's SigV4 signature (``s3server --auth``); the refusals line
then shows whether the fast path's requests were all accepted.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

BUCKET = "bench-mount"
KEY = "big/array"  # raw array: ccfs shows big/array.npy, peers show the raw bytes at big/array
REPEATS = 3  # medians of this many runs for the whole-file rows
COLS = 4096  # float32 -> 16 KiB rows
ACCESS, SECRET = "bench", "bench-secret"
CACHE = "512M"
#: ccfs as mounted by default, and with the kernel's READ size raised to 1 MiB (``--read-ahead``):
#: larger READs cost fewer FUSE round trips per GiB, but every random mmap fault then reads 1 MiB
CCFS_VARIANTS = {"ccfs": [], "ccfs ra=1M": ["--read-ahead", "1M"]}


#: ccfs's metadata cache (``$XDG_CACHE_HOME/ccfs/metadata``) for this run only: never the user's,
#: and emptied before each cold row (``forget_metadata``), kept for the remount rows
CACHE_HOME = tempfile.mkdtemp(prefix="bench-ccfs-xdg-")
#: the local server of the network being measured (its CPU is a row of the big-folder case)
SERVER_PID: int | None = None
#: each ccfs variant's fast requests refused by the server (asked again through boto3), by cause, over
#: every mount of the network being measured (``ccfs info --mount`` before each unmount): 0 on a sound endpoint
REFUSED: dict[str, Counter[str]] = {}


def env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "XDG_CACHE_HOME": CACHE_HOME}


def forget_metadata() -> None:
    """Empty ccfs's persistent metadata cache: the next ccfs mount starts cold."""
    shutil.rmtree(os.path.join(CACHE_HOME, "ccfs"), ignore_errors=True)


def server_log(endpoint: str, clear: bool = False) -> list[dict]:
    req = urllib.request.Request(f"{endpoint}/_local-s3/log", method="POST" if clear else "GET",
                                 data=b"" if clear else None)
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def unmount(mnt: str, ccfs: bool = False) -> None:
    if ccfs:  # waits for the daemon, which writes its --cache-dir queue before it exits
        subprocess.run([sys.executable, "-m", "ccfs", "umount", mnt], capture_output=True)
    for cmd in (["fusermount3", "-u", mnt], ["fusermount", "-u", mnt], ["fusermount3", "-u", "-z", mnt]):
        if not os.path.ismount(mnt):
            return
        if shutil.which(cmd[0]):
            subprocess.run(cmd, capture_output=True)
        time.sleep(0.2)


def wait_mounted(mnt: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not os.path.ismount(mnt):
        if time.time() > deadline:
            raise RuntimeError(f"{mnt} did not mount")
        time.sleep(0.05)


@contextmanager
def mount(tool: str, endpoint: str,
          extra: tuple[str, ...] = ()) -> Iterator[tuple[str, Callable[[str], str], int | None]]:
    """Mount the bucket with ``tool`` (ccfs: with ``extra`` options); yield (mountpoint, path of a key, daemon pid)."""
    mnt = tempfile.mkdtemp(prefix=f"bench-{tool.replace(' ', '-').replace('=', '')}-")
    pid = None
    if tool in CCFS_VARIANTS:
        subprocess.run([sys.executable, "-m", "ccfs", "mount", BUCKET, mnt, "--endpoint-url", endpoint,
                        "--cache-size", CACHE, "--log-file", mnt + ".log", "--log-level", "DEBUG",
                        *CCFS_VARIANTS[tool], *extra,
                        *os.environ.get("CCFS_BENCH_ARGS", "").split()],
                       check=True, env=env(), capture_output=True)

        def path_of(key: str) -> str:  # raw arrays appear as .npy files
            return os.path.join(mnt, key + ".npy")

        out = subprocess.run(["pgrep", "-f", f"ccfs mount {BUCKET} {mnt}"], capture_output=True, text=True)
        pid = int(out.stdout.split()[0]) if out.stdout.split() else None
    elif tool == "s3fs":
        passwd = os.path.join(mnt + ".passwd")
        with open(passwd, "w") as fh:
            fh.write(f"{ACCESS}:{SECRET}\n")
        os.chmod(passwd, 0o600)
        subprocess.run(["s3fs", BUCKET, mnt, "-o", f"url={endpoint}", "-o", "use_path_request_style", "-o",
                        f"passwd_file={passwd}", "-o", "ro", "-o", "dbglevel=err"], check=True, capture_output=True)
        path_of = lambda key: os.path.join(mnt, key)  # noqa: E731
    elif tool == "rclone":
        # the remote comes from the environment: an on-the-fly ":s3,endpoint=http://host:port:" string
        # splits at the URL's colons (rclone then asked a host named "http" and gave EIO on every read)
        rclone_env = {k: v for k, v in env().items() if k != "AWS_CA_BUNDLE"}  # rclone rejects it on http
        rclone_env.update(RCLONE_CONFIG_CCBENCH_TYPE="s3", RCLONE_CONFIG_CCBENCH_PROVIDER="Other",
                          RCLONE_CONFIG_CCBENCH_ENDPOINT=endpoint, RCLONE_CONFIG_CCBENCH_ACCESS_KEY_ID=ACCESS,
                          RCLONE_CONFIG_CCBENCH_SECRET_ACCESS_KEY=SECRET)
        subprocess.run(["rclone", "mount", f"ccbench:{BUCKET}", mnt, "--read-only", "--daemon",
                        "--dir-cache-time", "300s"], check=True, capture_output=True, env=rclone_env)
        path_of = lambda key: os.path.join(mnt, key)  # noqa: E731
    else:
        raise ValueError(tool)
    try:
        wait_mounted(mnt)
        if pid is None and tool not in CCFS_VARIANTS:
            out = subprocess.run(["pgrep", "-f", mnt], capture_output=True, text=True)
            pid = int(out.stdout.split()[0]) if out.stdout.split() else None
        yield mnt, path_of, pid
    finally:
        if tool in CCFS_VARIANTS:
            note_refusals(tool, mnt)
        unmount(mnt, ccfs=tool in CCFS_VARIANTS)
        shutil.rmtree(mnt, ignore_errors=True)
        if tool in CCFS_VARIANTS:  # the daemon exits once its log is read (``read_ahead_plan``)
            atexit.register(lambda: os.path.exists(mnt + ".log") and os.remove(mnt + ".log"))


def note_refusals(tool: str, mnt: str) -> None:
    """Add the fast requests the daemon at ``mnt`` had refused to ``REFUSED[tool]``."""
    from ccfs.control import DaemonError, fast_paths

    try:
        state = fast_paths(mnt)
    except DaemonError as exc:
        print(f"  {tool}: no fast-path counts ({exc})", flush=True)
        return
    REFUSED.setdefault(tool, Counter()).update(state.get("refused") or {})


def peak_rss_mib(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds the process has used so far."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def request_counts(endpoint: str) -> dict[str, int]:
    """Requests in the server's log by kind: LIST, HEAD, GET (objects)."""
    counts = {"LIST": 0, "HEAD": 0, "GET": 0}
    for e in server_log(endpoint):
        if e["method"] == "HEAD":
            counts["HEAD"] += 1
        elif e["method"] == "GET":
            counts["LIST" if e["path"].rstrip("/").count("/") <= 1 else "GET"] += 1
    return counts


def waited_requests(endpoint: str) -> int:
    """Requests an open waits for: LISTs, HEADs and GETs from byte 0 (not the read-ahead of later
    blocks the kernel starts in the background)."""
    return sum(1 for e in server_log(endpoint) if e["method"] == "HEAD" or (
        e["method"] == "GET" and (e.get("range") or "bytes=0-").startswith("bytes=0-")))


def read_ahead_plan(log_path: str) -> tuple[float, float]:
    """(run MiB, window MiB) the daemon's read-ahead tuning settled on for the last stream it closed."""
    try:
        with open(log_path) as fh:
            lines = [line for line in fh if "per connection: runs of" in line]
    except OSError:
        return float("nan"), float("nan")
    if not lines:
        return float("nan"), float("nan")
    words = lines[-1].split()
    return float(words[words.index("runs") + 2]), float(words[words.index("ahead") - 2])


def read_all(path: str, chunk: int = 8 * 2**20) -> float:
    fd = os.open(path, os.O_RDONLY)
    start = time.perf_counter()
    total = 0
    try:
        while data := os.read(fd, chunk):
            total += len(data)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def array_view(tool: str, path: str, rows: int) -> np.ndarray:
    if tool in CCFS_VARIANTS:
        return np.load(path, mmap_mode="r")
    return np.memmap(path, dtype="<f4", mode="r", shape=(rows, COLS))


#: ``Bound.fresh_sequential``'s process: argv endpoint, size; prints the seconds of the GETs
FRESH_BOUND = f"""
import sys, time, boto3
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
client = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(request_checksum_calculation="when_required",
                                                                    max_pool_connections=16))
size = int(sys.argv[2])
view = memoryview(bytearray(size))
def get(start):
    end = min(size, start + 8 * 2**20)
    answer = client.get_object(Bucket="{BUCKET}", Key="{KEY}", Range=f"bytes={{start}}-{{end - 1}}")
    view[start:end] = answer["Body"].read()
began = time.perf_counter()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(get, range(0, size, 8 * 2**20)))
print(time.perf_counter() - began)
"""


class Bound:
    """Direct boto3, the upper bound: 8 parallel 8 MiB ranged GETs into one buffer, and single
    ranged GETs of one row. Measured again right beside every tool's run, so each ratio compares
    runs a few seconds apart on this shared, noisy machine (the medians of those pairs are printed)."""

    def __init__(self, endpoint: str, size: int):
        import boto3
        from botocore.config import Config

        self.client = boto3.client("s3", endpoint_url=endpoint, config=Config(
            request_checksum_calculation="when_required", max_pool_connections=16))
        self.size = size
        self.view = memoryview(bytearray(size))
        self.sequential_runs: list[float] = []
        self.row_runs: list[float] = []

    def _get(self, start: int) -> None:
        end = min(self.size, start + 8 * 2**20)
        body = self.client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={start}-{end - 1}")["Body"]
        self.view[start:end] = body.read()

    def sequential(self) -> float:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self._get, range(0, self.size, 8 * 2**20)))
        self.sequential_runs.append(time.perf_counter() - t0)
        return self.sequential_runs[-1]

    def fresh_sequential(self) -> float:
        """The same 8 x 8 MiB ranged GETs from a new process with a new client (as a side-by-side run
        of separate tools measures its bound), timed from the first request: the two bounds agree
        when the client's warm connections are not what the in-process bound gains."""
        out = subprocess.run([sys.executable, "-c", FRESH_BOUND, self.client.meta.endpoint_url, str(self.size)],
                             capture_output=True, text=True, env=env(), check=True)
        return float(out.stdout)

    def row_median(self, row_sample: list[int]) -> float:
        lat = []
        for row in row_sample:
            start = time.perf_counter()
            self.client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={row * COLS * 4}-{(row + 1) * COLS * 4 - 1}"
                                   )["Body"].read()
            lat.append(time.perf_counter() - start)
        self.row_runs.append(statistics.median(lat))
        return self.row_runs[-1]

    def results(self) -> dict[str, float]:
        return {"seq_cold_s": statistics.median(self.sequential_runs),
                "row_ms": statistics.median(self.row_runs) * 1000, "row_mib": COLS * 4 / 2**20}


def measure_tool(tool: str, endpoint: str, rows: int, row_sample: list[int], bound: Bound) -> dict[str, float]:
    r: dict[str, float] = {}
    cold: list[float] = []
    warm: list[float] = []
    sums: list[float] = []
    peaks: list[float] = []
    seq_ratios: list[float] = []
    fresh_ratios: list[float] = []
    cpu_per_gib: list[float] = []
    plans: list[tuple[float, float]] = []
    loads: list[float] = []
    load_requests: list[float] = []
    for _ in range(REPEATS):  # whole-file rows are medians of fresh mounts: this machine is shared and noisy
        with mount(tool, endpoint) as (mnt, path_of, pid):
            paired = bound.sequential()
            fresh = bound.fresh_sequential()
            cpu_before = cpu_seconds(pid)
            cold.append(read_all(path_of(KEY)))
            cpu_per_gib.append((cpu_seconds(pid) - cpu_before) / (bound.size / 2**30))
            seq_ratios.append(paired / cold[-1])
            fresh_ratios.append(fresh / cold[-1])
            warm.append(read_all(path_of(KEY)))
            peaks.append(peak_rss_mib(pid))
        plans.append(read_ahead_plan(mnt + ".log"))
        with mount(tool, endpoint) as (_, path_of, _pid):
            server_log(endpoint, clear=True)
            start = time.perf_counter()
            arr = array_view(tool, path_of(KEY), rows)
            loads.append(time.perf_counter() - start)
            load_requests.append(float(waited_requests(endpoint)))
            float(arr.sum(dtype="f8"))
            sums.append(time.perf_counter() - start)
            del arr
    r["np_load_cold_ms"] = statistics.median(loads) * 1000
    r["np_load_cold_requests"] = statistics.median(load_requests)
    r["plan_run_mib"], r["plan_window_mib"] = (statistics.median(x) for x in zip(*plans))
    r["seq_cold_s"], r["seq_warm_s"], r["mmap_sum_s"] = (statistics.median(x) for x in (cold, warm, sums))
    r["seq_vs_bound"] = statistics.median(seq_ratios)
    r["seq_vs_fresh_bound"] = statistics.median(fresh_ratios)
    r["cpu_s_per_gib"] = statistics.median(cpu_per_gib)
    rss = max(peaks)
    with mount(tool, endpoint) as (_, path_of, _pid):
        arr = array_view(tool, path_of(KEY), rows)
        float(arr[0, 0])  # open + header outside the row timings
        paired_row = bound.row_median(row_sample[: len(row_sample) // 2])
        server_log(endpoint, clear=True)
        lat = []
        for row in row_sample:
            start = time.perf_counter()
            float(arr[row].sum())
            lat.append(time.perf_counter() - start)
        time.sleep(0.5)  # let read-ahead the rows triggered land in the log
        sent = sum(e["bytes_sent"] for e in server_log(endpoint) if e["method"] == "GET")
        r["row_ms"] = statistics.median(lat) * 1000
        r["row_vs_get"] = statistics.median(lat) / paired_row
        r["row_mib"] = sent / len(row_sample) / 2**20
        del arr
    forget_metadata()
    with mount(tool, endpoint) as (mnt, path_of, _pid):
        server_log(endpoint, clear=True)
        start = time.perf_counter()
        out = subprocess.run(["ls", "-l", os.path.dirname(path_of("many/a00000"))], capture_output=True, text=True)
        r["ls_2000_s"] = time.perf_counter() - start
        r["ls_entries"] = out.stdout.count("\n") - 1
        time.sleep(0.5)  # the server logs a request once answered: let the last ones land
        counts = request_counts(endpoint)
        r["ls_lists"], r["ls_heads"] = float(counts["LIST"]), float(counts["HEAD"])
        start = time.perf_counter()
        found = subprocess.run(["find", os.path.join(mnt, "tree")], capture_output=True, text=True)
        r["find_s"] = time.perf_counter() - start
        r["find_entries"] = len(found.stdout.split())
        firsts = []
        server_log(endpoint, clear=True)
        for i in range(20):  # files find has listed but nobody has read: median of 20
            start = time.perf_counter()
            with open(path_of(f"tree/d05/f{i:02d}"), "rb") as fh:
                fh.read(1)
            firsts.append(time.perf_counter() - start)
        r["first_byte_ms"] = statistics.median(firsts) * 1000
        r["first_byte_requests"] = sum(request_counts(endpoint).values()) / 20
        time.sleep(1.2)  # older than --attr-ttl: each open confirms its file's version with the store
        loads, sent = [], 0
        server_log(endpoint, clear=True)
        for i in range(20):  # np.load of .npy files whose folder was listed (by find above)
            start = time.perf_counter()
            arr = array_view(tool, path_of(f"tree/d06/f{i:02d}"), 1) if tool in CCFS_VARIANTS else \
                np.memmap(path_of(f"tree/d06/f{i:02d}"), dtype="<f8", mode="r")
            loads.append(time.perf_counter() - start)
            del arr
        sent = waited_requests(endpoint)
        r["np_load_ms"] = statistics.median(loads) * 1000
        r["np_load_requests"] = sent / 20
        r["rss_mib"] = max(rss, peak_rss_mib(_pid))
    return r


def measure_big_folder(tool: str, endpoint: str, count: int) -> dict[str, float]:
    """``ls -l`` of one folder of ``count`` arrays: cold, then again on a remount (what a second visit costs)."""
    r: dict[str, float] = {}
    forget_metadata()
    with mount(tool, endpoint) as (_, path_of, _pid):  # how soon a reader of the folder gets a name
        probe = ("import os, sys, time\nstart = time.perf_counter()\n"
                 "with os.scandir(sys.argv[1]) as entries:\n    next(entries)\n"
                 "print(time.perf_counter() - start)")
        out = subprocess.run([sys.executable, "-c", probe, os.path.dirname(path_of("huge/a000000"))],
                             capture_output=True, text=True, check=True)
        r["big_first_name_s"] = float(out.stdout)
    forget_metadata()
    for label in ("cold", "remount"):  # the remount keeps the metadata cache the cold visit filled
        with mount(tool, endpoint) as (_, path_of, pid):
            server_log(endpoint, clear=True)
            daemon_cpu, server_cpu = cpu_seconds(pid), cpu_seconds(SERVER_PID)
            start = time.perf_counter()
            out = subprocess.run(["ls", "-l", os.path.dirname(path_of("huge/a000000"))], capture_output=True,
                                 text=True)
            r[f"big_{label}_s"] = time.perf_counter() - start
            # what bounds the visit on one machine: the daemon's CPU and the one-process server's
            r[f"big_{label}_daemon_ms"] = (cpu_seconds(pid) - daemon_cpu) / count * 1000
            r[f"big_{label}_server_ms"] = (cpu_seconds(SERVER_PID) - server_cpu) / count * 1000
            r["big_entries"] = out.stdout.count("\n") - 1
            time.sleep(0.5)  # the server logs a request once answered: let the last ones land
            counts = request_counts(endpoint)
            r[f"big_{label}_lists"], r[f"big_{label}_heads"] = float(counts["LIST"]), float(counts["HEAD"])
    return r


def measure_disk_cache(endpoint: str) -> dict[str, float]:
    """Whole-file read on a fresh mount sharing a ``--cache-dir`` with the mount that read it first."""
    cache = tempfile.mkdtemp(prefix="bench-ccfs-cache-")
    try:
        with mount("ccfs", endpoint, ("--cache-dir", cache)) as (_, path_of, _pid):
            first = read_all(path_of(KEY))
        with mount("ccfs", endpoint, ("--cache-dir", cache)) as (_, path_of, _pid):
            server_log(endpoint, clear=True)
            seconds = read_all(path_of(KEY))
            gets = sum(1 for e in server_log(endpoint) if e["method"] == "GET" and e["path"].endswith(KEY))
        return {"disk_cold_s": first, "disk_reread_s": seconds, "disk_reread_gets": float(gets)}
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def populate(endpoint: str, rows: int, arrays: int, big_folder: int) -> None:
    os.environ.update(env())
    import cottoncandy as cc

    cci = cc.get_interface(BUCKET, endpoint_url=endpoint, verbose=False, force_bucket_creation=True)
    big = np.random.default_rng(0).random((rows, COLS), dtype=np.float32)
    cci.upload_raw_array(KEY, big, compression=False)
    del big
    small = np.zeros(16)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: cci.upload_raw_array(f"many/a{i:05d}", small, compression=False), range(arrays)))
        list(pool.map(lambda i: cci.upload_raw_array(f"tree/d{i // 20:02d}/f{i % 20:02d}", small,
                                                     compression=False), range(400)))
    if big_folder:  # straight into the server's store: PUT by PUT, 100,000 arrays cost minutes
        metadata = cci.store.head("many/a00000").metadata or {}
        spec = {"bucket": BUCKET, "prefix": "huge/a", "count": big_folder, "body": "\x00" * small.nbytes,
                "metadata": dict(metadata), "access_key": ACCESS}
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_local-s3/fill", method="POST",
                                                      data=json.dumps(spec).encode()), timeout=600).read()


def main() -> None:
    if "--writes" in sys.argv[1:]:  # the write rows (scripts/bench_writes.py), with its own options
        sys.argv.remove("--writes")
        import bench_writes

        bench_writes.main()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--arrays", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100, help="random rows to time")
    parser.add_argument("--peers", default="s3fs,rclone")
    parser.add_argument("--big-folder", type=int, default=100_000, help="arrays in one folder (0: skip)")
    parser.add_argument("--big-folder-tools", default="ccfs", help="tools that list the big folder")
    parser.add_argument("--networks", default="loopback,remote")
    parser.add_argument("--variants", default="all", help=f"ccfs variants to measure ({', '.join(CCFS_VARIANTS)})")
    parser.add_argument("--auth", action="store_true",
                        help="the server checks every request's signature (keys of a user it makes at start)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="remote-like: first-byte delay")
    parser.add_argument("--mbps", type=float, default=100.0, help="remote-like: MB/s per connection")
    parser.add_argument("--compressed", action="store_true",
                        help="only the compressed rows (scripts/bench_compressed.py): a few minutes")
    parser.add_argument("--compressed-mib", type=float, default=64.0, help="size of the compressed rows' array")
    parser.add_argument("--rounds", type=int, default=3, help="compressed rows: medians of this many rounds")
    parser.add_argument("--reads", action="store_true",
                        help="only the read path's rows against their bounds (scripts/bench_reads.py; use --gib 0.25)")
    parser.add_argument("--read-aheads", default="",
                        help="--reads: also measure these --read-ahead settings in each round (e.g. 512K,1M; "
                             "1M/128K: read-ahead 1M made of 128 KiB READs, -o max_read)")
    args = parser.parse_args()
    if args.reads:
        import bench_reads

        bench_reads.run(args)
        shutil.rmtree(CACHE_HOME, ignore_errors=True)
        return
    if args.compressed:
        import bench_compressed

        bench_compressed.run(args)
        shutil.rmtree(CACHE_HOME, ignore_errors=True)
        return
    rows = int(args.gib * 2**30 // (COLS * 4))
    tables = {}
    for network in args.networks.split(","):
        shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
        label = ("loopback" if network == "loopback"
                 else f"remote-like ({args.latency_ms:g} ms to first byte, {args.mbps:g} MB/s per connection)")
        tables[label] = measure_network(args, rows, shaping)
        report(label, tables[label], rows * COLS * 4, args.big_folder)
    if len(tables) > 1:
        print("\n(both tables above come from this one run)")
    shutil.rmtree(CACHE_HOME, ignore_errors=True)


def measure_network(args: argparse.Namespace, rows: int, shaping: list[str]) -> dict[str, dict[str, float]]:
    from cottoncandy.testing.s3server import free_port

    port = free_port()
    global SERVER_PID, ACCESS, SECRET
    checked = ["--auth", "--json"] if args.auth else []
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(port),
                               *shaping, *checked], stdout=subprocess.PIPE, text=True)
    SERVER_PID = server.pid
    REFUSED.clear()
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    if args.auth:  # the server's JSON line: its endpoint and the keys it made (a user of its IAM)
        described = json.loads(endpoint)
        endpoint = described["endpoint_url"]
        ACCESS, SECRET = described["identities"]["user"]["access_key"], described["identities"]["user"]["secret_key"]
        print("every request's signature is checked (moto's IAM)", flush=True)
    try:
        print(f"populating {endpoint} {' '.join(shaping)}: {rows}x{COLS} float32 "
              f"({rows * COLS * 4 / 2**30:.2f} GiB), {args.arrays} small arrays, a tree of 20x20, "
              f"a folder of {args.big_folder}", flush=True)
        populate(endpoint, rows, args.arrays, args.big_folder)
        sample = random.Random(1).sample(range(rows), args.rows)
        bound = Bound(endpoint, rows * COLS * 4)
        bound.sequential()  # warm the client and the server's buffers once
        results: dict[str, dict[str, float]] = {}
        variants = [v for v in CCFS_VARIANTS if args.variants == "all" or v in args.variants.split(",")]
        for tool in [*variants, *[p for p in args.peers.split(",") if p]]:
            if tool not in CCFS_VARIANTS and shutil.which(tool) is None:
                print(f"{tool}: not installed (CCFS_PEERS=1 bash scripts/provision.sh)")
                continue
            try:
                print(f"measuring {tool}...", flush=True)
                results[tool] = measure_tool(tool, endpoint, rows, sample, bound)
                if tool == "ccfs":
                    results[tool].update(measure_disk_cache(endpoint))
                if args.big_folder and tool in args.big_folder_tools.split(","):
                    results[tool].update(measure_big_folder(tool, endpoint, args.big_folder))
                    print("  big folder: " + ", ".join(f"{k} {v:.1f}" for k, v in results[tool].items()
                                                       if k.startswith("big_")), flush=True)
            except Exception as exc:  # a peer failing must not hide the others
                print(f"{tool}: failed ({exc})")
        return {"boto3 (bound)": bound.results(), **results}
    finally:
        server.terminate()
        server.wait()
        forget_metadata()


def report(network: str, results: dict[str, dict[str, float]], size: int, big_folder: int) -> None:
    gib = size / 2**30
    rows = [("sequential read cold (s)", "seq_cold_s"), ("sequential read warm (s)", "seq_warm_s"),
            ("np.load(mmap).sum() cold (s)", "mmap_sum_s"), ("random 16 KiB row, median (ms)", "row_ms"),
            ("MiB sent per random row", "row_mib"), ("ls -l of 2,000 arrays cold (s)", "ls_2000_s"),
            ("find over a 20x20 tree cold (s)", "find_s"), ("first byte after open (ms)", "first_byte_ms"),
            ("daemon peak RSS (MiB)", "rss_mib"), ("daemon CPU s per GiB read cold", "cpu_s_per_gib"),
            ("  ls -l 2,000: LISTs", "ls_lists"), ("  ls -l 2,000: HEADs", "ls_heads"),
            ("  requests per open + first byte", "first_byte_requests"),
            ("np.load(mmap), folder listed (ms)", "np_load_ms"), ("  requests waited for", "np_load_requests"),
            ("np.load(mmap), fresh mount (ms)", "np_load_cold_ms"),
            ("  requests waited for", "np_load_cold_requests"),
            ("  read-ahead run (MiB)", "plan_run_mib"), ("  read-ahead window (MiB)", "plan_window_mib"),
            ("seq. read cold, --cache-dir (s)", "disk_cold_s"),
            ("re-read after remount, --cache-dir (s)", "disk_reread_s"), ("  GETs", "disk_reread_gets")]
    if big_folder:
        rows += [(f"first name of {big_folder:,} arrays cold (s)", "big_first_name_s"),
                 (f"ls -l of {big_folder:,} arrays cold (s)", "big_cold_s"), ("  LISTs", "big_cold_lists"),
                 ("  HEADs", "big_cold_heads"), ("  daemon CPU ms per entry", "big_cold_daemon_ms"),
                 ("  server CPU ms per entry", "big_cold_server_ms"),
                 (f"ls -l of {big_folder:,} after remount (s)", "big_remount_s"),
                 ("  LISTs", "big_remount_lists"), ("  HEADs", "big_remount_heads"),
                 ("  daemon CPU ms per entry", "big_remount_daemon_ms"),
                 ("  server CPU ms per entry", "big_remount_server_ms")]
    tools = list(results)
    print(f"\n{gib:.2f} GiB array, local S3 server (moto), {network}; cold = fresh mount")
    print(f"{'':34}" + "".join(f"{t:>16}" for t in tools))
    for label, key in rows:
        cells = []
        for t in tools:
            v = results[t].get(key)
            cells.append(f"{v:>16.3f}" if isinstance(v, float) else f"{'-':>16}")
        print(f"{label:34}" + "".join(cells))
    from cottoncandy.fastpaths import counts_line

    for tool, refused in REFUSED.items():
        print(f"fast-path refusals ({tool}, every mount): {counts_line(dict(refused))}")
    cc_ = results.get("ccfs", {})
    if cc_:
        print("\nratios")
        print("  (ratios to the bound: medians of runs measured side by side, a few seconds apart)")
        print(f"  ccfs sequential cold throughput / boto3 bound: {cc_['seq_vs_bound']:.2f} "
              f"(target >= 0.8; ccfs {gib / cc_['seq_cold_s'] * 1024:.0f} MiB/s)")
        print(f"  the same against 8 x 8 MiB ranged GETs from a new process and client: "
              f"{cc_['seq_vs_fresh_bound']:.2f} (issue 27's bound; both as throughput ratios, higher is better)")
        print(f"  ccfs random row latency / one ranged GET: {cc_['row_vs_get']:.2f} (target <= 1.5)")
        print(f"  ccfs MiB per random row: {cc_['row_mib']:.2f} (target <= 1)")
        print(f"  ccfs cold ls -l of 2,000 arrays: {cc_['ls_2000_s']:.2f} s (target <= 1), "
              f"{int(cc_['ls_entries'])} entries")
        print(f"  ccfs daemon peak RSS: {cc_['rss_mib']:.0f} MiB (target <= cache {CACHE} + 150 MB)")
        if "big_cold_s" in cc_:
            print(f"  ccfs ls -l of {int(cc_['big_entries']):,} entries: cold {cc_['big_cold_s']:.1f} s "
                  f"(target <= 30 s), after a remount {cc_['big_remount_s']:.1f} s with "
                  f"{cc_['big_remount_lists']:.0f} LISTs and {cc_['big_remount_heads']:.0f} HEADs")
        for variant in list(CCFS_VARIANTS)[1:]:
            if variant in results:
                v = results[variant]
                print(f"  {variant}: sequential cold / bound {v['seq_vs_bound']:.2f}, "
                      f"random row / one GET {v['row_vs_get']:.2f}, MiB per row {v['row_mib']:.2f}")
        for peer in ("s3fs", "rclone"):
            if peer in results:
                p = results[peer]
                timed = [key for _, key in rows[:9] if key != "rss_mib"]
                better = [key for key in timed if key in p and key in cc_ and cc_[key] <= p[key]]
                print(f"  ccfs ahead of {peer} on {len(better)} of {len(timed)} rows; "
                      + ", ".join(f"{k}: {p[k] / cc_[k]:.1f}x" for k in timed if k in p and cc_.get(k)))


if __name__ == "__main__":
    main()
