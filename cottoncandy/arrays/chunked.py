"""Chunked arrays on a store: 0.4.0's dask layout written and read, and raw arrays read lazily by range.

Graphs built here hold only small picklable descriptors (a ``StoreHandle`` that travels as its
spec, the key, the ETag seen when the array was opened, dtype and shape); each worker process
rebuilds its own client, so a ``download_dask_array`` result computes on a ``dask.distributed``
cluster with no shared filesystem. Every read is pinned to the ETag it was planned with: a part
replaced in the meantime fails with ``ESTALE`` instead of mixing two versions.
"""

from __future__ import annotations

import errno
import json
import math
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from ..errors import NotAnArray, ObjectNotFound
from ..formats import dask as layout
from ..formats.codecs import max_decoded_size_any
from ..formats.objects import decode_json
from ..formats.ranges import bounding_block, plan_block
from ..formats.raw import dtype_token, parse_dtype_token
from ..progress import Progress, ProgressCallback
from ..storage.base import MaybeStoredError, ObjectInfo, ObjectStore, delete_after_failure
from ..storage.collect import objects_under
from ..storage.registry import StoreHandle
from .dask_parts import PartRef, part_graph, stored_dask_array
from .gzip_blocks import gzip_rows
from .raw import read_array_spec, write_raw_array

# --- reading a 0.4.0 dask array ---------------------------------------------------------------


def read_manifest(store: ObjectStore, object_name: str, kind: str) -> tuple[Any, dict[str, ObjectInfo]]:
    """The parsed ``metadata.json`` of a folder-shaped value and the objects under it (one LIST)."""
    name = store.describe(object_name)
    listing = {info.key: info for info in objects_under(store, object_name + "/")}
    manifest_key = f"{object_name}/{layout.MANIFEST}"
    if manifest_key not in listing:
        what = "nothing is stored under it" if not listing else f"{layout.MANIFEST} is missing"
        raise ObjectNotFound(errno.ENOENT, f"{name} is not a {kind}: {what}")
    size = listing[manifest_key].size
    if size > layout.MAX_MANIFEST_BYTES:  # untrusted: bounded before it is fetched or parsed
        raise ValueError(f"{name}: {layout.MANIFEST} is {size} bytes, more than a manifest can be "
                         f"({layout.MAX_MANIFEST_BYTES})")
    body = store.get(manifest_key)
    if len(body) > layout.MAX_MANIFEST_BYTES:
        raise ValueError(f"{name}: {layout.MANIFEST} is {len(body)} bytes, more than a manifest can be")
    try:  # not JSON: UnicodeDecodeError or JSONDecodeError (ValueErrors), as 0.4.0's download_json raised
        doc = decode_json(body, f"{name}/{layout.MANIFEST}")
    except RecursionError:  # nested deeper than the parser's stack
        raise ValueError(f"{name}: {layout.MANIFEST} is nested too deeply to be a manifest") from None
    return doc, listing


def resolve_part(object_name: str, written_key: str, listing: Mapping[str, ObjectInfo]) -> ObjectInfo | None:
    """The object holding a part: the key 0.4.0 wrote, or the same part name under ``object_name``
    (so a dask array that was copied or moved still reads)."""
    if written_key in listing:
        return listing[written_key]
    return listing.get(f"{object_name}/{written_key.rsplit('/', 1)[-1]}")


def download_dask_array(store: ObjectStore, object_name: str, dask_name: str | None = None) -> Any:
    """A lazy dask array over a 0.4.0 dask folder; computing it fetches only the parts it needs."""
    from dask.base import tokenize

    name = store.describe(object_name)
    doc, listing = read_manifest(store, object_name, "dask array")
    manifest = layout.parse_manifest(doc, name)
    handle = StoreHandle(store)
    refs: dict[tuple[int, ...], PartRef] = {}
    missing = []
    for coords, written_key in manifest.blocks.items():
        info = resolve_part(object_name, written_key, listing)
        if info is None:
            missing.append(written_key)
            continue
        block_shape = manifest.block_shape(coords)
        claimed = math.prod(block_shape) * manifest.dtype.itemsize
        if claimed > max_decoded_size_any(info.size):  # before any part is fetched or allocated
            raise ValueError(f"{name}: metadata.json says part {info.key} holds {claimed} bytes, more than its "
                             f"{info.size}-byte body can (forged or damaged manifest)")
        refs[coords] = PartRef(handle, info.key, info.etag, dtype_token(manifest.dtype), block_shape)
    if missing:
        raise ObjectNotFound(errno.ENOENT, f"{name}: dask array part {missing[0]} is missing "
                                              f"({len(missing)} of {len(manifest.blocks)} parts)")
    if dask_name is None:
        dask_name = "cottoncandy-" + tokenize(handle.spec or id(store), object_name,
                                              sorted((k, r.etag) for k, r in refs.items()))
    graph = part_graph(dask_name, refs)
    return stored_dask_array(graph, dask_name, manifest.chunks, manifest.dtype, manifest.shape, refs)


