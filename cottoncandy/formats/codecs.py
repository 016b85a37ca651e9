"""Body codecs of raw arrays: none, gzip (a gzip *file* stream), and an allowlist of byte codecs.

0.4.0 stores the codec name exactly as the caller spelled it (``LZ4``, ``zstd``) and builds the codec
with its default parameters; we accept the same names, case-insensitively.

The codec name comes from object metadata, which whoever can write the bucket controls, so it
must never choose what code runs. 0.4.0 handed it to ``numcodecs.get_codec``, which also builds
``pickle``, ``json2``, ``msgpack2``, ``vlen-*`` and object codecs: decoding with those unpickles
or builds Python objects from the body. Here only the allowed codecs of :data:`CODECS` exist, on read
and on write, whatever numcodecs version is installed. Each turns bytes into bytes and nothing else
(each codec's facts are one :class:`Codec` record in :data:`CODECS`, read by every other module):

* ``gzip`` (0.4.0's own gzip file stream), ``zlib``, ``bz2``, ``lzma``: decoded here with the
  standard library's streaming decompressors (the same ones numcodecs calls), bounded so a body
  can never produce more bytes than the array it claims to be (no decompression bomb).
* ``lz4``, ``zstd``: numcodecs' C decoders, called only after the size the body declares in its
  own header (LZ4: 4-byte prefix; zstd: frame content size) equals the array's size, and decoding
  straight into the array's memory (the decoder is told that buffer's size and stops there).

Decoders write into a :class:`Sink`: a writable ``memoryview`` or a spill file's writer
(``cache.decoded.SpillWriter``). The streaming decoders only ever assign slices (``out[a:b] =
data``), which a spill writer turns into ``pwrite``; LZ4 and zstd blocks decode in one C call that
needs the whole output as one contiguous buffer, so a sink that is not a ``memoryview`` must lend
one for the duration of the call (:class:`MappableSink`, see ``SpillWriter.writable_view``).

Refused: ``blosc`` (byte-to-byte, but c-blosc's decoder has open memory-safety bugs on crafted
input, e.g. Blosc/c-blosc#405, and 0.4.0 never documented it), and every other numcodecs id.

No I/O here: decoders are fed bytes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

#: decoded bytes made at once by ``gunzip_into``: a 1 MiB chunk of a very compressible body may
#: decode to the whole array, which would then sit in memory as one ``bytes`` beside ``out``
GUNZIP_STEP = 4 * 2**20
#: a body may always claim this much, whatever its size (headers, tiny arrays; cheap to allocate)
SMALL_CLAIM = 2**20
#: numcodecs ids that build Python objects from the body (named as such when refused)
OBJECT_CODECS = ("pickle", "json2", "msgpack2", "vlen-utf8", "vlen-bytes", "vlen-array", "categorize", "json")


def supported_codecs() -> list[str]:
    """Every name accepted as ``compression=`` (case-insensitive)."""
    return sorted({c.name for c in allowed()} | {c.id for c in allowed()}, key=str.lower)


def allowed() -> tuple[Codec, ...]:
    """The codecs that encode and decode here (the allowlist), in :data:`CODECS` order."""
    return tuple(c for c in CODECS if c.allowed)


def record(name: object) -> Codec:
    """The allowed codec ``name`` (any case) stands for; ``ValueError`` naming the allowed ones otherwise."""
    found = _BY_ID.get(name.strip().lower()) if isinstance(name, str) else None
    if found is not None and found.allowed:
        return found
    shown = repr(name) if not isinstance(name, str) or len(name) <= 64 else repr(name[:64] + "...")
    if found is not None:
        why = found.why
    elif isinstance(name, str) and (name.strip().lower() in OBJECT_CODECS or name.strip().lower().startswith("vlen")):
        why = "it builds Python objects from the stored bytes (it could run code from the bucket)"
    else:
        why = "it is not a byte codec cottoncandy runs"
    raise ValueError(f"Unknown compression scheme: {shown}: {why}; supported: False/None (no compression), "
                     f"True (config default), {', '.join(supported_codecs())}")


def codec_id(name: object) -> str:
    """The lower-case id of an allowed codec; ``ValueError`` naming the allowed ones otherwise."""
    return record(name).id


def check_codec(name: str) -> str:
    """``name`` as spelled (0.4.0 stores it so) if it is an allowed codec; ``ValueError`` if not."""
    record(name)
    return name.strip()


def max_decoded_size(name: str, body_size: int) -> int:
    """The most bytes a valid ``name`` body of ``body_size`` bytes can decode to (``Codec.max_ratio``)."""
    return max(SMALL_CLAIM, record(name).max_ratio * int(body_size))


#: what a body may take beyond its array's bytes: each codec's worst growth on incompressible data is
#: far below 1/64 (deflate ~0.03%, bzip2 ~0.5%, LZ4 0.4%, zstd and xz ~0.01%), and headers, the parallel
#: gzip writer's block index (4 bytes per block of at least 4 KiB) and flush markers fit in the rest
BODY_GROWTH = 64
BODY_SLACK = 4096


def max_body_size(nbytes: int) -> int:
    """The most bytes any allowed codec's body of an ``nbytes``-byte array takes. A larger body holds
    more than the array: a reader that decodes it whole (numcodecs, so zarr) would make all of it."""
    return int(nbytes) + int(nbytes) // BODY_GROWTH + BODY_SLACK


def max_decoded_size_any(body_size: int) -> int:
    """The most bytes a body of ``body_size`` bytes can hold, raw or with any allowed codec."""
    return max(SMALL_CLAIM, max(c.max_ratio for c in allowed()) * int(body_size))


@lru_cache(maxsize=8)
def _numcodecs_codec(cid: str) -> Any:
    """The numcodecs codec for an allowed id (default parameters, as 0.4.0 builds it)."""
    import numcodecs

    return numcodecs.get_codec({"id": record(cid).id})


def _numcodecs_encode(cid: str) -> Callable[[memoryview], bytes]:
    """``Codec.encode`` of a codec 0.4.0 encoded through numcodecs with its default parameters."""
    def encode(data: memoryview) -> bytes:
        return bytes(_numcodecs_codec(cid).encode(np.frombuffer(data, dtype=np.uint8)))
    return encode


def _gzip_file(data: memoryview) -> bytes:
    """0.4.0's gzip body: one ``GzipFile`` stream at level 9 (the writer's indexed member is
    ``arrays.gzip_blocks``; both read back through the same gzip readers)."""
    out = io.BytesIO()
    with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def encode(data: memoryview, name: str) -> bytes:
    """Compress an array's C-order bytes the way 0.4.0 does."""
    codec = record(name)
    assert codec.encode is not None  # allowed codecs all encode (tests/formats/test_codec_table.py)
    return codec.encode(data)


