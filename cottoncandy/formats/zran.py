"""Seek points into a gzip body that has no index of its own (0.4.0's), zlib's zran technique.

Why: 0.4.0 writes a gzip body as one deflate stream (``GzipFile``, level 9): no byte of it can be
inflated without everything before it, so the mount decoded a 200 MB array whole before its first
row. A deflate stream can be resumed at any *block* boundary given the 32 KiB of output before it
(the window back-references may reach) and the bit where the block starts. Recording such a point
every :data:`SPAN` bytes of output during the one full decode that has to happen anyway makes every
later read of ``[a, b)`` fetch and inflate only the stretch between the point before ``a`` and the
point at or after ``b`` (``SeekPoint``s are what ``cache.stretches`` reads through, as ``cache.segments``
tables them).

How the points are found: Python's ``zlib`` never says where a deflate block ends, so the recording
decode calls the system's libz through ``ctypes`` (the library Python's own ``zlib`` is built on,
present wherever Python is): ``inflate(Z_BLOCK)`` stops at each block end and reports the unused
bits of the last byte, ``inflateGetDictionary`` gives the window. Where libz cannot be loaded,
:func:`available` is False and callers decode whole, as before (no index). Resuming needs no libz:
the stream from the point's bit is shifted down to a byte boundary (:func:`_shifted`) and fed to a
raw ``zlib.decompressobj`` primed with the window as its dictionary, standing in for zlib's
``inflatePrime`` that Python does not expose.

Why not ``indexed_gzip`` (PyPI, maintained; its wheel installs here): it builds its index by
reading a seekable file object itself (a second full pass over the body, or a file adapter around
our stream), and hands the windows out only through its own export format; its reads go through its
own file reader, not the mount's block cache. The decode we already make is the pass, libz is
already loaded, and the points are ~150 lines here.

Why checkpoints at any bit and not only at byte-aligned blocks: ``GzipFile`` at level 9 ends a
block on a byte boundary only by chance (1 in 8), and never by design, so byte-aligned points alone
would leave long stretches without one.

Trust: an index read back from the cache is untrusted input (:func:`decode_index`): every offset is
checked against the body and array sizes and the points' order, each window's length against its
output offset, the deflate expansion bound between points, and every stretch's output carries the
CRC-32 recorded at build time (checked by :func:`inflate_segment`). A bad record is dropped; a
stretch that does not inflate to its recorded bytes raises ``ValueError``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codecs import GZIP, CorruptBodyError, Sink, gunzip_into, max_decoded_size

log = logging.getLogger(__name__)

#: output bytes between two seek points: a row read inflates at most this much (about 15-20 ms of
#: zlib), and each point costs a 32 KiB window (0.8 % of the array before the record is compressed)
SPAN = 4 * 2**20
#: output before the second point: the first stretch stays small because every open reads it (the
#: kernel's first READ of a ``.npy`` file brings the header and the body's first 128 KiB)
FIRST_SPAN = 256 * 2**10
#: arrays smaller than this get no index: the whole decode takes well under a second and a record
#: would cost more in the cache than it saves
MIN_ARRAY = 16 * 2**20
WINDOW = 32 * 2**10
#: compressed bytes handed to libz per call while recording
CHUNK_OUT = 2**20

_Z_OK, _Z_STREAM_END, _Z_BUF_ERROR = 0, 1, -5
_Z_BLOCK = 5


@dataclass(frozen=True)
class SeekPoint:
    """Where inflating may start: output byte ``out_start`` begins at bit ``skip`` (0-7) of compressed
    byte ``start``, with ``window`` (the up to 32 KiB of output before it) as the dictionary.
    ``crc`` is the CRC-32 of the output from here to the next point (or the end).

    A block of our own ``cc-gzip-blocks`` index is the same with ``skip`` 0 and no window."""

    start: int
    skip: int
    out_start: int
    window: bytes
    crc: int


class _ZStream(ctypes.Structure):
    _fields_ = [("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint), ("total_in", ctypes.c_ulong),
                ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint), ("total_out", ctypes.c_ulong),
                ("msg", ctypes.c_char_p), ("state", ctypes.c_void_p), ("zalloc", ctypes.c_void_p),
                ("zfree", ctypes.c_void_p), ("opaque", ctypes.c_void_p), ("data_type", ctypes.c_int),
                ("adler", ctypes.c_ulong), ("reserved", ctypes.c_ulong)]


def _load_libz() -> Any:
    name = ctypes.util.find_library("z") or "libz.so.1"
    try:
        lib = ctypes.CDLL(name)
        lib.zlibVersion.restype = ctypes.c_char_p
        lib.inflateGetDictionary  # noqa: B018  (zlib >= 1.2.8: the window is asked of libz)
    except (OSError, AttributeError) as exc:
        log.info("libz cannot be loaded (%s): gzip bodies without an index are decoded whole", exc)
        return None
    lib.inflateInit2_.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.inflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
    lib.inflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
    lib.inflateGetDictionary.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]
    return lib


#: the system's libz, or None (tests set None to run the path without it)
_libz: Any = _load_libz()


def available() -> bool:
    """Whether seek points can be recorded here (libz loaded)."""
    return _libz is not None


def worth_indexing(nbytes: int) -> bool:
    return nbytes >= MIN_ARRAY and available()


@dataclass
class _Point:
    start: int
    skip: int
    out_start: int
    window: bytes


def gunzip_recording(chunks: Iterable[bytes | bytearray | memoryview], out: memoryview | Sink,
                     span: int = SPAN) -> list[SeekPoint] | None:
    """``codecs.gunzip_into`` (same checks, same errors) that also records a seek point at the first
    block, the first block boundary past :data:`FIRST_SPAN`, then every ``span`` output bytes.
    ``None`` instead of points when the body is more than one gzip member (the rest is decoded all
    the same)."""
    if _libz is None:
        raise RuntimeError("libz is not loaded (zran.available() is False)")
    total, pos = len(out), 0
    strm = _ZStream()
    version = _libz.zlibVersion()
    if _libz.inflateInit2_(ctypes.byref(strm), 31, version, ctypes.sizeof(_ZStream)) != _Z_OK:
        raise MemoryError("libz could not start an inflater")
    outbuf = (ctypes.c_ubyte * CHUNK_OUT)()
    outview = memoryview(outbuf).cast("B")
    dictbuf = (ctypes.c_ubyte * WINDOW)()
    dictlen = ctypes.c_uint(0)
    points: list[_Point] = []
    crcs: list[int] = []
    crc = 0
    ended = False
    it: Iterator[bytes | bytearray | memoryview] = iter(chunks)
    try:
        for chunk in it:
            data = bytes(chunk)
            if not data:
                continue
            if ended:  # another member follows: 0.4.0 never writes one; decoded, not indexed
                _rest_of_members(data, it, out, pos, total)
                return None
            holder = ctypes.c_char_p(data)  # keeps ``data`` alive while libz reads it
            strm.next_in = ctypes.cast(holder, ctypes.c_void_p).value
            strm.avail_in = len(data)
            while strm.avail_in and not ended:
                strm.next_out = ctypes.addressof(outbuf)
                strm.avail_out = CHUNK_OUT
                ret = _libz.inflate(ctypes.byref(strm), _Z_BLOCK)
                made = CHUNK_OUT - strm.avail_out
                if ret not in (_Z_OK, _Z_STREAM_END, _Z_BUF_ERROR):
                    message = strm.msg.decode(errors="replace") if strm.msg else f"error {ret}"
                    raise CorruptBodyError(f"gzip body is damaged ({message})")
                if made:
                    if pos + made > total:
                        raise CorruptBodyError(f"gzip body decodes to more than the {total} bytes the array needs")
                    out[pos : pos + made] = outview[:made]
                    crc = zlib.crc32(outview[:made], crc)
                    pos += made
                if ret == _Z_STREAM_END:
                    ended = True
                    if strm.avail_in:
                        rest = data[len(data) - strm.avail_in :]
                        _rest_of_members(rest, it, out, pos, total)
                        return None
                    break
                kind = strm.data_type
                gap = min(span, FIRST_SPAN) if len(points) == 1 else span
                if kind & 128 and not kind & 64 and (not points or pos - points[-1].out_start >= gap):
                    if _libz.inflateGetDictionary(ctypes.byref(strm), ctypes.addressof(dictbuf),
                                                  ctypes.byref(dictlen)) != _Z_OK:
                        raise MemoryError("libz could not give the window")
                    bits = kind & 7
                    consumed = int(strm.total_in)
                    if points:
                        crcs.append(crc)
                    crc = 0
                    points.append(_Point(consumed - 1 if bits else consumed, 8 - bits if bits else 0, pos,
                                         bytes(dictbuf[: dictlen.value])))
                if ret == _Z_BUF_ERROR and not made:
                    break  # needs more input
            del holder
    finally:
        _libz.inflateEnd(ctypes.byref(strm))
    if not ended and (pos or total or points):
        raise CorruptBodyError("gzip body is truncated (stream ends early)")
    if pos != total:
        raise CorruptBodyError(f"gzip body decodes to {pos} bytes, the array needs {total}")
    crcs.append(crc)
    return [SeekPoint(p.start, p.skip, p.out_start, p.window, c & 0xFFFFFFFF)
            for p, c in zip(points, crcs, strict=True)]


class _Tail:
    """Bytes ``[offset, offset + size)`` of a sink, for the members after the first."""

    def __init__(self, out: memoryview | Sink, offset: int, size: int):
        self.out, self.offset, self.size = out, offset, size

    def __len__(self) -> int:
        return self.size

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None:
        start, stop, _ = where.indices(self.size)
        self.out[self.offset + start : self.offset + stop] = data


def _rest_of_members(first: bytes, rest: Iterator[bytes | bytearray | memoryview], out: memoryview | Sink,
                     pos: int, total: int) -> None:
    def pieces() -> Iterator[bytes | bytearray | memoryview]:
        yield first
        yield from rest

    gunzip_into(pieces(), _Tail(out, pos, total - pos))


# --- reading from a point ----------------------------------------------------------------------
def _shifted(data: bytes | bytearray | memoryview, skip: int) -> bytes:
    """``data`` without its first ``skip`` bits (deflate packs bits from the low end of each byte)."""
    if not skip:
        return bytes(data)
    octets = np.frombuffer(data, dtype=np.uint8)
    shifted = octets >> np.uint8(skip)
    shifted[:-1] |= octets[1:] << np.uint8(8 - skip)  # each byte takes the low bits of the next
    return shifted.tobytes()


def inflate_segment(point: SeekPoint, data: bytes | bytearray | memoryview, size: int) -> bytes:
    """The ``size`` output bytes from ``point``, given the compressed bytes from ``point.start`` on
    (at least up to the next point); ``ValueError`` unless they inflate to exactly the bytes whose
    CRC-32 the point recorded."""
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS, zdict=point.window) if point.window \
            else zlib.decompressobj(-zlib.MAX_WBITS)
        produced = inflater.decompress(_shifted(data, point.skip), size)
    except zlib.error as exc:
        raise ValueError(f"gzip stretch at byte {point.start} does not inflate ({exc})") from exc
    if len(produced) != size or zlib.crc32(produced) != point.crc:
        raise ValueError(f"gzip stretch at byte {point.start} does not inflate to its recorded {size} bytes")
    return produced


def segment_bounds(points: list[SeekPoint], i: int, body_size: int, nbytes: int) -> tuple[int, int, int, int]:
    """Compressed ``[start, end)`` to fetch and output ``[out_start, out_end)`` of stretch ``i``."""
    point = points[i]
    if i + 1 < len(points):
        nxt = points[i + 1]
        return point.start, nxt.start + (1 if nxt.skip else 0), point.out_start, nxt.out_start
    return point.start, body_size, point.out_start, nbytes


# --- the record kept in the cache ----------------------------------------------------------------
MAGIC = b"ccz1"
_HEAD = struct.Struct("<4sQQI")  # magic, body size, array size, points
_POINT = struct.Struct("<QBQII")  # start, skip, out_start, crc, window length
#: most points a record may hold whatever the spans (a 4 TB array at the default span is 10^6)
MAX_POINTS = 2**20


class IndexRecordError(ValueError):
    """A kept index that does not fit the body it claims to describe (damaged or forged)."""


def encode_index(points: list[SeekPoint], body_size: int, nbytes: int) -> bytes:
    """The record kept in the cache: header, points, then their windows, compressed by zlib."""
    parts = [_HEAD.pack(MAGIC, body_size, nbytes, len(points))]
    parts += [_POINT.pack(p.start, p.skip, p.out_start, p.crc, len(p.window)) for p in points]
    parts += [p.window for p in points]
    return zlib.compress(b"".join(parts), 6)


def record_bound(count: int) -> int:
    return _HEAD.size + count * (_POINT.size + WINDOW)


def decode_index(blob: bytes, body_size: int, nbytes: int, span_floor: int = 2**16) -> list[SeekPoint]:
    """The points of a kept record, every field checked against the body it is used for
    (:class:`IndexRecordError` otherwise). ``span_floor``: the least output between two points
    accepted (a record of a point per byte would cost a GET per byte)."""
    most = min(MAX_POINTS, nbytes // span_floor + 2)
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob, record_bound(most) + 1)
    except zlib.error as exc:
        raise IndexRecordError(f"index record does not inflate ({exc})") from exc
    if not inflater.eof or inflater.unused_data or len(raw) < _HEAD.size:
        raise IndexRecordError("index record is truncated, too large or followed by other bytes")
    magic, body, array, count = _HEAD.unpack_from(raw)
    if magic != MAGIC or body != body_size or array != nbytes:
        raise IndexRecordError("index record is for another body (magic, body or array size differ)")
    if not 1 <= count <= most:
        raise IndexRecordError(f"index record holds {count} points; a {nbytes}-byte array takes 1 to {most}")
    table_end = _HEAD.size + count * _POINT.size
    if len(raw) < table_end:
        raise IndexRecordError("index record is shorter than its points")
    fields = [_POINT.unpack_from(raw, _HEAD.size + i * _POINT.size) for i in range(count)]
    if table_end + sum(f[4] for f in fields) != len(raw):
        raise IndexRecordError("index record's windows do not add up to its length")
    points: list[SeekPoint] = []
    at = table_end
    for i, (start, skip, out_start, crc, wlen) in enumerate(fields):
        if skip > 7 or start + (1 if skip else 0) > body_size - 8 or out_start >= max(1, nbytes):
            raise IndexRecordError(f"point {i} lies outside the body or the array")
        if wlen != min(WINDOW, out_start):
            raise IndexRecordError(f"point {i} has a {wlen}-byte window at output {out_start}")
        if i == 0 and out_start != 0:
            raise IndexRecordError("the first point is not at the array's start")
        if i:
            prev = points[-1]
            if start <= prev.start or out_start - prev.out_start < span_floor:
                raise IndexRecordError(f"point {i} does not follow point {i - 1}")
            if out_start - prev.out_start > max_decoded_size(GZIP, start - prev.start + 1):
                raise IndexRecordError(f"point {i} stands for more output than deflate makes of its input")
        points.append(SeekPoint(start, skip, out_start, raw[at : at + wlen], crc))
        at += wlen
    last = points[-1]
    if nbytes - last.out_start > max_decoded_size(GZIP, body_size - last.start):
        raise IndexRecordError("the last point stands for more output than deflate makes of its input")
    return points
