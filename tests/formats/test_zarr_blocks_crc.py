"""formats/zarr_blocks with a version 2 index: a chunk must inflate to one of the array's block CRC-32s
(the codec is not told which chunk it decodes), so a damaged block fails instead of giving values; the
CRCs round-trip through the codec's config. No I/O."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from cottoncandy.formats import deflate, zarr_blocks

pytest.importorskip("numcodecs")

SIZE = 4096


def block(data: bytes, last: bool) -> bytes:
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


def test_a_block_must_have_one_of_the_arrays_crcs() -> None:
    data = [bytes(np.random.default_rng(i).integers(0, 9, SIZE, dtype=np.uint8)) for i in range(3)]
    crcs = [deflate.crc32(d) for d in data]
    codec = zarr_blocks.GzipBlock(SIZE, SIZE, crcs)
    assert bytes(codec.decode(block(data[1], False))) == data[1]
    damaged = bytearray(data[1])
    damaged[100] ^= 1
    with pytest.raises(ValueError, match="which no block of this array has"):
        codec.decode(block(bytes(damaged), False))
    assert bytes(zarr_blocks.GzipBlock(SIZE, SIZE).decode(block(bytes(damaged), False))) == bytes(damaged)


def test_the_crcs_round_trip_through_the_config() -> None:
    import numcodecs

    zarr_blocks.register()
    config = zarr_blocks.config(SIZE, 10, [1, 2**32 - 1])
    assert numcodecs.get_codec(dict(config)).get_config() == config
    assert "crcs" not in zarr_blocks.config(SIZE, 10)  # version 1 indexes: as before


def test_errors_name_the_object_the_config_names() -> None:
    import numcodecs

    zarr_blocks.register()
    data = bytes(range(256)) * (SIZE // 256)
    config = zarr_blocks.config(SIZE, SIZE, [deflate.crc32(data)], "s3://bucket/sub/x")
    codec = numcodecs.get_codec(dict(config))
    assert codec.get_config() == config
    damaged = bytearray(data)
    damaged[7] ^= 1
    with pytest.raises(ValueError, match="block of s3://bucket/sub/x: inflates to CRC-32"):
        codec.decode(block(bytes(damaged), False))
    with pytest.raises(ValueError, match="block of s3://bucket/sub/x: inflates to 100 bytes"):
        codec.decode(block(data[:100], True))
