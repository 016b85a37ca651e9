"""Writes through a real ``--rw`` mount (issue 26 items 1, 2, 4, 7): ``np.save`` and ``cp`` stream to
the local S3 server, the library reads back exactly what was written, a short ``.npy`` and a
refused upload leave no object and no in-progress upload, and the default mount stays read-only."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, uploads, within

pytestmark = [needs_fuse, pytest.mark.fuse]


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def test_np_save_through_the_mount_is_a_raw_array(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = np.random.default_rng(1).standard_normal((4096, 1100)).astype("<f8")  # 34 MiB: a multipart upload
    small = np.arange(12, dtype="<i2").reshape(3, 4)
    fortran = np.asfortranarray(np.arange(60.0).reshape(6, 10))
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        np.save(m / "big.npy", big)
        np.save(m / "small.npy", small)
        np.save(m / "fortran.npy", fortran)
        # shown at once, with its .npy size, attributes and version (no refresh)
        assert sorted(os.listdir(m)) == ["big.npy", "fortran.npy", "small.npy"]
        assert os.stat(m / "big.npy").st_size == len(npy_bytes(big))
        assert os.getxattr(m / "small.npy", "user.cottoncandy.shape") == b"3,4"
        assert os.getxattr(m / "big.npy", "user.cottoncandy.etag")
        assert np.array_equal(np.load(m / "big.npy", mmap_mode="r"), big)
    assert np.array_equal(cci.download_raw_array("big"), big)
    assert np.array_equal(cci.download_raw_array("small"), small)
    back = cci.download_raw_array("fortran")
    assert np.array_equal(back, fortran)
    assert sorted(cci.glob("*")) == ["big", "fortran", "small"]
    assert uploads(cci.settings.endpoint_url) == []


def test_cp_stores_files_byte_for_byte_and_arrays_as_arrays(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    notes = tmp_path / "notes.txt"
    notes.write_bytes(os.urandom(7 * 2**20 + 3))
    array = np.arange(3_000_000, dtype="<u4")
    local = tmp_path / "x.npy"
    np.save(local, array)
    objects = tmp_path / "objects.npy"
    objects.write_bytes(npy_bytes(np.array([{"a": 1}, None], dtype=object)))
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        subprocess.run(["cp", str(notes), str(local), str(objects), str(m)], check=True)
        shutil.copyfile(notes, m / "copy.bin")
        assert (m / "notes.txt").read_bytes() == notes.read_bytes()
    assert cci.download_object("notes.txt") == notes.read_bytes()
    assert cci.download_object("copy.bin") == notes.read_bytes()
    assert np.array_equal(cci.download_raw_array("x"), array)
    assert cci.download_object("objects.npy") == objects.read_bytes()  # not a plain array: its bytes


def test_a_short_npy_is_never_visible(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = npy_bytes(np.zeros((3000, 1000)))  # 24 MB: cut after one part is out
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        for name, cut in (("header.npy", 128), ("half.npy", len(data) // 2)):
            with open(m / name, "wb") as fh:
                fh.write(data[:cut])
            assert name not in os.listdir(m)
    assert cci.glob("*") == []
    assert uploads(cci.settings.endpoint_url) == []


@pytest.mark.parametrize("size, rule", [
    (1000, FaultRule("error500", methods=("PUT",))),  # one PUT, refused
    (40 * 2**20, FaultRule("error500", methods=("POST",), query="uploadId")),  # CompleteMultipartUpload refused
    (40 * 2**20, FaultRule("reset", methods=("PUT",), query="partNumber")),  # every UploadPart reset mid-body
])
def test_a_refused_upload_fails_close_and_leaves_nothing(cci, fault_proxy, tmp_path: Path, size: int,
                                                          rule: FaultRule) -> None:  # type: ignore[no-untyped-def]
    array = np.ones(size // 8)
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        fault_proxy.set_rules([rule])
        with pytest.raises(OSError) as caught:
            np.save(m / "refused.npy", array)
        fault_proxy.clear()
        assert caught.value.errno == errno.EIO
        assert "refused.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert uploads(cci.settings.endpoint_url) == []
    errors = mounted.last_errors  # type: ignore[attr-defined]
    assert len(errors) == 1 and "refused" in errors[0], errors


def test_the_default_mount_is_read_only(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("a", np.arange(4.0), compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url) as m:
        for attempt in (lambda: np.save(m / "b.npy", np.ones(3)), lambda: os.open(m / "a.npy", os.O_RDWR),
                        lambda: os.mkdir(m / "d"), lambda: os.unlink(m / "a.npy")):
            with pytest.raises(OSError) as caught:
                attempt()
            assert caught.value.errno == errno.EROFS
    assert cci.glob("*") == ["a"]


def test_other_local_mounts_and_the_library_see_it_at_once(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Item 7: the store's change announcement fires for the mount's own uploads, so a mount of the
    same bucket that listed the folder already (TTL 300 s) shows the new file without a refresh."""
    url = cci.settings.endpoint_url
    array = np.arange(40_000, dtype="<f8").reshape(200, 200)
    cci.upload_raw_array("seen/first", np.arange(3.0), compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", url, "--metadata-ttl", "300") as reader:
        assert os.listdir(reader / "seen") == ["first.npy"]
        with mounted(BUCKET, tmp_path, *rw(url)) as writer:
            np.save(writer / "seen" / "second.npy", array)
            assert sorted(os.listdir(writer / "seen")) == ["first.npy", "second.npy"]  # this mount: at once
            # the other mount: told within a moment (an announcement, then one HEAD)
            within(30, lambda: "second.npy" in os.listdir(reader / "seen"))
            assert sorted(os.listdir(reader / "seen")) == ["first.npy", "second.npy"]
            assert np.array_equal(np.load(reader / "seen" / "second.npy"), array)
    assert sorted(cci.glob("seen/*")) == ["seen/first", "seen/second"]


def test_overwriting_a_file_replaces_it_whole(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = np.arange(10.0), np.arange(24, dtype="<i8").reshape(4, 6)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        np.save(m / "a.npy", first)
        np.save(m / "a.npy", second)  # an open with O_TRUNC of the existing array: streamed again
        (m / "t.txt").write_bytes(b"old text, longer than the new one")
        (m / "t.txt").write_bytes(b"new")
        assert np.array_equal(np.load(m / "a.npy"), second)
        assert (m / "t.txt").read_bytes() == b"new"
    assert np.array_equal(cci.download_raw_array("a"), second)
    assert cci.download_object("t.txt") == b"new"


def test_shell_redirection_stores_what_the_command_wrote(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``cmd > f``: the shell opens ``f``, gives the descriptor to ``cmd`` and closes its own copy
    (a FLUSH before any byte is written), so a FLUSH of an empty file stores nothing yet; ``touch``
    still makes an empty object (at the last release)."""
    data = tmp_path / "a.bin"
    data.write_bytes(os.urandom(20 * 2**20 + 5))  # more than one part
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        subprocess.run(["bash", "-c", f"cat {data} > {m / 'copy.bin'}; echo hello > {m / 'hello.txt'}; "
                                      f"touch {m / 'empty.txt'}"], check=True)
        assert (m / "hello.txt").read_bytes() == b"hello\n"
    assert cci.download_object("copy.bin") == data.read_bytes()
    assert cci.download_object("hello.txt") == b"hello\n"
    assert cci.download_object("empty.txt") == b""
