"""The parts of a stored dask array: loading one, and computing the whole array into one result.

Why the whole-array path: dask computes a many-chunk array by holding every part's result and then
concatenating them into a new array, so ``download_dask_array(...).compute()`` (and ``np.asarray``)
peaked at the parts *plus* the result (~165 MiB beyond a 128 MiB array; 0.4.0 the same, 180). When
the whole array is computed on a local scheduler (dask's threads or its synchronous scheduler), the
array returned by ``download_dask_array`` instead allocates the result once and decodes each part
straight into its slot (a strided slot through ``formats.flat.FlatSink``), a few parts at a time:
the extra memory is what a single download holds, and no concatenation runs. Anything else - a
``dask.distributed`` client, ``dask.compute(x, y)``, ``persist``, any expression built on the array -
is dask's own graph of tasks, unchanged.

Why each part is a ``getter`` task over a :class:`PartSlices` rather than a call that loads the part:
dask fuses a slice of the array into the ``getter`` of each part it touches (as for
``dask.array.from_array``), so ``download_dask_array(...)[10].compute()`` asks each part for the
rows it needs, and a part that can be read in pieces is: an uncompressed part by byte ranges, a gzip
part of ours by the blocks holding the rows (its block index), a 0.4.0 gzip part by the stretches
holding them when its seek points are kept in the library's cache folder (``gzip_points``). Any other
part is loaded whole, once per version while it stays in the process's bounded ``gzip_blocks.WHOLE``
(its next slices cost nothing); a slice covering a whole part is loaded whole and not kept.
"""

from __future__ import annotations

import errno
import math
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..cache.identity import object_identity
from ..formats.flat import flat_sink
from ..formats.ranges import bounding_block
from ..formats.raw import ArraySpec, dtype_token, parse_dtype_token, same_records
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.registry import StoreHandle
from .gzip_blocks import WHOLE, GzipRows, gzip_rows
from .gzip_points import library_shelf, point_fetch
from .raw import FirstLook, first_look, read_array_spec, read_looked_array, read_looked_into

#: parts decoded at once by the whole-array path; each part's own download already runs in parallel
#: (ranged GETs, gzip blocks), so two keep the network and the cores busy while bounding memory
PARTS_AT_ONCE = 2


@dataclass(frozen=True)
class PartRef:
    """Everything a task needs to load one part, and nothing else (it is pickled into the graph)."""

    handle: StoreHandle
    key: str
    etag: str
    dtype: str  # a ``dtype_token``: ``dtype.str``, or a record type's full descr (``|V12`` loses fields)
    shape: tuple[int, ...]


def _look(store: ObjectStore, ref: PartRef, dtype: np.dtype[Any]) -> FirstLook:
    """The part's first request, checked against what the manifest promised (version, shape, dtype)."""
    look = first_look(store, ref.key)  # the metadata and a small part's whole body: one request
    _check(store, ref, dtype, look.info, look.spec)
    return look


def _check(store: ObjectStore, ref: PartRef, dtype: np.dtype[Any], info: ObjectInfo, spec: ArraySpec) -> None:
    name = store.describe(ref.key)
    if ref.etag and info.etag != ref.etag:
        raise OSError(errno.ESTALE, f"{name} was replaced after the dask array was opened")
    if spec.shape != ref.shape or not same_records(spec.dtype, dtype):
        raise ValueError(f"{name}: part holds {dtype_token(spec.dtype)} {spec.shape}, but metadata.json says "
                         f"{dtype_token(dtype)} {ref.shape}")


def load_part(ref: PartRef) -> np.ndarray:
    """One part as a numpy array of the manifest's dtype, checked against what the manifest promised.

    A part stored as plain void records (0.4.0 wrote structured parts so) reads as the manifest's
    record type of the same size, and the other way round.
    """
    dtype = parse_dtype_token(ref.dtype, ref.key)
    if math.prod(ref.shape) == 0:
        return np.empty(ref.shape, dtype=dtype)
    store = ref.handle.get()
    part = read_looked_array(store, _look(store, ref, dtype))
    return part if part.dtype == dtype else part.view(dtype)


