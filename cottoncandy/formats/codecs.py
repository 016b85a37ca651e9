"""Body codecs of raw arrays: none, gzip (a gzip *file* stream), and numcodecs codecs by name.

0.4.0 stores the codec name exactly as the caller spelled it (``LZ4``, ``zstd``) and builds the codec
with its default parameters; we accept the same names. No I/O here: decoders are fed bytes.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numcodecs
import numpy as np

GZIP = "gzip"
#: the names 0.4.0 documents; any other codec id numcodecs knows also works
DOCUMENTED = ("gzip", "LZ4", "Zlib", "Zstd", "BZ2", "lzma")
#: decoded bytes made at once by ``gunzip_into``: a 1 MiB chunk of a very compressible body may
#: decode to the whole array, which would then sit in memory as one ``bytes`` beside ``out``
GUNZIP_STEP = 4 * 2**20


def supported_codecs() -> list[str]:
    """Every name accepted as ``compression=``: gzip plus the numcodecs codecs that compress bytes."""
    names = set(DOCUMENTED)
    for codec_id in ("lz4", "zlib", "zstd", "bz2", "lzma", "blosc", "gzip"):
        if _numcodecs_codec(codec_id) is not None:
            names.add(codec_id)
    return sorted(names, key=str.lower)


@lru_cache(maxsize=64)
def _numcodecs_codec(codec_id: str) -> Any:
    try:
        return numcodecs.get_codec({"id": codec_id})
    except (ValueError, KeyError, TypeError, ImportError):
        return None


def check_codec(name: str) -> str:
    """``name`` if it is a codec we can write and read; ``ValueError`` listing the supported ones."""
    if name == GZIP:
        return name
    if not isinstance(name, str) or _numcodecs_codec(name.lower()) is None:
        raise ValueError(f"Unknown compression scheme: {name!r}; supported: False/None (no compression), "
                         f"True (config default), {', '.join(supported_codecs())}")
    return name


def encode(data: memoryview, name: str) -> bytes:
    """Compress an array's C-order bytes the way 0.4.0 does."""
    if name == GZIP:
        out = io.BytesIO()
        with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
            gz.write(data)
        return out.getvalue()
    codec = _numcodecs_codec(check_codec(name).lower())
    return bytes(codec.encode(np.frombuffer(data, dtype=np.uint8)))


class CorruptBodyError(ValueError):
    """A compressed body that does not decode to exactly the array's bytes."""


def decode_into(body: bytes | memoryview, name: str, out: memoryview) -> None:
    """Decode a whole compressed body into ``out``, which must end up exactly full."""
    if name == GZIP:
        gunzip_into([body], out)
        return
    codec = _numcodecs_codec(check_codec(name).lower())
    try:
        decoded = codec.decode(body)
    except Exception as exc:  # numcodecs raises assorted errors on damaged input
        raise CorruptBodyError(f"{name} body does not decode ({type(exc).__name__}: {exc})") from exc
    decoded_view = memoryview(decoded).cast("B")
    if len(decoded_view) != len(out):
        raise CorruptBodyError(f"{name} body decodes to {len(decoded_view)} bytes, the array needs {len(out)}")
    out[:] = decoded_view


def gunzip_into(chunks: Iterable[bytes | memoryview], out: memoryview) -> None:
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
