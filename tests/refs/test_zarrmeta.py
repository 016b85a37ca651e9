"""``formats.zarrmeta``: how a stored body becomes zarr chunks (no I/O, so every case is cheap)."""

from __future__ import annotations

import numpy as np
import pytest

from cottoncandy.formats.raw import ArraySpec
from cottoncandy.formats.zarrmeta import block_grid, divisor_at_most, plan_body, zarray


def spec(shape: tuple[int, ...], dtype: str = "<f8", order: str = "C", compression: str | None = None) -> ArraySpec:
    return ArraySpec(np.dtype(dtype), shape, order, compression)


def test_c_order_is_cut_in_equal_slabs_along_the_first_axis() -> None:
    plan = plan_body(spec((1000, 100)), 800_000, chunk_bytes=64 * 2**10)
    assert plan.chunks == (50, 100) and plan.order == "C" and plan.compressor is None  # 50 divides 1000
    assert [(r.key, r.offset, r.length) for r in plan.ranges[:2]] == [("0.0", 0, 40_000), ("1.0", 40_000, 40_000)]
    assert len(plan.ranges) == 20 and plan.ranges[-1].offset + plan.ranges[-1].length == 800_000


def test_f_order_is_cut_along_the_last_axis_past_a_header() -> None:
    plan = plan_body(spec((10, 6), order="F"), 128 + 480, body_offset=128, chunk_bytes=160)
    assert plan.chunks == (10, 2) and plan.order == "F"
    assert [(r.key, r.offset, r.length) for r in plan.ranges] == [("0.0", 128, 160), ("0.1", 288, 160),
                                                                 ("0.2", 448, 160)]


def test_a_prime_length_is_one_chunk_when_small_and_slabs_when_large() -> None:
    assert plan_body(spec((1009,)), 8072, chunk_bytes=4096).chunks == (1009,)
    big = plan_body(spec((1009, 1000)), 8_072_000, chunk_bytes=16_000)
    assert big.chunks == (1, 1000) and len(big.ranges) == 1009


def test_compressed_empty_and_zero_d_bodies() -> None:
    gz = plan_body(spec((7, 5), compression="LZ4"), 287)
    assert gz.compressor == {"id": "lz4", "acceleration": 1} and [(r.key, r.offset, r.length) for r in gz.ranges] == \
        [("0.0", 0, 287)]
    assert plan_body(spec((0, 4)), 0).ranges == () and plan_body(spec((0, 4)), 0).chunks == (1, 4)
    zero_d = plan_body(spec(()), 8)
    assert zero_d.chunks == () and [(r.key, r.length) for r in zero_d.ranges] == [("0", 8)]
    assert zarray((), np.dtype("<f8"), zero_d)["fill_value"] is None


@pytest.mark.parametrize(("chunks", "shape", "want"), [
    ([[4, 4, 0], [120], [1500]], [8, 120, 1500], ((4, 120, 1500), True)),
    ([[8], [120], [683, 683, 134, 0]], [8, 120, 1500], ((8, 120, 683), False)),
    ([[3, 5, 2]], [10], None),
    ([[5, 7]], [12], None),
    ([[0, 0]], [0], ((1,), True)),
])
def test_block_grids(chunks: list[list[int]], shape: list[int], want: object) -> None:
    assert block_grid(chunks, shape) == want


def test_divisors() -> None:
    assert divisor_at_most(1000, 81) == 50 and divisor_at_most(1009, 100) == 1 and divisor_at_most(12, 100) == 12
