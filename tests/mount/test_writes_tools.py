"""Write tools through a real ``--rw`` mount (issue 26 item 3's list): h5py creating a file and appending
to it, and rsync copying a folder tree (its default temporary file + rename, and ``--inplace``), then
again with one file changed. Each is checked through the mount and through the library's raw bytes,
and no temporary name of rsync's (``.NAME.XXXXXX``) is left in the bucket."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, uploads, within

pytestmark = [needs_fuse, pytest.mark.fuse]
needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed "
                                 "(scripts/provision.sh with CCFS_TEST_TOOLS=1)")


def stored(cci, key: str) -> bytes:  # type: ignore[no-untyped-def]
    return bytes(cci.download_object(key))


# --- h5py -----------------------------------------------------------------------------------------

def test_h5py_create_then_append(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """h5py writes its superblock last and out of order (a staged file), then mode 'a' reopens the stored
    file O_RDWR (staged over it: only what HDF5 reads is fetched), resizes a chunked dataset, adds one."""
    h5py = pytest.importorskip("h5py")
    first = np.arange(3000, dtype="<f8").reshape(300, 10)
    more = -np.arange(1000, dtype="<f8").reshape(100, 10)
    labels = np.arange(50, dtype="<i4")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache")) as m:
        with h5py.File(m / "run.h5", "w") as f:
            d = f.create_dataset("x", data=first, maxshape=(None, 10), chunks=(50, 10))
            d.attrs["units"] = "volts"
            f.attrs["subject"] = "S01"
        assert within(30, lambda: stored(cci, "run.h5")[:8] == b"\x89HDF\r\n\x1a\n")
        with h5py.File(m / "run.h5", "a") as f:
            d = f["x"]
            d.resize((400, 10))
            d[300:] = more
            f.create_dataset("labels", data=labels)
            f["x"].attrs["appended"] = 1
        expected = np.concatenate([first, more])

        def check(f) -> bool:  # type: ignore[no-untyped-def]
            assert sorted(f) == ["labels", "x"]
            np.testing.assert_array_equal(f["x"][:], expected)
            np.testing.assert_array_equal(f["labels"][:], labels)
            assert f["x"].attrs["units"] == "volts" and f["x"].attrs["appended"] == 1
            assert f.attrs["subject"] == "S01"
            return True

        def in_the_bucket() -> bool:
            with h5py.File(io.BytesIO(stored(cci, "run.h5")), "r") as f:
                return "labels" in f and check(f)

        assert within(30, in_the_bucket)
        with h5py.File(m / "run.h5", "r") as f:  # through the mount, as stored
            check(f)
        assert os.listdir(m) == ["run.h5"]
    assert uploads(cci.settings.endpoint_url) == []
    assert not list((tmp_path / "cache" / "writes").glob("staged-*"))


# --- rsync ----------------------------------------------------------------------------------------

def make_tree(root: Path) -> dict[str, bytes]:
    """A small folder tree: text, a binary of 3 MiB (rsync's delta blocks), a .npy, a nested folder."""
    rng = np.random.default_rng(7)
    files = {
        "notes.txt": b"first line\n" * 20,
        "sub/deep/blob.bin": rng.integers(0, 256, 3 * 2**20, dtype=np.uint8).tobytes(),
        "sub/table.csv": b"a,b\n1,2\n3,4\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    array = np.arange(1000, dtype="<f4").reshape(100, 10)
    np.save(root / "sub" / "arr.npy", array)
    files["sub/arr.npy"] = (root / "sub" / "arr.npy").read_bytes()
    return files


def rsync(*args: str) -> None:
    result = subprocess.run(["rsync", "-r", "-t", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def check_bucket(cci, prefix: str, files: dict[str, bytes], array: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Every file stored under ``prefix`` as written (the .npy as the raw array ``arr``), nothing else:
    no rsync temporary (``.NAME.XXXXXX``) left."""
    keys = sorted(cci.glob(f"{prefix}/**"))
    want = sorted(f"{prefix}/{name}" for name in files if not name.endswith(".npy")) + [f"{prefix}/sub/arr"]
    assert keys == sorted(want), keys
    for name, data in files.items():
        if not name.endswith(".npy"):
            assert stored(cci, f"{prefix}/{name}") == data, name
    np.testing.assert_array_equal(cci.download_raw_array(f"{prefix}/sub/arr"), array)


@needs_rsync
@pytest.mark.parametrize("inplace", [False, True], ids=["temporary-files", "inplace"])
def test_rsync_a_tree_then_one_change(cci, tmp_path: Path, inplace: bool) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "src"
    files = make_tree(source)
    array = np.load(source / "sub" / "arr.npy")
    flags = ["--inplace"] if inplace else []
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache")) as m:
        rsync(*flags, f"{source}/", f"{m}/tree/")
        assert within(30, lambda: stored(cci, "tree/sub/deep/blob.bin") == files["sub/deep/blob.bin"])
        check_bucket(cci, "tree", files, array)
        # one file changed in its middle: rsync's delta pass reads the stored file through the mount
        blob = bytearray(files["sub/deep/blob.bin"])
        blob[2**20 : 2**20 + 5] = b"HELLO"
        (source / "sub" / "deep" / "blob.bin").write_bytes(blob)
        os.utime(source / "sub" / "deep" / "blob.bin", (time.time() + 10, time.time() + 10))
        files["sub/deep/blob.bin"] = bytes(blob)
        rsync(*flags, "--no-whole-file", f"{source}/", f"{m}/tree/")
        assert within(30, lambda: stored(cci, "tree/sub/deep/blob.bin") == bytes(blob))
        check_bucket(cci, "tree", files, array)
        for name, data in files.items():  # and through the mount
            assert (m / "tree" / name).read_bytes() == data, name
        assert not [n for _, _, names in os.walk(m) for n in names if n.startswith(".")]
    assert uploads(cci.settings.endpoint_url) == []