class PartSlices:
    """One part as an array-like for dask's ``getter``: ``[index]`` reads only what ``index`` needs
    where the part allows it (see the module's docstring), else the whole part. Picklable (a
    ``PartRef``), so the graph still computes on a distributed cluster."""

    def __init__(self, ref: PartRef):
        self.ref = ref
        self.dtype = parse_dtype_token(ref.dtype, ref.key)
        self.shape = ref.shape
        self.ndim = len(ref.shape)
        #: how the last slice was read: "whole", "ranges", "blocks" or "stretches" (for tests and logs)
        self.last_read = ""
        #: the part's block reader (``GzipRows``, or None: not such a part) for the version it was made
        #: for, made at the first slice and kept for this source's lifetime: its index is read once, and
        #: once a forged index sent it to the whole decode, every later slice is served from that one
        #: decode (kept in ``gzip_blocks.WHOLE``, bounded) and it is logged once
        self._rows: tuple[str, GzipRows | None] | None = None
        self._rows_lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        return (PartSlices, (self.ref,))

    def __getitem__(self, index: Any) -> np.ndarray:
        block, local = bounding_block(self.shape, index)
        if math.prod(self.shape) == 0 or all(s.start == 0 and s.stop == n for s, n in zip(block, self.shape)):
            self.last_read = "whole"
            return load_part(self.ref)[index]
        out = self._block(block)
        for axis in range(len(local) - 1, -1, -1):  # last axis first, so axis numbers stay valid
            take = local[axis]
            if take is not None:
                out = np.take(out, take, axis=axis)
        return out if out.dtype == self.dtype else out.view(self.dtype)

    def _block(self, block: tuple[slice, ...]) -> np.ndarray:
        """The step-1 ``block`` of the part, by the cheapest way the part offers."""
        from .chunked import RawArrayRanges  # chunked builds on this module

        store = self.ref.handle.get()
        info, spec = read_array_spec(store, self.ref.key)  # one HEAD: the part's first bytes are not needed
        _check(store, self.ref, self.dtype, info, spec)
        if spec.compression is None and info.size == spec.nbytes:
            self.last_read = "ranges"
            return RawArrayRanges(self.ref.handle, info.key, info.etag, dtype_token(spec.dtype), spec.shape,
                                  spec.order)[block]
        rows = self._gzip_rows(store, info, spec)
        if rows is not None:
            self.last_read = "blocks"
            return rows[block]
        stretched = _stretched_rows(store, info, spec, block[0].start, block[0].stop)
        if stretched is not None:
            self.last_read = "stretches"
            return stretched[(slice(None),) + tuple(block[1:])]
        self.last_read = "whole"
        return np.array(self._whole(store, info)[block])  # a copy of the slice: the part is shared

    def _whole(self, store: ObjectStore, info: ObjectInfo) -> np.ndarray:
        """The whole part, for a slice of a part readable only whole (a codec without blocks, a gzip body
        without a usable index or kept seek points): decoded once per version while it stays in the
        process's bounded ``gzip_blocks.WHOLE``, so the next slices of it cost no request. (A slice
        covering the whole part, and ``compute()`` of the whole array, load it without keeping it.)"""
        key = (store.describe(info.key), info.etag, "part")
        kept = WHOLE.get(key)
        if isinstance(kept, np.ndarray):
            return kept
        part = load_part(self.ref)
        part.flags.writeable = False  # shared by every later slice, which gets a copy of its rows
        WHOLE.put(key, part)
        return part


    def _gzip_rows(self, store: ObjectStore, info: ObjectInfo, spec: ArraySpec) -> GzipRows | None:
        """The part's :class:`GzipRows` for version ``info.etag``, made once (see ``_rows``)."""
        with self._rows_lock:
            if self._rows is None or self._rows[0] != info.etag:
                self._rows = (info.etag, gzip_rows(store, info, spec))
            return self._rows[1]


def _stretched_rows(store: ObjectStore, info: ObjectInfo, spec: ArraySpec, first: int, stop: int) -> np.ndarray | None:
    """Rows ``[first, stop)`` of a C-order 0.4.0 gzip part through the seek points kept in the library's
    cache folder (``gzip_points.point_fetch``), or ``None`` (not such a part, or no points kept)."""
    if spec.fortran or not spec.shape:
        return None
    whole: list[bytes] = []

    def fallback(start: int, end: int) -> bytes:  # a stretch failed its check: the whole body, serially
        if not whole:
            whole.append(read_looked_array(store, FirstLook(info, spec, b"")).tobytes(order="C"))
        return whole[0][start:end]

    fetch = point_fetch(info, spec, library_shelf(store), object_identity(store, info.key),
                        lambda start, end: store.get_range(info.key, start, end, if_match=info.etag), fallback)
    if fetch is None:
        return None
    row = math.prod(spec.shape[1:]) * spec.dtype.itemsize
    if first >= stop or not row:
        return np.empty((stop - first, *spec.shape[1:]), dtype=spec.dtype)
    data = fetch(first * row, stop * row)
    return np.frombuffer(data, dtype=spec.dtype).reshape((stop - first, *spec.shape[1:]))


def part_graph(name: str, parts: Mapping[tuple[int, ...], PartRef]) -> dict[Any, Any]:
    """The graph of a stored dask array: one ``getter`` task per part over its :class:`PartSlices`,
    whole (dask fuses a slice of the array into it). Each source is a key of its own, as
    ``dask.array.from_array`` makes it: dask fuses slices only into getters of a keyed source."""
    from dask.array.core import getter

    graph: dict[Any, Any] = {}
    for coords, ref in parts.items():
        source, key = (f"{name}-part", *coords), (name, *coords)
        graph[source] = PartSlices(ref)
        graph[key] = (getter, source, tuple(slice(0, n) for n in ref.shape))
    return graph


