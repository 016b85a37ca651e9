"""rename, rm, mkdir, rmdir and two writers through a real ``--rw`` mount (issue 26 items 5, 6), against
the local S3 server: ``mv`` keeps an array's metadata, a folder ``mv`` beyond ``--rename-folder-limit``
is EXDEV (so ``mv`` copies file by file), ``rm`` needs ``--allow-delete``, ``mkdir`` then ``np.save``
works, two writers of one new name: one wins, the other gets EEXIST."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]


def test_mv_of_an_array_keeps_its_metadata(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(60.0).reshape(6, 10)
    cci.upload_raw_array("p/a", arr, compression=None)
    before = cci.get_object("p/a").metadata if hasattr(cci.get_object("p/a"), "metadata") else None
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        subprocess.run(["mv", str(m / "p/a.npy"), str(m / "p/b.npy")], check=True, capture_output=True)
        assert sorted(os.listdir(m / "p")) == ["b.npy"]
        np.testing.assert_array_equal(np.load(m / "p/b.npy"), arr)
    np.testing.assert_array_equal(cci.download_raw_array("p/b"), arr)
    assert not cci.exists_object("p/a")
    if before is not None:
        assert cci.get_object("p/b").metadata == before


def test_folder_mv_within_and_beyond_the_limit(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        cci.upload_raw_array(f"f/x{i}", np.arange(i + 1.0), compression=None)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--rename-folder-limit", "2")) as m:
        with pytest.raises(OSError) as err:
            os.rename(m / "f", m / "g")
        assert err.value.errno == errno.EXDEV
        assert sorted(os.listdir(m / "f")) == ["x0.npy", "x1.npy", "x2.npy"]
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--rename-folder-limit", "3")) as m:
        os.rename(m / "f", m / "g")
        assert sorted(os.listdir(m / "g")) == ["x0.npy", "x1.npy", "x2.npy"]
        assert not (m / "f").exists()
    np.testing.assert_array_equal(cci.download_raw_array("g/x2"), np.arange(3.0))
    assert not cci.exists_object("f/x0")


def test_rm_refused_without_allow_delete_and_done_with_it(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("r/a", np.arange(3.0), compression=None)
    cci.upload_raw_array("r/a2", np.arange(3.0), compression=None)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m, pytest.raises(PermissionError):
        os.unlink(m / "r/a.npy")
    assert cci.exists_object("r/a")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--allow-delete")) as m:
        os.unlink(m / "r/a.npy")
        assert os.listdir(m / "r") == ["a2.npy"]
    assert not cci.exists_object("r/a") and cci.exists_object("r/a2")


def test_mkdir_then_np_save_into_it(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(20, dtype="<i4")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        os.mkdir(m / "new")
        assert (m / "new").is_dir() and os.listdir(m / "new") == []
        os.mkdir(m / "new/deeper")
        np.save(m / "new/deeper/x.npy", arr)
        assert os.listdir(m / "new") == ["deeper"]
        np.testing.assert_array_equal(np.load(m / "new/deeper/x.npy"), arr)
    np.testing.assert_array_equal(cci.download_raw_array("new/deeper/x"), arr)


def test_two_writers_of_one_new_name(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    options = rw(cci.settings.endpoint_url)
    with mounted(BUCKET, tmp_path, *options) as one, mounted(BUCKET, tmp_path, *options, expect_errors=True) as two:
        first = open(one / "w.txt", "wb")  # noqa: SIM115 - both open before either closes
        second = open(two / "w.txt", "wb")  # noqa: SIM115
        first.write(b"first")
        second.write(b"second")
        first.close()
        with pytest.raises(OSError) as err:
            second.close()
        assert err.value.errno == errno.EEXIST
    assert cci.download_object("w.txt") == b"first"


def test_zarr_v3_writes_an_array_into_the_mount(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """zarr's LocalStore writes each chunk to a ``.partial`` file and renames it into place."""
    zarr = pytest.importorskip("zarr")
    data = np.arange(400, dtype="<f4").reshape(20, 20)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        z = zarr.create_array(store=str(m / "z.zarr"), shape=data.shape, chunks=(10, 10), dtype=data.dtype)
        z[:] = data
        np.testing.assert_array_equal(zarr.open_array(str(m / "z.zarr"), mode="r")[:], data)
    keys = sorted(info.key for info in S3Store(BUCKET, cci.settings).iter_objects("z.zarr/"))
    assert "z.zarr/zarr.json" in keys and len([k for k in keys if "/c/" in k]) == 4  # 4 chunks stored
    assert not any(k.endswith(".partial") for k in keys)  # each renamed into place, none left


def test_a_daemon_killed_mid_upload_leaves_no_parts_after_the_next_mount(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 26 item 4: SIGKILL while a 40 MiB np.save streams (its multipart upload begun) leaves no
    object; the next --rw mount of the bucket (same cache folder) aborts that upload, and only it."""
    from ccfs.mount import daemon_pid

    client = S3Store(BUCKET, cci.settings).client
    others = client.create_multipart_upload(Bucket=BUCKET, Key="big.npy")["UploadId"]  # someone else's
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=cache), expect_errors=True) as m:
        pid = daemon_pid(str(m), timeout=10)
        assert pid is not None
        fh = open(m / "big.npy", "wb")  # noqa: SIM115 - never closed: the daemon dies first
        fh.write(b"\x93NUMPY" + bytes(40 * 2**20))  # a .npy-looking name: streamed, parts go out
        fh.flush()
        deadline = time.monotonic() + 20
        while len(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])) < 2:
            assert time.monotonic() < deadline, "the upload never began"
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            fh.close()
    assert {u["UploadId"] for u in client.list_multipart_uploads(Bucket=BUCKET)["Uploads"]} >= {others}
    assert len(client.list_multipart_uploads(Bucket=BUCKET)["Uploads"]) == 2
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=cache)) as m:
        os.listdir(m)
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])}
    assert left == {others}
    assert not S3Store(BUCKET, cci.settings).exists("big.npy") and not S3Store(BUCKET, cci.settings).exists("big")
