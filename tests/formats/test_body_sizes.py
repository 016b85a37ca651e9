"""What a compressed body says it decodes to, and the most it can take (``formats.codecs``; no I/O).

``ccfs refs`` checks these before it points zarr readers at a body (issue 24, item 6).
"""

from __future__ import annotations

import gzip
import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from cottoncandy.formats import codecs, pgzip

SIZES = [0, 1, 7, 4095, 65536, 2**20 + 3]


@pytest.mark.parametrize("nbytes", SIZES)
def test_every_codec_fits_its_body_bound_even_on_incompressible_data(nbytes: int) -> None:
    data = os.urandom(nbytes)
    bodies = {name: codecs.encode(memoryview(data), name) for name in codecs.DOCUMENTED}
    for block in (4096, pgzip.DEFAULT_BLOCK):  # the parallel writer, with the smallest blocks tests use too
        with ThreadPoolExecutor(2) as pool:
            writer = pgzip.ParallelGzip(memoryview(data), pool, block_size=block)
            chunks = list(writer.chunks())
        bodies[f"pgzip-{block}"] = writer.header() + b"".join(chunks)
    for name, body in bodies.items():
        assert len(body) <= codecs.max_body_size(nbytes), (name, len(body))


def test_gzip_isize_is_the_last_member_s_size_mod_2_32() -> None:
    assert codecs.gzip_isize(gzip.compress(b"x" * 1000)) == 1000
    assert codecs.gzip_isize(gzip.compress(b"a" * 10) + gzip.compress(b"b" * 3)) == 3  # what it cannot see
    with pytest.raises(codecs.CorruptBodyError):
        codecs.gzip_isize(b"\x1f")


@pytest.mark.parametrize("nbytes", SIZES)
def test_xz_declares_its_size_in_its_index(nbytes: int) -> None:
    body = codecs.encode(memoryview(os.urandom(nbytes // 2) + bytes(nbytes - nbytes // 2)), "lzma")
    need = codecs.xz_index_size(body) + codecs.XZ_FOOTER
    assert codecs.xz_declared_size(body[-need:], len(body)) == nbytes


def test_xz_bodies_that_are_not_one_stream_or_are_damaged_are_refused() -> None:
    one = codecs.encode(memoryview(bytes(1000)), "lzma")
    two = one + codecs.encode(memoryview(bytes(10)), "lzma")
    with pytest.raises(codecs.CorruptBodyError, match="not one xz stream"):
        codecs.xz_declared_size(two, len(two))
    flipped = bytearray(one)
    flipped[-9] ^= 1  # the backward size: the footer's CRC-32 no longer holds
    with pytest.raises(codecs.CorruptBodyError, match="CRC-32"):
        codecs.xz_declared_size(bytes(flipped), len(flipped))
    with pytest.raises(codecs.CorruptBodyError, match="footer"):
        codecs.xz_index_size(b"\0" * 12)
    huge = bytearray(one[-12:])  # an index of 2**32 * 4 bytes: not fetched
    huge[4:8] = b"\xff\xff\xff\xff"
    huge[:4] = zlib.crc32(bytes(huge[4:10])).to_bytes(4, "little")
    with pytest.raises(codecs.CorruptBodyError, match="xz index of"):
        codecs.xz_index_size(bytes(huge))


@pytest.mark.parametrize("name", ["gzip", "zlib", "bz2", "lzma"])
def test_decoding_into_nothing_checks_the_size_without_holding_it(name: str) -> None:
    body = codecs.encode(memoryview(bytes(2**20)), name)
    codecs.decode_stream_into([body[i : i + 100] for i in range(0, len(body), 100)], name, codecs.Discard(2**20))
    with pytest.raises(codecs.CorruptBodyError, match="more than the 1000 bytes"):
        codecs.decode_stream_into([body], name, codecs.Discard(1000))