def load_part_into(ref: PartRef, slot: np.ndarray) -> None:
    """:func:`load_part` written into ``slot`` (a view of the whole result, the part's shape), without
    a copy of the part when its stored order allows: a C-ordered part is decoded into the slot's own
    memory or through a ``FlatSink``; an F-ordered one goes through one temporary part."""
    dtype = parse_dtype_token(ref.dtype, ref.key)
    if math.prod(ref.shape) == 0:
        return
    store = ref.handle.get()
    look = _look(store, ref, dtype)
    sink = flat_sink(slot) if look.spec.order == "C" else None
    if sink is None:
        part = read_looked_array(store, look)
        slot[...] = part if part.dtype == slot.dtype else part.view(slot.dtype)
        return
    read_looked_into(store, look, sink)


def fill_parts(parts: Mapping[tuple[int, ...], PartRef], chunks: tuple[tuple[int, ...], ...],
               dtype: np.dtype[Any], workers: int = PARTS_AT_ONCE) -> np.ndarray:
    """The whole array: one C-ordered result, each part decoded into its slot, ``workers`` at a time
    (0: one after another on the calling thread, as dask's synchronous scheduler runs)."""
    shape = tuple(sum(c) for c in chunks)
    result = np.empty(shape, dtype=dtype)
    starts = [np.concatenate(([0], np.cumsum(c))).tolist() for c in chunks]

    def load(item: tuple[tuple[int, ...], PartRef]) -> None:
        coords, ref = item
        where: tuple[Any, ...] = (*(slice(starts[axis][i], starts[axis][i + 1]) for axis, i in enumerate(coords)),
                                  Ellipsis)  # the Ellipsis keeps a 0-d slot an array, not a scalar
        load_part_into(ref, result[where])

    if workers <= 0:
        for item in parts.items():
            load(item)
        return result
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(parts))), thread_name_prefix="cc-dask") as pool:
        for _ in pool.map(load, parts.items()):
            pass
    return result


def _fill_workers(kwargs: Mapping[str, Any], collection: Any) -> int | None:
    """Parts at once for ``compute(**kwargs)`` filled here (0: on the calling thread), or None when
    dask must run it: not its threads or synchronous scheduler, a keyword we would not honour, a
    diagnostic callback (``ProgressBar``, ``Profiler``: they watch dask's tasks) or a configured pool."""
    if set(kwargs) - {"scheduler", "num_workers", "optimize_graph"}:
        return None
    try:
        import dask
        import dask.callbacks
        import dask.local
        import dask.threaded
        from dask.base import get_scheduler

        if getattr(dask.callbacks.Callback, "active", None) or dask.config.get("pool", None) is not None:
            return None
        chosen = get_scheduler(scheduler=kwargs.get("scheduler"), collections=[collection])
    except Exception:  # noqa: BLE001 - an unknown dask: its own compute decides
        return None
    if chosen is dask.local.get_sync:
        return 0
    if chosen is dask.threaded.get:
        return max(1, min(int(kwargs.get("num_workers") or PARTS_AT_ONCE), PARTS_AT_ONCE))
    return None


@lru_cache(maxsize=1)
def _array_class() -> type:
    """The ``dask.array.Array`` subclass, made at first use (``import cottoncandy`` stays free of
    ``dask.array``'s import time)."""
    import dask.array as da

    class StoredDaskArray(da.Array):
        """A dask array over a stored dask folder (``download_dask_array``); see ``dask_parts``."""

        def compute(self, **kwargs: Any) -> Any:
            made = self.__dict__.get("_cc_parts")
            # item assignment (``x[0] = 5``) rewrites the array in place: a new name, so the graph decides
            if made is not None and made[0] == (self.name, self.chunks):
                workers = _fill_workers(kwargs, self)
                if workers is not None:
                    return fill_parts(made[1], self.chunks, self.dtype, workers)
            return super().compute(**kwargs)  # type: ignore[no-untyped-call]

    return StoredDaskArray


def stored_dask_array(graph: dict[Any, Any], name: str, chunks: tuple[tuple[int, ...], ...], dtype: np.dtype[Any],
                      shape: tuple[int, ...], parts: Mapping[tuple[int, ...], PartRef]) -> Any:
    """A ``dask.array.Array`` of :func:`load_part` tasks whose own ``compute()`` on a local scheduler
    fills one result (see the module's docstring). It pickles as a plain ``dask.array.Array``."""
    array = _array_class()(graph, name, chunks, dtype=dtype, shape=shape)
    array.__dict__["_cc_parts"] = ((array.name, array.chunks), dict(parts))
    return array
