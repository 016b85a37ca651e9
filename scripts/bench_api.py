#!/usr/bin/env python
"""Library transfer benchmark: cottoncandy vs plain boto3, side by side against the local S3 server.

Uploads and downloads a 512 MiB float64 array with ``upload_raw_array``/``download_raw_array`` and
with boto3's ``upload_fileobj``/``download_fileobj``: uncompressed, and with the default compression
(gzip: ours compressed in parallel blocks as it streams; boto3 with ``gzip.compress`` at level 9 as
0.4.0 did, the whole body in memory). The S3 server runs in its own process; each
measurement runs in a fresh child process so its peak RSS is its own. Prints medians and ratios,
once on loopback and once with the server answering like a remote S3 (first-byte latency and a
bandwidth cap per connection: ``--latency-ms``, ``--mbps``), in one run.

    python scripts/bench_api.py [--mib 512] [--repeats 3] [--networks loopback,remote]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time

BUCKET = "bench-api"
KEY_CC, KEY_BOTO = "bench/cc", "bench/boto"
KEY_CC_GZ, KEY_BOTO_GZ = "bench/cc-gz", "bench/boto-gz"
OPS = ("upload_cc", "upload_boto", "download_cc", "download_boto",
       "upload_cc_gz", "upload_boto_gz", "download_cc_gz", "download_boto_gz")


def rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_op(op: str, endpoint: str, mib: int) -> dict[str, float]:
    import boto3
    import numpy as np
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    import cottoncandy as cc
    from cottoncandy.storage.s3 import BufferReader

    n = mib * 2**20 // 8
    client = boto3.client("s3", endpoint_url=endpoint,
                          config=Config(request_checksum_calculation="when_required", max_pool_connections=32))
    transfer = TransferConfig(max_concurrency=8, multipart_chunksize=16 * 2**20, multipart_threshold=64 * 2**20)
    cci = cc.get_interface(BUCKET, endpoint_url=endpoint, verbose=False)
    arr = np.random.default_rng(0).random(n) if op.startswith("upload") else None
    base = rss_now_mib()
    start = time.perf_counter()
    if op == "upload_cc":
        cci.upload_raw_array(KEY_CC, arr, compression=False)
    elif op == "upload_cc_gz":
        cci.upload_raw_array(KEY_CC_GZ, arr)  # the default: gzip below 2 GB
    elif op == "upload_boto_gz":
        import gzip

        body = gzip.compress(memoryview(arr).cast("B"), 9)
        client.upload_fileobj(io.BytesIO(body), BUCKET, KEY_BOTO_GZ, Config=transfer)
    elif op == "download_cc_gz":
        out = cci.download_raw_array(KEY_CC_GZ)
        assert out.shape == (n,)
    elif op == "download_boto_gz":
        import gzip

        buf = io.BytesIO()
        client.download_fileobj(BUCKET, KEY_BOTO_GZ, buf, Config=transfer)
        out = np.frombuffer(gzip.decompress(buf.getbuffer()), dtype="<f8")
        assert out.shape == (n,)
    elif op == "upload_boto":
        client.upload_fileobj(BufferReader(memoryview(arr).cast("B")), BUCKET, KEY_BOTO, Config=transfer)
    elif op == "download_cc":
        out = cci.download_raw_array(KEY_CC)
        assert out.shape == (n,)
    elif op == "download_boto":
        buf = io.BytesIO()
        client.download_fileobj(BUCKET, KEY_BOTO, buf, Config=transfer)
        out = np.frombuffer(buf.getbuffer(), dtype="<f8")
        assert out.shape == (n,)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "extra_mib": max(0.0, rss_peak_mib() - base)}


def child(op: str, endpoint: str, mib: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", op, "--endpoint", endpoint, "--mib", str(mib)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--endpoint")
    parser.add_argument("--networks", default="loopback,remote")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="remote-like: first-byte delay")
    parser.add_argument("--mbps", type=float, default=100.0, help="remote-like: MB/s per connection")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if args.child:
        print(json.dumps(run_op(args.child, args.endpoint, args.mib)))
        return
    for network in args.networks.split(","):
        shaping = [] if network == "loopback" else ["--latency-ms", str(args.latency_ms), "--mbps", str(args.mbps)]
        label = ("loopback" if network == "loopback"
                 else f"remote-like ({args.latency_ms:g} ms to first byte, {args.mbps:g} MB/s per connection)")
        measure_network(args, label, shaping)


def measure_network(args: argparse.Namespace, label: str, shaping: list[str]) -> None:
    from cottoncandy.testing.s3server import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(port),
                               *shaping], stdout=subprocess.PIPE, text=True)
    endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
    try:
        import boto3
        from botocore.config import Config

        boto3.client("s3", endpoint_url=endpoint, config=Config(request_checksum_calculation="when_required")
                     ).create_bucket(Bucket=BUCKET)
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.repeats):
            for op in OPS:
                results.setdefault(op, []).append(child(op, endpoint, args.mib))
        med = {op: {k: statistics.median(r[k] for r in runs) for k in ("seconds", "extra_mib")}
               for op, runs in results.items()}
        print(f"\n{args.mib} MiB float64 array, local S3 server (moto) in its own process, {label}, "
              f"median of {args.repeats}; extra = peak RSS above the process before the call")
        print(f"{'operation':<26}{'cottoncandy':>22}{'boto3':>22}{'ratio (cc/boto3)':>20}")
        rows = (("upload", "upload_cc", "upload_boto"), ("download", "download_cc", "download_boto"),
                ("gzip upload", "upload_cc_gz", "upload_boto_gz"),
                ("gzip download", "download_cc_gz", "download_boto_gz"))
        for what, cc_op, boto_op in rows:
            c, b = med[cc_op], med[boto_op]
            print(f"{what + ' time':<26}{c['seconds']:>20.2f} s{b['seconds']:>20.2f} s"
                  f"{c['seconds'] / b['seconds']:>20.2f}")
            print(f"{what + ' peak extra memory':<26}{c['extra_mib']:>18.0f} MiB{b['extra_mib']:>18.0f} MiB"
                  f"{(c['extra_mib'] + 1) / (b['extra_mib'] + 1):>20.2f}")
        print("gzip rows: cottoncandy's default upload (one gzip member compressed in parallel level-1 blocks, "
              "streamed) against boto3 + gzip.compress(level 9), 0.4.0's way")
        print(f"throughput: cottoncandy download {args.mib / med['download_cc']['seconds']:.0f} MiB/s, "
              f"upload {args.mib / med['upload_cc']['seconds']:.0f} MiB/s; default (gzip) download "
              f"{args.mib / med['download_cc_gz']['seconds']:.0f} MiB/s, upload "
              f"{args.mib / med['upload_cc_gz']['seconds']:.0f} MiB/s")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
