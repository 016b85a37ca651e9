#!/usr/bin/env python
"""Library transfer benchmark: this cottoncandy against cottoncandy 0.4.0 and plain boto3, in one run.

For each kind of transfer (raw uncompressed, raw with the default compression, .npy, dask, 200
small arrays) and each direction, one fresh child process per measurement runs the call and
reports its seconds and its peak memory beyond the array (peak RSS during the call minus RSS
before it, minus the result for downloads; the peak is reset before the call through
``/proc/self/clear_refs``). Children of "0.4.0" run under cottoncandy 0.4.0's side environment
(``tests/compat/venv040.py``: ``~/.cache/ccfs-compat/venv040``, built if missing); "ours" and
"boto3" (``upload_fileobj``/``download_fileobj``; gzip.compress level 9 as 0.4.0 did; no dask
row) under this interpreter. Both libraries run the same child code: ours is a drop-in.

The S3 server runs in its own process, once on loopback and once answering like a remote S3
(first-byte latency and a bandwidth cap per connection: ``--latency-ms``, ``--mbps``). Medians of
``--repeats`` runs; the ratio column is ours / 0.4.0 (time: below 1 is faster). A line after each
table counts ours' fast requests the server refused (``cottoncandy.fastpaths.refusals``, summed over
its children), each asked again through boto3: 0 on a sound endpoint.

    python scripts/bench_api.py [--mib 256] [--repeats 3] [--networks loopback,remote]
                                [--kinds raw,gzip,npy,dask,small] [--libs ours,040,boto3] [--auth]

``--auth``: the server checks every request's SigV4 signature (``s3server --auth``); the refusals line
then shows whether the fast path's requests were all accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-api"
KINDS = ("raw", "gzip", "npy", "dask", "small")
LIBS = ("ours", "040", "boto3")
LABELS = {"raw": "raw, uncompressed", "gzip": "raw, default (gzip)", "npy": ".npy", "dask": "dask (numpy in)",
          "small": "200 small arrays"}
SMALL_COUNT, SMALL_SHAPE = 200, (64, 64)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


# --- the child: one measurement ---------------------------------------------------------------


def vm_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM (the peak RSS) to the current RSS


def make_array(mib: int):  # type: ignore[no-untyped-def]
    """Noisy float32 data (what gzip barely shrinks, as most measurements are), made in slices so no
    temporary larger than the array exists."""
    import numpy as np

    cols = 1024
    rows = mib * 2**20 // 4 // cols
    arr = np.empty((rows, cols), dtype="<f4")
    rng = np.random.default_rng(0)
    for start in range(0, rows, 4096):
        arr[start : start + 4096] = rng.standard_normal((min(4096, rows - start), cols), dtype=np.float32)
    return arr


def run_child(lib: str, kind: str, op: str, endpoint: str, mib: int) -> dict[str, Any]:
    import numpy as np

    if lib != "boto3":  # the library measured is the one named: 0.4.0 from its side venv, ours from ROOT
        import cottoncandy

        assert (cottoncandy.__version__ == "0.4.0") == (lib == "040"), (lib, cottoncandy.__file__)
    key = f"{lib}/{kind}"
    arr = None
    if op == "upload":
        arr = make_array(mib) if kind != "small" else [np.full(SMALL_SHAPE, i, dtype="<f4") for i in range(SMALL_COUNT)]
    call = boto_call(kind, op, key, endpoint, arr) if lib == "boto3" else cc_call(kind, op, key, endpoint, arr)
    reset_peak()
    base = vm_kib("VmRSS")
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    peak = vm_kib("VmHWM")
    held = 0
    if op == "download":
        held = sum(a.nbytes for a in result) if isinstance(result, list) else result.nbytes
        expected = SMALL_COUNT * 4 * SMALL_SHAPE[0] * SMALL_SHAPE[1] if kind == "small" else mib * 2**20
        assert held == expected, (held, expected)
    measured: dict[str, Any] = {"seconds": seconds, "extra_mib": max(0.0, (peak - base) / 1024 - held / 2**20)}
    if lib == "ours":  # fast requests the server refused (each asked again through boto3): 0 on a sound endpoint
        from cottoncandy import fastpaths

        measured["refused"] = fastpaths.refusals()
    return measured


def dask_buffersize(nbytes: int) -> int:
    """Parts as a 256 MiB array has with the default 100 MiB buffersize (3 slabs), at any --mib."""
    return max(5 * 2**20, nbytes * 100 // 256)


def cc_call(kind: str, op: str, key: str, endpoint: str, arr):  # type: ignore[no-untyped-def]
    """The call through cottoncandy's API (the same text for 0.4.0 and ours)."""
    import numpy as np

    import cottoncandy as cc

    cci = cc.get_interface(BUCKET, ACCESS_KEY=os.environ["AWS_ACCESS_KEY_ID"],  # the parent's CREDENTIALS
                           SECRET_KEY=os.environ["AWS_SECRET_ACCESS_KEY"], endpoint_url=endpoint, verbose=False)
    cci.exists_object("warm-up")  # the client and its connection pool are made before measuring
    if kind == "dask":  # dask's own first-use costs (imports; its first compute imports distributed when
        import dask.array  # installed, ~1.5 s here): one-off per process, not transfer costs

        dask.array.zeros(1).compute()
    if op == "upload":
        return {
            "raw": lambda: cci.upload_raw_array(key, arr, compression=False),
            "gzip": lambda: cci.upload_raw_array(key, arr),
            "npy": lambda: cci.upload_npy_array(key, arr),
            "dask": lambda: cci.upload_dask_array(key, arr, buffersize=dask_buffersize(arr.nbytes)),
            "small": lambda: [cci.upload_raw_array(f"{key}/{i}", a) for i, a in enumerate(arr)],
        }[kind]
    return {
        "raw": lambda: cci.download_raw_array(key),
        "gzip": lambda: cci.download_raw_array(key),
        "npy": lambda: cci.download_npy_array(key),
        "dask": lambda: np.asarray(cci.download_dask_array(key).compute()),
        "small": lambda: [cci.download_raw_array(f"{key}/{i}") for i in range(SMALL_COUNT)],
    }[kind]