# --- writing ----------------------------------------------------------------------------------


#: memory the parts of one numpy upload may hold at once beyond the array (issue 15: <= 64 MiB)
UPLOAD_BUDGET = 48 * 2**20
#: what one part being streamed holds at most: the store's streamed-upload parts (the held first
#: part, the one being filled, two being sent: 4 x 5 MiB) and the gzip blocks being compressed
STREAMED_PART_COST = 40 * 2**20
#: the gzip blocks of one stream being copied and compressed at once
BLOCKS_COST = 8 * 2**20


def _upload_block(handle: StoreHandle, key: str, block: np.ndarray, choice: Mapping[str, Any],
                  progress: Callable[[int], None] | None = None) -> int:
    """One part: a slab of the caller's array, streamed from its memory (never copied whole);
    ``progress`` counts its array bytes as they are sent. Returns its array bytes."""
    write_raw_array(handle.get(), key, block, True, strided=True, progress=progress, **choice)
    return int(block.nbytes)


def parts_in_flight(part_nbytes: int, threads: int) -> int:
    """How many parts upload at once: ``threads`` at most, fewer when their streams would hold more
    than :data:`UPLOAD_BUDGET` together. A part's stream holds up to about twice its size (its
    upload parts and the compressed blocks waiting for them) plus the blocks being compressed, at
    most STREAMED_PART_COST (measured: ~40 MiB for one large gzip stream)."""
    if part_nbytes <= 0:
        return max(1, threads)
    cost = min(2 * part_nbytes + BLOCKS_COST, STREAMED_PART_COST)
    return max(1, min(threads, UPLOAD_BUDGET // cost))


def upload_dask_array(store: ObjectStore, object_name: str, arr: Any, axis: int | None = -1,
                      buffersize: int = 100 * 2**20, *, choice: Mapping[str, Any] | None = None,
                      metadata: Mapping[str, str] | None = None, threads: int = 4,
                      verbose: bool = True, callback: ProgressCallback | None = None) -> ObjectInfo:
    """Write ``arr`` (numpy or dask) as ``ptNNNN`` parts plus ``metadata.json``, 0.4.0's layout.

    A dask array is uploaded by its own scheduler, one part per task, so it is never
    materialized whole (and on a distributed cluster the workers upload in parallel). The
    manifest is written last: readers never see a half-written array. If a part fails, the
    parts already written are deleted and the error says so.
    """
    name = store.describe(object_name)
    for attr in ("shape", "dtype", "nbytes"):  # what 0.4.0 read first (AttributeError there)
        if not hasattr(arr, attr):
            raise NotAnArray(f"{name}: upload_dask_array needs a numpy or dask array, not {type(arr).__name__} "
                             f"(it has no .{attr})")
    shape = tuple(int(d) for d in arr.shape)
    dtype = np.dtype(arr.dtype)
    if dtype.hasobject:
        raise TypeError(f"{name}: arrays of Python objects cannot be stored as parts")
    plan = layout.plan_split(shape, dtype.itemsize, axis, buffersize, name=name)
    previous = {info.key for info in objects_under(store, object_name + "/")}
    keys = [layout.part_key(object_name, part.index) for part in plan.parts]
    choice = dict(choice or {})
    written: list[str] = []
    handle = StoreHandle(store)
    total = math.prod(shape) * dtype.itemsize
    with Progress(total, f"upload {object_name}", enabled=verbose, callback=callback) as progress:
        try:
            if _is_dask(arr):
                _upload_dask_parts(handle, arr, plan, keys, choice, written, progress)
            else:
                _upload_numpy_parts(handle, _as_numpy(arr, shape, dtype, name), plan, keys, choice, written,
                                    progress, threads)
            parts = [(part.coords, key, part.shape) for part, key in zip(plan.parts, keys)]
            body = json.dumps(layout.build_manifest(shape, dtype, parts, plan.chunks)).encode()
            manifest_key = f"{object_name}/{layout.MANIFEST}"
            try:
                info = store.put(manifest_key, body, dict(metadata or {}))
            except MaybeStoredError:  # a manifest naming parts about to be removed must go too
                written.append(manifest_key)
                raise
        except BaseException as exc:
            delete_after_failure(store, written, exc, "part(s)")
            raise
    stale = sorted(previous - set(keys) - {f"{object_name}/{layout.MANIFEST}"})
    stale = [k for k in stale if _is_part_name(k, object_name)]
    if stale:  # parts of an earlier, larger upload under the same name
        store.delete_many(stale)
    return info


def _as_numpy(arr: Any, shape: tuple[int, ...], dtype: np.dtype[Any], name: str) -> np.ndarray:
    """``arr`` as the numpy array its ``shape`` and ``dtype`` describe (an array-like that ``np.asarray``
    makes something else of, such as a scipy.sparse matrix, is refused before anything is written)."""
    out = np.asarray(arr)
    if out.shape != shape or out.dtype != dtype:
        raise NotAnArray(f"{name}: upload_dask_array needs a numpy or dask array; np.asarray makes a "
                         f"{out.dtype}{list(out.shape)} array of this {type(arr).__name__}, "
                         f"which says {dtype}{list(shape)}")
    return out


def _is_dask(arr: Any) -> bool:
    return type(arr).__module__.startswith("dask.") and hasattr(arr, "dask") and hasattr(arr, "chunks")


def _is_part_name(key: str, object_name: str) -> bool:
    rest = key[len(object_name) + 1:]
    return len(rest) == 6 and rest.startswith("pt") and rest[2:].isdigit()


def _upload_numpy_parts(handle: StoreHandle, arr: np.ndarray, plan: layout.SplitPlan, keys: list[str],
                        choice: Mapping[str, Any], written: list[str], progress: Progress, threads: int) -> None:
    largest = max((math.prod(part.shape) * arr.dtype.itemsize for part in plan.parts), default=0)
    limit = parts_in_flight(largest, max(1, threads))
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="cc-dask-put") as pool:
        pending: dict[Future[int], str] = {}
        for part, key in zip(plan.parts, keys):
            fut = pool.submit(_upload_block, handle, key, arr[part.slices], choice, progress.update)
            pending[fut] = key
            if len(pending) >= limit:  # bounded: each part streams a few MiB at a time
                _collect(pending, written, FIRST_COMPLETED)
        _collect(pending, written, None)


def _collect(pending: dict[Future[int], str], written: list[str], until: str | None) -> None:
    done, _ = wait(list(pending), return_when=until or "ALL_COMPLETED")
    error: BaseException | None = None
    for fut in done:
        key = pending.pop(fut)
        if fut.exception() is None:
            written.append(key)
        else:
            if isinstance(fut.exception(), MaybeStoredError):  # its answer was lost: it may be there
                written.append(key)
            if error is None:
                error = fut.exception()
    if error is not None:
        if pending:  # let the rest finish so cleanup sees every written part
            _collect(pending, written, None)
        raise error


def _may_exist(store: ObjectStore, key: str) -> bool:
    try:
        return store.exists(key)
    except OSError:
        return True


def _upload_dask_parts(handle: StoreHandle, arr: Any, plan: layout.SplitPlan, keys: list[str],
                       choice: Mapping[str, Any], written: list[str], progress: Progress) -> None:
    import dask
    from dask.callbacks import Callback

    tasks = [dask.delayed(_upload_block, pure=False)(handle, key, arr[part.slices], choice)
             for part, key in zip(plan.parts, keys)]
    ours = {task.key for task in tasks}
    counted = 0

    def part_done(key: Any, result: Any, *_: Any) -> None:
        nonlocal counted  # a local scheduler tells each finished part (a distributed one does not)
        if key in ours and result:
            counted += int(result)
            progress.update(int(result))

    try:
        with Callback(posttask=part_done):
            sizes = dask.compute(*tasks)
    except BaseException:
        # which parts made it is unknown: look, so cleanup removes exactly those (and, where the
        # store cannot say, the part too: it may be there)
        store = handle.get()
        written.extend(k for k in keys if _may_exist(store, k))
        raise
    written.extend(keys)
    if sum(sizes) > counted:  # the parts no callback told (a distributed scheduler's)
        progress.update(sum(sizes) - counted)


# --- one raw array, lazily, by byte ranges ----------------------------------------------------


class RawArrayRanges:
    """An array-like over an uncompressed raw array: ``[slices]`` fetches just those bytes.

    Picklable (a ``StoreHandle`` and a few numbers), so ``dask.array.from_array`` over it runs on
    any worker. Reads carry the ETag seen at open (``ESTALE`` if the object was replaced).
    """

    def __init__(self, handle: StoreHandle, key: str, etag: str, dtype: str, shape: tuple[int, ...], order: str):
        self.handle, self.key, self.etag, self.order = handle, key, etag, order
        self.dtype = parse_dtype_token(dtype, key)  # a ``dtype_token``: record types keep their fields
        self.shape = tuple(shape)
        self.ndim = len(self.shape)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RawArrayRanges, (self.handle, self.key, self.etag, dtype_token(self.dtype), self.shape, self.order))

    def __getitem__(self, index: Any) -> np.ndarray:
        block, local = bounding_block(self.shape, index)
        out = self._read_block(block)
        for axis in range(len(local) - 1, -1, -1):  # last axis first, so axis numbers stay valid
            take = local[axis]
            if take is not None:
                out = np.take(out, take, axis=axis)
        return out

    def _read_block(self, block: tuple[slice, ...]) -> np.ndarray:
        out = np.empty(tuple(s.stop - s.start for s in block), dtype=self.dtype)
        groups = plan_block(self.shape, self.dtype.itemsize, self.order, block)
        if not groups:
            return out
        store = self.handle.get()

        def fetch(group: Any) -> None:
            buffer = bytearray(group.end - group.start)
            store.download_into(self.key, memoryview(buffer), if_match=self.etag, offset=group.start)
            for span in group.spans:
                view = np.ndarray(span.shape, dtype=self.dtype, buffer=buffer, offset=span.start - group.start,
                                  strides=span.strides)
                out[span.out_index] = view

        if len(groups) == 1:
            fetch(groups[0])
        else:
            with ThreadPoolExecutor(max_workers=min(store.concurrency, len(groups))) as pool:
                list(pool.map(fetch, groups))
        return out


