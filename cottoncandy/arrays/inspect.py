"""What is stored at a key, described for people (``ccfs info``): array, dask array, sparse, object."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..formats.dask import parse_manifest
from ..formats.keys import user_metadata
from ..formats.raw import has_array_metadata, spec_for_body
from ..formats.sparse import parse_sparse_manifest
from ..storage.base import ObjectStore
from .chunked import read_manifest


def dtype_text(dtype: np.dtype) -> str:
    """``<f8``; a structured dtype with its fields (``[('a', '<i4'), ('b', '<f8')]``), not ``|V12``."""
    return dtype.str if dtype.fields is None else str(dtype.descr)


def describe(store: ObjectStore, key: str, folder: bool = False) -> dict[str, Any]:
    """Ordered fields: ``kind`` first, then what that kind has (dtype, shape, order, compression...).

    ``folder`` (a name given as ``key/``): only the dask/sparse folder, never an object ``key``.
    """
    name = store.describe(key)
    info = store.head_if_exists(key) if key and not folder else None
    if info is not None:
        fields: dict[str, Any] = {}
        if has_array_metadata(info.metadata):
            spec = spec_for_body(info.metadata, info.size, name)
            fields = {"kind": "raw array", "dtype": dtype_text(spec.dtype), "shape": spec.shape, "order": spec.order,
                      "compression": spec.compression_label, "array bytes": spec.nbytes}
        else:
            fields = {"kind": "object"}
        fields.update({"stored bytes": info.size, "etag": info.etag.strip('"'),
                       "last modified": info.last_modified.isoformat() if info.last_modified else "-"})
        extra = user_metadata(info.metadata)
        if extra:
            fields["metadata"] = json.dumps(extra, sort_keys=True)
        return fields
    doc, listing = read_manifest(store, key, "dask or sparse array")
    stored = sum(i.size for i in listing.values())
    if isinstance(doc, dict) and "dask" in doc:
        manifest = parse_manifest(doc, name)
        return {"kind": "dask array", "dtype": dtype_text(manifest.dtype), "shape": manifest.shape,
                "chunks": tuple(len(c) for c in manifest.chunks), "parts": len(manifest.blocks),
                "stored bytes": stored}
    sparse = parse_sparse_manifest(doc, name)
    return {"kind": f"sparse {sparse.kind} matrix", "shape": sparse.shape, "parts": ", ".join(sparse.attrs),
            "stored bytes": stored}
