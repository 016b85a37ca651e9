"""formats/: metadata <-> spec, codecs, and .npy headers identical to np.save (hypothesis)."""

from __future__ import annotations

import gzip
import io

import numcodecs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cottoncandy.formats import codecs
from cottoncandy.formats.npy import npy_header, npy_size, parse_npy_header
from cottoncandy.formats.raw import (
    ArraySpec,
    metadata_from_spec,
    resolve_compression,
    spec_from_metadata,
    validate_extra_metadata,
)

SIMPLE_DTYPES = ["|b1", "|i1", "|u1", "<i2", ">i2", "<u2", "<i4", ">i4", "<u4", "<i8", "<u8", "<f2", "<f4", ">f8",
                 "<f8", "<c8", "<c16", "<U3", "|S4", "|V6", "<M8[ns]", "<m8[s]"]
STRUCTURED = [np.dtype([("x", "<f4"), ("n", "<i2")]), np.dtype([("a", "<i4", (2, 3)), ("b", "|S2")]),
              np.dtype({"names": ["p", "q"], "formats": ["<u1", "<f8"], "offsets": [0, 8], "itemsize": 24})]

dtypes = st.sampled_from([np.dtype(d) for d in SIMPLE_DTYPES] + STRUCTURED)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
orders = st.sampled_from(["C", "F"])


