"""Requests per operation on real mounts, counted in the server's log: an open whose metadata is
not confirmed costs one ranged GET (its answer carries the metadata), not a HEAD and a GET."""

from __future__ import annotations

import errno
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def endpoint(cci) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url]


def of_objects(s3) -> list:  # type: ignore[no-untyped-def]
    """HEADs and GETs of objects (a LIST is a GET of the bucket itself)."""
    return [r for r in s3.requests() if r.path.rstrip("/").count("/") >= 2 and r.method in ("GET", "HEAD")]


def critical(s3) -> list:  # type: ignore[no-untyped-def]
    """The requests an operation waits for: every one but the read-ahead of later blocks that the
    kernel starts in the background once it has the first ones."""
    return [r for r in of_objects(s3) if r.method == "HEAD" or (r.range or "bytes=0-").startswith("bytes=0-")]


def lists(s3) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in s3.requests() if r.method == "GET" and r.path.rstrip("/").count("/") <= 1)


#: ``--attr-ttl`` of these mounts: long enough that the one operation measured (np.load opens its
#: file three times) sees its file confirmed once, however slow the machine
ATTR_TTL = ["--attr-ttl", "3"]


def age_metadata() -> None:
    """Let what the mount knows about files grow older than ``--attr-ttl``, so the next open confirms
    the version with the store. A precondition, not a timing: any longer wait is the same."""
    time.sleep(3.2)


def first_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(1)


def test_open_and_first_byte_is_one_get(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        cci.upload_raw_array(f"rt/f{i}", np.arange(16.0) + i, compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci), *ATTR_TTL) as m:
        os.listdir(m / "rt")  # the folder's LIST and HEADs: metadata cached
        age_metadata()
        s3.clear_log()
        assert first_byte(m / "rt/f0.npy") == b"\x93"
        (get,) = of_objects(s3)  # no HEAD before it
        assert get.method == "GET" and get.range.startswith("bytes=0-")
        age_metadata()
        s3.clear_log()
        assert np.array_equal(np.load(m / "rt/f1.npy"), np.arange(16.0) + 1)
        assert [r.method for r in of_objects(s3)] == ["GET"]  # np.load opens the file three times: one GET


def test_a_file_never_looked_up_opens_with_one_get(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for i in range(2):
        cci.upload_raw_array(f"rt/g{i}", np.arange(8.0), compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci), *ATTR_TTL) as m:
        assert first_byte(m / "rt/g0.npy") == b"\x93"  # lists the folder; g1's metadata stays unknown
        s3.clear_log()
        assert first_byte(m / "rt/g1.npy") == b"\x93"
        assert [r.method for r in of_objects(s3)] == ["GET"] and lists(s3) == 0


def test_np_load_mmap_needs_one_request_once_the_folder_is_known(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw = np.random.default_rng(0).random((512, 256), dtype=np.float32)  # 512 KiB: three blocks
    cci.upload_raw_array("rt/raw", raw, compression=False)
    stored = np.arange(2**16, dtype="<f8")  # a stored .npy object: its real header is in its first block
    buffer = io.BytesIO()
    np.save(buffer, stored)
    cci.store.put("rt/stored.npy", buffer.getvalue())
    with mounted(BUCKET, tmp_path, *endpoint(cci), *ATTR_TTL) as m:
        os.listdir(m / "rt")
        for name, expected in (("raw.npy", raw), ("stored.npy", stored)):
            age_metadata()
            s3.clear_log()
            arr = np.load(m / "rt" / name, mmap_mode="r")
            assert arr.shape == expected.shape and arr.dtype == expected.dtype
            waited = critical(s3)
            assert [r.method for r in waited] == ["GET"], (name, waited)
            assert np.array_equal(arr, expected)
            del arr
    # cold: one LIST (a folder-like name lists that folder first, which shows its files), then one GET
    with mounted(BUCKET, tmp_path, *endpoint(cci), *ATTR_TTL) as m:
        s3.clear_log()
        arr = np.load(m / "rt/raw.npy", mmap_mode="r")
        assert float(arr[3, 3]) == float(raw[3, 3])
        assert lists(s3) == 1 and [r.method for r in critical(s3)] == ["GET"]
        del arr


def test_the_version_the_first_get_saw_is_pinned(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # 2 MiB: the first block comes with the lookup, the rest later with If-Match (a read from byte 0
    # fetches the first ``START_BYTES`` at once: the read that must fail lies beyond them)
    old = np.zeros(2**18)
    cci.upload_raw_array("rt/v", old, compression=False)
    with mounted(BUCKET, tmp_path, *endpoint(cci), *ATTR_TTL, expect_errors=True) as m:
        os.listdir(m / "rt")
        age_metadata()
        fd = os.open(m / "rt/v.npy", os.O_RDONLY)
        try:
            assert os.pread(fd, 8, 200) == bytes(8)
            cci.upload_raw_array("rt/v", np.ones(2**18), compression=False)  # same size, new ETag
            with pytest.raises(OSError) as caught:
                os.pread(fd, 8, 1_600_000)
            assert caught.value.errno == errno.ESTALE
        finally:
            os.close(fd)
        age_metadata()
        assert np.array_equal(np.load(m / "rt/v.npy"), np.ones(2**18))  # a new open sees the new version
