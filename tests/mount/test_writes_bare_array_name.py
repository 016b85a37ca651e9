"""A raw array ``x`` is shown as ``x.npy``; the bare name ``x`` shows nothing, but a new file or a rename
there would be stored under the key ``x``: the array's. Through a ``--rw`` mount that is ``EEXIST``
naming the array's file, before anything is sent, with or without ``--last-writer-wins`` (the program
never named ``x.npy``), and the array stays. (``mv b.bin x`` over an endpoint that ignores
``If-None-Match`` on CopyObject replaced the array with b's bytes and deleted ``b.bin``.)"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]


@pytest.mark.parametrize("more", [[], ["--last-writer-wins"]], ids=["conditional", "last-writer-wins"])
def test_the_bare_name_of_a_raw_array_is_taken(cci, tmp_path: Path, more: list[str]) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(4.0)
    cci.upload_raw_array("p/x", arr, compression=None)
    cci.store.put("p/b.bin", b"bbb")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--allow-delete", *more),
                 expect_errors=True) as m:
        assert sorted(os.listdir(m / "p")) == ["b.bin", "x.npy"]
        for call in (lambda: os.rename(m / "p/b.bin", m / "p/x"),
                     lambda: os.open(m / "p/x", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            with pytest.raises(OSError) as err:
                call()
            assert err.value.errno == errno.EEXIST
        assert sorted(os.listdir(m / "p")) == ["b.bin", "x.npy"]
    lines = mounted.last_errors  # type: ignore[attr-defined]
    assert len(lines) == 2 and all("shown as p/x.npy;" in line for line in lines), lines
    np.testing.assert_array_equal(cci.download_raw_array("p/x"), arr)
    assert cci.download_object("p/b.bin") == b"bbb"


@pytest.mark.parametrize("more", [[], ["--last-writer-wins"]], ids=["conditional", "last-writer-wins"])
def test_the_array_key_of_x_npy_is_taken_by_the_file_x(cci, tmp_path: Path, more: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The other way: ``x.npy`` holding a plain array is stored as the raw array ``x``, whose key is the
    file shown as ``x``: ``np.save`` and ``mv a.npy x.npy`` are EEXIST at once naming ``x`` (with
    ``--last-writer-wins`` np.save replaced ``x``; without, EEXIST came at close, after every byte)."""
    cci.store.put("p/x", b"notes")
    cci.upload_raw_array("p/a", np.arange(3.0), compression=None)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, *more), expect_errors=True) as m:
        assert sorted(os.listdir(m / "p")) == ["a.npy", "x"]
        for call in (lambda: os.open(m / "p/x.npy", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                     lambda: os.rename(m / "p/a.npy", m / "p/x.npy")):
            with pytest.raises(OSError) as err:
                call()
            assert err.value.errno == errno.EEXIST
        assert sorted(os.listdir(m / "p")) == ["a.npy", "x"]
    lines = mounted.last_errors  # type: ignore[attr-defined]
    assert len(lines) == 2 and all("shown as p/x;" in line for line in lines), lines
    assert cci.download_object("p/x") == b"notes"
    np.testing.assert_array_equal(cci.download_raw_array("p/a"), np.arange(3.0))
