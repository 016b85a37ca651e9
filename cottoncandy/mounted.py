"""Using arrays through a ccfs mount: memmaps, lazy dask arrays, and where a path really lives.

A mounted ``.npy`` file is an ordinary file, so ``np.load(path, mmap_mode='r')`` works as is; these
helpers add what the filesystem alone cannot tell: whether a path is on a ccfs mount and which
bucket/key it shows, and dask arrays whose tasks carry only the path (picklable, no data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .mounttable import ccfs_mounts

XATTR_KEY = "user.cottoncandy.key"


@dataclass(frozen=True)
class MountedLocation:
    mountpoint: str
    target: str  # s3://bucket/prefix or a local directory
    bucket: str
    key: str  # the object key (files) or key prefix (folders) the path shows


def locate(path: str | os.PathLike[str]) -> MountedLocation | None:
    """The bucket and key behind ``path`` if it is on a ccfs mount, else ``None``."""
    real = os.path.realpath(os.fspath(path))
    best: tuple[str, str] | None = None
    for mountpoint, target in ((entry.mountpoint, entry.target) for entry in ccfs_mounts()):
        if (real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/")) and (
                best is None or len(mountpoint) > len(best[0])):
            best = (mountpoint, target)
    if best is None:
        return None
    mountpoint, target = best
    if target.startswith("s3://"):
        bucket, _, prefix = target[len("s3://"):].partition("/")
    else:
        bucket, prefix = target, ""
    relative = os.path.relpath(real, mountpoint)
    relative = "" if relative == "." else relative
    try:
        key = os.getxattr(real, XATTR_KEY).decode()
    except OSError:  # folders carry no key attribute: their prefix is the path
        key = "/".join(p for p in (prefix, relative) if p)
    return MountedLocation(mountpoint=mountpoint, target=target, bucket=bucket, key=key)


def is_mounted(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on a ccfs mount."""
    return locate(path) is not None


def load(path: str | os.PathLike[str], mmap: bool = True) -> np.ndarray:
    """A mounted ``.npy`` file as a read-only memmap (``mmap=True``) or an in-memory array."""
    return np.load(os.fspath(path), mmap_mode="r" if mmap else None, allow_pickle=False)  # never code from a bucket


class NpyFileSlicer:
    """Array-like over a ``.npy`` file for ``dask.array.from_array``: pickles as a path, reads by memmap."""

    def __init__(self, path: str):
        self.path = path
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, item: Any) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r", allow_pickle=False)[item])

    def __reduce__(self) -> tuple[Any, ...]:
        return (NpyFileSlicer, (self.path,))


def dask_array(path: str | os.PathLike[str], chunks: Any = "auto", name: str | None = None) -> Any:
    """A lazy dask array from a mounted ``.npy`` file (chunks of your choosing) or a dask folder.

    A dask folder (0.4.0's ``upload_dask_array`` layout: ``metadata.json`` plus ``ptNNNN.npy``)
    keeps its stored chunks unless ``chunks`` asks for others (then it is rechunked).
    """
    import dask.array as da

    path = os.fspath(path)
    if os.path.isdir(path):
        with open(os.path.join(path, "metadata.json")) as fh:
            meta = json.load(fh)
        blocks: dict[tuple[int, ...], Any] = {}
        for coords, part_key in meta["dask"]:
            part_path = os.path.join(path, part_key.rsplit("/", 1)[-1] + ".npy")
            blocks[tuple(coords)] = da.from_array(NpyFileSlicer(part_path), chunks=-1)
        grid = tuple(len(c) for c in meta["chunks"])
        nested = _nest(blocks, grid)
        arr = da.block(nested) if grid else blocks[()]
        return arr if chunks == "auto" else arr.rechunk(chunks)
    from dask.base import tokenize

    token = name or "ccfs-" + tokenize(os.path.realpath(path), os.stat(path).st_mtime_ns, chunks)
    return da.from_array(NpyFileSlicer(path), chunks=chunks, name=token)


def _nest(blocks: dict[tuple[int, ...], Any], grid: tuple[int, ...], prefix: tuple[int, ...] = ()) -> Any:
    if len(prefix) == len(grid):
        return blocks[prefix]
    return [_nest(blocks, grid, (*prefix, i)) for i in range(grid[len(prefix)])]
