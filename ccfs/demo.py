"""``ccfs demo``: the whole product in one minute on a machine with nothing but FUSE.

Starts a local S3 endpoint on loopback (moto), writes sample data with the cottoncandy API (a
``.grp`` group of arrays, a compressed array, a dask array, a sparse matrix), mounts the bucket
with ccfs in the background, shows ``ls -l``, a shell glob and ``np.load(mmap_mode='r')`` slices,
then unmounts and stops the endpoint.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cottoncandy.interface import CloudInterface

BUCKET = "demo-bucket"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def shell(command: str) -> None:
    print(f"$ {command}", flush=True)
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    print((result.stdout + result.stderr).rstrip(), flush=True)
    if result.returncode:
        raise OSError(f"demo command failed: {command}")


def write_samples(cci: CloudInterface) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "proj/sub01_awesome_analysis.grp/model01": np.arange(20.0).reshape(4, 5),
        "proj/sub01_awesome_analysis.grp/weights": rng.standard_normal((1000, 64)).astype("<f4"),
        "proj/sub02_awesome_analysis.grp/model01": np.arange(20.0).reshape(4, 5) * 2,
    }
    for key, arr in arrays.items():
        cci.upload_raw_array(key, arr, compression=False)
    compressed = np.tile(np.arange(1000, dtype="<i8"), 50)
    cci.upload_raw_array("proj/compressed", compressed, compression="Zstd")
    arrays["proj/compressed"] = compressed
    # a chunked (dask) array in 0.4.0's layout: parts + metadata.json
    big = np.arange(6 * 100, dtype="<i8").reshape(6, 100)
    parts = [big[:, :50], big[:, 50:]]
    for i, part in enumerate(parts):
        cci.upload_raw_array(f"proj/dask_array/pt{i:04d}", np.ascontiguousarray(part))
    cci.upload_json("proj/dask_array/metadata.json", {
        "shape": [6, 100], "dtype": "<i8",
        "dask": [[[0, i], f"proj/dask_array/pt{i:04d}"] for i in range(2)],
        "chunk_sizes": [[6, 50], [6, 50]], "chunks": [[6], [50, 50]]})
    # a sparse matrix in 0.4.0's layout
    data, indices, indptr = np.array([1.0, 2.0, 3.0]), np.array([0, 2, 1], "<i4"), np.array([0, 2, 3], "<i4")
    for name, arr in (("data", data), ("indices", indices), ("indptr", indptr)):
        cci.upload_raw_array(f"proj/sparse/{name}", arr)
    cci.upload_json("proj/sparse/metadata.json", {"type": "csr", "attrs": ["data", "indices", "indptr"],
                                                  "shape": [2, 3]})
    return arrays


def serve(host: str, port: int) -> None:
    """``ccfs server``: the local S3 endpoint in the foreground until Ctrl-C (or SIGTERM), which end it
    at once: everything it holds is in memory and forgotten anyway, so no request is waited for."""
    import signal
    import threading

    from cottoncandy.testing.s3server import LocalS3Server

    server = LocalS3Server(host=host, port=port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"local S3 endpoint on {server.endpoint_url} (in memory; any access key and secret are accepted; "
          "Ctrl-C stops it)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=0)


def run_demo(keep: bool = False) -> None:
    """Each step is announced before it runs (``step``), so a slow one (the first imports of moto, a
    mount, an unmount waiting for its daemon) is never a silent stretch."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    step("starting a local S3 endpoint (moto, in memory, on 127.0.0.1; it accepts any access key)")
    import cottoncandy as cc
    from cottoncandy.testing.s3server import LocalS3Server

    server = LocalS3Server().start()
    print(f"   {server.endpoint_url}", flush=True)
    mountpoint = tempfile.mkdtemp(prefix="ccfs-demo-")
    mounted = False
    try:
        step(f"writing sample arrays with cottoncandy into s3://{BUCKET}: a .grp group of arrays, a Zstd-compressed "
             "array, a dask array, a sparse matrix")
        cci = cc.get_interface(BUCKET, endpoint_url=server.endpoint_url, force_bucket_creation=True,
                               verbose=False)
        arrays = write_samples(cci)
        for key in sorted(k.key for k in cci.store.iter_objects()):
            print("  ", key)
        step(f"mounting {BUCKET} at {mountpoint} (read-only FUSE; returns once the mount is up)")
        ccfs = [sys.executable, "-m", "ccfs", "mount", BUCKET, mountpoint, "--endpoint-url", server.endpoint_url]
        print(f"$ ccfs mount {BUCKET} {shlex.quote(mountpoint)} --endpoint-url {server.endpoint_url}", flush=True)
        result = subprocess.run(ccfs)
        if result.returncode:
            raise OSError("ccfs mount failed (see the message above)")
        mounted = True
        m = shlex.quote(mountpoint)
        step("reading the mount with ls, a shell glob and getfattr: every array is a .npy file")
        shell(f"ls -l {m}/proj")
        shell(f"ls -l {m}/proj/sub01_awesome_analysis.grp")
        shell(f"ls {m}/proj/*.grp/*.npy")
        shell(f"ls -l {m}/proj/dask_array {m}/proj/sparse")
        shell(f"getfattr -d {m}/proj/compressed.npy 2>/dev/null || python3 -c \"import os; p='{mountpoint}/proj/"
              f"compressed.npy'; print({{a: os.getxattr(p, a).decode() for a in os.listxattr(p)}})\"")
        step("np.load(path, mmap_mode='r') on the mount: a slice reads only the blocks it touches")
        weights = np.load(f"{mountpoint}/proj/sub01_awesome_analysis.grp/weights.npy", mmap_mode="r")
        print(f">>> w = np.load('{mountpoint}/proj/sub01_awesome_analysis.grp/weights.npy', mmap_mode='r')")
        print(f">>> w.shape, w.dtype -> {weights.shape}, {weights.dtype}")
        print(f">>> w[500, :4] -> {weights[500, :4]}")
        expected = arrays["proj/sub01_awesome_analysis.grp/weights"]
        assert np.array_equal(weights[500], expected[500]), "mounted values differ from the stored ones"
        model = np.load(f"{mountpoint}/proj/sub02_awesome_analysis.grp/model01.npy", mmap_mode="r")
        print(f">>> np.load('.../sub02_awesome_analysis.grp/model01.npy', mmap_mode='r')[1] -> {model[1]}")
        comp = np.load(f"{mountpoint}/proj/compressed.npy", mmap_mode="r")
        print(f">>> np.load('.../proj/compressed.npy', mmap_mode='r')[995:1003] -> {comp[995:1003]}  (Zstd, "
              "decoded once)")
        part = np.load(f"{mountpoint}/proj/dask_array/pt0001.npy", mmap_mode="r")
        print(f">>> np.load('.../proj/dask_array/pt0001.npy', mmap_mode='r')[0, :5] -> {part[0, :5]}")
        assert np.array_equal(comp, arrays["proj/compressed"])
        del weights, model, comp, part
        if keep:
            input(f"\nmounted at {mountpoint}; press Enter to unmount... ")
    finally:
        if mounted:
            step(f"unmounting: ccfs umount {mountpoint} (returns once the daemon has exited)")
            subprocess.run([sys.executable, "-m", "ccfs", "umount", mountpoint], check=False)
        os.rmdir(mountpoint)
        step("stopping the local S3 endpoint (it forgets every bucket)")
        server.stop()
        print("demo done", flush=True)
