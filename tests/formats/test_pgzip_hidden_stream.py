"""A gzip body crafted so that its block index cuts inside a stored block whose text ends with bytes
that look like the writer's full flush, and hides a second deflate stream after the cut. Serially
(``gzip -d``, 0.4.0, ``download_raw_array``) the text is data; read block by block from the index,
block 1 is the hidden stream. The block whose end only looks like a flush is refused when read
(``pgzip.ends_at_block_boundary``), by the mount's and the library's block reader and by the zarr
codec; block 1 read alone cannot tell (README: a limit of random access by an outside index). The
writer's own blocks still inflate alone: ``test_pgzip.test_every_block_inflates_alone``."""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numcodecs
import numpy as np
import pytest

from cottoncandy.cache.inflated import BlockTable
from cottoncandy.formats import pgzip, zarr_blocks

BLOCK = 4096


def hidden_stream_body() -> tuple[bytes, bytes, pgzip.Index]:
    """(body, what the serial decode gives, its forged index)."""
    text = os.urandom(300)
    for zeros in range(1, 5000):  # a stream that stores its input: its deflate bytes are as long as its text
        candidate = b"\0" * zeros + text
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        hidden = packer.compress(candidate) + packer.flush(zlib.Z_FULL_FLUSH)
        if len(hidden) == len(candidate):
            fake = candidate
            break
    else:
        raise AssertionError("no storing stream found")
    first = bytearray(b"A" * BLOCK)
    first[-4:] = pgzip.SYNC_MARKER  # text that looks like the flush marker at the cut
    stored = bytes(first) + hidden  # block 0's stored text runs on past the cut, over the hidden stream
    rest = b"D" * (BLOCK - len(hidden))
    stream = (b"\x00" + struct.pack("<HH", len(stored), len(stored) ^ 0xFFFF) + stored
              + b"\x01" + struct.pack("<HH", len(rest), len(rest) ^ 0xFFFF) + rest)
    serial = stored + rest
    cut = 5 + BLOCK
    header = pgzip.header(BLOCK, [cut, len(stream) - cut], [zlib.crc32(bytes(first)), zlib.crc32(fake + rest)])
    body = header + stream + struct.pack("<II", zlib.crc32(serial), len(serial))
    index = pgzip.parse_index(body[: len(header)], BLOCK, 2, 2 * BLOCK, len(body))
    return body, serial, index


def test_the_block_that_hides_a_stream_is_refused_when_read() -> None:
    body, serial, index = hidden_stream_body()
    assert gzip.decompress(body) == serial  # what every gzip reader gives
    table = BlockTable(index, 2 * BLOCK, "x")
    first = index.blocks[0]
    with pytest.raises(ValueError, match="block boundary"):
        table.inflate(0, memoryview(body)[first.start : first.end])


def test_the_zarr_codec_refuses_it_too() -> None:
    body, _, index = hidden_stream_body()
    zarr_blocks.register()
    codec = numcodecs.get_codec(dict(zarr_blocks.config(BLOCK, BLOCK, None, "s3://bucket/x")))
    first = index.blocks[0]
    with pytest.raises(ValueError, match="inflates to"):
        codec.decode(np.frombuffer(body[first.start : first.end], dtype="u1"))