def np_save_bytes(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(dtype=dtypes, shape=shapes, order=orders)
def test_npy_header_is_byte_identical_to_np_save(dtype: np.dtype, shape: tuple[int, ...], order: str) -> None:
    arr = np.zeros(shape, dtype=dtype, order=order)  # type: ignore[call-overload]
    saved = np_save_bytes(arr)
    spec = ArraySpec(dtype=dtype, shape=shape, order=order)
    header = npy_header(spec)
    assert saved[: len(header)] == header
    assert npy_size(spec) == len(saved)
    parsed = parse_npy_header(saved[:4096])
    assert parsed is not None and parsed[1] == len(header) and parsed[0].shape == shape


def test_long_header_uses_version_2() -> None:
    dtype = np.dtype([(f"field_{i:04d}", "<f4") for i in range(5000)])
    spec = ArraySpec(dtype=dtype, shape=(2,))
    with pytest.warns(UserWarning, match="format 2.0"):
        saved = np_save_bytes(np.zeros(2, dtype))
    assert saved[: len(npy_header(spec))] == npy_header(spec)
    assert npy_header(spec)[6:8] == b"\x02\x00"


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from([np.dtype(d) for d in SIMPLE_DTYPES if d[1] not in "MmV"]), shape=shapes)
def test_metadata_roundtrip(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    spec = ArraySpec(dtype=dtype, shape=shape, compression="gzip")
    meta = metadata_from_spec(spec)
    assert list(meta) == ["dtype", "shape", "compression", "order"]
    assert meta["shape"] == ",".join(map(str, shape))
    assert spec_from_metadata(meta, "obj") == spec


def test_metadata_rules_of_0_4_0() -> None:
    base = {"dtype": "<f8", "shape": "7,5", "order": "C"}
    assert spec_from_metadata({**base, "compression": "False"}, "o").compression is None
    assert spec_from_metadata({**base, "compression": "None"}, "o").compression is None
    assert spec_from_metadata({**base, "compression": "LZ4"}, "o").compression == "LZ4"
    # legacy gzip flag wins over compression
    assert spec_from_metadata({"dtype": "<i4", "shape": "2,3", "gzip": "True"}, "o").compression == "gzip"
    assert spec_from_metadata({**base, "gzip": "False", "compression": "gzip"}, "o").compression is None
    assert spec_from_metadata({"dtype": "<f8", "shape": "", "compression": "False"}, "o").shape == ()
    assert spec_from_metadata({**base, "compression": "False", "order": "F"}, "o").order == "F"
    assert spec_from_metadata({**base, "compression": "Zstd", "order": "F"}, "o").order == "F"  # legacy bodies
    assert spec_from_metadata({"dtype": "<f8", "shape": "3", "compression": "False"}, "o").order == "C"


@pytest.mark.parametrize(
    ("meta", "message"),
    [({"shape": "3", "compression": "False"}, "lacks dtype"),
     ({"dtype": "<f8", "compression": "False"}, "lacks shape"),
     ({"dtype": "<f8", "shape": "3"}, "lacks compression"),
     ({}, "has: nothing"),
     ({"dtype": "nonsense", "shape": "3", "compression": "False"}, "not a numpy dtype"),
     ({"dtype": "<f8", "shape": "a,b", "compression": "False"}, "not a list of sizes"),
     ({"dtype": "<f8", "shape": "3", "compression": "snappy9"}, "Unknown compression scheme"),
     ({"dtype": "|O", "shape": "3", "compression": "False"}, "Python objects")],
)
def test_bad_metadata_is_a_clear_error(meta: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        spec_from_metadata(meta, "s3://b/the/key")
    assert "s3://b/the/key" in str(err.value)


def test_compression_choice() -> None:
    assert resolve_compression(True, 100) == "gzip"
    assert resolve_compression(True, 2**31 + 1) == "Zstd"
    assert resolve_compression(None, 100) is None and resolve_compression(False, 100) is None
    assert resolve_compression("LZ4", 100) == "LZ4"
    assert resolve_compression(True, 100, gzip_flag=False) is None
    assert resolve_compression(False, 100, gzip_flag=True) == "gzip"
    assert resolve_compression(True, 100, do_compression=False) is None
    with pytest.raises(ValueError, match="does not support"):
        resolve_compression(True, 2**31 + 1, large_array="gzip")
    with pytest.raises(ValueError, match="supported:.*LZ4"):
        resolve_compression("nope", 100)
    with pytest.raises(TypeError, match="compression"):
        resolve_compression(3.5, 100)


def test_extra_metadata_validation() -> None:
    assert validate_extra_metadata({"subject": "s01"}) == {"subject": "s01"}
    with pytest.raises(ValueError, match="reserved"):
        validate_extra_metadata({"dtype": "x"})
    assert validate_extra_metadata({"run": 3, "ok": True}) == {"run": "3", "ok": "True"}  # str(value), as 0.4.0


@pytest.mark.parametrize("name", ["gzip", "LZ4", "Zlib", "Zstd", "BZ2", "lzma", "zstd"])
def test_codecs_roundtrip_and_match_0_4_0_bytes(name: str) -> None:
    arr = np.arange(35, dtype="<f8").reshape(7, 5)
    body = codecs.encode(memoryview(arr).cast("B"), name)
    out = bytearray(arr.nbytes)
    codecs.decode_into(body, name, memoryview(out))
    assert bytes(out) == arr.tobytes()
    if name == "gzip":
        assert body[:4] == b"\x1f\x8b\x08\x00" and body[8:10] == b"\x02\xff"
        assert gzip.decompress(body) == arr.tobytes()
    else:  # 0.4.0 = numcodecs codec with default parameters on the array
        assert body == bytes(numcodecs.get_codec({"id": name.lower()}).encode(arr))


@pytest.mark.parametrize("name", ["gzip", "LZ4", "Zstd", "Zlib", "BZ2"])
def test_corrupt_or_truncated_bodies_are_errors(name: str) -> None:
    arr = np.random.default_rng(3).random(2000)
    body = codecs.encode(memoryview(arr).cast("B"), name)
    out = memoryview(bytearray(arr.nbytes))
    with pytest.raises(codecs.CorruptBodyError):
        codecs.decode_into(body[: len(body) // 2], name, out)
    with pytest.raises(codecs.CorruptBodyError):
        codecs.decode_into(body, name, memoryview(bytearray(arr.nbytes - 8)))
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0xFF
    try:
        codecs.decode_into(bytes(flipped), name, out)
    except codecs.CorruptBodyError:
        pass
    else:  # a codec without a checksum may decode a flipped byte: then it must still fill exactly
        assert len(out) == arr.nbytes


def test_gzip_streams_in_small_chunks_and_multi_member() -> None:
    data = np.random.default_rng(4).integers(0, 4, 300_000, dtype=np.uint8).tobytes()
    body = gzip.compress(data[:100_000]) + gzip.compress(data[100_000:])
    out = bytearray(len(data))
    codecs.gunzip_into((body[i : i + 777] for i in range(0, len(body), 777)), memoryview(out))
    assert bytes(out) == data
    empty = gzip.compress(b"")
    codecs.gunzip_into([empty], memoryview(bytearray(0)))


@pytest.mark.parametrize("name", ["Zlib", "BZ2", "lzma"])
def test_stdlib_codecs_decode_like_numcodecs_and_stop_at_the_array(name: str) -> None:
    """zlib, bz2 and lzma bodies are decoded here, bounded (numcodecs' decode is not): the same
    bytes as numcodecs for its own bodies and for concatenated bz2/xz streams, and an error, not
    gigabytes, when a body decodes to more than the array."""
    arr = np.arange(5000, dtype="<i8")
    codec = numcodecs.get_codec({"id": name.lower()})
    body = bytes(codec.encode(arr))
    if name != "Zlib":  # numcodecs (bz2.decompress, lzma.decompress) reads on after a stream ends
        body += body
        arr = np.concatenate([arr, arr])
    out = bytearray(arr.nbytes)
    codecs.decode_into(body, name, memoryview(out))
    assert bytes(out) == bytes(codec.decode(body)) == arr.tobytes()
    bomb = bytes(codec.encode(np.zeros(2**26, np.uint8)))
    with pytest.raises(codecs.CorruptBodyError, match="more than the 4096 bytes"):
        codecs.decode_into(bomb, name, memoryview(bytearray(4096)))
