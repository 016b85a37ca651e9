"""Real FUSE mounts of the moto S3 server: np.load/np.memmap, ls/stat/find/globs, errors, concurrency."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cottoncandy import mounted as mnt
from cottoncandy.cache.blocks import FAILED_FOR
from tests.conftest import BUCKET
from tests.mountutil import ccfs, mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]

DTYPES = ["|b1", "|i1", "|u1", "<i2", ">i2", "<u4", "<i8", "<f2", "<f4", "<f8", ">f8", "<c8", "<c16", "<U3",
          "|S4", "|V6"]


def endpoint(cci) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url]


def test_every_dtype_and_order_loads(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    arrays = {}
    for dtype in DTYPES:
        arr = rng.integers(0, 100, (7, 5)).astype(dtype) if dtype != "|V6" else \
            np.frombuffer(rng.bytes(7 * 6), dtype="|V6").reshape(7, 1)
        arrays[f"dt/{dtype.replace('|', 'n').replace('<', 'l').replace('>', 'b')}"] = arr
    for key, arr in arrays.items():
        cci.upload_raw_array(key, arr, compression=False)
    fortran = np.asfortranarray(rng.random((6, 9)))
    cci.store.put("dt/fortran", fortran.tobytes(order="F"),
                  {"dtype": "<f8", "shape": "6,9", "compression": "False", "order": "F"})
    arrays["dt/fortran"] = fortran
    cci.upload_raw_array("dt/zerod", np.array(3.5), compression=False)
    arrays["dt/zerod"] = np.array(3.5)
    cci.upload_raw_array("dt/empty", np.zeros((0, 4), "<i4"), compression=False)
    arrays["dt/empty"] = np.zeros((0, 4), "<i4")
    for codec in ("gzip", "Zstd", "LZ4"):
        cci.upload_raw_array(f"dt/comp_{codec}", rng.random((50, 3)), compression=codec)
        arrays[f"dt/comp_{codec}"] = cci.download_raw_array(f"dt/comp_{codec}")
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        for key, arr in arrays.items():
            path = m / f"{key}.npy"
            loaded = np.load(path, mmap_mode="r")
            assert loaded.dtype == arr.dtype and loaded.shape == arr.shape, key
            assert np.array_equal(loaded, arr), key
            if key == "dt/fortran":
                assert loaded.flags.f_contiguous and not loaded.flags.c_contiguous
            if arr.size:
                mm = np.memmap(path, dtype=arr.dtype, mode="r", offset=os.path.getsize(path) - arr.nbytes,
                               shape=arr.shape, order="F" if key == "dt/fortran" else "C")
                assert np.array_equal(mm, arr), key
                del mm
            del loaded


def test_corpus_reads_through_the_mount(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.api.test_compat_corpus import load_corpus_into

    expected = load_corpus_into(lambda k, b, m: cci.store.put(k, b, m))
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        checked = 0
        for key, want in expected.items():
            if want["kind"] == "raw_array":
                arr = np.load(m / f"{key}.npy", mmap_mode="r")
            elif want["kind"] == "npy_array":
                arr = np.load(m / key, mmap_mode="r")
            elif want["kind"] == "dask_array":
                arr = mnt.dask_array(m / key).compute()
            elif want["kind"] == "sparse_array":
                arr = sparse_from_mount(m / key).toarray()
            elif want["kind"] == "json":
                assert json.loads((m / key).read_text()) == want["value"]
                continue
            else:
                continue
            assert arr.dtype == np.dtype(want["dtype"]) and list(arr.shape) == want["shape"], key
            assert hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest() == want["sha256_c_order"], key
            checked += 1
        assert checked == 41
        lazy = mnt.dask_array(m / "dask/last_axis")
        full = lazy.compute()  # checked against the corpus sha above
        sliced = lazy[2:5, 10:20, 600:800].compute()
        assert np.array_equal(sliced, full[2:5, 10:20, 600:800])


def sparse_from_mount(folder: Path):  # type: ignore[no-untyped-def]
    import scipy.sparse as sp

    meta = json.loads((folder / "metadata.json").read_text())
    parts = {a: np.load(folder / f"{a}.npy") for a in meta["attrs"]}
    shape = tuple(meta["shape"])
    if meta["type"] == "coo":
        return sp.coo_matrix((parts["data"], (parts["row"], parts["col"])), shape=shape)
    if meta["type"] == "dia":
        return sp.dia_matrix((parts["data"], parts["offsets"]), shape=shape)
    kind = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "bsr": sp.bsr_matrix}[meta["type"]]
    return kind((parts["data"], parts["indices"], parts["indptr"]), shape=shape)


def test_ls_stat_find_and_globs(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for sub in ("sub01", "sub02"):
        for name in ("x", "y"):
            cci.upload_raw_array(f"p/{sub}.grp/{name}", np.zeros((10, 10)), compression=False)
    cci.upload_raw_array("p/comp", np.zeros(1000), compression="gzip")
    cci.upload_json("p/notes.json", {"a": 1})
    cci.store.put("p/emptydir/", b"")  # a directory marker
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        assert sorted(os.listdir(m / "p")) == ["comp.npy", "emptydir", "notes.json", "sub01.grp", "sub02.grp"]
        assert os.listdir(m / "p/emptydir") == []
        npy_size = 128 + 800
        assert os.stat(m / "p/sub01.grp/x.npy").st_size == npy_size
        assert os.stat(m / "p/comp.npy").st_size == 128 + 8000
        assert os.stat(m / "p/notes.json").st_size == len(b'{"a": 1}')
        out = subprocess.run(["bash", "-c", f"ls {m}/p/*.grp/*.npy"], capture_output=True, text=True, check=True)
        assert out.stdout.split() == [f"{m}/p/{s}.grp/{n}.npy" for s in ("sub01", "sub02") for n in ("x", "y")]
        found = subprocess.run(["find", str(m), "-type", "f"], capture_output=True, text=True, check=True)
        assert len(found.stdout.split()) == 6
        lsl = subprocess.run(["ls", "-l", str(m / "p/sub02.grp")], capture_output=True, text=True, check=True)
        assert lsl.stdout.count(f" {npy_size} ") == 2 and "-r--r--r--" in lsl.stdout
        attrs = subprocess.run(["getfattr", "-d", str(m / "p/comp.npy")], capture_output=True, text=True,
                               check=True).stdout
        assert 'user.cottoncandy.compression="gzip"' in attrs and 'user.cottoncandy.shape="1000"' in attrs
        assert 'user.cottoncandy.dtype="<f8"' in attrs and "user.cottoncandy.etag=" in attrs
        where = mnt.locate(m / "p/sub01.grp/x.npy")
        assert where is not None and where.bucket == BUCKET and where.key == "p/sub01.grp/x"
        assert mnt.locate(m / "p/sub01.grp").key == "p/sub01.grp"
        assert not mnt.is_mounted(tmp_path)


def _sum_rows(path: str, rows: list[int]) -> float:
    arr = np.load(path, mmap_mode="r")
    return float(sum(arr[r].sum() for r in rows))


def test_concurrent_readers_agree(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(1).random((2000, 512))  # 8 MB
    cci.upload_raw_array("conc/a", arr, compression=False)
    rows = list(range(0, 2000, 7))
    want = float(sum(arr[r].sum() for r in rows))
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--block-size", "256K") as m:
        path = str(m / "conc/a.npy")
        results: list[float] = []
        threads = [threading.Thread(target=lambda i=i: results.append(_sum_rows(path, rows[i::4]))) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert abs(sum(results) - want) < 1e-6
        with ProcessPoolExecutor(3) as pool:
            sums = list(pool.map(_sum_rows, [path] * 3, [rows] * 3))
        assert all(abs(s - want) < 1e-6 for s in sums)
        assert np.array_equal(np.load(path), arr)


def test_overwritten_open_object_is_estale(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("stale/a", np.zeros(4_000_000), compression=False)  # 32 MB
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--metadata-ttl", "1", "--cache-size", "4M",
                 expect_errors=True) as m, open(m / "stale/a.npy", "rb") as fh:
        fh.read(4096)
        cci.upload_raw_array("stale/a", np.ones(4_000_000), compression=False)
        fh.seek(30_000_000)
        with pytest.raises(OSError) as err:
            fh.read(4096)
        assert err.value.errno == errno.ESTALE


def test_deleted_open_object_is_estale(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("gone/a", np.zeros(4_000_000), compression=False)  # 32 MB
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--metadata-ttl", "1", "--cache-size", "4M",
                 expect_errors=True) as m, open(m / "gone/a.npy", "rb") as fh:
        fh.read(4096)
        cci.rm("gone/a")
        fh.seek(30_000_000)
        with pytest.raises(OSError) as err:
            fh.read(4096)
        assert err.value.errno == errno.ESTALE


def test_a_rewritten_array_is_seen_at_once_new_shape_and_all(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Rewrite an array with the library, look at it through the mount: the new one, not the old one
    for minutes (listings stay cached for --metadata-ttl; a file's version is asked again)."""
    cci.upload_raw_array("re/x", np.zeros((100, 10)), compression=False)
    cci.upload_json("re/notes.json", {"v": 1})
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--attr-ttl", "0.5") as m:
        assert np.load(m / "re/x.npy").sum() == 0 and json.loads((m / "re/notes.json").read_text()) == {"v": 1}
        cci.upload_raw_array("re/x", np.ones((100, 10)), compression=False)  # same shape
        cci.upload_json("re/notes.json", {"v": 2, "longer": True})  # a plain file of another size
        time.sleep(0.7)
        assert np.load(m / "re/x.npy").sum() == 1000
        assert json.loads((m / "re/notes.json").read_text()) == {"v": 2, "longer": True}
        cci.upload_raw_array("re/x", np.arange(3000.0).reshape(100, 30), compression=False)  # new shape
        time.sleep(0.7)
        assert os.stat(m / "re/x.npy").st_size == 128 + 24000
        assert np.array_equal(np.load(m / "re/x.npy", mmap_mode="r"), np.arange(3000.0).reshape(100, 30))
        cci.rm("re/x")
        time.sleep(0.7)
        assert not (m / "re/x.npy").exists()