def boto_call(kind: str, op: str, key: str, endpoint: str, arr):  # type: ignore[no-untyped-def]
    """The same transfer with boto3's managed transfers: no metadata, whole bodies in memory."""
    import gzip
    import io

    import boto3
    import numpy as np
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    from cottoncandy.storage.s3 import BufferReader

    client = boto3.client("s3", endpoint_url=endpoint,
                          config=Config(request_checksum_calculation="when_required", max_pool_connections=32))
    transfer = TransferConfig(max_concurrency=8, multipart_chunksize=16 * 2**20, multipart_threshold=64 * 2**20)
    client.list_objects_v2(Bucket=BUCKET, MaxKeys=1)

    def put(k: str, body) -> None:  # type: ignore[no-untyped-def]
        client.upload_fileobj(body, BUCKET, k, Config=transfer)

    def get(k: str) -> memoryview:
        buf = io.BytesIO()
        client.download_fileobj(BUCKET, k, buf, Config=transfer)
        return buf.getbuffer()

    if kind == "dask":
        raise SystemExit("boto3 has no dask layout")
    if op == "upload":
        def upload() -> None:
            if kind == "raw":
                put(key, BufferReader(memoryview(arr).cast("B")))
            elif kind == "gzip":
                put(key, io.BytesIO(gzip.compress(memoryview(arr).cast("B"), 9)))
            elif kind == "npy":
                buf = io.BytesIO()
                np.save(buf, arr)
                buf.seek(0)
                put(key, buf)
            else:
                for i, a in enumerate(arr):
                    put(f"{key}/{i}", io.BytesIO(gzip.compress(a.tobytes(), 9)))
        return upload

    def download():  # type: ignore[no-untyped-def]
        if kind == "raw":
            return np.frombuffer(get(key), dtype="<f4")
        if kind == "gzip":
            return np.frombuffer(gzip.decompress(get(key)), dtype="<f4")
        if kind == "npy":
            return np.load(io.BytesIO(get(key)))
        return [np.frombuffer(gzip.decompress(get(f"{key}/{i}")), dtype="<f4") for i in range(SMALL_COUNT)]
    return download


# --- the parent: servers, children, tables ----------------------------------------------------


def python_for(lib: str) -> tuple[str, dict[str, str]]:
    """The interpreter and environment of a child: 0.4.0's side environment, or this one."""
    if lib == "040":
        sys.path.insert(0, str(ROOT))
        from tests.compat.venv040 import ensure_venv
        from tests.sidevenv import quiet_env

        python = str(ensure_venv(log=lambda msg: print(msg, file=sys.stderr)))
        env = quiet_env(Path(tempfile.gettempdir()) / "bench-api-040-home")
    else:
        python = sys.executable
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT)
    env.update(CREDENTIALS)
    return python, env


