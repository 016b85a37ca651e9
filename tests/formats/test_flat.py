"""FlatBytes: any byte range of a strided array equals the same range of its C-order copy."""

from __future__ import annotations

import numpy as np
import pytest

from cottoncandy.formats.flat import FlatBytes

rng = np.random.default_rng(5)
BASE = rng.random((7, 11, 13))
RECORDS = np.zeros((9, 10), dtype=[("a", "<i4"), ("b", "<f8")])  # itemsize 12: ranges cut records
RECORDS["a"] = np.arange(90).reshape(9, 10)
ARRAYS = {
    "contiguous": BASE,
    "last_axis_slab": BASE[..., 3:9],
    "middle_axis_slab": BASE[:, 2:5, :],
    "stepped": BASE[::2, ::3, ::-1],
    "fortran": np.asfortranarray(BASE),
    "records_slab": RECORDS[:, 2:7],
    "one_d_stepped": np.arange(100, dtype=">i2")[::3],
    "scalar": np.array(3.5),
    "empty": BASE[:, :0, :],
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_every_range_matches_the_c_order_bytes(name: str) -> None:
    arr = ARRAYS[name]
    expected = np.ascontiguousarray(arr).tobytes()
    flat = FlatBytes(arr)
    assert len(flat) == len(expected)
    assert flat.contiguous == (arr.flags.c_contiguous or arr.size == 0)
    cuts = sorted({0, len(expected), *rng.integers(0, len(expected) + 1, 40).tolist()})
    for start, stop in zip(cuts, cuts[1:]):
        assert bytes(flat.read(start, stop)) == expected[start:stop], (start, stop)
    for piece in (1, 5, 64, 10**6):
        assert b"".join(bytes(c) for c in flat.chunks(piece)) == expected


def test_a_strided_read_copies_only_its_range() -> None:
    arr = BASE[..., 1:12]
    view = FlatBytes(arr).read(800, 900)
    assert view.obj.nbytes < 200  # type: ignore[union-attr]  # the elements covering 100 bytes, not the array
