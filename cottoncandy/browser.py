"""Tab-completing browser over a bucket: ``b.proj.sub01_awesome_analysis_DOT_grp.model01.load()``.

Attribute names follow 0.4.0: a name starting with a digit gets ``NUM_`` in front, the last dot
becomes ``_DOT_`` and ``-`` becomes ``_``; ``getattr`` with the stored name works too. Nodes list
their folder lazily (one LIST, on first use) so walking a long attribute chain costs one LIST per
level, not per node created. A child under a ``.grp`` (or ``.hdf``/``.h5``/``.arr``/``.dar``...)
path is a group node with ``keys()`` and ``load()``; an object holding a raw array is a dataset,
and calling a dataset loads it.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

GROUP_EXTENSIONS = (".hdf", ".h5", ".hf5", ".hdf5", ".h5py", ".grp", ".arr", ".dar")
PACKAGE = "cottoncandy"


class BrowserNameError(AttributeError, AssertionError):
    """An unknown name. An ``AttributeError`` (so ``hasattr`` and tab completion behave) that is
    also the ``AssertionError`` 0.4.0 raised, for code written against it."""


def attribute_name(name: str) -> str:
    """``01-first.run.grp`` -> ``NUM_01_first.run_DOT_grp`` (0.4.0's rule)."""
    if name[:1].isdigit():
        name = "NUM_" + name
    stem, ext = os.path.splitext(name)
    if ext:
        name = f"{stem}_DOT_{ext[1:]}"
    return name.replace("-", "_")


def _is_group_path(path: str) -> bool:
    return any(ext in path for ext in GROUP_EXTENSIONS)


class BrowserObject:
    """Base class, kept for ``isinstance`` checks written against 0.4.0."""


class S3Directory(BrowserObject):
    """A folder (or object) of the bucket; children are attributes."""

    # set through ``__dict__`` (``__setattr__`` refuses: read-only), declared for the type checker
    interface: Any
    _fullpath: str
    _parent: str
    _curdir: str
    _children: dict[str, str] | None

    def __init__(self, path: str, interface: Any):
        path = "/".join(p for p in path.split("/") if p)
        self.__dict__["interface"] = interface
        self.__dict__["_fullpath"] = path
        self.__dict__["_parent"], _, self.__dict__["_curdir"] = path.rpartition("/")
        self.__dict__["_children"] = None

    # --- the folder's contents (one LIST, on first use) --------------------------------------
    @property
    def _subdirs(self) -> dict[str, str]:
        children = self._children
        if children is None:
            names = [p.rsplit("/", 1)[-1] for p in self.interface.lsdir(self._fullpath, limit=None)]
            children = self.__dict__["_children"] = {attribute_name(n): n for n in names if n}
        return children

    def _ls(self) -> list[str]:
        """Attribute names of the children."""
        return sorted(self._subdirs)

    def _glob(self) -> list[str]:
        """Every object under this folder."""
        return sorted(self.interface.glob(f"{self._fullpath}/**" if self._fullpath else "**"))

    def __len__(self) -> int:
        return len(self._subdirs)

    def __dir__(self) -> list[str]:
        return sorted(self._subdirs)

    def _child_path(self, attr: str) -> str:
        if attr in self._subdirs:
            name = self._subdirs[attr]
        elif attr in self._subdirs.values():
            name = attr
        else:
            name = attr  # a stored name not in the listing (0.4.0 allowed this for >1000 children)
            path = f"{self._fullpath}/{name}" if self._fullpath else name
            if not (self.interface.exists_object(path) or self.interface.lsdir(path, limit=1)):
                raise BrowserNameError(f"{attr!r} is not in {self.interface.bucket_name}:{self._fullpath or '/'}")
        return f"{self._fullpath}/{name}" if self._fullpath else name

    def __getattr__(self, attr: str) -> S3Directory:
        if attr.startswith("__") or attr in ("_ipython_canary_method_should_not_exist_", "_repr_mimebundle_"):
            raise AttributeError(attr)
        path = self._child_path(attr)
        return S3HDF5(path, self.interface) if _is_group_path(path) else S3Directory(path, self.interface)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("cottoncandy browser objects are read-only")

    def _object_info(self) -> Any:
        try:
            return self.interface.get_object_info(self._fullpath) if self._fullpath else None
        except FileNotFoundError:
            return None

    def __call__(self) -> Any:
        """A dataset loads; any other object gives what ``get_object`` gives (0.4.0)."""
        info = self._object_info()
        if info is None:
            raise FileNotFoundError(f"{self.interface.bucket_name}:{self._fullpath or '/'} is not an object")
        if "shape" in (info.metadata or {}):
            return self.interface.download_raw_array(self._fullpath)
        return self.interface.get_object(self._fullpath)

    def load(self, key: str | None = None) -> Any:
        """The array here (or of child ``key``); dask and sparse folders load as such."""
        if key is not None:
            if key not in self._subdirs and key not in self._subdirs.values():
                raise ValueError(f'"{key}" not in {self._fullpath}')
            return getattr(self, key).load()
        info = self._object_info()
        if info is not None:
            return self.interface.download_raw_array(self._fullpath)
        kind = _folder_kind(self.interface, self._fullpath, self._subdirs)
        if kind == "dask":
            return self.interface.download_dask_array(self._fullpath)
        if kind == "sparse":
            return self.interface.download_sparse_array(self._fullpath)
        warnings.warn(f"{self._fullpath} is a group; specify a key to load: {', '.join(self.keys())}",
                      UserWarning, stacklevel=2)  # 0.4.0 printed this and returned None
        return None

    def keys(self) -> list[str]:
        """The children's attribute names (0.4.0's rule: ``-`` shown as ``_``...), sorted; ``load()``
        and ``getattr`` take these or the stored names."""
        return sorted(self._subdirs)

    def __repr__(self) -> str:
        bucket = self.interface.bucket_name
        if self._fullpath and not self._subdirs:
            info = self._object_info()
            if info is not None:
                shape = (info.metadata or {}).get("shape")
                if shape is not None:
                    return f"<{PACKAGE}-dataset <bucket:{bucket} [{info.size / 2**20:.2f}MB:shape=({shape})]>"
                return f"{PACKAGE}-file <bucket:{bucket}> [{info.size / 2**20:.1f}MB]"
        return f"{PACKAGE}-path <bucket:{bucket}> {self._curdir}"


class S3HDF5(S3Directory):
    """A group (``.grp`` and friends) or a dataset inside one."""

    def __dir__(self) -> list[str]:
        return ["keys", "load", *sorted(self._subdirs)]

    def __repr__(self) -> str:
        if not self._subdirs:
            info = self._object_info()
            if info is not None:
                return super().__repr__()
        return f"<{PACKAGE}-group <bucket:{self.interface.bucket_name}> ({self._curdir}: {len(self._subdirs)} keys)>"


def _folder_kind(interface: Any, path: str, children: dict[str, str]) -> str | None:
    if "metadata.json" not in children.values():
        return None
    names = set(children.values())
    if any(re.fullmatch(r"pt\d{4}", n) for n in names):
        return "dask"
    if {"data"} <= names:
        return "sparse"
    return None