def child(lib: str, kind: str, op: str, endpoint: str, mib: int) -> dict[str, Any] | None:
    python, env = python_for(lib)
    cmd = [python, str(Path(__file__).resolve()), "--child", lib, "--kind", kind, "--op", op,
           "--endpoint", endpoint, "--mib", str(mib)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        if lib == "boto3" and kind == "dask":
            return None
        raise RuntimeError(f"{lib} {kind} {op} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_network(args: argparse.Namespace, label: str, shaping: list[str]) -> None:
    from cottoncandy.testing.s3server import free_port

    port = free_port()
    checked = ["--auth", "--json"] if args.auth else []
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(port), *shaping,
                               *checked], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    if args.auth:  # the server's JSON line: its endpoint and the keys it made (a user of its IAM)
        described = json.loads(endpoint)
        endpoint = described["endpoint_url"]
        user = described["identities"]["user"]
        CREDENTIALS.update(AWS_ACCESS_KEY_ID=user["access_key"], AWS_SECRET_ACCESS_KEY=user["secret_key"])
        label += "; every signature checked (moto's IAM)"
    kinds = args.kinds.split(",")
    libs = args.libs.split(",")
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    refused: Counter[str] = Counter()  # ours: fast requests refused, by cause, over every measurement
    short = label.split(" (")[0]  # for the progress lines
    try:
        import boto3
        from botocore.config import Config

        os.environ.update(CREDENTIALS)
        boto3.client("s3", endpoint_url=endpoint, config=Config(request_checksum_calculation="when_required")
                     ).create_bucket(Bucket=BUCKET)
        for _ in range(args.repeats):
            for kind in kinds:
                for lib in libs:
                    if lib == "boto3" and kind == "dask":
                        continue
                    for op in ("upload", "download"):
                        got = child(lib, kind, op, endpoint, args.mib)
                        print(f"{short}: {lib} {kind} {op}: {got}", file=sys.stderr, flush=True)
                        if got is not None:
                            refused.update(got.pop("refused", {}))
                            results.setdefault((lib, kind, op), []).append(got)
    finally:
        server.terminate()
        server.wait()
    print_table(args, label, kinds, libs, results)
    if "ours" in libs:
        from cottoncandy.fastpaths import counts_line

        print(f"fast-path refusals (ours, every measurement): {counts_line(dict(refused))}", flush=True)


def print_table(args: argparse.Namespace, label: str, kinds: list[str], libs: list[str],
                results: dict[tuple[str, str, str], list[dict[str, Any]]]) -> None:
    med = {k: {f: statistics.median(r[f] for r in runs) for f in ("seconds", "extra_mib")}
           for k, runs in results.items()}
    names = {"ours": "ours", "040": "0.4.0", "boto3": "boto3"}
    print(f"\n{args.mib} MiB float32 array (200 small: 64x64 float32 each), local S3 server in its own process, "
          f"{label}; median of {args.repeats}, fresh process per measurement; MiB = peak RSS beyond the array")
    head = f"{'transfer':<30}" + "".join(f"{names[lib] + ' s':>10}" for lib in libs)
    head += f"{'ours/0.4.0':>12}" + "".join(f"{names[lib] + ' MiB':>12}" for lib in libs)
    print(head)
    for kind in kinds:
        for op in ("upload", "download"):
            row = f"{LABELS[kind] + ' ' + op:<30}"
            for lib in libs:
                m = med.get((lib, kind, op))
                row += f"{m['seconds']:>10.2f}" if m else f"{'-':>10}"
            ours, old = med.get(("ours", kind, op)), med.get(("040", kind, op))
            row += f"{ours['seconds'] / old['seconds']:>12.2f}" if ours and old else f"{'-':>12}"
            for lib in libs:
                m = med.get((lib, kind, op))
                row += f"{m['extra_mib']:>12.0f}" if m else f"{'-':>12}"
            print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--networks", default="loopback,remote")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--latency-ms", type=float, default=20.0, help="remote-like: first-byte delay")
    parser.add_argument("--mbps", type=float, default=100.0, help="remote-like: MB/s per connection")
    parser.add_argument("--auth", action="store_true",
                        help="the server checks every request's signature (keys of a user it makes at start)")
    parser.add_argument("--child")
    parser.add_argument("--kind")
    parser.add_argument("--op")
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.kind, args.op, args.endpoint, args.mib)))
        return
    for network in args.networks.split(","):
        shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
        label = ("loopback" if network == "loopback"
                 else f"remote-like ({args.latency_ms:g} ms to first byte, {args.mbps:g} MB/s per connection)")
        measure_network(args, label, shaping)


if __name__ == "__main__":
    main()
