"""The C-order bytes of any numpy array, one byte range at a time, without copying the whole array.

Why: a part of ``upload_dask_array`` is a slab of the caller's array (``arr[..., a:b]``), strided in
memory. ``np.ascontiguousarray`` of a 100 MiB part is a 100 MiB copy per part in flight, which is
what made that upload hold ~485 MiB beyond a 256 MiB array. The compressor and the upload need only
a few MiB at a time, in order: :class:`FlatBytes` hands them exactly that, copying each range out of
the strided array when it is asked for (on the compressing thread, so copies run in parallel too).
A C-contiguous array is served from its own memory, with no copy at all.

No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import numpy as np


class ByteSource(Protocol):
    """``len()`` bytes, readable by range in any order (ranges may be copies made on demand)."""

    def __len__(self) -> int: ...

    def read(self, start: int, stop: int) -> memoryview: ...


class BufferSource:
    """A :class:`ByteSource` over bytes already in memory (slices are views, never copies)."""

    def __init__(self, data: memoryview):
        self.data = data.cast("B") if data.format != "B" or data.ndim != 1 else data

    def __len__(self) -> int:
        return len(self.data)

    def read(self, start: int, stop: int) -> memoryview:
        return self.data[start:stop]


class FlatBytes:
    """The bytes ``np.ascontiguousarray(array).tobytes()`` would give, read by range.

    ``read`` returns a view of the array's memory when it is C-contiguous, else a fresh copy of
    just the elements covering the range.
    """

    def __init__(self, array: np.ndarray):
        if array.dtype.hasobject:
            raise TypeError("arrays of Python objects have no byte form")
        self.array = array
        self.itemsize = array.dtype.itemsize
        self.nbytes = math.prod(array.shape) * self.itemsize
        self._flat: memoryview | None = None
        if self.nbytes == 0:
            self._flat = memoryview(b"")
        elif array.flags.c_contiguous:
            self._flat = memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.nbytes

    @property
    def contiguous(self) -> bool:
        """True when reads are views of the array's own memory."""
        return self._flat is not None

    def read(self, start: int, stop: int) -> memoryview:
        start, stop = max(0, start), min(self.nbytes, stop)
        if stop <= start:
            return memoryview(b"")
        if self._flat is not None:
            return self._flat[start:stop]
        first, last = start // self.itemsize, -(-stop // self.itemsize)
        out = np.empty(last - first, dtype=self.array.dtype)
        copy_flat_range(self.array, first, last, out)
        offset = first * self.itemsize
        return memoryview(out.view(np.uint8))[start - offset : stop - offset]  # type: ignore[arg-type]

    def chunks(self, piece: int) -> Iterator[memoryview]:
        """The whole byte form in order, ``piece`` bytes at a time (one copy of ``piece`` alive)."""
        for start in range(0, self.nbytes, max(1, piece)):
            yield self.read(start, start + piece)


def flat_pieces(array: np.ndarray, start: int, stop: int) -> Iterator[np.ndarray]:
    """Views of ``array`` that cover its elements ``[start, stop)`` in C order, in that order.

    Splits the range along the first axis: a partial first row, whole rows as one view, a partial
    last row (recursing into the rows), so a range is a few numpy calls whatever its length.
    """
    if array.ndim <= 1:
        yield array.reshape(-1)[start:stop]
        return
    row = math.prod(array.shape[1:])
    if row == 0 or stop <= start:
        return
    i0, r0 = divmod(start, row)
    i1, r1 = divmod(stop, row)
    if i0 == i1:
        yield from flat_pieces(array[i0], r0, r1)
        return
    if r0:
        yield from flat_pieces(array[i0], r0, row)
        i0 += 1
    if i1 > i0:
        yield array[i0:i1]
    if r1:
        yield from flat_pieces(array[i1], 0, r1)


def copy_flat_range(array: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """Copy elements ``[start, stop)`` of ``array`` in C order into the 1-d contiguous ``out``."""
    pos = 0
    for piece in flat_pieces(array, start, stop):
        out[pos : pos + piece.size].reshape(piece.shape)[...] = piece
        pos += piece.size


class FlatSink:
    """Where ``np.ascontiguousarray(array).tobytes()`` would be written back, by byte range.

    The reverse of :class:`FlatBytes`. Why: a part of a stored dask array has a slot in the whole
    result (``result[:, a:b]``) that is strided; decoding the part straight into its slot saves a
    whole part's temporary copy per part in flight. Ranges may split elements (a gzip block ends
    where its input bytes end) and disjoint ranges may be written from several threads.

    Needs the array's last axis to be contiguous (any slice of a C-ordered array with step 1 is):
    :func:`flat_sink` answers None otherwise.
    """

    def __init__(self, array: np.ndarray):
        if array.dtype.hasobject or not array.flags.writeable:  # also checked by flat_sink, for direct use
            raise ValueError("only a writable array of plain values can take bytes")
        self.nbytes = math.prod(array.shape) * array.dtype.itemsize
        shaped = array.reshape(1) if array.ndim == 0 else array
        self._bytes = shaped.view(np.uint8)  # (..., last * itemsize); ValueError unless the last axis is contiguous

    def __len__(self) -> int:
        return self.nbytes

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None:
        start, stop, step = where.indices(self.nbytes)
        if step != 1 or stop - start != len(data):
            raise ValueError(f"bytes [{start}, {stop}) cannot take {len(data)} bytes")
        if stop > start:
            write_flat_range(self._bytes, start, stop, np.frombuffer(data, dtype=np.uint8))


def flat_sink(array: np.ndarray) -> memoryview | FlatSink | None:
    """The fastest target for ``array``'s C-order bytes: its own memory when it is C-contiguous, a
    :class:`FlatSink` when its last axis is contiguous, else None (the caller copies)."""
    if array.flags.c_contiguous and array.flags.writeable and not array.dtype.hasobject:
        return memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    try:
        return FlatSink(array)
    except ValueError:
        return None


def write_flat_range(array: np.ndarray, start: int, stop: int, src: np.ndarray) -> None:
    """Write the 1-d ``src`` over elements ``[start, stop)`` of ``array`` in C order (the reverse of
    :func:`copy_flat_range`)."""
    pos = 0
    for piece in flat_pieces(array, start, stop):
        piece[...] = src[pos : pos + piece.size].reshape(piece.shape)
        pos += piece.size
