"""scipy.sparse matrices on a store, in 0.4.0's layout (parts first, ``metadata.json`` last).

Progress counts the parts' array bytes (``data``, ``indices``, ``indptr``...), the manifest not.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ObjectNotFound
from ..formats.dask import MANIFEST
from ..formats.sparse import SparseManifest, build_sparse, parse_sparse_manifest, sparse_parts
from ..progress import Progress, ProgressCallback
from ..storage.base import MaybeStoredError, ObjectInfo, ObjectStore, delete_after_failure
from .chunked import read_manifest
from .raw import read_array_spec, read_raw_array, write_raw_array


def upload_sparse_array(store: ObjectStore, object_name: str, matrix: Any, *,
                        choice: Mapping[str, Any] | None = None, threads: int = 4,
                        verbose: bool = False, callback: ProgressCallback | None = None) -> ObjectInfo:
    """Store each attribute as a raw array (default compression), then the manifest.

    A failure removes the parts this call wrote, so no half-written matrix is left behind.
    """
    name = store.describe(object_name)
    manifest, arrays = sparse_parts(matrix, name)
    total = sum(int(arrays[attr].nbytes) for attr in manifest.attrs)
    with Progress(total, f"upload {object_name}", enabled=verbose, threshold=True, callback=callback) as progress:
        return _upload_parts(store, object_name, manifest, arrays, dict(choice or {}), threads, progress)


def _upload_parts(store: ObjectStore, object_name: str, manifest: SparseManifest, arrays: Mapping[str, Any],
                  choice: Mapping[str, Any], threads: int, progress: Progress) -> ObjectInfo:
    written: list[str] = []

    def put(attr: str) -> None:
        key = f"{object_name}/{attr}"
        try:
            write_raw_array(store, key, arrays[attr], True, progress=progress.update, **choice)
        except MaybeStoredError:  # its answer was lost: it may be there
            written.append(key)
            raise
        written.append(key)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(arrays)))) as pool:
            for fut in [pool.submit(put, attr) for attr in manifest.attrs]:
                fut.result()
        body = json.dumps(manifest.to_json()).encode()
        try:
            return store.put(f"{object_name}/{MANIFEST}", body, {})
        except MaybeStoredError:
            written.append(f"{object_name}/{MANIFEST}")
            raise
    except BaseException as exc:
        delete_after_failure(store, written, exc, "part(s)")
        raise


def download_sparse_array(store: ObjectStore, object_name: str, threads: int = 4, *, verbose: bool = False,
                          callback: ProgressCallback | None = None) -> Any:
    """The matrix stored at ``object_name`` (one LIST, the parts' HEADs in parallel, then the parts:
    the HEADs give the total to count towards, and each part's download reuses its HEAD)."""
    name = store.describe(object_name)
    doc, listing = read_manifest(store, object_name, "sparse array")
    manifest = parse_sparse_manifest(doc, name)
    keys = {attr: f"{object_name}/{attr}" for attr in manifest.attrs}
    missing = [attr for attr, key in keys.items() if key not in listing]
    if missing:
        raise ObjectNotFound(errno.ENOENT, f"{name}: sparse array part {missing[0]!r} is missing "
                                              f"(a {manifest.kind} matrix needs {', '.join(manifest.attrs)})")
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(keys)))) as pool:
        heads = dict(zip(keys, pool.map(lambda k: read_array_spec(store, k), keys.values())))
        total = sum(spec.nbytes for _, spec in heads.values())
        with Progress(total, f"download {object_name}", enabled=verbose, threshold=True,
                      callback=callback) as progress:
            loaded = dict(zip(keys, pool.map(lambda a: read_raw_array(store, keys[a], *heads[a], progress.update),
                                             keys)))
    return build_sparse(manifest, loaded, name)
