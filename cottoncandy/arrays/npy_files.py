"""``.npy`` files and objects <-> stored arrays, without holding a big array in memory twice.

``upload_npy_array``/``download_npy_array`` store and read exactly the bytes ``np.save`` writes:
the header, then the array's own memory streamed in parts (no second copy of the array); the
download reads the header with the object's first bytes (one request, which also gives its
version), checks it against the object's size, then fills a new array straight from ranged GETs.

``put`` memory-maps the file, so an uncompressed upload streams from the page cache. ``get``
writes numpy's own header for the stored array and then its body through the library's own read
path (``arrays.decode_body_into``, straight into the memory-mapped file: the same size checks,
the same bounded decoders); a dask folder is written chunk by chunk into a memory-mapped
``.npy``. Files are written beside the target and renamed into place, so a failure leaves none.

``put`` and ``get`` count array bytes (an ``.npy`` object copied as it is: its own bytes) and
announce their total through ``total`` once they know it, before the first byte is counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..formats.npy import MAGIC, NPY_HEADER_LIMIT, npy_header, parse_npy_header
from ..formats.raw import ArraySpec, has_array_metadata, spec_for_body
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.tempfiles import create_temp
from .chunked import download_dask_array
from .raw import decode_body_into, empty_for, write_raw_array


def npy_bytes(array: np.ndarray) -> tuple[bytes, memoryview]:
    """What ``np.save(f, array)`` writes, as its header and a view of the data that follows it: the
    array's own memory when it is C- or Fortran-contiguous (numpy then writes exactly that), else a
    C-ordered copy (numpy writes non-contiguous arrays in C order)."""
    if array.flags.c_contiguous:
        body, order = array, "C"
    elif array.flags.f_contiguous:
        body, order = array.T, "F"  # the transpose of a Fortran array is C-contiguous: same memory
    else:
        body, order = np.ascontiguousarray(array), "C"
    header = npy_header(ArraySpec(dtype=array.dtype, shape=tuple(array.shape), order=order))
    data = memoryview(body.reshape(-1).view(np.uint8)) if array.nbytes else memoryview(b"")  # type: ignore[arg-type]
    return header, data


def write_npy_object(store: ObjectStore, key: str, saved: tuple[bytes, memoryview],
                     metadata: dict[str, str] | None = None, acl: str | None = None,
                     progress: Callable[[int], None] | None = None) -> ObjectInfo:
    """Store ``saved`` (``npy_bytes`` of an array) at ``key``, streamed in parts (memory: a few parts)."""
    header, data = saved
    return store.put_chunks(key, [header, data], metadata, acl=acl, progress=progress,
                            size_hint=len(header) + len(data))


@dataclass(frozen=True)
class NpyObject:
    """A stored ``.npy`` object as its first request found it: version, array spec, where the
    data starts, and the first bytes (the header, and the start of the data or all of it)."""

    info: ObjectInfo
    spec: ArraySpec
    start: int
    first: bytes


def open_npy_object(store: ObjectStore, key: str) -> NpyObject | None:
    """One request for the object's first bytes and version; ``None`` when they are not a ``.npy``
    header numpy reads without pickles (the caller says what it is). The header is untrusted: what
    it claims must be in the object (``ValueError`` naming it), checked before anything is allocated."""
    buffer = bytearray(NPY_HEADER_LIMIT)
    info, filled = store.read_start(key, memoryview(buffer))
    # copied out, never resized: the store may still hold a view of the buffer it filled
    first = bytes(memoryview(buffer)[:filled])
    parsed = parse_npy_header(first)
    if parsed is None:
        return None
    spec, start = parsed
    if start + spec.nbytes > info.size:
        raise ValueError(f"{store.describe(key)}: its .npy header describes {spec.nbytes} bytes of array data, "
                         f"the object holds {info.size - start} (truncated or forged)")
    return NpyObject(info=info, spec=spec, start=start, first=first)


def read_npy_body(store: ObjectStore, found: NpyObject, progress: Callable[[int], None] | None = None
                  ) -> np.ndarray:
    """The array of ``found``, filled straight from ranged GETs pinned to its version (bytes after
    the array, which ``np.load`` also ignores, are not fetched)."""
    array, view = empty_for(found.spec)
    have = max(0, min(len(found.first) - found.start, found.spec.nbytes))
    view[:have] = found.first[found.start:found.start + have]
    if progress is not None:
        progress(found.start + have)  # not bytes after the array that came with the header
    if have < found.spec.nbytes:
        store.download_into(found.info.key, view[have:], if_match=found.info.etag, offset=found.start + have,
                            progress=progress)
    return array


def upload_npy_file(store: ObjectStore, path: str, key: str, compression: object,
                    progress: Callable[[int], None] | None = None,
                    total: Callable[[int], None] | None = None) -> ObjectInfo:
    """Store a ``.npy`` file as a raw array (0.4.0's format); ``progress`` counts the array's bytes,
    whose number ``total`` is told first."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a readable .npy file: {exc}") from exc
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} is not a single-array .npy file")
    if total is not None:
        total(array.nbytes)
    return write_raw_array(store, key, array, compression, progress=progress)


