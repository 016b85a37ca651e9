"""Sparse matrices in 0.4.0's layout: which attributes each scipy.sparse format stores (no I/O).

docs/FORMAT.md section 4: one raw array per attribute plus ``metadata.json`` =
``{"type": T, "attrs": [...], "shape": [rows, cols]}``. lil and dok have no array form and are
stored as csr (as 0.4.0 does); ``*_array`` inputs are accepted and come back as ``*_matrix``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadManifest, NotASparseMatrix
from .raw import MAX_NBYTES, shown

ATTRS: dict[str, tuple[str, ...]] = {
    "csr": ("data", "indices", "indptr"),
    "csc": ("data", "indices", "indptr"),
    "bsr": ("data", "indices", "indptr"),
    "coo": ("row", "col", "data"),
    "dia": ("data", "offsets"),
}
STORED_AS_CSR = ("lil", "dok")


@dataclass(frozen=True)
class SparseManifest:
    kind: str
    attrs: tuple[str, ...]
    shape: tuple[int, int]

    def to_json(self) -> dict[str, object]:
        return {"type": self.kind, "attrs": list(self.attrs), "shape": list(self.shape)}


def sparse_parts(matrix: Any, name: str) -> tuple[SparseManifest, dict[str, np.ndarray]]:
    """The manifest and attribute arrays to store for ``matrix``."""
    import scipy.sparse as sp

    if not sp.issparse(matrix):
        raise NotASparseMatrix(f"{name}: expected a scipy.sparse matrix or array, got {type(matrix).__name__}")
    kind = matrix.format
    if kind in STORED_AS_CSR:
        matrix, kind = matrix.tocsr(), "csr"
    if kind not in ATTRS:
        raise TypeError(f"{name}: scipy.sparse format {kind!r} is not one cottoncandy stores "
                        f"({', '.join([*ATTRS, *STORED_AS_CSR])})")
    if len(matrix.shape) != 2:
        raise ValueError(f"{name}: only 2-d sparse matrices can be stored (got shape {matrix.shape})")
    arrays = {attr: np.asarray(getattr(matrix, attr)) for attr in ATTRS[kind]}
    shape = (int(matrix.shape[0]), int(matrix.shape[1]))
    return SparseManifest(kind, ATTRS[kind], shape), arrays


def parse_sparse_manifest(doc: object, name: str) -> SparseManifest:
    """Check and parse an untrusted sparse ``metadata.json``; ``ValueError`` naming ``name`` (``BadManifest``
    when it is not a JSON object or lacks a key, where 0.4.0 raised ``TypeError``/``KeyError``)."""
    if not isinstance(doc, Mapping) or not {"type", "attrs", "shape"} <= set(doc):
        raise BadManifest(f"{name}: metadata.json is not a sparse array manifest (needs type, attrs, shape)")
    kind = doc["type"]
    if not isinstance(kind, str) or kind not in ATTRS:
        raise ValueError(f"{name}: unknown sparse type {shown(kind)} in metadata.json")
    attrs = doc["attrs"]
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs) or \
            sorted(attrs) != sorted(ATTRS[kind]):
        raise ValueError(f"{name}: a {kind} matrix needs parts {', '.join(ATTRS[kind])}, "
                         f"metadata.json lists {shown(attrs)}")
    shape = doc["shape"]
    if not (isinstance(shape, list) and len(shape) == 2
            and all(type(d) is int and 0 <= d <= MAX_NBYTES for d in shape)):
        raise ValueError(f"{name}: metadata.json shape {shown(shape)} is not two sizes")
    return SparseManifest(kind, tuple(attrs), (shape[0], shape[1]))


def build_sparse(manifest: SparseManifest, parts: Mapping[str, np.ndarray], name: str) -> Any:
    """The scipy.sparse matrix (``*_matrix`` types, as 0.4.0 returns) from its parts."""
    import scipy.sparse as sp

    p, shape = parts, manifest.shape
    try:
        if manifest.kind == "csr":
            return sp.csr_matrix((p["data"], p["indices"], p["indptr"]), shape=shape)
        if manifest.kind == "csc":
            return sp.csc_matrix((p["data"], p["indices"], p["indptr"]), shape=shape)
        if manifest.kind == "bsr":
            return sp.bsr_matrix((p["data"], p["indices"], p["indptr"]), shape=shape)
        if manifest.kind == "coo":
            return sp.coo_matrix((p["data"], (p["row"], p["col"])), shape=shape)
        return sp.dia_matrix((p["data"], p["offsets"]), shape=shape)
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{name}: its parts do not make a valid {manifest.kind} matrix: {exc}") from exc
