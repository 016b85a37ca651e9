"""Trees of arrays: ``dict2cloud`` / ``cloud2dict`` (0.4.0's layout: one raw array per leaf).

A nested dict becomes keys ``NAME/<key>[/<subkey>...]``; values that are not arrays go through
``np.asarray`` as in 0.4.0. Everything is checked before the first byte is written (a value
``np.asarray`` turns into an object array, a key with ``/``, ``.`` or ``..``), the leaves are
uploaded in parallel, and if one fails the leaves already written are removed. An upload's
progress counts the leaves' array bytes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import NotADict
from ..files.listing import folder_prefix
from ..formats.raw import has_array_metadata, spec_for_body
from ..progress import Progress, ProgressCallback
from ..storage.base import MaybeStoredError, ObjectInfo, ObjectStore, delete_after_failure
from .raw import read_raw_array, write_raw_array


def flatten_tree(object_name: str, tree: Mapping[Any, Any], name: Callable[[str], str]) -> tuple[
        list[tuple[str, np.ndarray]], list[str]]:
    """(key, array) leaves in upload order and the folders in 0.4.0's print order (deepest first)."""
    leaves: list[tuple[str, np.ndarray]] = []
    folders: list[str] = []

    def walk(prefix: str, node: Mapping[Any, Any]) -> None:
        for key, value in node.items():
            if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
                raise ValueError(f"{name(prefix)}: dict key {key!r} cannot be an object name "
                                 "(keys must be non-empty strings without '/', '.' or '..')")
            path = f"{prefix}/{key}"
            if isinstance(value, Mapping):
                walk(path, value)
                continue
            try:
                array = value if isinstance(value, np.ndarray) else np.asarray(value)
            except ValueError as exc:
                raise ValueError(f"{name(path)}: np.asarray cannot make an array of this "
                                 f"{type(value).__name__} ({exc}); nothing was uploaded") from exc
            if array.dtype.hasobject:
                raise TypeError(f"{name(path)}: np.asarray turns this {type(value).__name__} into an array of "
                                "Python objects, which cannot be stored as a raw array (use upload_pickle, or "
                                "give it a numeric or string dtype); nothing was uploaded")
            leaves.append((path, array))
        folders.append(prefix)

    walk(object_name, tree)
    return leaves, folders


def upload_tree(store: ObjectStore, object_name: str, tree: Mapping[Any, Any], *, acl: str | None,
                metadata: Mapping[str, str], choice: Mapping[str, Any], threads: int,
                verbose: bool = False, callback: ProgressCallback | None = None) -> list[str]:
    """Upload every leaf; returns the folders written (deepest first) for 0.4.0's messages."""
    if not isinstance(tree, Mapping):
        raise NotADict(f"{store.describe(object_name)}: dict2cloud needs a dict, not {type(tree).__name__}")
    leaves, folders = flatten_tree(object_name, tree, store.describe)
    total = sum(int(array.nbytes) for _, array in leaves)
    with Progress(total, f"upload {object_name}", enabled=verbose, threshold=True, callback=callback) as progress:
        _upload_leaves(store, leaves, acl, metadata, choice, threads, progress)
    return folders


def _upload_leaves(store: ObjectStore, leaves: list[tuple[str, np.ndarray]], acl: str | None,
                   metadata: Mapping[str, str], choice: Mapping[str, Any], threads: int, progress: Progress) -> None:
    written: list[str] = []

    def put(leaf: tuple[str, np.ndarray]) -> None:
        key, array = leaf
        try:
            write_raw_array(store, key, array, True, extra=metadata, acl=acl, progress=progress.update, **choice)
        except MaybeStoredError:  # its answer was lost: it may be there
            written.append(key)
            raise
        written.append(key)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(leaves) or 1))) as pool:
            for fut in [pool.submit(put, leaf) for leaf in leaves]:
                fut.result()
    except BaseException as exc:
        delete_after_failure(store, written, exc, "array(s)")
        raise


def download_tree(store: ObjectStore, object_root: str, keys: list[str] | None, threads: int,
                  report: Callable[[str], None]) -> dict[str, Any] | None:
    """The arrays under ``object_root`` as nested dicts (one LIST per level, leaves in parallel).

    An object that is not a raw array becomes ``None`` with a printed reason, as in 0.4.0; an array
    whose metadata or body is bad becomes ``None`` with a ``UserWarning`` naming it.
    """
    prefix = folder_prefix(object_root)
    listing = store.list_dir(prefix)
    objects = {o.key[len(prefix):]: o for o in listing.objects if o.key != prefix}
    folders = [p[len(prefix):-1] for p in listing.prefixes]
    if keys is not None:
        wanted = [keys] if isinstance(keys, str) else list(keys)
        unknown = [k for k in wanted if k not in objects and k not in folders]
        if unknown:
            raise KeyError(f"{store.describe(object_root)} has no key {unknown[0]!r} "
                           f"(it has: {', '.join(sorted([*objects, *folders])) or 'nothing'})")
        objects = {k: v for k, v in objects.items() if k in wanted}
        folders = [f for f in folders if f in wanted]
    if not objects and not folders:
        report(f'Nothing found in "{object_root}"')
        return None

    def load(item: tuple[str, ObjectInfo]) -> Any:
        _, info = item
        name = store.describe(info.key)
        try:  # one bad object (forged metadata or sidecar, corrupt body) is skipped; the rest load
            head = store.head(info.key)
            if not has_array_metadata(head.metadata):
                report(f'Could not download "{info.key}": {name} is not a raw array')
                return None
            return read_raw_array(store, info.key, head, spec_for_body(head.metadata, head.size, name))
        except ValueError as exc:
            warnings.warn(f"cloud2dict skipped {info.key}: {exc}", UserWarning, stacklevel=2)
            return None

    result: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(objects) or 1))) as pool:
        for (name, _), value in zip(objects.items(), pool.map(load, objects.items())):
            result[name] = value
    for folder in folders:
        result[folder] = download_tree(store, prefix + folder, None, threads, report)
    return result
