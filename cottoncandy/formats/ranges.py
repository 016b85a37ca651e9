"""Which byte ranges of an uncompressed array's body hold one block of it (no I/O).

A block (one slice per axis) of a C- or F-ordered array is a strided view of the body. We fetch
it as few ranges as sensible: the whole span between its first and last byte when that wastes
little, otherwise one span per index of the slowest axes, and neighbouring spans closer than
``MAX_GAP`` are merged into one request (S3 bills per request; latency dominates small reads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_WASTE = 8 * 2**20  # extra bytes worth fetching to save requests
MAX_GAP = 2**20  # spans closer than this are fetched together


@dataclass(frozen=True)
class SpanRead:
    """One strided view: ``out[out_index] = ndarray(shape, strides)`` over body bytes from ``start``."""

    out_index: tuple[int | slice, ...]
    start: int
    end: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


@dataclass(frozen=True)
class RangeGroup:
    """Body bytes ``[start, end)`` fetched with one request, and the views cut from them."""

    start: int
    end: int
    spans: list[SpanRead]


def body_strides(shape: Sequence[int], itemsize: int, order: str = "C") -> tuple[int, ...]:
    strides = [0] * len(shape)
    step = itemsize
    axes = range(len(shape) - 1, -1, -1) if order == "C" else range(len(shape))
    for axis in axes:
        strides[axis] = step
        step *= max(int(shape[axis]), 1)
    return tuple(strides)


def bounding_block(shape: Sequence[int], index: object) -> tuple[tuple[slice, ...], list[np.ndarray | int | None]]:
    """The step-1 block enclosing ``index`` (ints, slices of any step, 1-d integer arrays,
    ``...``), and per axis what to take from that block afterwards (``None``: all of it)."""
    items: list[Any] = list(index) if isinstance(index, tuple) else [index]
    if any(item is Ellipsis for item in items):
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if len(items) > len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    block: list[slice] = []
    local: list[np.ndarray | int | None] = []
    for axis, dim in enumerate(shape):
        item = items[axis] if axis < len(items) else slice(None)
        if isinstance(item, slice) and item.indices(int(dim))[2] == 1:
            start, stop, _ = item.indices(int(dim))
            block.append(slice(start, max(start, stop)))
            local.append(None)
            continue
        positions = np.arange(int(dim))[item]
        if positions.size == 0:
            block.append(slice(0, 0))
            local.append(None)
            continue
        low, high = int(positions.min()), int(positions.max()) + 1
        block.append(slice(low, high))
        local.append(int(positions) - low if positions.ndim == 0 else positions - low)
    return tuple(block), local


def plan_block(shape: Sequence[int], itemsize: int, order: str, block: Sequence[slice]) -> list[RangeGroup]:
    """The requests that read ``block``; empty for an empty block."""
    ndim = len(shape)
    strides = body_strides(shape, itemsize, order)
    extent = [s.stop - s.start for s in block]
    if any(e <= 0 for e in extent):
        return []
    needed = math.prod(extent) * itemsize
    base = sum(s.start * strides[a] for a, s in enumerate(block))
    slowest_first = sorted(range(ndim), key=lambda a: -strides[a])
    depth = ndim
    for d in range(ndim + 1):
        rest = slowest_first[d:]
        count = math.prod(extent[a] for a in slowest_first[:d])
        cover = sum((extent[a] - 1) * strides[a] for a in rest) + itemsize
        waste = count * cover - needed
        if waste <= max(needed, MAX_WASTE) or d == ndim:
            depth = d
            break
    lead = slowest_first[:depth]
    rest_natural = [a for a in range(ndim) if a not in lead]
    cover = sum((extent[a] - 1) * strides[a] for a in rest_natural) + itemsize
    spans: list[SpanRead] = []
    for combo in _product([extent[a] for a in lead]):
        offset = base + sum(i * strides[a] for i, a in zip(combo, lead))
        fixed = dict(zip(lead, combo))
        out_index = tuple(fixed[a] if a in fixed else slice(None) for a in range(ndim))
        spans.append(SpanRead(out_index, offset, offset + cover, tuple(extent[a] for a in rest_natural),
                              tuple(strides[a] for a in rest_natural)))
    spans.sort(key=lambda s: s.start)
    merged: list[tuple[int, int, list[SpanRead]]] = []
    for span in spans:
        if merged and span.start - merged[-1][1] <= MAX_GAP:
            start, end, members = merged[-1]
            members.append(span)
            merged[-1] = (start, max(end, span.end), members)
        else:
            merged.append((span.start, span.end, [span]))
    return [RangeGroup(start, end, members) for start, end, members in merged]


def _product(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    combos: list[tuple[int, ...]] = [()]
    for size in sizes:
        combos = [(*c, i) for c in combos for i in range(size)]
    return combos
