"""Arrays stored by cottoncandy, opened in place by zarr, xarray and dask (the ``[zarr]`` extra).

``build_refs(store, prefix)`` describes every array under a prefix as fsspec references (kerchunk's
format: zarr metadata generated from ours, chunks that are byte ranges of the objects as they
are); ``open_group`` / ``open_dataset`` open them through cottoncandy's own store; ``ccfs refs``
writes the portable references to a JSON file any fsspec user can open without cottoncandy.
``build.py`` says what becomes what and how untrusted objects are checked.

zarr, xarray and fsspec are imported only when a group is opened: building references needs none.
"""

from __future__ import annotations

from typing import Any

from ..formats import zarr_blocks
from ..formats.zarrmeta import DEFAULT_CHUNK_BYTES
from ..storage.base import ObjectStore
from .build import PART_PROTOCOL, RefSet, Skipped, build_refs

__all__ = ["DEFAULT_CHUNK_BYTES", "RefSet", "Skipped", "build_refs", "open_dataset", "open_group", "open_mapper",
           "reference_filesystem", "store_of", "zarr_store"]

EXTRA_HINT = "pip install 'cottoncandy-ccfs[zarr]'"


def store_of(source: Any) -> ObjectStore:
    """The store of a cottoncandy interface (anything with a ``store``), or the store itself."""
    if isinstance(source, ObjectStore):
        return source
    store = getattr(source, "store", None)
    if isinstance(store, ObjectStore):
        return store
    raise TypeError(f"expected a cottoncandy interface or an ObjectStore, not {type(source).__name__}")


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"opening cottoncandy arrays with zarr needs {module}: {EXTRA_HINT}") from exc


def reference_filesystem(source: Any, prefix: str = "", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                         refs: RefSet | None = None, asynchronous: bool = False) -> Any:
    """fsspec's ``ReferenceFileSystem`` over the arrays of ``prefix``, reading through cottoncandy's store.

    ``refs``: references already built (with ``portable=False``) instead of building them here.
    """
    _require("fsspec")
    from fsspec.core import split_protocol
    from fsspec.implementations.reference import ReferenceFileSystem

    from ..storage.registry import StoreHandle
    from .filesystem import ObjectStoreFileSystem

    store = store_of(source)
    zarr_blocks.register()  # gzip arrays' chunks may be blocks (``formats.zarr_blocks``)
    refs = refs if refs is not None else build_refs(store, prefix, chunk_bytes=chunk_bytes, portable=False)
    ours: Any = ObjectStoreFileSystem(StoreHandle(store), refs.objects, refs.parts, refs.blocks)
    if asynchronous:  # given as a dict, fsspec does not wrap our (synchronous) filesystem itself
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

        ours = AsyncFileSystemWrapper(ours, asynchronous=True)
    protocols: dict[Any, Any] = {PART_PROTOCOL: ours, None: ours}
    for url in refs.objects:
        protocols[split_protocol(url)[0]] = ours
    return ReferenceFileSystem(fo=refs.document(), fs=protocols, asynchronous=asynchronous)


def open_mapper(source: Any, prefix: str = "", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                refs: RefSet | None = None) -> Any:
    """An fsspec mapping (``FSMap``) of the zarr group of ``prefix`` (zarr 2's store; fsspec users)."""
    return reference_filesystem(source, prefix, chunk_bytes=chunk_bytes, refs=refs).get_mapper("")


def _zarr3() -> bool:
    return int(_require("zarr").__version__.split(".")[0]) >= 3


def zarr_store(source: Any, prefix: str = "", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
               refs: RefSet | None = None) -> Any:
    """What ``zarr.open_group`` and ``xr.open_zarr`` take as ``store``: zarr 3's read-only
    ``FsspecStore`` over an asynchronous reference filesystem (handed over as it is: zarr would
    otherwise rebuild it from JSON, and a store is not JSON), or zarr 2's mapping."""
    if not _zarr3():
        return open_mapper(source, prefix, chunk_bytes=chunk_bytes, refs=refs)  # pragma: no cover - zarr 2
    from zarr.storage import FsspecStore

    fs = reference_filesystem(source, prefix, chunk_bytes=chunk_bytes, refs=refs, asynchronous=True)
    return FsspecStore(fs, read_only=True, path="")


def open_group(source: Any, prefix: str = "", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Any:
    """The arrays under ``prefix`` as a read-only ``zarr.Group`` (folders are subgroups)."""
    zarr = _require("zarr")
    store = zarr_store(source, prefix, chunk_bytes=chunk_bytes)
    if _zarr3():
        return zarr.open_group(store, mode="r", zarr_format=2, use_consolidated=True)
    return zarr.open_consolidated(store, mode="r")  # pragma: no cover - zarr 2


def open_dataset(source: Any, prefix: str = "", *, group: str | None = None,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, **kwargs: Any) -> Any:
    """The arrays of one folder as a lazy, dask-backed ``xarray.Dataset`` (``xr.open_zarr``).

    ``group``: a subfolder's arrays instead (xarray opens one group at a time). Each array has
    its own dimensions, ``NAME_dim_0``... ; user metadata of raw arrays become attributes.
    """
    xr = _require("xarray")
    store = zarr_store(source, prefix, chunk_bytes=chunk_bytes)
    kwargs.setdefault("consolidated", True)
    if _zarr3():
        kwargs.setdefault("zarr_format", 2)
    return xr.open_zarr(store, group=group, **kwargs)


def refs_text(refs: RefSet) -> str:
    """The reference document as JSON text (what ``ccfs refs -o`` writes)."""
    import json

    return json.dumps(refs.document(), separators=(",", ":"), sort_keys=True)
