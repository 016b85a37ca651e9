"""Staged writes through a real ``--rw`` mount (issue 26 items 3, 4): ``open_memmap(mode='w+')``, an
``r+`` memmap's row updates (only the changed parts sent, the rest copied by the server), a pandas
append, and a refused CompleteMultipartUpload that fsync reports with no object and no upload left.
h5py and rsync: ``test_writes_tools.py``; more faults on staged files: ``test_write_faults.py``."""

from __future__ import annotations

import errno
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, uploads, within

pytestmark = [needs_fuse, pytest.mark.fuse]
MiB = 2**20


def test_open_memmap_w_plus(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = np.random.default_rng(2).random((2048, 1024)).astype("<f4")  # 8 MiB: two parts
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache")) as m:
        out = np.lib.format.open_memmap(m / "mm.npy", mode="w+", dtype="<f4", shape=data.shape)
        out[:] = data
        out.flush()  # fsync: the commit point a program sees
        np.testing.assert_array_equal(cci.download_raw_array("mm"), data)
        del out
        assert os.stat(m / "mm.npy").st_size == 128 + data.nbytes
        np.testing.assert_array_equal(np.load(m / "mm.npy"), data)
    assert not list((tmp_path / "cache" / "writes").iterdir())


def test_r_plus_rows_send_only_the_changed_parts(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = np.random.default_rng(3).random((12 * 1024, 1024))  # 96 MiB of 8 KiB rows
    cci.upload_raw_array("big", rows, compression=False)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache")) as m:
        s3.clear_log()
        array = np.load(m / "big.npy", mmap_mode="r+")
        array[5000:6000] = -1.0  # 1,000 rows: 7.8 MiB
        array.flush()
        del array
        log = s3.requests()
    expected = rows.copy()
    expected[5000:6000] = -1.0
    np.testing.assert_array_equal(cci.download_raw_array("big"), expected)
    parts = [r for r in log if r.method == "PUT" and "partNumber" in r.query]
    fetched = sum(r.bytes_sent for r in log if r.method == "GET" and "big" in r.path)
    # the daemon's line for the commit: "stored ... (N bytes: S sent, C copied by the server, F fetched)"
    line = next(x for x in (tmp_path / "mnt0.log").read_text().splitlines() if "copied by the server" in x)
    sent, copied = (int(re.search(rf"(\d+) {word}", line).group(1)) for word in ("sent", "copied"))  # type: ignore[union-attr]
    if parts and hasattr(parts[0], "bytes_received"):  # the server's own count, where the rig logs it
        assert sum(r.bytes_received for r in parts if not r.copy_source) == sent
        assert sum(1 for r in parts if r.copy_source) >= 2
    assert sent <= 16 * MiB and sent + copied == rows.nbytes and len(parts) >= 3, (line, len(parts))
    assert fetched <= 16 * MiB, fetched  # the pages faulted in, not the object
    print(f"1,000 rows of a {rows.nbytes >> 20} MiB memmap: {sent / MiB:.1f} MiB sent, {copied / MiB:.1f} MiB "
          f"copied by the server in {len(parts)} parts, {fetched / MiB:.1f} MiB fetched")


def test_pandas_append(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pandas = pytest.importorskip("pandas")
    cci.upload_object("t.csv", b"a,b\n1,2\n")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache")) as m:
        pandas.DataFrame({"a": [3], "b": [4]}).to_csv(m / "t.csv", mode="a", header=False, index=False)
        # stored at the last release (a staged file's close reports nothing: FLUSH is no commit point)
        # (an OSError: replaced between the library's HEAD and its GET)
        assert within(30, lambda: cci.download_object("t.csv") == b"a,b\n1,2\n3,4\n")
        assert pandas.read_csv(m / "t.csv")["a"].tolist() == [1, 3]
    assert cci.download_object("t.csv") == b"a,b\n1,2\n3,4\n"


def test_refused_complete_is_fsync_eio(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A 500 on every CompleteMultipartUpload: ``memmap.flush()`` (fsync) fails with EIO, the object
    keeps its version, and no in-progress upload is left."""
    rows = np.arange(2 * MiB, dtype="<f8").reshape(-1, 1024)  # 16 MiB: a multipart commit
    cci.upload_raw_array("f", rows, compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, "--rw", "--cache-dir",
                 str(tmp_path / "cache"), expect_errors=True) as m:
        array = np.load(m / "f.npy", mmap_mode="r+")
        fault_proxy.set_rules([FaultRule("error500", methods=("POST",), query="uploadId")])
        array[10] = -1.0
        with pytest.raises(OSError) as caught:
            array.flush()
        assert caught.value.errno == errno.EIO
        del caught  # its traceback holds the memmap (the flush's frame), so the file stays mapped
        assert uploads(fault_proxy.endpoint_url) == []
        fault_proxy.clear()
        del array  # the last release (sent by the kernel a moment after munmap) tries again, and stores it
        expected = rows.copy()
        expected[10] = -1.0
        within(30, lambda: cci.download_raw_array("f")[10, 0] == -1.0)
    np.testing.assert_array_equal(cci.download_raw_array("f"), expected)
    assert uploads(fault_proxy.endpoint_url) == []


def test_append_and_overwrite_in_place_with_shell_tools(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``>>`` appends, ``dd conv=notrunc`` and Python's ``r+b`` overwrite in place: each stored at its
    last close with what the file holds; stat shows the size the program wrote."""
    cci.upload_object("log.txt", b"one\n")
    cci.upload_object("blob.bin", bytes(64))
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache")) as m:
        subprocess.run(f"echo two >> {m / 'log.txt'}", shell=True, check=True)
        subprocess.run(["dd", "if=/dev/zero", f"of={m / 'blob.bin'}", "bs=1", "count=0", "seek=100",
                        "status=none"], check=True)  # grows it with zeros (ftruncate), no data
        with open(m / "blob.bin", "r+b") as f:
            f.seek(10)
            f.write(b"middle")
        for key, want in (("log.txt", b"one\ntwo\n"), ("blob.bin", bytes(10) + b"middle" + bytes(84))):
            within(30, lambda: cci.download_object(key) == want)  # noqa: B023 - used at once, in this iteration
            assert cci.download_object(key) == want
        assert os.stat(m / "blob.bin").st_size == 100