def test_writes_are_erofs(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("w/a", np.zeros(3), compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        for action in (lambda: os.open(m / "w/a.npy", os.O_RDWR),
                       lambda: os.open(m / "w/new.npy", os.O_WRONLY | os.O_CREAT),
                       lambda: os.mkdir(m / "w/newdir"), lambda: os.unlink(m / "w/a.npy"),
                       lambda: os.rename(m / "w/a.npy", m / "w/b.npy")):
            with pytest.raises(OSError) as err:
                action()
            assert err.value.errno == errno.EROFS


def test_corrupt_objects_are_eio_and_the_mount_keeps_serving(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("bad/short", b"\x00" * 100, {"dtype": "<f8", "shape": "1000", "compression": "False"})
    cci.store.put("bad/gz", b"\x1f\x8b\x08\x00 not gzip at all", {"dtype": "<f8", "shape": "40",
                                                                    "compression": "gzip"})
    cci.store.put("bad/meta", b"\x00" * 8, {"dtype": "nonsense", "shape": "1", "compression": "False"})
    cci.upload_raw_array("bad/good", np.arange(5.0), compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci), expect_errors=True) as m:
        for name in ("short.npy", "gz.npy", "meta.npy"):
            with pytest.raises(OSError) as err:
                np.load(m / "bad" / name, mmap_mode="r")
            assert err.value.errno == errno.EIO, name
        assert np.array_equal(np.load(m / "bad/good.npy"), np.arange(5.0))
    errors = mounted.last_errors  # type: ignore[attr-defined]
    assert any("bad/short" in line for line in errors) and any("bad/gz" in line for line in errors)
    assert any("bad/meta" in line for line in errors)


def test_mount_refuses_clearly(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = ccfs("mount", BUCKET, str(tmp_path / "absent"), *endpoint(cci), check=False)
    assert result.returncode != 0 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    result = ccfs("mount", BUCKET, str(full), *endpoint(cci), check=False)
    assert result.returncode != 0 and "not empty" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = ccfs("mount", "no-such-bucket", str(empty), *endpoint(cci), check=False)
    assert result.returncode != 0 and "bucket not found" in result.stderr
    assert not os.path.ismount(empty)


def test_local_directory_mount(cci_local, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci_local.upload_raw_array("g.grp/a", np.arange(10), compression=False)
    with mounted(cci_local.bucket_name, tmp_path) as m:
        assert np.array_equal(np.load(m / "g.grp/a.npy", mmap_mode="r"), np.arange(10))


def test_dask_over_mount_and_prefix_mount(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(10_000.0).reshape(100, 100)
    cci.upload_raw_array("deep/prefix/arr", arr, compression=False)
    with mounted(f"s3://{BUCKET}/deep/prefix", tmp_path, *endpoint(cci)) as m:
        assert os.listdir(m) == ["arr.npy"]
        lazy = mnt.dask_array(m / "arr.npy", chunks=(30, 50))
        assert lazy.chunks == ((30, 30, 30, 10), (50, 50))
        assert np.array_equal(lazy[10:70, 20:90].compute(), arr[10:70, 20:90])
        assert mnt.locate(m / "arr.npy").key == "deep/prefix/arr"


def test_server_outage_is_eio_and_the_mount_recovers_when_it_returns(tmp_path: Path) -> None:
    """A dead endpoint fails the one read (EIO, after retries, logged with the key); the daemon
    lives on and serves again once the endpoint is back."""
    import cottoncandy as cc
    from cottoncandy.testing.s3server import LocalS3Server

    server = LocalS3Server().start()  # our own endpoint, so it can go away (moto's store outlives it)
    try:
        cci = cc.get_interface("outage-bucket", endpoint_url=server.endpoint_url, verbose=False,
                               force_bucket_creation=True)
        arr = np.random.default_rng(5).random(1_000_000)  # 8 MB: many blocks
        cci.upload_raw_array("o/a", arr, compression=False)
        cci.upload_json("p/q/r.json", {"r": 1})
        with mounted("outage-bucket", tmp_path, "--endpoint-url", server.endpoint_url, "--block-size", "64K",
                     "--cache-size", "1M", expect_errors=True) as m, open(m / "o/a.npy", "rb") as fh:
            header = len(fh.read(128))
            assert np.frombuffer(fh.read(8 * 10), "<f8").tolist() == arr[:10].tolist()
            server.stop()
            fh.seek(header + 8 * 900_000)
            started = time.monotonic()
            with pytest.raises(OSError) as err:
                fh.read(8 * 10)
            assert err.value.errno == errno.EIO and time.monotonic() - started < 60
            with pytest.raises(OSError) as err:
                os.listdir(m / "p/q")  # a folder not listed yet: its LIST fails
            assert err.value.errno == errno.EIO
            server = LocalS3Server(port=server.port).start()  # the endpoint is back
            # a failed block is answered failed for FAILED_FOR seconds (the kernel asks again for a
            # failed READ at once), then fetched again
            deadline = time.monotonic() + FAILED_FOR + 10
            while True:
                fh.seek(header + 8 * 900_000)
                try:
                    assert np.frombuffer(fh.read(8 * 10), "<f8").tolist() == arr[900_000:900_010].tolist()
                    break
                except OSError as exc:
                    assert exc.errno == errno.EIO and time.monotonic() < deadline
                    time.sleep(0.5)
            assert os.listdir(m / "o") == ["a.npy"]
            assert json.loads((m / "p/q/r.json").read_text()) == {"r": 1}  # no miss was cached for p/q
        errors = mounted.last_errors  # type: ignore[attr-defined]
        assert any("o/a" in line and "EIO" in line for line in errors), errors
        assert not any("Traceback" in line for line in errors)
    finally:
        server.stop()


def test_a_replaced_object_never_mixes_versions_in_the_page_cache(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Same size, same second: the attributes do not change, so only the open can tell the kernel
    to drop the pages it cached of the old version."""
    v1, v2 = np.zeros(131072), np.ones(131072)  # 1 MiB each
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--metadata-ttl", "1", "--block-size", "64K") as m:
        for attempt in range(5):
            key = f"mix/a{attempt}"
            while time.time() % 1 > 0.2:  # start just after a second boundary: both writes in one second
                time.sleep(0.01)
            cci.upload_raw_array(key, v1, compression=False)
            first = cci.store.head(key).last_modified
            with open(m / f"{key}.npy", "rb") as fh:
                assert np.frombuffer(fh.read(128 + 256 * 1024)[128:], "<f8").max() == 0  # pages of v1 cached
            cci.upload_raw_array(key, v2, compression=False)
            if cci.store.head(key).last_modified == first:  # stat cannot tell the versions apart
                break
        time.sleep(1.5)  # past the metadata TTL: the next open pins v2
        assert np.array_equal(np.load(m / f"{key}.npy"), v2)
        assert np.array_equal(np.load(m / f"{key}.npy", mmap_mode="r"), v2)
        s3.clear_log()
        assert np.array_equal(np.load(m / f"{key}.npy"), v2)  # an unchanged version keeps its cached pages
        # no GET of the object; a LIST may come (past --metadata-ttl on a loaded machine): it confirms the version
        assert [r for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/{key}"] == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_unmount_cleanly(cci, tmp_path: Path, signum: int) -> None:  # type: ignore[no-untyped-def]
    import psutil

    cci.upload_raw_array("sig/a", np.arange(3.0), compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        assert np.array_equal(np.load(m / "sig/a.npy"), np.arange(3.0))
        daemons = [p for p in psutil.process_iter(["cmdline"])
                   if "mount" in (p.info["cmdline"] or []) and str(m) in (p.info["cmdline"] or [])]
        assert len(daemons) == 1, daemons
        daemons[0].send_signal(signum)
        daemons[0].wait(timeout=30)  # the daemon ends, having unmounted
        assert not os.path.ismount(m)
    log = (tmp_path / f"{m.name}.log").read_text()
    assert "unmounted" in log and "Traceback" not in log


def test_foreground_mount_stops_cleanly_on_ctrl_c(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sys

    cci.upload_raw_array("fg/a", np.arange(4.0), compression=False)
    mountpoint = tmp_path / "fg"
    mountpoint.mkdir()
    daemon = subprocess.Popen([sys.executable, "-m", "ccfs", "mount", "-f", BUCKET, str(mountpoint), *endpoint(cci)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mountpoint) and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.05)
        assert os.path.ismount(mountpoint)
        assert np.array_equal(np.load(mountpoint / "fg/a.npy"), np.arange(4.0))
        daemon.send_signal(signal.SIGINT)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
        assert "Error" not in stderr and "Traceback" not in stderr and not os.path.ismount(mountpoint)
        # every line is the daemon's log: libfuse says nothing on its own (3.14.0 printed "Ignoring
        # invalid max threads value 4294967295" at every mount for an option it had left unset)
        log_line = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
        assert all(log_line.match(line) for line in stderr.splitlines()), stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)


def test_mount_refuses_clearly_when_credentials_are_refused(tmp_path: Path) -> None:
    """A server that checks signatures (moto with authentication on) and keys it does not know."""
    import sys

    from cottoncandy.testing.s3server import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(port)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "1"})  # then keys are checked
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        import boto3

        boto3.client("s3", endpoint_url=url).create_bucket(Bucket="locked")  # the one unchecked action
        mountpoint = tmp_path / "m"
        mountpoint.mkdir()
        unknown = {"AWS_ACCESS_KEY_ID": "AKIDUNKNOWN", "AWS_SECRET_ACCESS_KEY": "nope-secret"}
        result = subprocess.run([sys.executable, "-m", "ccfs", "mount", "locked", str(mountpoint),
                                 "--endpoint-url", url], capture_output=True, text=True, timeout=120,
                                env={**os.environ, **unknown})
        assert result.returncode != 0 and "credentials refused" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "nope-secret" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not os.path.ismount(mountpoint)
    finally:
        server.terminate()
        server.wait()


def test_extra_fuse_options_reach_the_kernel(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("o/a", np.arange(2.0), compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci), "-o", "allow_other") as m:
        line = next(row for row in Path("/proc/mounts").read_text().splitlines() if f" {m} " in row)
        source, _, kind, options = line.split()[:4]
        assert kind == "fuse.ccfs" and source == f"ccfs:s3://{BUCKET}"
        assert "allow_other" in options.split(",") and "ro" in options.split(",")
        assert np.array_equal(np.load(m / "o/a.npy"), np.arange(2.0))


def test_locate_on_a_mountpoint_with_a_space_and_accents(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("sub 01/séance.grp/x", np.arange(6.0), compression=False)
    odd = tmp_path / "données brutes"
    odd.mkdir()
    with mounted(BUCKET, odd, *endpoint(cci)) as m:
        path = m / "sub 01/séance.grp/x.npy"
        assert np.array_equal(mnt.load(path), np.arange(6.0))
        where = mnt.locate(path)
        assert where is not None and where.mountpoint == str(m) and where.key == "sub 01/séance.grp/x"
        assert mnt.locate(m / "sub 01").key == "sub 01" and mnt.is_mounted(m)


@pytest.mark.parametrize("codec", ["LZ4", "Zstd"])
def test_large_lz4_and_zstd_arrays_spill_and_read_exactly(cci, tmp_path: Path, codec: str) -> None:  # type: ignore[no-untyped-def]
    """--cache-size 1M leaves 256 KiB for decoded arrays; anything over half of that is decoded into
    a spill file, which LZ4 and zstd (one-shot C decoders) used to refuse with a TypeError."""
    arr = np.random.default_rng(1).integers(0, 1000, (300, 1000)).astype(np.int32)  # 1.2 MB decoded
    cci.upload_raw_array(f"spill/{codec}", arr, compression=codec)
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-size", "1M") as m:
        loaded = np.load(m / f"spill/{codec}.npy")
        assert loaded.dtype == arr.dtype and loaded.tobytes() == arr.tobytes()
