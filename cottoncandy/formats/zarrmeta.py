"""zarr (format 2) metadata for arrays cottoncandy stored, and which byte ranges are their chunks.

Why format 2: every zarr reader (zarr-python 2 and 3, zarrita, tensorstore, xarray's zarr engine)
reads ``.zarray``/``.zattrs``/``.zgroup``, and fsspec's reference filesystem (kerchunk's format)
serves them as small inline values beside ``[url, offset, length]`` chunk entries. Nothing here
does I/O: the plans below are computed from an ``ArraySpec`` already checked against its body.

The one constraint that shapes everything: zarr's chunk grid is regular and an edge chunk is
stored full size. So an uncompressed body is cut into equal slabs along its outermost axis (the
first for C order, the last for F order) whose count divides that axis; a compressed body cannot
be cut at all and is one chunk, decoded by the numcodecs codec 0.4.0 encoded it with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import zarr_blocks
from .codecs import record
from .raw import ArraySpec

#: bytes of one chunk cut from an uncompressed body, by default: a slice reads at most this much
#: more than it needs, and an array has (size / this) chunk entries in its references
DEFAULT_CHUNK_BYTES = 8 * 2**20
#: a divisor that gives chunks smaller than chunk_bytes / this is not worth its many entries: the
#: array is one chunk instead, if that chunk is at most this many times chunk_bytes
SMALL_CHUNK_FACTOR = 64

#: names a zarr store keeps for itself: an object or folder named so cannot be a node
RESERVED_NAMES = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})


def compressor_for(compression: str | None) -> dict[str, Any] | None:
    """The ``.zarray`` compressor of a body stored with ``compression`` (``None``: raw bytes): the
    codec's ``Codec.zarr`` (gzip bodies, 0.4.0's GzipFile streams and our block-indexed members, are
    both one gzip member, which numcodecs' GZip reads)."""
    if compression is None:
        return None
    config = record(compression).zarr
    return None if config is None else dict(config)


@dataclass(frozen=True)
class ChunkRange:
    """One zarr chunk: its key inside the array (``"2.0.0"``) and its bytes in the object."""

    key: str
    offset: int
    length: int


@dataclass(frozen=True)
class ChunkPlan:
    """How a stored body becomes a zarr array: chunk shape, memory order, codec, chunk ranges."""

    chunks: tuple[int, ...]
    order: str
    compressor: dict[str, Any] | None
    ranges: tuple[ChunkRange, ...]


def chunk_key(coords: Sequence[int]) -> str:
    """zarr format 2's key of a chunk (``"0"`` for a 0-d array)."""
    return ".".join(str(c) for c in coords) if coords else "0"


def grid_chunks(shape: Sequence[int]) -> tuple[int, ...]:
    """One chunk holding the whole array (zarr wants every chunk length to be at least 1)."""
    return tuple(max(1, int(d)) for d in shape)


def divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit`` (at least 1)."""
    limit = max(1, min(n, limit))
    best = 1
    for small in range(1, math.isqrt(n) + 1):
        if n % small == 0:
            if small <= limit:
                best = max(best, small)
            if n // small <= limit:
                best = max(best, n // small)
    return best


def plan_body(spec: ArraySpec, body_size: int, body_offset: int = 0,
              chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> ChunkPlan:
    """The chunks of a ``body_size``-byte object holding ``spec``'s array from ``body_offset``
    (past a ``.npy`` header); the caller has checked that the body fits the spec.

    Compressed: one chunk, the whole body. Uncompressed: equal slabs along the outermost axis of
    the stored order, as many as divide that axis, each at most ``chunk_bytes`` (a single slab
    may be larger). When the axis has no divisor near ``chunk_bytes`` (a prime length), the
    array is one chunk if that is at most ``SMALL_CHUNK_FACTOR * chunk_bytes``, else small slabs.
    """
    shape = spec.shape
    order = "F" if spec.fortran else "C"
    compressor = compressor_for(spec.compression)
    if spec.compression is not None or not shape or spec.nbytes == 0:
        whole = ChunkRange(chunk_key([0] * len(shape)), body_offset, body_size - body_offset)
        return ChunkPlan(grid_chunks(shape), order, compressor, () if spec.nbytes == 0 else (whole,))
    axis = len(shape) - 1 if order == "F" else 0
    n = shape[axis]
    slab = spec.nbytes // n
    count = divisor_at_most(n, max(1, chunk_bytes // slab))
    tiny = count * slab * SMALL_CHUNK_FACTOR < min(chunk_bytes, spec.nbytes)
    if tiny and spec.nbytes <= SMALL_CHUNK_FACTOR * chunk_bytes:
        count = n
    chunks = list(shape)
    chunks[axis] = count
    ranges: list[ChunkRange] = []
    for i in range(n // count):
        coords = [0] * len(shape)
        coords[axis] = i
        ranges.append(ChunkRange(chunk_key(coords), body_offset + i * count * slab, count * slab))
    return ChunkPlan(tuple(chunks), order, None, tuple(ranges))


def plan_blocks(spec: ArraySpec, blocks: Sequence[tuple[int, int]], block_size: int,
                crcs: Sequence[int] | None = None, source: str | None = None) -> ChunkPlan | None:
    """One chunk per block of an indexed gzip body (``blocks``: each block's compressed bytes
    ``[start, end)``, every block but the last ``block_size`` decoded bytes; ``crcs``: their CRC-32s
    when the index gives them; ``source``: the object, as the codec's errors name it), decoded by
    ``formats.zarr_blocks``' codec; ``None`` when blocks do not
    hold whole rows of a C-order array (then the body is one chunk, :func:`plan_body`)."""
    row = spec.row_bytes
    if spec.fortran or not row or block_size % row or len(blocks) < 2:
        return None
    rows = block_size // row
    last = spec.nbytes - (len(blocks) - 1) * block_size
    ranges = tuple(ChunkRange(chunk_key([i] + [0] * (len(spec.shape) - 1)), start, end - start)
                   for i, (start, end) in enumerate(blocks))
    return ChunkPlan((rows, *grid_chunks(spec.shape[1:])), "C",
                     zarr_blocks.config(block_size, last, None if crcs is None else list(crcs), source), ranges)


def zarray(shape: Sequence[int], dtype: np.dtype, plan: ChunkPlan) -> dict[str, Any]:
    """The ``.zarray`` document (fill_value null: zarr never masks a value we stored)."""
    return {
        "zarr_format": 2,
        "shape": [int(d) for d in shape],
        "chunks": list(plan.chunks),
        "dtype": zarr_dtype(dtype),
        "compressor": plan.compressor,
        "fill_value": None,
        "filters": None,
        "order": plan.order,
    }


def zarr_dtype(dtype: np.dtype) -> Any:
    """``dtype.str``, or a record type's field list (zarr format 2 spells structured dtypes so)."""
    if dtype.fields is not None:
        return [list(field) for field in dtype.descr]
    return dtype.str


def dimension_names(name: str, ndim: int) -> list[str]:
    """xarray's ``_ARRAY_DIMENSIONS``: one name per axis, unique to the array (no two arrays of a
    group share a dimension by accident, so sizes never conflict)."""
    return [f"{name}_dim_{i}" for i in range(ndim)]


def array_attrs(name: str, ndim: int, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(extra or {})
    attrs["_ARRAY_DIMENSIONS"] = dimension_names(name, ndim)
    return attrs


def dumps(doc: Any) -> str:
    """Metadata documents as the inline strings of a reference set (compact, stable)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def block_grid(chunks: Sequence[Sequence[int]], shape: Sequence[int]) -> tuple[tuple[int, ...], bool] | None:
    """A dask manifest's blocks as zarr's one chunk length per axis, and whether every block is
    exactly that long; ``None`` when no regular grid holds them.

    0.4.0's split (and ours) gives each split axis equal blocks, then a shorter one, then an empty
    one (``[683, 683, 134, 0]``, or ``[4, 4, 0]`` when the length divides). Empty blocks hold no
    data and have no zarr chunk. A shorter last block is a grid zarr can address, but zarr stores
    edge chunks full size, so its part cannot be a chunk as it is (``exact`` is then false).
    """
    lengths_per_axis, exact = [], True
    for axis, dim in zip(chunks, shape):
        lengths = list(axis)
        while len(lengths) > 1 and lengths[-1] == 0:
            lengths.pop()
        if dim == 0:
            lengths_per_axis.append(1)
            continue
        step = lengths[0]
        if step == 0 or any(length != step for length in lengths[:-1]) or lengths[-1] > step \
                or sum(lengths) != dim:
            return None
        exact = exact and lengths[-1] == step
        lengths_per_axis.append(step)
    return tuple(lengths_per_axis), exact