class CorruptBodyError(ValueError):
    """A compressed body that does not decode to exactly the array's bytes."""


class Sink(Protocol):
    """Where decoded bytes go: ``len(out)`` bytes, written by slice assignment (``out[a:b] = data``)."""

    def __len__(self) -> int: ...

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None: ...


@runtime_checkable
class MappableSink(Protocol):
    """A sink that can lend its whole extent as one writable, contiguous ``memoryview``.

    The view is valid only inside the ``with`` block; whoever lends it decides how long its pages
    stay resident (a spill file unmaps them when the block ends).
    """

    def __len__(self) -> int: ...

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None: ...

    def writable_view(self) -> AbstractContextManager[memoryview]: ...


def decode_into(body: bytes | bytearray | memoryview, name: str, out: memoryview | Sink) -> None:
    """Decode a whole compressed body into ``out``, which must end up exactly full.

    Never produces (or allocates for) more than ``len(out)`` decoded bytes, whatever the body says.
    Streaming codecs write into any sink; LZ4/Zstd need contiguous memory (see :func:`_numcodecs_into`).
    """
    codec = record(name)
    if codec.stream_into is not None:
        codec.stream_into([body], out)
    else:
        assert codec.declared_size is not None  # a declared-size codec (tests/formats/test_codec_table.py)
        declared = codec.declared_size(body)
        if declared != len(out):
            raise CorruptBodyError(f"{name} body declares {declared} decoded bytes, the array needs {len(out)}")
        _numcodecs_into(codec.id, name, body, out)


def _numcodecs_into(cid: str, name: str, body: bytes | bytearray | memoryview,
                    out: memoryview | Sink) -> None:
    """One-shot C decode into ``out``, into the contiguous view a ``MappableSink`` lends, or (any other
    sink: a strided slot) into one temporary buffer that is then written into it."""
    if not len(out):
        return
    if isinstance(out, memoryview):
        problem = _numcodecs_decode(cid, name, body, out)
    elif isinstance(out, MappableSink):
        with out.writable_view() as view:
            problem = _numcodecs_decode(cid, name, body, view)
    else:
        staged = bytearray(len(out))
        problem = _numcodecs_decode(cid, name, body, memoryview(staged))
        if not problem:
            out[0 : len(staged)] = staged
    if problem:
        raise CorruptBodyError(problem)


