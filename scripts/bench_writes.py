#!/usr/bin/env python
"""Write benchmark (issue 26 item 8): ``np.save`` through a ``--rw`` ccfs mount vs the library's
``upload_raw_array`` vs boto3's ``upload_fileobj`` vs s3fs-fuse and rclone (``--vfs-cache-mode
writes``), loopback and remote-like, side by side in one run.

Why a script of its own: ``bench_mount.py`` measures reads; this one shares its helpers by import
(server log, mounts, peak RSS) and adds what writes need: PUT-class requests, bytes uploaded and
server-side copies from the local server's request log, the daemon's peak RSS (``VmHWM``), and the
bytes staged on local disk, sampled every 50 ms during each write (files under the tool's staging
folder plus unlinked files the daemon holds open, less what was there before the write).

Every figure is a median of ``--rounds`` rounds; within a round the tools run one after the other
(alternating, so a burst of load on this shared machine hits all of them alike). Each ratio is
printed beside the bound the issue's Targets set for it. A peer that is not installed is reported
as such (``CCFS_PEERS=1 bash scripts/provision.sh`` installs Debian's s3fs and rclone).

    python scripts/bench_writes.py [--mib 256 | --gib1] [--rounds 3] [--networks loopback,remote]
                                   [--peers s3fs,rclone] [--latency-ms 20] [--mbps 100]

Rows: ``np.save`` of N MiB of float64 (seconds; for rclone also the time until the object is
stored, since its ``close()`` returns before the upload); ``open_memmap(mode='w+')`` of
``--memmap-mib`` filled and flushed; 1,000 consecutive rows of an N MiB array updated through
``np.load(mmap_mode='r+')`` and flushed (bytes uploaded vs the array's size and vs the dirty 16 MiB
parts, UploadPartCopy count). A row the mount cannot do yet prints "not available: <why>".

Seen on the local server (moto), not a fault of the tools: peers that upload one key twice at once
(s3fs's open_memmap, rclone's write-back) make moto raise on a multipart id it has just dropped
(its tracebacks go to this script's stderr), and on a loaded machine a 1 GiB CompleteMultipartUpload
can outlast the client's read timeout: the retried Complete gets moto's 500 while the object is
already stored (seen once, ccfs at 1 GiB loopback: np.save still returned without error). Those
requests are counted all the same.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the work tree's library and daemon, not whatever the venv's install points at (an editable install
#: made from another clone would measure that clone's library against this tree's daemon)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), ROOT]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
import bench_mount as bm  # noqa: E402  (the read benchmark's helpers: server log, mounts, RSS)
import bench_reads  # noqa: E402  (py-spy on the daemon: CCFS_BENCH_PYSPY)

PART = 16 * 2**20  # the library's part size, and the one every tool is set to where it can be
COLS = 1024  # float64 -> 8 KiB rows
UPDATE_ROWS = 1000
MB = 10**6


def put_class(entries: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """PUT-class requests to ``key`` (PUT, POST: CreateMultipartUpload, UploadPart, Complete,
    PutObject), the server-side copies and the refused (non-2xx) among them, the request body bytes
    they carried, and PUT-class requests to other keys meanwhile (``strays``: a peer's late upload
    of an earlier file; not counted against the tool measured)."""
    writes = [e for e in entries if e["method"] in ("PUT", "POST") and not e["path"].startswith("/_")]
    path = f"/{bm.BUCKET}/{urllib.parse.quote(key)}"
    puts = [e for e in writes if urllib.parse.unquote(e["path"]) in (path, urllib.parse.unquote(path))]
    copies = [e for e in puts if e.get("copy_source")]
    others = sorted({urllib.parse.unquote(e["path"]) for e in writes if e not in puts})
    return {"put_class": len(puts), "copies": len(copies), "strays": len(writes) - len(puts),
            "stray_keys": ", ".join(others),
            "refused": sum(1 for e in puts if not 200 <= int(e["status"]) < 300),
            "uploaded": sum(int(e.get("bytes_received") or 0) for e in puts if not e.get("copy_source"))}


def timeline(entries: list[dict[str, Any]], key: str, start: float, end: float) -> dict[str, float]:
    """Where a write's time went, from the server's log (wall-clock ``started_at``/``ended_at`` of each
    request to ``key``; ``start``/``end``: the write's call and return): seconds until the first
    UploadPart (or PUT) reached the server, mean parts in flight while any was, seconds from the last
    part's answer to the CompleteMultipartUpload's arrival, the Complete's own seconds, and from its
    answer to the call's return. ``{}`` for an old server without times."""
    path = f"/{bm.BUCKET}/{urllib.parse.quote(key)}"
    mine = [e for e in entries if e.get("started_at") and urllib.parse.unquote(e["path"]) == urllib.parse.unquote(path)]
    parts = [e for e in mine if e["method"] == "PUT" and not e.get("copy_source")]
    completes = [e for e in mine if e["method"] == "POST" and "uploadId" in e["query"]]
    if not parts:
        return {}
    first, last = min(e["started_at"] for e in parts), max(e["ended_at"] for e in parts)
    busy = sum(e["ended_at"] - e["started_at"] for e in parts)
    out = {"first_part": first - start, "in_flight": busy / max(last - first, 1e-9), "parts_span": last - first}
    if completes:
        done = completes[-1]
        out.update(to_complete=done["started_at"] - last, complete=done["ended_at"] - done["started_at"],
                   after=end - done["ended_at"])
    return out


class StagedSampler:
    """Peak bytes a tool holds on local disk while it writes: allocated blocks of the files under
    ``folders`` and of unlinked regular files the daemon ``pid`` holds open (s3fs's temporary
    files), less those present when sampling began. Sampled every 50 ms in a thread."""

    def __init__(self, pid: int | None, folders: list[str]):
        self.pid, self.folders = pid, folders
        self.peak = 0
        self._stop = threading.Event()
        self._base = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> int:
        held: dict[tuple[int, int], int] = {}
        for folder in self.folders:
            for root, _dirs, files in os.walk(folder):
                for name in files:
                    with contextlib.suppress(OSError):
                        st = os.lstat(os.path.join(root, name))
                        held[(st.st_dev, st.st_ino)] = st.st_blocks * 512
        if self.pid is not None:
            fd_dir = f"/proc/{self.pid}/fd"
            with contextlib.suppress(OSError):
                for fd in os.listdir(fd_dir):
                    with contextlib.suppress(OSError):
                        if os.readlink(os.path.join(fd_dir, fd)).endswith(" (deleted)"):
                            st = os.stat(os.path.join(fd_dir, fd))
                            if stat.S_ISREG(st.st_mode):
                                held[(st.st_dev, st.st_ino)] = st.st_blocks * 512
        return sum(held.values())

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._sample() - self._base)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample() - self._base)
        return self.peak


