"""Chunked (dask) arrays in 0.4.0's layout: how an array is split, and the ``metadata.json`` manifest.

docs/FORMAT.md section 3. No I/O here: ``plan_split`` says which slices become which parts,
``build_manifest``/``parse_manifest`` turn the manifest into and out of its JSON form, and
``parse_manifest`` refuses a manifest that could not describe the array it claims (so a
damaged ``metadata.json`` is an error naming the object, never a wrong array).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BadManifest, BadPartSize
from .keys import DESCR_KEY
from .raw import MAX_NBYTES, MAX_NDIM, check_size, descr_text, parse_dtype, shown, structured_dtype

MANIFEST = "metadata.json"
PART_FORMAT = "pt{:04d}"
MIN_BUFFERSIZE = 5 * 2**20  # 0.4.0's min_mpu_size
MAX_PARTS = 10_000
MAX_TOTAL = 5 * 2**40


@dataclass(frozen=True)
class PartPlan:
    """One part: its block coordinates, the slices of the whole array it holds, its shape."""

    index: int
    coords: tuple[int, ...]
    slices: tuple[slice, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in self.slices)


@dataclass(frozen=True)
class SplitPlan:
    parts: list[PartPlan]
    chunks: tuple[tuple[int, ...], ...]  # dask's chunks, one tuple per axis (zero-length ones included)


def plan_split(shape: Sequence[int], itemsize: int, axis: int | None = -1,
               buffersize: int = 100 * 2**20, *, name: str = "array") -> SplitPlan:
    """0.4.0's split: slabs along ``axis`` of about ``buffersize`` bytes (cubes when ``axis=None``).

    0.4.0 always gives the split axis ``ceil(n / side) + 1`` blocks, so the last is empty; we
    write the same so 0.4.0 reads ours and ours look like its own.
    """
    shape = tuple(int(d) for d in shape)
    ndim = len(shape)
    if ndim == 0:
        raise ValueError(f"{name}: a 0-d array cannot be split into parts; use upload_raw_array")
    nbytes = math.prod(shape) * itemsize
    if buffersize < MIN_BUFFERSIZE:
        raise BadPartSize(f"{name}: buffersize must be at least {MIN_BUFFERSIZE} bytes (5 MiB, S3's smallest "
                         f"multipart part), got {buffersize}")
    if nbytes >= MAX_TOTAL:
        raise ValueError(f"{name}: {nbytes} bytes is more than S3 holds in one upload set (5 TiB)")
    if math.ceil(nbytes / buffersize) >= MAX_PARTS:
        raise BadPartSize(f"{name}: {nbytes} bytes in parts of {buffersize} would make {MAX_PARTS} parts or "
                         "more; raise buffersize")
    if axis is not None:
        if not -ndim <= axis < ndim:
            raise ValueError(f"{name}: axis {axis} is out of range for a {ndim}-d array")
        axis = axis % ndim
        others = [d for i, d in enumerate(shape) if i != axis]
        # 0.4.0 would take log(0) for an empty other axis; then one slab holds the (empty) array
        logsum = -math.inf if 0 in others else sum(math.log(d) for d in others)
        factor = 1
    else:
        logsum, factor = 0.0, ndim
    if logsum == -math.inf:
        side = max(1, shape[axis])  # type: ignore[index]
    else:
        side = max(1, math.ceil(math.exp((math.log(buffersize) - math.log(itemsize) - logsum) / factor)))
    counts = [math.ceil(d / side) + 1 for d in shape]
    if axis is not None:
        counts = [c if i == axis else 1 for i, c in enumerate(counts)]
    sides = [side if axis is None or i == axis else shape[i] for i in range(ndim)]
    parts = []
    for index, coords in enumerate(itertools.product(*(range(c) for c in counts))):
        slices = tuple(slice(min(sides[d] * c, shape[d]), min(sides[d] * (c + 1), shape[d]))
                       for d, c in enumerate(coords))
        parts.append(PartPlan(index, tuple(coords), slices))
    chunks = tuple(tuple(min(sides[d] * (c + 1), shape[d]) - min(sides[d] * c, shape[d]) for c in range(counts[d]))
                   for d in range(ndim))
    return SplitPlan(parts, chunks)


def part_key(object_name: str, index: int) -> str:
    return f"{object_name}/{PART_FORMAT.format(index)}"


@dataclass(frozen=True)
class Manifest:
    """A parsed ``metadata.json``: what the whole array is and which key holds each block."""

    shape: tuple[int, ...]
    dtype: np.dtype
    blocks: dict[tuple[int, ...], str]
    chunks: tuple[tuple[int, ...], ...]

    def block_shape(self, coords: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.chunks[d][c] for d, c in enumerate(coords))


def build_manifest(shape: Sequence[int], dtype: np.dtype, parts: Sequence[tuple[tuple[int, ...], str,
                   tuple[int, ...]]], chunks: Sequence[Sequence[int]]) -> dict[str, object]:
    """The JSON object 0.4.0 writes, keys in its order: shape, dtype, dask, chunk_sizes, chunks.

    A structured dtype's ``dtype`` is ``|V12`` as 0.4.0 writes it; its fields follow last in
    ``dtype-descr`` (the raw-array metadata key, same JSON text), which 0.4.0's reader never looks
    at (it reads ``dask``, ``chunks``, ``shape`` and ``dtype`` only).
    """
    dtype = np.dtype(dtype)
    doc: dict[str, object] = {
        "shape": [int(d) for d in shape],
        "dtype": dtype.str,
        "dask": [[list(coords), key] for coords, key, _ in parts],
        "chunk_sizes": [list(part_shape) for _, _, part_shape in parts],
        "chunks": [[int(c) for c in axis] for axis in chunks],
    }
    if dtype.fields is not None:
        doc[DESCR_KEY] = descr_text(dtype)
    return doc


#: Bounds on an untrusted ``metadata.json``, far above anything 0.4.0 writes (its split makes at
#: most ~10,000 parts; each costs < 1.1 KB of JSON even with a 1,024-character key).
MAX_MANIFEST_BYTES = 32 * 2**20
MAX_MANIFEST_BLOCKS = 1_000_000
MAX_PART_KEY = 1024


def _dims(value: object, name: str, field: str) -> tuple[int, ...]:
    """A JSON list of non-negative integers (bools and floats refused), at most MAX_NDIM long."""
    if not isinstance(value, list) or len(value) > MAX_MANIFEST_BLOCKS:
        raise ValueError(f"{name}: metadata.json {field} is not a list of sizes")
    if not all(type(d) is int and 0 <= d <= MAX_NBYTES for d in value):
        raise ValueError(f"{name}: metadata.json {field} holds something other than sizes")
    return tuple(value)


def parse_manifest(doc: object, name: str) -> Manifest:
    """Check and parse an untrusted ``metadata.json`` document; ``ValueError`` naming ``name`` (``BadManifest``
    when it is not a JSON object or lacks a key, where 0.4.0 raised ``TypeError``/``KeyError``).

    Every field is checked, and the block count bounded, before anything is built from it (a
    2 KB manifest could otherwise name 3**30 blocks).
    """
    if not isinstance(doc, Mapping):
        raise BadManifest(f"{name}: metadata.json is not a JSON object (not a dask array manifest)")
    missing = [k for k in ("shape", "dtype", "dask", "chunks") if k not in doc]
    if missing:
        raise BadManifest(f"{name}: metadata.json has no {', '.join(missing)} (not a dask array manifest)")
    shape = _dims(doc["shape"], name, "shape")
    if not shape or len(shape) > MAX_NDIM:
        raise ValueError(f"{name}: metadata.json shape has {len(shape)} dimensions (1 to {MAX_NDIM})")
    dtype = parse_dtype(doc["dtype"], name, "dtype in metadata.json")
    if DESCR_KEY in doc:  # bounded and checked like the raw-array key: a record type, no objects
        dtype = structured_dtype({DESCR_KEY: doc[DESCR_KEY]}, dtype, name, f"{DESCR_KEY} in metadata.json")
    check_size(dtype, shape, name)
    raw_chunks, listed = doc["chunks"], doc["dask"]
    if not isinstance(raw_chunks, list) or len(raw_chunks) != len(shape):
        raise ValueError(f"{name}: metadata.json chunks do not have one list per dimension of shape {shape}")
    chunks = tuple(_dims(axis, name, "chunks") for axis in raw_chunks)
    if any(sum(axis) != dim for axis, dim in zip(chunks, shape)):
        raise ValueError(f"{name}: metadata.json chunks do not add up to shape {shape}")
    if not isinstance(listed, list) or len(listed) > MAX_MANIFEST_BLOCKS:
        raise ValueError(f"{name}: metadata.json dask is not a list of at most {MAX_MANIFEST_BLOCKS} parts")
    count = 1
    for axis in chunks:  # stops as soon as the product is too big: never builds the block grid
        count *= len(axis)
        if count > len(listed):
            break
    if count != len(listed):
        raise ValueError(f"{name}: metadata.json lists {len(listed)} parts for a grid of "
                         f"{' x '.join(str(len(a)) for a in chunks)} blocks")
    blocks: dict[tuple[int, ...], str] = {}
    for entry in listed:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)
                and 0 < len(entry[1]) <= MAX_PART_KEY):
            raise ValueError(f"{name}: metadata.json dask entry {shown(entry)} is not [coordinates, key]")
        coords = _dims(entry[0], name, "dask coordinates")
        if len(coords) != len(shape) or any(c >= len(axis) for c, axis in zip(coords, chunks)):
            raise ValueError(f"{name}: metadata.json dask entry {shown(entry)} is outside the block grid")
        if coords in blocks:
            raise ValueError(f"{name}: metadata.json lists block {coords} twice")
        blocks[coords] = entry[1]
    return Manifest(shape, dtype, blocks, chunks)