def _numcodecs_decode(cid: str, name: str, body: bytes | bytearray | memoryview, out: memoryview) -> str | None:
    """Decode into ``out``; the problem as text, or ``None``.

    Returns rather than raises, and keeps no array over ``out`` alive when it returns: a lent view
    (a memory map) can only be released once nothing exports its buffer, and an exception's
    traceback would keep this frame's arrays alive past the lender's ``with`` block.
    """
    target = np.frombuffer(out, dtype=np.uint8)
    problem = None
    try:
        result = _numcodecs_codec(cid).decode(bytes(body) if isinstance(body, memoryview) else body, out=target)
    except Exception as exc:  # numcodecs raises assorted errors on damaged input
        problem, result = f"{name} body does not decode ({type(exc).__name__}: {exc})", None
    if problem is None:
        produced = np.frombuffer(memoryview(result).cast("B"), dtype=np.uint8) if result is not None else None
        if produced is None or len(produced) != len(out):
            problem = f"{name} body does not decode to the {len(out)} bytes the array needs"
        elif not np.shares_memory(produced, target):  # pragma: no cover - old numcodecs
            target[:] = produced
        del produced
    del target, result
    return problem


def lz4_declared_size(body: bytes | bytearray | memoryview) -> int:
    """numcodecs' LZ4 body starts with the decoded size, 4 bytes little-endian."""
    if len(body) < 4:
        raise CorruptBodyError("LZ4 body is shorter than its 4-byte size header")
    return int.from_bytes(bytes(body[:4]), "little", signed=True)


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def zstd_declared_size(body: bytes | bytearray | memoryview) -> int:
    """The Frame_Content_Size of a zstd frame (RFC 8878 section 3.1.1.1); numcodecs always writes it."""
    head = bytes(body[:18])
    if len(head) < 6 or head[:4] != ZSTD_MAGIC:
        raise CorruptBodyError("zstd body does not start with a zstd frame")
    descriptor = head[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    fcs_size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if not fcs_size:
        raise CorruptBodyError("zstd frame does not declare its decoded size (not written by numcodecs)")
    start = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    field = head[start : start + fcs_size]
    if len(field) != fcs_size:
        raise CorruptBodyError("zstd frame header is truncated")
    size = int.from_bytes(field, "little")
    return size + 256 if fcs_size == 2 else size


#: RFC 1952: a gzip member ends with CRC-32 and ISIZE, the decoded size modulo 2**32 (4 bytes each, LE)
GZIP_TRAILER = 8


def gzip_isize(tail: bytes | bytearray | memoryview) -> int:
    """ISIZE of the last gzip member: the last 4 bytes of a body, little-endian (size mod 2**32)."""
    if len(tail) < 4:
        raise CorruptBodyError("gzip body is shorter than its trailer")
    return int.from_bytes(bytes(tail[-4:]), "little")


#: the xz container (numcodecs' LZMA, format 1): stream header and footer, 12 bytes each
XZ_MAGIC = b"\xfd7zXZ\x00"
XZ_FOOTER = 12
#: the largest xz index read to learn a body's declared size (one record is a few bytes; numcodecs
#: writes one block)
XZ_MAX_INDEX = 2**20


def xz_index_size(tail: bytes | bytearray | memoryview) -> int:
    """The size of the xz index that precedes the stream footer (the last 12 bytes of ``tail``)."""
    footer = bytes(tail[-XZ_FOOTER:])
    if len(footer) != XZ_FOOTER or footer[-2:] != b"YZ":
        raise CorruptBodyError("lzma body does not end with an xz stream footer")
    if zlib.crc32(footer[4:10]) != int.from_bytes(footer[:4], "little"):
        raise CorruptBodyError("xz stream footer fails its CRC-32")
    size = (int.from_bytes(footer[4:8], "little") + 1) * 4
    if size > XZ_MAX_INDEX:
        raise CorruptBodyError(f"xz index of {size} bytes (more than {XZ_MAX_INDEX} for one array)")
    return size


def xz_declared_size(tail: bytes | bytearray | memoryview, body_size: int) -> int:
    """The decoded size an xz body declares in its index, from the body's last bytes (at least the
    index and the footer: ``xz_index_size(tail) + XZ_FOOTER``). Raises ``CorruptBodyError`` unless the
    body is exactly one stream (its header, blocks, index and footer add up to ``body_size``):
    ``lzma`` decodes streams that follow one another too, which the last index would not count."""
    size = xz_index_size(tail)
    data = bytes(tail[-(size + XZ_FOOTER) : -XZ_FOOTER])
    if len(data) != size or data[0] != 0:
        raise CorruptBodyError("lzma body has no xz index before its footer")
    if zlib.crc32(data[:-4]) != int.from_bytes(data[-4:], "little"):
        raise CorruptBodyError("xz index fails its CRC-32")
    pos = 1

    def vli() -> int:
        nonlocal pos
        value = 0
        for shift in range(0, 63, 7):
            if pos >= len(data) - 4:
                raise CorruptBodyError("xz index is truncated")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise CorruptBodyError("xz index holds an over-long number")

    records = vli()
    blocks = decoded = 0
    for _ in range(records):
        unpadded, size_out = vli(), vli()
        blocks += (unpadded + 3) // 4 * 4
        decoded += size_out
    if any(data[pos : len(data) - 4]) or (len(data) - 4 - pos) > 3:
        raise CorruptBodyError("xz index has bytes after its records")
    if XZ_FOOTER + blocks + size + XZ_FOOTER != body_size:
        raise CorruptBodyError(f"lzma body is {body_size} bytes, its xz index accounts for "
                               f"{XZ_FOOTER + blocks + size + XZ_FOOTER} (not one xz stream)")
    return decoded


class Discard:
    """A sink of ``size`` bytes that keeps nothing: decoding into it checks a body's decoded size
    (the bounded decoders stop one byte past it) without holding the array."""

    def __init__(self, size: int):
        self.size = int(size)

    def __len__(self) -> int:
        return self.size

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None:
        pass


def decode_stream_into(chunks: Iterable[bytes | bytearray | memoryview], name: str, out: memoryview | Sink) -> None:
    """:func:`decode_into` for a body given in pieces (the codecs whose ``Codec.decode`` is ``stream``)."""
    codec = record(name)
    if codec.stream_into is None:
        raise ValueError(f"{name} bodies are decoded whole (decode_into), not as a stream")
    codec.stream_into(chunks, out)


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Inflater:
    """``zlib.decompressobj`` behind the interface of ``bz2``/``lzma`` decompressors."""

    def __init__(self, wbits: int):
        self._d = zlib.decompressobj(wbits)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        produced = self._d.decompress(self._d.unconsumed_tail + data, max(0, max_length))
        return produced

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._d.unconsumed_tail


def _stream_into(new: Callable[[], _Decompressor], chunks: Iterable[bytes | bytearray | memoryview],
                 out: memoryview | Sink, what: str, multi: bool) -> None:
    """Decode ``chunks`` into ``out``, asking each step for at most a few MiB and never more than one
    byte beyond what fits (so a decoder never holds the whole array: ``out`` may be a spill file)."""
    total, pos = len(out), 0
    decoder = new()
    try:
        for chunk in chunks:
            data = bytes(chunk)
            while True:
                if decoder.eof:
                    if not multi or not data:
                        break  # zlib.decompress ignores what follows its stream; so do we
                    decoder = new()  # bz2/lzma: another stream follows (their decompress() read on too)
                elif not data and decoder.needs_input:
                    break
                produced = decoder.decompress(data, min(GUNZIP_STEP, total - pos + 1))  # a few MiB at a time
                data = decoder.unused_data if decoder.eof else b""
                if pos + len(produced) > total:
                    raise CorruptBodyError(f"{what} body decodes to more than the {total} bytes the array needs")
                out[pos : pos + len(produced)] = produced
                pos += len(produced)
    except CorruptBodyError:
        raise
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise CorruptBodyError(f"{what} body is damaged ({exc})") from exc
    if not decoder.eof:
        raise CorruptBodyError(f"{what} body is truncated (stream ends early)")
    if pos != total:
        raise CorruptBodyError(f"{what} body decodes to {pos} bytes, the array needs {total}")


def gunzip_into(chunks: Iterable[bytes | bytearray | memoryview], out: memoryview | Sink) -> None:
    """Stream-decode gzip members (RFC 1952) into ``out`` without holding the compressed body.

    Raises ``CorruptBodyError`` on a damaged stream, a truncated one, or one that decodes to more
    or fewer bytes than ``out`` holds - never leaves a silently wrong array.
    """
    total = len(out)
    pos = 0
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False

    def emit(data: bytes) -> None:
        nonlocal pos
        if pos + len(data) > total:
            raise CorruptBodyError(f"gzip body decodes to more than the {total} bytes the array needs")
        out[pos : pos + len(data)] = data
        pos += len(data)

    try:
        for chunk in chunks:
            data = bytes(chunk)
            while data:
                started = True
                emit(decoder.decompress(data, max(1, min(GUNZIP_STEP, total - pos + 1))))
                data = decoder.unconsumed_tail
                if decoder.eof:
                    data = decoder.unused_data + data
                    if data:
                        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        started = False
            # drain anything buffered before the next chunk
        emit(decoder.flush())
    except zlib.error as exc:
        raise CorruptBodyError(f"gzip body is damaged ({exc})") from exc
    if not decoder.eof and (started or total):
        raise CorruptBodyError("gzip body is truncated (stream ends early)")
    if pos != total:
        raise CorruptBodyError(f"gzip body decodes to {pos} bytes, the array needs {total}")


def _streamer(new: Callable[[], _Decompressor], what: str,
              multi: bool) -> Callable[[Iterable[bytes | bytearray | memoryview], memoryview | Sink], None]:
    """``Codec.stream_into`` of a codec decoded by a standard-library decompressor (``multi``: streams
    that follow the first are decoded too, as ``bz2.decompress``/``lzma.decompress`` do)."""
    def stream_into(chunks: Iterable[bytes | bytearray | memoryview], out: memoryview | Sink) -> None:
        _stream_into(new, chunks, out, what, multi=multi)
    return stream_into


class StreamEncoder(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


StreamInto = Callable[[Iterable[bytes | bytearray | memoryview], "memoryview | Sink"], None]


@dataclass(frozen=True)
class Codec:
    """Everything cottoncandy knows of one body codec: the single place a codec is declared.

    Encode (``arrays/raw``), decode (``decode_into``, the mount's ``cache/decoded`` and block reads),
    the size checks (``formats/raw``, ``refs/build``) and the zarr metadata (``formats/zarrmeta``) all
    read this record; no module names codecs itself (``tests/formats/test_codec_table.py`` checks both).

    Invariants (checked by that test): ``decode == "stream"`` exactly when ``stream_into`` is set,
    ``"declared"`` exactly when ``declared_size`` is set (a one-shot C decoder told that size);
    ``size_at == "head"`` exactly for declared-size codecs; ``blocks`` only for gzip.
    """

    #: lower-case id (what ``numcodecs.get_codec`` and zarr's ``compressor`` call it)
    id: str
    #: the spelling 0.4.0's documentation and config use (``Zstd``); 0.4.0 stores the caller's spelling
    name: str
    #: on the allowlist: encodes and decodes here (a refused codec is listed for its ``why`` only)
    allowed: bool
    #: decoded bytes per body byte the *format* allows at most (not an observed ratio): a body
    #: claiming more is forged and refused before anything is allocated for it
    max_ratio: int
    #: ``stream``: decoded as its bytes arrive, bounded by the output; ``declared``: decoded in one C call
    #: after the size the body declares equals the array's
    decode: Literal["stream", "declared"]
    #: where a body says its decoded size, for checks made before decoding (``refs``): ``head`` (first
    #: bytes), ``xz-index`` (the xz index before the footer), ``isize`` (gzip's trailer, mod 2**32),
    #: ``none`` (stream it through a bounded decoder to know)
    size_at: Literal["head", "xz-index", "isize", "none"]
    #: our writer's bodies carry an index of independently inflatable blocks (``cc-gzip-blocks``)
    blocks: bool
    #: the numcodecs configuration zarr decodes a whole body with (``.zarray``'s ``compressor``);
    #: 0.4.0 encoded with the defaults, which these are (FORMAT.md section 1)
    zarr: Mapping[str, Any] | None
    #: why it is (or is not) on the allowlist
    why: str
    #: the numcodecs id of the codec inflating one of its blocks (a zarr chunk per block; cottoncandy
    #: registers it: ``formats.zarr_blocks``); ``None``: a body is one chunk
    zarr_block: str | None = None
    encode: Callable[[memoryview], bytes] | None = None
    stream_into: StreamInto | None = None
    declared_size: Callable[[bytes | bytearray | memoryview], int] | None = None
    #: a fresh encoder taking the bytes piece by piece (``compress``/``flush``), for writers that get
    #: an array as it arrives (the mount's writes); ``None``: only whole bodies encode
    stream_encoder: Callable[[], StreamEncoder] | None = None


#: Every codec, once. Ratios: deflate (gzip, zlib): a 258-byte match costs at least 2 bits -> 1032.
#: LZ4 block: each further 255 bytes of match length cost one length byte -> 255. zstd: a block
#: decodes to at most 128 KiB and costs at least 4 bytes (3-byte header + 1) -> 32768. bzip2: a block
#: holds at most 900 kB of run-length-encoded input, which expands at most 51.8x (5 bytes -> 259), and
#: costs at least ~32 bytes -> 2**21 (all-zero arrays reach 1.4e6). lzma: a 273-byte repeat of the
#: last match costs ~0.3 bits at best -> 2**14 (zeros reach ~7000).
CODECS: tuple[Codec, ...] = (
    Codec("gzip", "gzip", True, 1032, "stream", "isize", True, {"id": "gzip", "level": 1},
          "0.4.0's default below 2 GB: a gzip file stream (ours: one member in indexed blocks)",
          zarr_block="cottoncandy.gzip_block", encode=_gzip_file,
          stream_into=lambda chunks, out: gunzip_into(chunks, out),
          stream_encoder=lambda: zlib.compressobj(6, zlib.DEFLATED, 31)),  # wbits 31: one gzip member
    Codec("zlib", "Zlib", True, 1032, "stream", "none", False, {"id": "zlib", "level": 1},
          "a zlib stream, inflated by the standard library",
          encode=_numcodecs_encode("zlib"), stream_into=_streamer(lambda: _Inflater(zlib.MAX_WBITS), "zlib", False),
          stream_encoder=lambda: zlib.compressobj(6)),
    Codec("bz2", "BZ2", True, 2**21, "stream", "none", False, {"id": "bz2", "level": 1},
          "bzip2 streams, decoded by the standard library",
          encode=_numcodecs_encode("bz2"), stream_into=_streamer(bz2.BZ2Decompressor, "bz2", True),
          stream_encoder=lambda: bz2.BZ2Compressor(9)),
    Codec("lzma", "lzma", True, 2**14, "stream", "xz-index", False,
          {"id": "lzma", "format": 1, "check": -1, "preset": None, "filters": None},
          "xz streams, decoded by the standard library",
          encode=_numcodecs_encode("lzma"),
          stream_into=_streamer(lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ), "lzma", True),
          stream_encoder=lambda: lzma.LZMACompressor(format=lzma.FORMAT_XZ)),
    Codec("zstd", "Zstd", True, 2**15, "declared", "head", False, {"id": "zstd", "level": 0},
          "0.4.0's default above 2 GB: one zstd frame, which declares its size",
          encode=_numcodecs_encode("zstd"), declared_size=lambda body: zstd_declared_size(body)),
    Codec("lz4", "LZ4", True, 255, "declared", "head", False, {"id": "lz4", "acceleration": 1},
          "an LZ4 block after its 4-byte decoded size",
          encode=_numcodecs_encode("lz4"), declared_size=lambda body: lz4_declared_size(body)),
    Codec("blosc", "Blosc", False, 255, "declared", "head", False, {"id": "blosc"},
          "byte-to-byte, but c-blosc's decoder has open memory-safety bugs on crafted input "
          "(Blosc/c-blosc#405), and 0.4.0 never documented it"),
)
_BY_ID = {c.id: c for c in CODECS}
#: the id of gzip, 0.4.0's default codec and the one with blocks (its legacy ``gzip`` metadata flag)
GZIP = next(c.id for c in CODECS if c.blocks)
#: codec ids (lower case) that may encode and decode (a view of :data:`CODECS`)
ALLOWED = tuple(c.id for c in CODECS if c.allowed)
#: the names 0.4.0 documents for them (a view of :data:`CODECS`)
DOCUMENTED = tuple(c.name for c in CODECS if c.allowed)
#: the allowed codecs decoded (and encoded) as a stream (a view of :data:`CODECS`)
STREAMED = tuple(c.id for c in CODECS if c.allowed and c.decode == "stream")