#: one network's write rounds by tool, its memmap rows by tool, and the tools
Measured = tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, object]], list["Tool"]]


@dataclass
class Tool:
    """One way to write: a mount (ccfs, s3fs, rclone) or a library call (upload_raw_array, boto3)."""

    name: str
    mnt: str | None = None
    pid: int | None = None
    staging: list[str] = field(default_factory=list)
    #: a .npy written at name N is stored at key N without .npy (ccfs's arrays), else byte for byte
    array_keys: bool = False
    #: close() returns before the upload is done (rclone's write-back): wait for the object
    late: bool = False
    rss_at_start: float = float("nan")

    def key_of(self, name: str) -> str:
        return name[:-4] if self.array_keys and name.endswith(".npy") else name


def s3_client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, config=Config(
        request_checksum_calculation="when_required", max_pool_connections=16))


@contextlib.contextmanager
def peer_mount(tool: str, endpoint: str) -> Iterator[Tool]:
    """Mount the bucket read-write with s3fs or rclone (16 MiB parts); yield the Tool."""
    mnt = tempfile.mkdtemp(prefix=f"bench-w-{tool}-")
    staging = tempfile.mkdtemp(prefix=f"bench-w-{tool}-stage-")
    if tool == "s3fs":
        passwd = mnt + ".passwd"
        with open(passwd, "w") as fh:
            fh.write(f"{bm.ACCESS}:{bm.SECRET}\n")
        os.chmod(passwd, 0o600)
        subprocess.run(["s3fs", bm.BUCKET, mnt, "-o", f"url={endpoint}", "-o", "use_path_request_style",
                        "-o", f"passwd_file={passwd}", "-o", "multipart_size=16", "-o", f"tmpdir={staging}",
                        "-o", "dbglevel=err"], check=True, capture_output=True)
    else:
        rclone_env = {k: v for k, v in bm.env().items() if k != "AWS_CA_BUNDLE"}
        rclone_env.update(RCLONE_CONFIG_CCBENCH_TYPE="s3", RCLONE_CONFIG_CCBENCH_PROVIDER="Other",
                          RCLONE_CONFIG_CCBENCH_ENDPOINT=endpoint, RCLONE_CONFIG_CCBENCH_ACCESS_KEY_ID=bm.ACCESS,
                          RCLONE_CONFIG_CCBENCH_SECRET_ACCESS_KEY=bm.SECRET)
        subprocess.run(["rclone", "mount", f"ccbench:{bm.BUCKET}", mnt, "--daemon", "--vfs-cache-mode", "writes",
                        "--cache-dir", staging, "--vfs-write-back", "1s", "--s3-chunk-size", "16M",
                        "--dir-cache-time", "1s"], check=True, capture_output=True, env=rclone_env)
    try:
        bm.wait_mounted(mnt)
        out = subprocess.run(["pgrep", "-f", mnt], capture_output=True, text=True)
        pid = int(out.stdout.split()[0]) if out.stdout.split() else None
        yield Tool(tool, mnt, pid, [staging], late=tool == "rclone", rss_at_start=bm.peak_rss_mib(pid))
    finally:
        bm.unmount(mnt)
        shutil.rmtree(mnt, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.remove(mnt + ".passwd")


@contextlib.contextmanager
def ccfs_mount(endpoint: str) -> Iterator[Tool]:
    """A ``--rw`` ccfs mount whose write staging folder is ``--cache-dir``'s ``writes``."""
    cache_dir = tempfile.mkdtemp(prefix="bench-w-ccfs-cache-")
    try:
        with bm.mount("ccfs", endpoint, extra=("--rw", "--cache-dir", cache_dir)) as (mnt, _path_of, pid):
            yield Tool("ccfs --rw", mnt, pid, [os.path.join(cache_dir, "writes")], array_keys=True,
                       rss_at_start=bm.peak_rss_mib(pid))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def wait_stored(client, key: str, old_etag: str | None = None, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    """Until ``key`` exists (with an ETag other than ``old_etag``): rclone uploads after close."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            if client.head_object(Bucket=bm.BUCKET, Key=key)["ETag"] != old_etag:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{key} was not stored within {timeout} s")


def measured(tool: Tool, endpoint: str, client, key: str, action: Callable[[], object],  # type: ignore[no-untyped-def]
             old_etag: str | None = None) -> dict[str, float]:
    """Run ``action`` (a write), timing it; wait until ``key`` is stored; count its requests. Also the
    CPU seconds the tool (the daemon, or this process for a library call) and the local server spent
    meanwhile: where the time went (the server's own work, e.g. moto copying a 1 GiB object in
    memory for each UploadPartCopy, vs the tool's)."""
    bm.server_log(endpoint, clear=True)
    sampler = StagedSampler(tool.pid, tool.staging)
    tool_cpu, server_cpu = tool_cpu_seconds(tool), bm.cpu_seconds(bm.SERVER_PID)
    start, wall = time.perf_counter(), time.time()
    action()
    closed = time.perf_counter() - start
    if tool.late:
        wait_stored(client, key, old_etag)
    stored = time.perf_counter() - start
    cpu = {"tool_cpu": tool_cpu_seconds(tool) - tool_cpu, "server_cpu": bm.cpu_seconds(bm.SERVER_PID) - server_cpu}
    staged = sampler.stop()
    time.sleep(0.5)  # the server logs a request once answered: let the last ones land
    entries = bm.server_log(endpoint)
    return {"s": closed, "stored_s": stored, "staged": staged, **cpu, **put_class(entries, key),
            **timeline(entries, key, wall, wall + stored)}


def tool_cpu_seconds(tool: Tool) -> float:
    """CPU seconds (user + system) so far of the tool's daemon, or of this process for a library call."""
    if tool.pid is not None:
        return bm.cpu_seconds(tool.pid)
    times = os.times()
    return times.user + times.system


def write_rounds(tools: list[Tool], endpoint: str, array: np.ndarray, rounds: int,
                 network: str = "") -> dict[str, list[dict[str, Any]]]:
    """``np.save`` (or the library call) of ``array`` by every tool, ``rounds`` times, alternating."""
    from boto3.s3.transfer import TransferConfig

    import cottoncandy as cc

    client = s3_client(endpoint)
    cci = cc.get_interface(bm.BUCKET, endpoint_url=endpoint, verbose=False)
    raw = array.tobytes()
    transfer = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)  # boto3's 10 threads
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tools}
    for r in range(rounds):
        for tool in tools:
            name = f"w/{tool.name.split()[0].replace('_', '-')}-{r}.npy"
            key = tool.key_of(name)
            act: Callable[[], object]
            if tool.name == "upload_raw_array":
                act = functools.partial(cci.upload_raw_array, key, array, compression=False)
            elif tool.name == "boto3 upload_fileobj":
                act = functools.partial(client.upload_fileobj, io.BytesIO(raw), bm.BUCKET, key, Config=transfer)
            else:
                assert tool.mnt is not None
                os.makedirs(os.path.join(tool.mnt, "w"), exist_ok=True)
                act = functools.partial(np.save, os.path.join(tool.mnt, name), array)
            try:
                with bench_reads.profiled(tool.pid, f"np-save-{network}", r == 0 and tool.name == "ccfs --rw"):
                    run = measured(tool, endpoint, client, key, act)
                run["rss"] = bm.peak_rss_mib(tool.pid)  # nan for the library calls (no daemon)
                runs[tool.name].append(run)
            except Exception as exc:  # one tool failing must not hide the others
                print(f"  {tool.name}: np.save failed ({exc})", flush=True)
            with contextlib.suppress(Exception):
                client.delete_object(Bucket=bm.BUCKET, Key=key)  # the server keeps objects in memory
        print(f"  round {r + 1}/{rounds} done", flush=True)
    return runs


def memmap_rows(tool: Tool, endpoint: str, memmap_mib: int, update_mib: int) -> dict[str, object]:
    """``open_memmap`` w+ of ``memmap_mib`` filled and flushed, and 1,000 consecutive rows of an
    ``update_mib`` array updated through ``mmap_mode='r+'``; each "not available: why" on an error."""
    import cottoncandy as cc

    assert tool.mnt is not None
    client = s3_client(endpoint)
    out: dict[str, object] = {}
    name = "m/w.npy"
    path = os.path.join(tool.mnt, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = memmap_mib * 2**20 // (COLS * 8)

    def fill() -> None:
        a = np.lib.format.open_memmap(path, mode="w+", dtype="<f8", shape=(rows, COLS))
        a[:] = 1.5
        a.flush()
        del a

    try:
        out["w+"] = measured(tool, endpoint, client, tool.key_of(name), fill)
        client.head_object(Bucket=bm.BUCKET, Key=tool.key_of(name))
    except Exception as exc:
        out["w+"] = f"not available: {type(exc).__name__}: {exc}"
    with contextlib.suppress(Exception):
        client.delete_object(Bucket=bm.BUCKET, Key=tool.key_of(name))

    big_rows = update_mib * 2**20 // (COLS * 8)
    base = np.arange(big_rows * COLS, dtype="<f8").reshape(big_rows, COLS)
    name = "u/big.npy"
    key = tool.key_of(name)
    try:
        if tool.array_keys:
            cc.get_interface(bm.BUCKET, endpoint_url=endpoint, verbose=False).upload_raw_array(key, base,
                                                                                              compression=False)
        else:  # in 16 MiB parts: one PUT of 1 GiB is over the local server's request size (413)
            from boto3.s3.transfer import TransferConfig

            buf = io.BytesIO()
            np.save(buf, base)
            buf.seek(0)
            client.upload_fileobj(buf, bm.BUCKET, key,
                                  Config=TransferConfig(multipart_threshold=PART, multipart_chunksize=PART))
        old = client.head_object(Bucket=bm.BUCKET, Key=key)["ETag"]
    except Exception as exc:  # the array to update could not be stored (a 1 GiB Complete outlasting the
        out["r+"] = f"not available: storing the array to update failed: {type(exc).__name__}: {exc}"  # timeout)
        return out
    first = big_rows // 3
    path = os.path.join(tool.mnt, name)
    time.sleep(1.2)  # s3fs/rclone list with a short TTL: let them see the new object

    def update() -> None:
        a = np.load(path, mmap_mode="r+")
        a[first:first + UPDATE_ROWS] = -1.0
        a.flush()
        del a

    try:
        r = measured(tool, endpoint, client, key, update, old_etag=old)
        wait_stored(client, key, old, timeout=30)  # rclone may upload twice: the object can be away a moment
        back = client.get_object(Bucket=bm.BUCKET, Key=key, Range=f"bytes=-{COLS * 8}")["Body"].read()
        if np.frombuffer(back, "<f8")[-1] != base[-1, -1]:
            raise RuntimeError("the last row changed")
        lo, hi = first * COLS * 8, (first + UPDATE_ROWS) * COLS * 8  # body offsets of the raw array
        r["dirty_parts"] = (hi - 1) // PART - lo // PART + 1
        r["array_bytes"] = base.nbytes
        out["r+"] = r
    except Exception as exc:
        out["r+"] = f"not available: {type(exc).__name__}: {exc}"
    with contextlib.suppress(Exception):
        client.delete_object(Bucket=bm.BUCKET, Key=key)
    return out


def measure_network(args: argparse.Namespace, shaping: list[str], array: np.ndarray) -> Measured:
    from cottoncandy.testing.s3server import free_port

    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(free_port()),
                               *shaping], stdout=subprocess.PIPE, text=True)
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    bm.SERVER_PID = server.pid
    s3_client(endpoint).create_bucket(Bucket=bm.BUCKET)
    try:
        with contextlib.ExitStack() as stack:
            tools = [stack.enter_context(ccfs_mount(endpoint)), Tool("upload_raw_array"), Tool("boto3 upload_fileobj")]
            for peer in [p for p in args.peers.split(",") if p]:
                if shutil.which(peer) is None:
                    print(f"{peer}: not installed (CCFS_PEERS=1 bash scripts/provision.sh)", flush=True)
                    continue
                try:
                    tools.append(stack.enter_context(peer_mount(peer, endpoint)))
                except Exception as exc:
                    print(f"{peer}: mount failed ({exc})", flush=True)
            runs = write_rounds(tools, endpoint, array, args.rounds, "remote" if shaping else "loopback")
            mm: dict[str, dict[str, object]] = {}
            for tool in tools:
                if tool.mnt is not None and not args.no_memmap:
                    print(f"  memmap rows: {tool.name}", flush=True)
                    mm[tool.name] = memmap_rows(tool, endpoint, args.memmap_mib, args.update_mib)
                    if tool.pid is not None:
                        mm[tool.name]["rss"] = bm.peak_rss_mib(tool.pid)
            return runs, mm, tools
    finally:
        server.terminate()
        server.wait()
        bm.forget_metadata()


