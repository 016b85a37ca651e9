"""The numcodecs codec that inflates one block of our gzip bodies: a zarr chunk per block.

Why: every block of a gzip body our writer made is a run of whole rows (``pgzip.row_block_size``)
deflated alone (``formats.pgzip``), so ``cottoncandy.refs`` can show such an array as one zarr chunk
per block, each chunk the byte range of its block's raw deflate bytes: zarr then reads a row by
fetching and inflating one block, not the whole body. No stock numcodecs codec inflates raw deflate,
so cottoncandy registers this one (:func:`register`, done when references are opened through
``cottoncandy.refs``). A reader without cottoncandy cannot decode such chunks, which is why portable
references (``ccfs refs``) keep one gzip chunk per array unless asked for blocks.

Config: ``{"id": ID, "size": S, "last": L}``, plus ``"crcs": [...]`` for a version 2 index and
``"object"``, the object the chunks come from (named in every error: a codec is not told which array
or chunk it decodes, and a reader using the references without ``cottoncandy.refs``, which names the
block itself, would otherwise see an error naming neither). Every
chunk inflates to exactly ``S`` bytes but the array's last, which inflates to ``L`` and is padded to
``S`` (zarr stores edge chunks full size); ``S`` is at most ``pgzip.MAX_READ_BLOCK`` (a config asking
for more is refused before a chunk is allocated). Decoding never makes more than ``S`` bytes, whatever the
chunk's bytes say, and a chunk must end as the writer ends a block (a full-flush marker, or the final
block): a block cut in the wrong place by a forged index fails (``ValueError``) instead of giving wrong
values. With ``crcs``, a chunk must also inflate to one of the array's block CRC-32s (a codec is not
told which chunk it decodes, so it checks membership): a damaged block fails too. ``cottoncandy.refs``
checks the index against the body before it references blocks (``arrays.gzip_blocks.check_index``), and
references one chunk when it does not check out.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Any

import numpy as np

from .codecs import GZIP, record
from .pgzip import MAX_READ_BLOCK, SYNC_MARKER, ends_at_block_boundary

#: the numcodecs id (declared in the codec table: ``Codec.zarr_block`` of gzip)
ID = record(GZIP).zarr_block or ""


def config(size: int, last: int, crcs: list[int] | None = None, source: str | None = None) -> dict[str, Any]:
    """The ``.zarray`` compressor of an array whose chunks are blocks of ``size`` decoded bytes (and,
    when known, of these CRC-32s), read from the object ``source`` (as errors name it)."""
    out: dict[str, Any] = {"id": ID, "size": int(size), "last": int(last)}
    if crcs is not None:
        out["crcs"] = [int(c) for c in crcs]
    if source is not None:
        out["object"] = str(source)
    return out


@lru_cache(maxsize=1)
def _codec_class() -> type:
    from numcodecs.abc import Codec
    from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

    class GzipBlock(Codec):  # type: ignore[misc]  # numcodecs has no type hints
        """One raw-deflate block of a ``cc-gzip-blocks`` body <-> its decoded bytes."""

        codec_id = ID

        def __init__(self, size: int, last: int | None = None, crcs: list[int] | None = None,
                     object: str | None = None):  # noqa: A002 - the config's key
            self.size = int(size)
            self.last = self.size if last is None else int(last)
            self.source = None if object is None else str(object)
            #: what every error starts with: the codec and, when the config names it, the object
            self.label = ID if self.source is None else f"{ID} block of {self.source}"
            if not 0 < self.size <= MAX_READ_BLOCK:  # before ``decode`` allocates a chunk of ``size``
                raise ValueError(f"{self.label}: blocks of {self.size} bytes (a block is 1 to {MAX_READ_BLOCK})")
            if not 0 < self.last <= self.size:
                raise ValueError(f"{self.label}: last block of {self.last} bytes, blocks of {self.size}")
            listed = None if crcs is None else [int(c) for c in crcs]
            self.crcs = listed
            self._crc_set = None if listed is None else frozenset(listed)

        def encode(self, buf: Any) -> bytes:
            data = ensure_contiguous_ndarray(buf).view("u1").tobytes()
            comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
            return comp.compress(data) + comp.flush(zlib.Z_FINISH)

        def decode(self, buf: Any, out: Any = None) -> Any:
            data = ensure_contiguous_ndarray(buf).view("u1").tobytes()
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                produced = inflater.decompress(data, self.size + 1)
            except zlib.error as exc:
                raise ValueError(f"{self.label}: damaged ({exc})") from exc
            whole = len(produced) in (self.size, self.last) and not inflater.unconsumed_tail
            # as the writer ends blocks: the final block, or a full flush at a real block boundary
            ended = inflater.eof or (data[-len(SYNC_MARKER):] == SYNC_MARKER and ends_at_block_boundary(inflater))
            if not whole or not ended:
                raise ValueError(f"{self.label}: inflates to {len(produced)} bytes, not {self.size} "
                                 f"(or {self.last} for the last)")
            if self._crc_set is not None and (crc := zlib.crc32(produced)) not in self._crc_set:
                raise ValueError(f"{self.label}: inflates to CRC-32 {crc:08x}, which no block of this array has "
                                 "(damaged)")
            chunk = np.zeros(self.size, dtype="u1")
            chunk[: len(produced)] = np.frombuffer(produced, dtype="u1")
            return ndarray_copy(chunk, out)

        def get_config(self) -> dict[str, Any]:
            return config(self.size, self.last, self.crcs, self.source)

    return GzipBlock


def __getattr__(name: str) -> Any:
    """``GzipBlock``, the codec class, made on first use (numcodecs is imported only then): a package
    entry point ``numcodecs.codecs`` can name ``cottoncandy.formats.zarr_blocks:GzipBlock``."""
    if name == "GzipBlock":
        return _codec_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Make :data:`ID` known to numcodecs (so to zarr); idempotent."""
    import numcodecs

    try:
        numcodecs.get_codec(config(1, 1))
    except ValueError:
        numcodecs.register_codec(_codec_class())
