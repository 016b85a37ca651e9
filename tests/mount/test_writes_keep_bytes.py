"""Through a real ``--rw`` mount, against the local S3 server (issue 26): ``mv`` keeps the bytes the mount
shows (a raw array, a gzip raw array, a bytes object renamed to a name that is not ``.npy`` read back
exactly as before), and a staged new ``.npy`` (``open_memmap(mode='w+')``) is stored with
``--write-compression gzip`` in the library's indexed block format, in C or Fortran order, and keeps
its codec and order when rewritten in place."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.formats.keys import INDEX_KEY
from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]
MiB = 2**20


def test_mv_to_a_name_that_is_not_npy_keeps_the_bytes(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A raw array of 6 MiB (header + the first 5 MiB sent, the rest copied by the server), a gzip
    raw array (EXDEV in the daemon: mv copies it through the mount, then removes it) and a text
    object, each moved by mv(1): ``open(new).read()`` is what ``open(old).read()`` was."""
    raw = np.random.default_rng(1).random((768, 1024))  # 6 MiB
    cci.upload_raw_array("k/raw", raw, compression=None)
    cci.upload_raw_array("k/gz", np.arange(200_000, dtype="<f8").reshape(400, 500), compression="gzip")
    cci.upload_object("k/t.txt", b"plain text\n")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--allow-delete", cache_dir=tmp_path / "cache")) as m:
        before = {name: (m / "k" / name).read_bytes() for name in ("raw.npy", "gz.npy", "t.txt")}
        for name, new in (("raw.npy", "raw.bin"), ("gz.npy", "gz.bin"), ("t.txt", "t.dat")):
            done = subprocess.run(["mv", str(m / "k" / name), str(m / "k" / new)], capture_output=True, text=True)
            # mv's own words and the daemon's last lines, to say why when it fails
            assert done.returncode == 0, (name, done.stderr, (tmp_path / f"{m.name}.log").read_text()[-3000:])
            assert done.stderr == "", name  # no warning per xattr or ACL: ENOTSUP skips them quietly
            assert (m / "k" / new).read_bytes() == before[name], name
        assert sorted(os.listdir(m / "k")) == ["gz.bin", "raw.bin", "t.dat"]
        os.rename(m / "k/raw.bin", m / "k/again.npy")  # and back: the raw array again, same bytes
        assert (m / "k/again.npy").read_bytes() == before["raw.npy"]
    store = S3Store(BUCKET, cci.settings)
    assert sorted(info.key for info in store.iter_objects("k/")) == ["k/again", "k/gz.bin", "k/t.dat"]
    assert store.get("k/gz.bin") == before["gz.npy"]
    np.testing.assert_array_equal(cci.download_raw_array("k/again"), raw)


@pytest.mark.parametrize("fortran", [False, True])
def test_open_memmap_w_plus_is_stored_with_write_compression(cci, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             fortran: bool) -> None:
    data = np.random.default_rng(3).integers(0, 50, (1024, 1536)).astype("<f4")  # 6 MiB, compressible
    order = "F" if fortran else "C"
    store = S3Store(BUCKET, cci.settings)
    options = rw(cci.settings.endpoint_url, "--write-compression", "gzip", cache_dir=tmp_path / "cache")
    with mounted(BUCKET, tmp_path, *options) as m:
        out = np.lib.format.open_memmap(m / "mm.npy", mode="w+", dtype="<f4", shape=data.shape,
                                        fortran_order=fortran)
        out[:] = data
        out.flush()
        del out
        meta = store.head("mm").metadata or {}
        assert meta["compression"] == "gzip" and meta["order"] == order and INDEX_KEY in meta
        assert store.head("mm").size < data.nbytes
        np.testing.assert_array_equal(cci.download_raw_array("mm"), data)
        back = np.load(m / "mm.npy")
        assert back.flags.f_contiguous == fortran
        np.testing.assert_array_equal(back, data)
        again = np.load(m / "mm.npy", mmap_mode="r+")  # a staged rewrite keeps the codec and the order
        again[5, :] = -1
        again.flush()
        del again
    data[5, :] = -1
    meta = store.head("mm").metadata or {}
    assert meta["compression"] == "gzip" and meta["order"] == order and INDEX_KEY in meta
    np.testing.assert_array_equal(cci.download_raw_array("mm"), data)
