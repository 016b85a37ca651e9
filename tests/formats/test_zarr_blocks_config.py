"""formats/zarr_blocks: the codec's config comes from a references JSON (kerchunk/zarr ``.zarray``), which
may be hostile. A block size larger than any block a reader accepts (``pgzip.MAX_READ_BLOCK``) is refused
when the codec is made, naming the object, before ``decode`` allocates a chunk of that size. No I/O."""

from __future__ import annotations

import zlib

import pytest

from cottoncandy.formats import pgzip, zarr_blocks

pytest.importorskip("numcodecs")


def test_a_config_asking_for_a_huge_block_is_refused_before_allocating() -> None:
    import numcodecs

    zarr_blocks.register()
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = comp.compress(b"x" * 100) + comp.flush(zlib.Z_FINISH)
    for size in (2**31, 2**40, pgzip.MAX_READ_BLOCK + 1):
        config = zarr_blocks.config(size, 100, None, "s3://bucket/x")
        with pytest.raises(ValueError, match=r"block of s3://bucket/x: blocks of \d+ bytes \(a block is 1 to"):
            numcodecs.get_codec(dict(config)).decode(chunk)
    for size in (0, -5):
        with pytest.raises(ValueError, match="blocks of"):
            numcodecs.get_codec({"id": zarr_blocks.ID, "size": size, "last": 1})
    largest = numcodecs.get_codec(dict(zarr_blocks.config(pgzip.MAX_READ_BLOCK, 100)))
    assert bytes(largest.decode(chunk)[:100]) == b"x" * 100