def _atomic_file(path: str, write: Callable[[str], None]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = create_temp(folder, prefix=".cc-get-", suffix=".npy")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npy_file(store: ObjectStore, key: str, path: str, progress: Callable[[int], None] | None = None,
                  info: ObjectInfo | None = None, folder: bool = False,
                  total: Callable[[int], None] | None = None) -> str:
    """Write what ``key`` holds to ``path`` as ``.npy``; returns what it was ("raw array", ...).

    ``progress`` counts the array's bytes (an ``.npy`` object's own bytes), whose number ``total``
    is told as soon as it is known.

    ``info`` is the object's HEAD when the caller already has it (``None``: looked up here; a
    key with no object is read as a dask folder). ``folder`` (a name given as ``key/``): only the
    dask folder ``key/``, never an object named ``key``.
    """
    if info is None and key and not folder:
        info = store.head_if_exists(key)
    if info is not None:
        if has_array_metadata(info.metadata):
            spec = spec_for_body(info.metadata, info.size, store.describe(key))  # before the file grows
            head = info
            if total is not None:
                total(spec.nbytes)

            def write_array(tmp: str) -> None:
                header = npy_header(spec)
                with open(tmp, "wb") as fh:
                    fh.write(header)
                    fh.truncate(len(header) + spec.nbytes)
                if not spec.nbytes:  # nothing to map; a compressed body must still decode to nothing
                    decode_body_into(store, head, spec, memoryview(bytearray()), progress)
                    return
                # the body in stored order is exactly what the header's fortran_order describes
                body = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=len(header), shape=(spec.nbytes,))
                decode_body_into(store, head, spec, memoryview(body), progress)  # type: ignore[arg-type]
                body.flush()
                del body

            _atomic_file(path, write_array)
            return "raw array"
        with store.open_read(key, if_match=info.etag) as body:
            magic = body.read(len(MAGIC))
        if magic != MAGIC:
            raise ValueError(f"{store.describe(key)} holds neither a raw array nor .npy bytes; "
                             "copy it with `ccfs cp` instead")

        if total is not None:
            total(info.size)

        def write_bytes(tmp: str) -> None:
            with open(tmp, "wb") as fh, store.open_read(key, if_match=info.etag) as body:
                while chunk := body.read(8 * 2**20):
                    fh.write(chunk)
                    if progress is not None:
                        progress(len(chunk))

        _atomic_file(path, write_bytes)
        return ".npy object"
    lazy: Any = download_dask_array(store, key)
    if total is not None:
        total(int(lazy.nbytes))

    def write_dask(tmp: str) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=lazy.dtype, shape=lazy.shape)
        lazy.store(out, lock=True)
        out.flush()
        del out
        if progress is not None and lazy.nbytes:
            progress(int(lazy.nbytes))  # dask's scheduler fills the file: counted when it is whole

    _atomic_file(path, write_dask)
    return "dask array"