def raw_array_as_dask(store: ObjectStore, object_name: str, chunks: Any = "auto", dask_name: str | None = None) -> Any:
    """A lazy dask array over one uncompressed raw array, read by byte ranges, chunked as asked; or over
    a gzip array cottoncandy wrote, read by block (by default one chunk per block of whole rows)."""
    import dask.array as da
    from dask.base import tokenize

    info, spec = read_array_spec(store, object_name)
    name = store.describe(object_name)
    if spec.compression is not None:
        rows = gzip_rows(store, info, spec)  # a gzip array we wrote: read by block (``chunks`` "auto": one per block)
        if rows is None:
            raise ValueError(f"{name} is {spec.compression}-compressed, so its bytes cannot be read by range; "
                             "use download_raw_array, or store it with compression=False (or gzip, by "
                             "cottoncandy, which indexes its blocks)")
        token = dask_name or "cottoncandy-gzip-" + tokenize(rows.handle.spec or id(store), object_name, info.etag,
                                                            chunks)
        chunks = rows.chunks or chunks if isinstance(chunks, str) and chunks == "auto" else chunks
        return da.from_array(rows, chunks=chunks, name=token, meta=np.empty((0,) * len(spec.shape), spec.dtype))
    if info.size != spec.nbytes:
        raise ValueError(f"{name}: body is {info.size} bytes but a {spec.dtype.str} array of shape {spec.shape} "
                         f"needs {spec.nbytes}")
    handle = StoreHandle(store)
    source = RawArrayRanges(handle, object_name, info.etag, dtype_token(spec.dtype), spec.shape, spec.order)
    token = dask_name or "cottoncandy-raw-" + tokenize(handle.spec or id(store), object_name, info.etag, chunks)
    return da.from_array(source, chunks=chunks, name=token, meta=np.empty((0,) * len(spec.shape), spec.dtype))
