"""Tab-completing browser over a bucket: ``b.proj.sub01_awesome_analysis_DOT_grp.model01.load()``.

Attribute names follow 0.4.0: a name starting with a digit gets ``NUM_`` in front, the last dot
becomes ``_DOT_`` and ``-`` becomes ``_``; ``getattr`` with the stored name works too. Nodes list
their folder lazily (one LIST, on first use) so walking a long attribute chain costs one LIST per
level, not per node created. A child under a ``.grp`` (or ``.hdf``/``.h5``/``.arr``/``.dar``...)
path is a group node with ``keys()`` and ``load()``; an object holding a raw array is a dataset,
and calling a dataset loads it.

In Jupyter every node shows a table (``_repr_html_``): a dataset its shape, dtype, order, compression
and sizes (one HEAD), a folder or group its first ``HTML_ROWS`` children with the same columns (one
LIST and one batched HEAD). ``b['raw-name']`` takes stored names (and ``a/b`` paths), and completes
them in IPython (``_ipython_key_completions_``).
"""

from __future__ import annotations

import html
import os
import re
import warnings
from typing import Any

from .formats.raw import ArraySpec, has_array_metadata, spec_for_body
from .printable import shown_name
from .progress import human_bytes

GROUP_EXTENSIONS = (".hdf", ".h5", ".hf5", ".hdf5", ".h5py", ".grp", ".arr", ".dar")
PACKAGE = "cottoncandy"
#: children a folder's HTML view shows (and HEADs); the rest are counted
HTML_ROWS = 50
#: IPython and Jupyter probe these on every display: never a child, never a request
_PROBES = ("_repr_", "_ipython_", "_canary_")


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
        if attr.startswith("__") or attr.startswith(_PROBES):
            raise AttributeError(attr)
        path = self._child_path(attr)
        return S3HDF5(path, self.interface) if _is_group_path(path) else S3Directory(path, self.interface)

    def __getitem__(self, name: str) -> S3Directory:
        """``b['sub-01.grp']`` or ``b['proj/sub-01.grp/x']``: stored names (attribute names work too)."""
        if not isinstance(name, str) or not name.strip("/"):
            raise KeyError(name)
        node: S3Directory = self
        try:
            for part in (p for p in name.split("/") if p):
                node = node.__getattr__(part)
        except BrowserNameError as exc:
            raise KeyError(str(exc)) from None
        return node

    def _ipython_key_completions_(self) -> list[str]:
        """What IPython offers after ``b['``: the stored names of the children (one LIST, cached)."""
        return sorted(self._subdirs.values())

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


    # --- Jupyter ------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        bucket = self.interface.bucket_name
        where = html.escape(shown_name(f"{bucket}:{self._fullpath or '/'}"))
        if self._fullpath and not self._subdirs:
            info = self._object_info()
            if info is not None:
                return _table(f"{PACKAGE} {'dataset' if has_array_metadata(info.metadata) else 'file'} {where}",
                              [_row(self._curdir, info)])
        return self._folder_html(where)

    def _folder_html(self, where: str) -> str:
        store = self.interface.store
        prefix = f"{self._fullpath}/" if self._fullpath else ""
        found = store.list_dir(prefix)
        names: list[tuple[str, Any]] = [(p[len(prefix):].rstrip("/"), None) for p in found.prefixes]
        names += [(o.key[len(prefix):], o) for o in found.objects]
        names.sort(key=lambda item: item[0])
        shown = names[:HTML_ROWS]
        heads = store.head_many([o.key for _, o in shown if o is not None])
        rows = [_row(name, None if o is None else heads.get(o.key) or o) for name, o in shown]
        kind = "group" if isinstance(self, S3HDF5) else "folder"
        more = f"<p>... and {len(names) - len(shown)} more</p>" if len(names) > len(shown) else ""
        return _table(f"{PACKAGE} {kind} {where} ({len(names)} entries)", rows) + more


def _spec(info: Any) -> ArraySpec | None:
    if not has_array_metadata(info.metadata):
        return None
    try:
        return spec_for_body(info.metadata, info.size, info.key)
    except ValueError:
        return None


def _row(name: str, info: Any) -> dict[str, str]:
    """One child as the HTML view shows it: a folder (``info`` None), a dataset, or another object."""
    if info is None:
        return {"name": name + "/", "kind": "folder"}
    row = {"name": name, "kind": "object", "size": human_bytes(info.size)}
    spec = _spec(info)
    if spec is not None:
        row.update(kind="dataset", shape=str(spec.shape), dtype=str(spec.dtype), order=spec.order,
                   compression=spec.compression_label, size=human_bytes(info.size),
                   array=human_bytes(spec.nbytes))
    elif has_array_metadata(info.metadata):
        row.update(kind="dataset (bad metadata)")
    return row


_COLUMNS = ("name", "kind", "shape", "dtype", "order", "compression", "size", "array")


def _table(caption: str, rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(shown_name(r.get(c, '')))}</td>" for c in _COLUMNS) + "</tr>"
                   for r in rows)
    return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
