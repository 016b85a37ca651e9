"""Raw deflate (RFC 1951) for the parallel gzip blocks: ISA-L's when ``isal`` imports, zlib's otherwise.

Why: compressing is most of the default (gzip) upload's CPU. Measured per core on this project's
2-core machine, 4 MiB of noisy float32: zlib level 1 with ``Z_RLE`` 72 MiB/s, ISA-L level 1
495 MiB/s at the same size (0.924 of the input both); integers ``arange % 1000``: zlib 83 MiB/s at
0.35, ISA-L 762 MiB/s at 0.27. Inflating the same float blocks: ISA-L 301 MiB/s, zlib 243. ISA-L writes
plain deflate, so what readers can read (0.4.0's single ``zlib.decompressobj``, gzip(1), numcodecs)
never depends on which one wrote a body - only how fast it was written.

ISA-L has four levels (0-3) where zlib has ten: zlib's 1-3 map to ISA-L 1 (its level 0 expands
noisy data: 1.24 of the input, measured), 4-6 and -1 (zlib's default, 6) to 2, 7-9 to 3; level 0
(stored blocks) stays zlib's. ``isal`` is a required dependency (wheels for Linux, macOS and Windows
on x86-64 and ARM); the zlib path serves an environment where it is installed but does not import
(a partial or broken install), with one log line.
"""

from __future__ import annotations

import importlib
import logging
import zlib
from typing import Any, Protocol

log = logging.getLogger(__name__)


def _load_isal() -> Any:
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:  # depends on the platform's wheels
        log.info("isal is not importable: gzip blocks are deflated by zlib (several times slower)")
        return None


#: ``isal.isal_zlib``, or None where it does not import (tests set None to run the zlib path)
_isal: Any = _load_isal()


class Deflater(Protocol):
    def compress(self, data: Any, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


class Inflater(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unconsumed_tail(self) -> bytes: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: Any, max_length: int = ..., /) -> bytes: ...

    def flush(self, length: int = ..., /) -> bytes: ...


#: the errors an inflater raises on damaged input (zlib's, and ISA-L's own class)
ERRORS: tuple[type[Exception], ...] = (zlib.error,) if _isal is None else (zlib.error, _isal.error)
FULL_FLUSH = zlib.Z_FULL_FLUSH
FINISH = zlib.Z_FINISH


def accelerated() -> bool:
    """Whether ISA-L does the work (for logs and benchmarks)."""
    return _isal is not None


def deflater(level: int, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> Deflater:
    """A raw deflater (no header) at zlib's ``level``; ``strategy`` is zlib's (ISA-L has none)."""
    if not -1 <= level <= 9:
        raise ValueError(f"deflate level must be -1 to 9, not {level}")
    if _isal is None or level == 0:
        return zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, strategy)
    isal_level = 1 if 1 <= level < 4 else 3 if level >= 7 else 2
    deflate: Deflater = _isal.compressobj(isal_level, _isal.DEFLATED, -zlib.MAX_WBITS)
    return deflate


def inflater() -> Inflater:
    """A raw inflater whose ``decompress(data, max_length)`` never gives more than ``max_length``
    bytes, whatever the input claims (checked for ISA-L with a 1,000:1 body: it keeps the rest of the
    input in ``unconsumed_tail`` as zlib does)."""
    if _isal is None:
        return zlib.decompressobj(-zlib.MAX_WBITS)
    inflate: Inflater = _isal.decompressobj(-zlib.MAX_WBITS)
    return inflate


def crc32(data: Any, value: int = 0) -> int:
    """CRC-32 as zlib computes it (ISA-L's folds with carry-less multiplies when the CPU has them)."""
    return zlib.crc32(data, value) if _isal is None else _isal.crc32(data, value)