def med(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def report(label: str, runs: dict[str, list[dict[str, Any]]], mm: dict[str, dict[str, object]], tools: list[Tool],
           mib: int, parts: int) -> None:
    print(f"\nwrites, {label}: np.save of {mib} MiB float64, medians of {len(next(iter(runs.values())))} rounds")
    print(f"  {'tool':<22}{'close s':>9}{'stored s':>10}{'PUT-class':>10}{'MB up':>8}{'staged MB':>11}"
          f"{'peak RSS MiB':>14}{'tool CPU s':>12}{'server CPU s':>14}")
    for tool in tools:
        r = runs[tool.name]
        if not r:
            print(f"  {tool.name:<22} no run succeeded")
            continue
        rss = max((x.get("rss", float("nan")) for x in r), default=float("nan"))
        print(f"  {tool.name:<22}{med(r, 's'):>9.2f}{med(r, 'stored_s'):>10.2f}{med(r, 'put_class'):>10.0f}"
              f"{med(r, 'uploaded') / MB:>8.0f}{max(x['staged'] for x in r) / MB:>11.1f}"
              f"{rss:>14.0f}{med(r, 'tool_cpu'):>12.2f}{med(r, 'server_cpu'):>14.2f}"
              + (f"  (at mount {tool.rss_at_start:.0f})" if tool.pid else "")
              + (f"  [refused {med(r, 'refused'):.0f}]" if med(r, "refused") else "")
              + (f"  [{med(r, 'strays'):.0f} PUT-class to other keys meanwhile: "
                 f"{'; '.join(sorted({x['stray_keys'] for x in r if x.get('stray_keys')}))}]"
                 if med(r, "strays") else ""))
    print("  timeline (medians; from the server's log): first part at s | mean parts in flight | last part "
          "-> Complete s | Complete s | Complete -> return s")
    for tool in tools:
        r = [x for x in runs[tool.name] if "first_part" in x]
        if r:
            print(f"  {tool.name:<22}{med(r, 'first_part'):>7.2f}{med(r, 'in_flight'):>7.1f}"
                  f"{med(r, 'to_complete'):>8.2f}{med(r, 'complete'):>8.2f}{med(r, 'after'):>8.2f}")
    cc, lib = runs.get("ccfs --rw", []), runs.get("upload_raw_array", [])
    if cc and lib:
        pairs = [a["s"] / b["s"] for a, b in zip(cc, lib)]
        cache_mib = int(bm.CACHE.rstrip("M"))
        rss_bound = cache_mib + 150 * MB / 2**20
        rss = max(x.get("rss", float("nan")) for x in cc)
        print(f"  np.save via mount / upload_raw_array time: median of paired rounds {statistics.median(pairs):.2f}x "
              f"(rounds {', '.join(f'{p:.2f}' for p in pairs)}; target <= 1.25x)")
        print(f"  PUT-class requests: {med(cc, 'put_class'):.0f} (target <= {parts} + 2 for {mib} MiB in 16 MiB parts)")
        print(f"  bytes staged on disk: {max(x['staged'] for x in cc):.0f} (target 0)")
        print(f"  daemon peak RSS: {rss:.0f} MiB (target <= --cache-size {cache_mib} MiB + 150 MB "
              f"= {rss_bound:.0f} MiB)")
    for tool_name, rows in mm.items():
        for what, row in rows.items():
            if what == "rss":
                continue
            title = {"w+": "open_memmap w+ filled + flush", "r+": f"{UPDATE_ROWS} rows r+ + flush"}[what]
            if isinstance(row, str):
                print(f"  {tool_name:<12} {title}: {row}")
                continue
            assert isinstance(row, dict)
            line = (f"  {tool_name:<12} {title}: {row['stored_s']:.2f} s, {row['put_class']} PUT-class, "
                    f"{row['uploaded'] / MB:.1f} MB uploaded, {row['copies']} UploadPartCopy, "
                    f"staged peak {row['staged'] / MB:.1f} MB; CPU: daemon {row['tool_cpu']:.2f} s, "
                    f"server {row['server_cpu']:.2f} s")
            if what == "r+":
                bound = row["dirty_parts"] * PART
                line += (f"; uploaded / array {row['uploaded'] / row['array_bytes']:.3f}, "
                         f"vs dirty parts ({row['dirty_parts']} x 16 MiB) {row['uploaded'] / bound:.2f}x (target <= 1)")
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="np.save size and r+ array size (MiB)")
    parser.add_argument("--gib1", action="store_true", help="1 GiB instead of --mib (the issue's figure)")
    parser.add_argument("--memmap-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memmap", action="store_true", help="only the np.save rows (no open_memmap, r+)")
    parser.add_argument("--peers", default="s3fs,rclone")
    parser.add_argument("--networks", default="loopback,remote")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="remote-like: first-byte delay")
    parser.add_argument("--mbps", type=float, default=100.0, help="remote-like: MB/s per connection")
    args = parser.parse_args()
    mib = 1024 if args.gib1 else args.mib
    args.update_mib = mib
    os.environ.update(bm.env())
    os.environ.setdefault("CCFS_BENCH_ARGS", "--log-level INFO")  # bench_mount's DEBUG log costs writes time
    array = np.random.default_rng(1).standard_normal((mib * 2**20 // (COLS * 8), COLS))
    parts = -(-array.nbytes // PART)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: figures are noisy)")
    try:
        for network in args.networks.split(","):
            shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
            label = ("loopback" if network == "loopback"
                     else f"remote-like ({args.latency_ms:g} ms to first byte, {args.mbps:g} MB/s per connection)")
            print(f"measuring {label}...", flush=True)
            runs, mm, tools = measure_network(args, shaping, array)
            report(label, runs, mm, tools, mib, parts)
        print(f"\n(all tables from this one run; load average now {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(bm.CACHE_HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
