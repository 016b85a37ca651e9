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


def test_flat_sink_writes_ranges_into_strided_slots() -> None:
    """Bytes written by range in any order (ranges splitting elements) land exactly in the slot, in C
    order, and nowhere else in the array holding it (the dask fill's strided slots)."""
    import random

    from cottoncandy.formats.flat import flat_sink

    rng, order = np.random.default_rng(0), random.Random(0)
    dtypes = [np.dtype("<f4"), np.dtype("i1"), np.dtype([("a", "<i4"), ("b", "<f8")]), np.dtype("<c16")]
    for _ in range(300):
        shape = tuple(int(x) for x in rng.integers(0, 6, int(rng.integers(0, 4))))
        dtype = order.choice(dtypes)
        whole = np.zeros(tuple(n + 3 for n in shape), dtype=dtype)
        where = tuple(slice(1, 1 + n) for n in shape) if shape else ...
        slot = whole[where]
        raw = rng.integers(0, 256, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, dtype=np.uint8).tobytes()
        sink = flat_sink(slot)
        assert sink is not None
        cuts = sorted({0, len(raw), *(int(x) for x in rng.integers(0, len(raw) + 1, 5))})
        pieces = list(zip(cuts, cuts[1:]))
        order.shuffle(pieces)
        for a, b in pieces:
            sink[a:b] = memoryview(raw)[a:b]
        assert np.ascontiguousarray(slot).tobytes() == raw
        whole[where] = np.zeros((), dtype)
        assert not whole.reshape(-1).view(np.uint8).any()
