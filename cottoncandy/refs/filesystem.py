"""The byte ranges of a reference set, read through cottoncandy's own store (no s3fs).

fsspec's ``ReferenceFileSystem`` resolves a zarr key to ``[url, offset, length]`` and asks the
filesystem registered for the URL's protocol for those bytes. Registering this one for the
store's URLs means zarr reads go through ``ObjectStore.get_range`` (our S3 client, retries, the
local and memory stores alike), pinned to the ETag each object had when the references were
built: an object replaced since then fails with ``ESTALE`` instead of mixing versions.

It is picklable (the store travels as its ``StoreHandle``: a spec, never a client), so a dask
graph over ``xr.open_zarr`` computes on ``dask.distributed`` worker processes.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any

import numpy as np
from fsspec import AbstractFileSystem

from ..arrays.dask_parts import PartRef, load_part
from ..formats.pgzip import SYNC_MARKER
from ..storage.registry import StoreHandle


class ObjectStoreFileSystem(AbstractFileSystem):
    """Read-only: ``cat_file`` of the URLs a ``RefSet`` names, and nothing else."""

    protocol = ("cottoncandy",)
    cachable = False  # one per reference set: the URL tables differ

    def __init__(self, handle: StoreHandle, objects: Mapping[str, tuple[str, str]],
                 parts: Mapping[str, tuple[PartRef, tuple[int, ...]]] | None = None,
                 blocks: Mapping[str, Mapping[int, tuple[int, int, bool]]] | None = None, **kwargs: Any):
        super().__init__(handle, objects, parts, blocks, **kwargs)
        self.handle = handle
        self.objects = dict(objects)
        self.parts = dict(parts or {})
        #: url -> {start: (block number, end, last)} of gzip blocks served as chunks (``RefSet.blocks``)
        self.blocks = {url: dict(cuts) for url, cuts in (blocks or {}).items()}

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        if path in self.parts:
            data = self._padded_part(path)
            return data[start:end]
        try:
            key, etag = self.objects[path]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "not an object of these references", path) from None
        store = self.handle.get()
        if start is None or end is None:
            info = store.head(key)
            if info.etag != etag:
                raise OSError(errno.ESTALE, f"{store.describe(key)} was replaced after its references were built")
            start = 0 if start is None else start
            end = info.size if end is None else end
        if end <= start:
            return b""
        data = store.get_range(key, start, end, if_match=etag)
        self._check_block(path, start, end, data, store.describe(key))
        return data

    def _check_block(self, path: str, start: int, end: int, data: bytes, name: str) -> None:
        """``ValueError`` naming the object and the block when ``data`` is a gzip block chunk (``blocks``)
        that does not end as the writer ends a block but the last (the full-flush marker): its index cut
        it in the wrong place. zarr's codec would fail on it too, but could not say which object or block
        (a codec is not told which chunk it decodes); it still checks what this cannot without inflating
        (the size and the CRC-32 the block inflates to)."""
        cut = self.blocks.get(path, {}).get(start)
        if cut is None:
            return
        number, block_end, last = cut
        if end != block_end or (not last and bytes(data[-len(SYNC_MARKER):]) != SYNC_MARKER):
            raise ValueError(f"{name}: gzip block {number} (bytes {start}-{end}) does not end where a block "
                             "ends: its block index is forged or the body damaged; read it with "
                             "download_raw_array, which decodes the whole body")

    def _padded_part(self, url: str) -> bytes:
        """A dask part whose zarr chunk is longer than it (an edge part): decoded with cottoncandy's
        checked readers, placed at the start of a chunk-sized array, returned as raw bytes."""
        ref, chunk = self.parts[url]
        part = load_part(ref)
        if part.shape == chunk:
            return np.ascontiguousarray(part).tobytes()
        out = np.zeros(chunk, dtype=part.dtype)  # zarr ignores what lies past the array's edge
        out[tuple(slice(0, d) for d in part.shape)] = part
        return out.tobytes()

    def cat_ranges(self, paths: list[str], starts: list[int | None], ends: list[int | None],
                   max_gap: Any = None, on_error: str = "return", **kwargs: Any) -> list[bytes | Exception]:
        out: list[bytes | Exception] = []
        for path, start, end in zip(paths, starts, ends, strict=True):
            try:
                out.append(self.cat_file(path, start, end))
            except Exception as exc:
                if on_error == "raise":
                    raise
                out.append(exc)
        return out
