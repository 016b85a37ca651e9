"""A file that changes kind between commits, through a real ``--rw`` mount (issue 26): ``NAME.npy``
holding a plain array is the raw array ``NAME``, other bytes are ``NAME.npy``. After the last close the
store holds one object for the path, with the right content, and the mount lists one ``NAME.npy`` of
the right size (the replaced version under the other key is removed; no ``--allow-delete`` needed)."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, uploads

pytestmark = [needs_fuse, pytest.mark.fuse]


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def stored_keys(cci, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The keys of the bucket's root that are ``name`` or ``name.npy``."""
    return [i.key for i in cci.store.list_dir("").objects if i.key in (name, name + ".npy")]


def test_bytes_stored_at_a_flush_then_completed_to_an_array_leave_one_array(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``{ printf MAGIC; cat rest; } > n.npy``: the printf's exit stores six bytes as ``n.npy``; the
    rest completes a plain ``.npy``, stored as the array ``n``; ``n.npy`` is gone."""
    array = np.arange(1000, dtype="<f8").reshape(10, 100)
    data = npy(array)
    assert data[:6] == b"\x93NUMPY"
    rest = tmp_path / "rest"
    rest.write_bytes(data[6:])
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        os.listdir(m)  # the root listed before: what it shows afterwards is mended, not listed again
        subprocess.run(["bash", "-c", f"{{ /usr/bin/printf '\\x93NUMPY'; cat {rest}; }} > {m / 'n.npy'}"],
                       check=True, capture_output=True, timeout=120)
        assert stored_keys(cci, "n") == ["n"]
        assert [name for name in os.listdir(m) if name.startswith("n")] == ["n.npy"]
        assert os.stat(m / "n.npy").st_size == len(data)
        assert (m / "n.npy").read_bytes() == data
    np.testing.assert_array_equal(cci.download_raw_array("n"), array)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:  # a fresh mount lists it the same
        assert [name for name in os.listdir(m) if name.startswith("n")] == ["n.npy"]
    assert uploads(cci.settings.endpoint_url) == []


@pytest.mark.parametrize("how", ["truncate", "r+"])
def test_an_array_rewritten_as_other_bytes_leaves_one_object(cci, tmp_path: Path, how: str) -> None:  # type: ignore[no-untyped-def]
    """An array ``a`` rewritten through ``a.npy`` (``O_TRUNC``: streamed; ``r+``: staged) with bytes
    that are no plain ``.npy`` is stored as ``a.npy``; the array ``a`` is gone."""
    array = np.arange(64, dtype="<i4")
    cci.upload_raw_array("a", array)
    data = npy(array)
    expected = b"not an array any more\n" if how == "truncate" else b"X" + data[1:]
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        assert os.listdir(m) == ["a.npy"]
        if how == "truncate":
            (m / "a.npy").write_bytes(expected)
        else:
            with open(m / "a.npy", "r+b") as f:
                f.write(b"X")
                f.flush()
                os.fsync(f.fileno())  # a staged file's commit point (its last RELEASE is sent in the background)
        assert stored_keys(cci, "a") == ["a.npy"]
        assert cci.download_object("a.npy") == expected
        assert os.listdir(m) == ["a.npy"]
        assert os.stat(m / "a.npy").st_size == len(expected)
        assert (m / "a.npy").read_bytes() == expected
    assert uploads(cci.settings.endpoint_url) == []
