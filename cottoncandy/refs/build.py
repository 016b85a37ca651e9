"""A bucket prefix as a zarr group: fsspec reference entries over the objects as they are stored.

The result is kerchunk's reference format, version 1: ``{"version": 1, "refs": {path: value}}``
where a value is a zarr metadata document (inline JSON text) or ``[url, offset, length]``, a
byte range of an existing object. Nothing is copied or rewritten in the bucket.

What becomes what (docs/FORMAT.md for the layouts):

* a raw array object -> an array. Uncompressed: slabs of the body by byte range
  (``formats.zarrmeta.plan_body``); compressed: one chunk and the numcodecs codec 0.4.0 used, or, for a
  gzip body we wrote (blocks of whole rows, ``cc-gzip-blocks``) in non-portable references or when
  asked (``gzip_blocks``), one chunk per block, inflated by ``formats.zarr_blocks``' codec.
* an object named ``*.npy`` holding ``.npy`` bytes -> an array whose chunks start past the header.
* a dask folder (``NAME/metadata.json`` + parts) -> an array whose chunks are the parts.
* a sparse folder -> a group of its part arrays, the matrix type and shape in its attributes.
* any other folder (``.grp`` groups included) -> a subgroup; other objects (json, pickles) are left out.

Everything read from the bucket is untrusted (README's trust section): each object's metadata
goes through ``formats.raw.spec_for_body`` (dtype, shape, size against the body), dask manifests
through ``formats.dask.parse_manifest`` and every part against it. A compressed body must decode to
exactly the array's bytes before a reader is pointed at it (``_Builder.check_body_sizes``: zarr's
codecs decode a chunk whole, so a body claimed as 5 values that inflates to 1 GiB cost each reader
2.2 GB): no larger than the array can compress to, and the size each format declares (gzip's ISIZE
trailer, one ranged GET; LZ4's and zstd's headers; the xz index) equal to the array's; gzip bodies
referenced as one chunk (ISIZE is only the last member's size, mod 2**32) and zlib/bz2 bodies (which
declare nothing) are decoded into nothing, bounded; gzip blocks referenced one per chunk are not (the
block codec makes at most a block). Names zarr
cannot hold (a backslash, which zarr reads as a separator, so one such key made ``open_dataset`` of
the whole folder fail; names that are not UTF-8; in portable references, ``?versionId=``, which
s3fs cuts from the key) are left out the same way. When a whole prefix is read, an object
that fails a check is left out with a ``UserWarning`` naming it and why (and listed in
``RefSet.skipped``); when the prefix names one array, the same problem raises ``ValueError``.

Zarr's chunk grid is regular and edge chunks are stored full size, so a dask array whose last
part is shorter than the others (0.4.0's usual split) has no portable reference: ``portable=True``
(what ``ccfs refs`` writes) leaves it out with a warning naming the installed zarr's version, which
has no rectilinear chunk grid (``zarr_support``); ``portable=False`` (what
``cottoncandy.refs.open_group`` uses) points its chunks at ``cottoncandy-part://`` URLs that the
in-process filesystem (``refs.filesystem``) serves by decoding the part and padding it.
"""

from __future__ import annotations

import errno
import logging
import math
import posixpath
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..arrays.chunked import read_manifest, resolve_part
from ..arrays.dask_parts import PartRef
from ..arrays.gzip_blocks import block_index, check_index
from ..errors import ObjectNotFound
from ..formats import codecs, zarrmeta
from ..formats.dask import MANIFEST, parse_manifest
from ..formats.keys import user_metadata
from ..formats.npy import MAGIC, NPY_HEADER_LIMIT, parse_npy_header
from ..formats.pgzip import BlockIndexError
from ..formats.raw import (
    ArraySpec,
    dtype_token,
    has_array_metadata,
    same_records,
    spec_for_body,
)
from ..formats.sparse import parse_sparse_manifest
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.collect import objects_under
from ..storage.registry import StoreHandle
from .zarr_support import rectilinear_missing

log = logging.getLogger(__name__)

VERSION = 1
#: protocol of the in-process URLs of decoded dask parts (``portable=False`` only)
PART_PROTOCOL = "cottoncandy-part"
#: bytes read first from a ``*.npy`` object to parse its header (most headers are 128 bytes)
NPY_PROBE = 4096


@dataclass(frozen=True)
class Skipped:
    """An object or folder left out, and why (the same text as its warning)."""

    key: str
    reason: str


@dataclass
class RefSet:
    """A reference set and what the in-process filesystem needs to serve it."""

    #: zarr path -> inline metadata text or ``[url, offset, length]``
    refs: dict[str, Any] = field(default_factory=dict)
    #: url -> (key, ETag seen): reads through cottoncandy are pinned to the version described
    objects: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: ``cottoncandy-part://`` url -> (part, zarr chunk shape): parts decoded and padded in-process
    parts: dict[str, tuple[PartRef, tuple[int, ...]]] = field(default_factory=dict)
    #: url -> {start: (block number, end, last)}: the chunks that are blocks of a gzip body of ours, which
    #: the in-process filesystem checks as it serves them (a block failing names the object and block)
    blocks: dict[str, dict[int, tuple[int, int, bool]]] = field(default_factory=dict)
    #: zarr path of every array, and every group
    arrays: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: objects that are not arrays (json, pickles, other files): left out without a warning
    ignored: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """kerchunk's version 1 document: what ``ccfs refs`` writes and fsspec's ``reference://`` reads."""
        return {"version": VERSION, "refs": dict(self.refs)}


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


#: compressed bodies up to this size are read whole (the one GET that would fetch the trailer) and
#: decoded into nothing: a first gzip member hiding behind a last one's trailer is caught too
WHOLE_CHECK = 64 * 2**10
#: bytes read from the end of an lzma body for its xz index and footer (one GET for any one-block body)
XZ_TAIL = 4096
#: pieces of a zlib or bz2 body streamed through its bounded decoder
STREAM_PIECE = 2**20


def _check_names(path: str, what: str) -> None:
    for part in path.split("/"):
        if not part or part in (".", "..") or part in zarrmeta.RESERVED_NAMES:
            raise ValueError(f"{what}: the name component {part!r} cannot be a zarr node name")
        if "\\" in part:
            raise ValueError(f"{what}: the name component {part!r} holds a backslash, which zarr reads as a "
                             "folder separator (the whole group would fail to open); rename it to reach it "
                             "through zarr")
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{what}: the name component {part!r} is not valid UTF-8, which zarr paths must "
                             "be; rename it to reach it through zarr") from None


class _Builder:
    def __init__(self, store: ObjectStore, chunk_bytes: int, portable: bool, gzip_blocks: bool | None = None):
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
        self.store, self.chunk_bytes, self.portable = store, chunk_bytes, portable
        #: a chunk per gzip block (``build_refs``' ``gzip_blocks``): by default only where cottoncandy reads
        self.gzip_blocks = not portable if gzip_blocks is None else gzip_blocks
        self.out = RefSet()
        self.nodes: dict[str, dict[str, Any]] = {}  # zarr path -> {".zarray": ..., ".zattrs": ...}
        self.group_attrs: dict[str, dict[str, Any]] = {}
        self._handle: StoreHandle | None = None

    @property
    def handle(self) -> StoreHandle:
        if self._handle is None:
            self._handle = StoreHandle(self.store)
        return self._handle

    # --- one node each -------------------------------------------------------------------------
    def url(self, info: ObjectInfo) -> str:
        url = self.store.describe(info.key)
        if self.portable and "?versionId=" in url:
            raise ValueError(f"{url}: s3fs reads '?versionId=' in a URL as a version and cuts it from the key, "
                             "so a reader of these references would get another object's bytes; rename it, or "
                             "open it with cottoncandy.refs.open_group")
        self.out.objects[url] = (info.key, info.etag)
        return url

    def raw_array(self, path: str, info: ObjectInfo) -> None:
        """A raw array object (its HEAD in ``info``) as the array ``path``."""
        name = self.store.describe(info.key)
        spec = spec_for_body(info.metadata, info.size, name)
        blocks = self.block_plan(info, spec)  # its index checked against the body (check_index)
        self.check_body_sizes(info, spec, whole=blocks is None)
        plan = blocks or zarrmeta.plan_body(spec, info.size, 0, self.chunk_bytes)
        extra = user_metadata(info.metadata)  # the keys describing the body are not attributes
        self.add_array(path, spec, plan, info, extra)

    def npy_object(self, path: str, info: ObjectInfo) -> bool:
        """A ``.npy`` object as an array past its header; ``False`` if it holds no ``.npy`` bytes."""
        name = self.store.describe(info.key)
        head = self.store.get_range(info.key, 0, min(info.size, NPY_PROBE), if_match=info.etag)
        if not head.startswith(MAGIC):
            return False
        parsed = parse_npy_header(head)
        if parsed is None and len(head) < min(info.size, NPY_HEADER_LIMIT):
            head = self.store.get_range(info.key, 0, min(info.size, NPY_HEADER_LIMIT), if_match=info.etag)
            parsed = parse_npy_header(head)
        if parsed is None:
            raise ValueError(f"{name}: starts like a .npy file but its header does not parse (or holds objects)")
        spec, header = parsed
        if info.size != header + spec.nbytes:
            raise ValueError(f"{name}: .npy header says {spec.dtype.str} {spec.shape} ({spec.nbytes} bytes after a "
                             f"{header}-byte header) but the object is {info.size} bytes")
        plan = zarrmeta.plan_body(spec, info.size, header, self.chunk_bytes)
        self.add_array(path, spec, plan, info, {})
        return True

    def block_plan(self, info: ObjectInfo, spec: ArraySpec) -> zarrmeta.ChunkPlan | None:
        """One zarr chunk per block of a gzip body with our index whose blocks hold whole rows (one
        ranged GET of its header, checked as the mount checks it, then checked against the body:
        ``check_index``; zarr has no serial reader to fall back on, so an index that does not check
        out is not used), when blocks are asked for; else ``None`` (one chunk)."""
        if not self.gzip_blocks or spec.compression is None or not codecs.record(spec.compression).blocks:
            return None
        index = block_index(self.store, info, spec.nbytes)
        if index is None:
            return None
        blocks = index.blocks
        plan = zarrmeta.plan_blocks(spec, [(b.start, b.end) for b in blocks], blocks[0].out_end - blocks[0].out_start,
                                    None if blocks[0].crc is None else [b.crc or 0 for b in blocks],
                                    self.store.describe(info.key))
        if plan is None:
            return None
        try:
            check_index(self.store, info, index, spec.nbytes)
        except BlockIndexError as exc:
            log.warning("%s: gzip block index does not check out (%s); referenced as one chunk",
                        self.store.describe(info.key), exc)
            return None
        self.out.blocks[self.store.describe(info.key)] = {
            b.start: (i, b.end, i == len(blocks) - 1) for i, b in enumerate(blocks)}
        return plan

    def check_body_sizes(self, info: ObjectInfo, spec: ArraySpec, whole: bool = True) -> None:
        """``ValueError`` unless a compressed body decodes to the array's size, checked before any
        reader pays for it: numcodecs (so zarr) decodes a chunk whole into a fresh buffer, and LZ4 and
        zstd allocate what their header says. ``whole``: the body is referenced as one chunk (False: as
        gzip blocks, each inflated by ``formats.zarr_blocks``' codec, which makes at most a block).

        * any codec: the body is no larger than the array can compress to (``codecs.max_body_size``);
        * gzip: ISIZE, the decoded size mod 2**32 in the body's last 4 bytes (one ranged GET), matches;
          a body of at most :data:`WHOLE_CHECK` bytes comes whole in that GET and is decoded instead; a
          larger one read as one chunk is then streamed through the bounded decoder too (ISIZE is the
          last member's, mod 2**32: a 260 KB body of two members with a right ISIZE inflated to 257 MiB
          for a 1 MiB array);
        * LZ4, zstd: the size in their first bytes; lzma: the sizes in the xz index, and the body is
          one xz stream (``lzma`` decodes streams that follow it too);
        * zlib, bz2, which declare no size: the body streams through a bounded decoder into nothing.
        """
        if spec.compression is None:
            return
        try:
            declared = self._declared_size(info, spec, codecs.record(spec.compression), whole)
        except codecs.CorruptBodyError as exc:
            raise ValueError(f"{self.store.describe(info.key)}: {exc}") from None
        if declared is not None and declared != spec.nbytes:
            raise ValueError(f"{self.store.describe(info.key)}: {spec.compression} body declares {declared} "
                             f"decoded bytes, the array needs {spec.nbytes}")

    def _declared_size(self, info: ObjectInfo, spec: ArraySpec, codec: codecs.Codec, whole: bool) -> int | None:
        """What the body says it decodes to (``None``: decoded here, checked by the decoder)."""
        if info.size > codecs.max_body_size(spec.nbytes):
            raise codecs.CorruptBodyError(
                f"{spec.compression} body is {info.size} bytes, more than a {spec.nbytes}-byte array ever "
                f"compresses to (at most {codecs.max_body_size(spec.nbytes)}): it holds more than the array")
        if not spec.nbytes:
            return None  # nothing to read: zarr asks for no chunk

        def get(start: int, end: int) -> bytes:
            return self.store.get_range(info.key, start, end, if_match=info.etag)

        if codec.size_at == "head" and codec.declared_size is not None:  # LZ4, zstd
            return codec.declared_size(get(0, min(info.size, 18)))
        if codec.size_at == "xz-index":
            tail = get(max(0, info.size - XZ_TAIL), info.size)
            need = codecs.xz_index_size(tail) + codecs.XZ_FOOTER
            if need > len(tail):
                if need > info.size:
                    raise codecs.CorruptBodyError(f"xz index of {need} bytes in a {info.size}-byte body")
                tail = get(info.size - need, info.size)
            return codecs.xz_declared_size(tail, info.size)
        if codec.size_at == "isize" and info.size > WHOLE_CHECK:
            isize = codecs.gzip_isize(get(info.size - 4, info.size))
            if isize != spec.nbytes % 2**32:
                raise codecs.CorruptBodyError(f"{codec.id} body's trailer (ISIZE) says {isize} decoded bytes "
                                              f"(mod 2**32), the array needs {spec.nbytes}")
            if not whole:
                return None  # each chunk is a block, inflated by a codec that makes at most a block
        elif codec.size_at == "isize":
            codecs.decode_into(get(0, info.size), codec.id, codecs.Discard(spec.nbytes))
            return None
        # zlib, bz2 (size_at "none"), and gzip read as one chunk: ISIZE is the last member's size mod
        # 2**32, so a member before it (or 2**32 more bytes) can hide anything; streamed into nothing
        with self.store.open_read(info.key, if_match=info.etag) as stream:
            codecs.decode_stream_into(iter(lambda: stream.read(STREAM_PIECE), b""), codec.id,
                                      codecs.Discard(spec.nbytes))
        return None

    def add_array(self, path: str, spec: ArraySpec, plan: zarrmeta.ChunkPlan, info: ObjectInfo,
                  extra: Mapping[str, str]) -> None:
        url = self.url(info) if plan.ranges else ""
        leaf = posixpath.basename(path)
        self.nodes[path] = {
            "key": info.key,
            ".zarray": zarrmeta.zarray(spec.shape, spec.dtype, plan),
            ".zattrs": zarrmeta.array_attrs(leaf, len(spec.shape), extra),
            "chunks": {c.key: [url, c.offset, c.length] for c in plan.ranges},
        }

    def dask_folder(self, path: str, folder: str, doc: Any, listing: Mapping[str, ObjectInfo]) -> None:
        """The dask folder ``folder`` (its parsed ``metadata.json`` in ``doc``) as the array ``path``."""
        name = self.store.describe(folder)
        manifest = parse_manifest(doc, name)
        grid = zarrmeta.block_grid(manifest.chunks, manifest.shape)
        if grid is None:
            raise ValueError(f"{name}: its parts do not form a regular grid (chunks {manifest.chunks}), "
                             "which zarr cannot address; read it with download_dask_array")
        lengths, exact = grid
        blocks: dict[tuple[int, ...], ObjectInfo] = {}
        for coords, written in manifest.blocks.items():
            if math.prod(manifest.block_shape(coords)) == 0:
                continue
            found = resolve_part(folder, written, listing)
            if found is None:
                raise ObjectNotFound(errno.ENOENT, f"{name}: dask array part {written} is missing")
            blocks[coords] = found
        heads = self.store.head_many(info.key for info in blocks.values())
        compression: set[str | None] = set()
        fortran = False
        specs: dict[tuple[int, ...], tuple[ObjectInfo, ArraySpec]] = {}
        for coords, listed in blocks.items():
            part_name = self.store.describe(listed.key)
            info = heads.get(listed.key) or self.store.head(listed.key)
            spec = spec_for_body(info.metadata, info.size, part_name)
            expected = manifest.block_shape(coords)
            if spec.shape != expected or not same_records(spec.dtype, manifest.dtype):
                raise ValueError(f"{part_name}: part holds {spec.dtype.str} {spec.shape}, but {MANIFEST} says "
                                 f"{manifest.dtype.str} {expected}")
            self.check_body_sizes(info, spec)
            compression.add(codecs.codec_id(spec.compression) if spec.compression else None)
            fortran = fortran or spec.fortran
            specs[coords] = (info, spec)
        whole = ArraySpec(manifest.dtype, manifest.shape)
        if exact and len(compression) <= 1 and not fortran:
            codec = next(iter(compression), None)
            plan = zarrmeta.ChunkPlan(lengths, "C", zarrmeta.compressor_for(codec), ())
            chunks = {zarrmeta.chunk_key(c): [self.url(info), 0, info.size] for c, (info, _) in specs.items()}
        elif self.portable:
            clause = rectilinear_missing() or "cottoncandy writes no zarr v3 rectilinear references yet"
            why = (f"its last part along an axis is shorter than the others (zarr stores edge chunks full size; "
                   f"{clause})" if not exact else "its parts use different codecs or memory orders")
            raise ValueError(f"{name}: no portable zarr reference: {why}; cottoncandy.refs.open_group reads it "
                             "(it decodes such parts itself), or read it with download_dask_array")
        else:
            plan = zarrmeta.ChunkPlan(lengths, "C", None, ())
            chunks = {}
            token = dtype_token(manifest.dtype)
            for coords, (info, spec) in specs.items():
                url = f"{PART_PROTOCOL}://{len(self.out.parts)}/{info.key}"
                self.out.parts[url] = (PartRef(self.handle, info.key, info.etag, token, spec.shape), lengths)
                chunks[zarrmeta.chunk_key(coords)] = [url]
        self.nodes[path] = {
            "key": folder,
            ".zarray": zarrmeta.zarray(whole.shape, whole.dtype, plan),
            ".zattrs": zarrmeta.array_attrs(posixpath.basename(path), len(whole.shape)),
            "chunks": chunks,
        }

    # --- whole prefixes ------------------------------------------------------------------------
    def skip(self, key: str, exc: Exception) -> None:
        reason = str(exc)
        self.out.skipped.append(Skipped(key, reason))
        warnings.warn(f"left out of the zarr references: {reason}", UserWarning, stacklevel=4)

    def folder(self, prefix: str) -> None:
        """Every array under ``prefix`` (a folder; ``""`` is the bucket)."""
        base = prefix + "/" if prefix else ""
        listing = {info.key: info for info in objects_under(self.store, base)}
        if not listing:
            raise ObjectNotFound(errno.ENOENT, f"{self.store.describe(prefix or None)}: nothing is stored there")
        consumed: set[str] = set()
        manifests = sorted((k for k in listing if posixpath.basename(k) == MANIFEST), key=len)
        for manifest_key in manifests:
            folder = posixpath.dirname(manifest_key)
            if manifest_key in consumed or not folder:
                continue
            rel = folder[len(base):] if folder != prefix else ""
            try:
                doc, parts = read_manifest(self.store, folder, "dask or sparse array")
            except ValueError as exc:
                self.skip(manifest_key, exc)
                continue
            if isinstance(doc, dict) and "dask" in doc:
                consumed.update(k for k in listing if k.startswith(folder + "/"))
                try:
                    if not rel:
                        raise ValueError(f"{self.store.describe(folder)} is one dask array; name it to open it")
                    _check_names(rel, self.store.describe(folder))
                    self.dask_folder(rel, folder, doc, parts)
                except (ValueError, OSError) as exc:
                    self.skip(folder, exc)
                continue
            try:
                sparse = parse_sparse_manifest(doc, self.store.describe(folder))
            except ValueError:
                continue  # a metadata.json of the user's own: just an object
            consumed.add(manifest_key)
            self.group_attrs[rel] = {"cottoncandy_sparse": sparse.kind, "shape": list(sparse.shape)}
        rest = [info for key, info in listing.items() if key not in consumed and key != base]
        heads = self.store.head_many(info.key for info in rest)
        for listed in rest:
            rel = listed.key[len(base):]
            try:
                _check_names(rel, self.store.describe(listed.key))
                info = heads.get(listed.key) or self.store.head(listed.key)
                self.one_object(rel, info)
            except (ValueError, OSError) as exc:
                self.skip(listed.key, exc)

    def one_object(self, path: str, info: ObjectInfo) -> None:
        if has_array_metadata(info.metadata):
            self.raw_array(path, info)
        elif not (path.lower().endswith(".npy") and self.npy_object(path, info)):
            self.out.ignored.append(info.key)

    def finish(self) -> RefSet:
        """Groups for every folder that holds an array, then the consolidated metadata."""
        refs = self.out.refs
        groups: set[str] = {""}
        for path in self.nodes:
            parts = path.split("/")
            groups.update("/".join(parts[:i]) for i in range(len(parts)))
        groups.update(p for p in self.group_attrs if any(n.startswith(p + "/") for n in self.nodes))
        for path in sorted(self.nodes):
            if path in groups:  # an object and a folder of one name: the folder wins
                key = self.nodes.pop(path)["key"]
                self.skip(key, ValueError(f"{self.store.describe(key)}: an object and a folder share this name "
                                          "and zarr cannot hold both; the folder is kept"))
        consolidated: dict[str, Any] = {}
        for group in sorted(groups):
            consolidated[_join(group, ".zgroup")] = {"zarr_format": 2}
            consolidated[_join(group, ".zattrs")] = self.group_attrs.get(group, {})
        for path, node in sorted(self.nodes.items()):
            consolidated[_join(path, ".zarray")] = node[".zarray"]
            consolidated[_join(path, ".zattrs")] = node[".zattrs"]
            for key, value in node["chunks"].items():
                refs[_join(path, key)] = value
        for key, doc in consolidated.items():
            refs[key] = zarrmeta.dumps(doc)
        refs[".zmetadata"] = zarrmeta.dumps({"zarr_consolidated_format": 1, "metadata": consolidated})
        self.out.arrays = sorted(self.nodes)
        self.out.groups = sorted(groups)
        used = {c[0] for node in self.nodes.values() for c in node["chunks"].values()}
        self.out.objects = {u: v for u, v in self.out.objects.items() if u in used}
        self.out.blocks = {u: v for u, v in self.out.blocks.items() if u in used}
        return self.out


def build_refs(store: ObjectStore, prefix: str = "", *, chunk_bytes: int = zarrmeta.DEFAULT_CHUNK_BYTES,
               portable: bool = True, gzip_blocks: bool | None = None) -> RefSet:
    """References to every array under ``prefix`` as one zarr group (see the module's docstring).

    ``prefix`` names a folder (``""``: the whole bucket), or one array: a raw array or ``.npy``
    object, or a dask folder; then the group holds that one array under its last name component,
    and a problem with it raises ``ValueError`` instead of a warning.
    ``chunk_bytes``: largest chunk cut from an uncompressed body. ``portable``: only references any
    fsspec user can read (False: also dask arrays whose parts only cottoncandy can serve).
    ``gzip_blocks``: a gzip array we wrote becomes one chunk per block of whole rows (a row costs one
    block, not the whole body), decoded by a numcodecs codec cottoncandy registers
    (``formats.zarr_blocks``), so only readers with cottoncandy installed can decode it; default:
    only in non-portable references. Portable ones keep one gzip chunk, which any numcodecs reads.
    """
    prefix = prefix.strip("/")
    builder = _Builder(store, chunk_bytes, portable, gzip_blocks)
    info = store.head_if_exists(prefix) if prefix else None
    leaf = posixpath.basename(prefix)
    if info is not None:
        name = store.describe(prefix)
        _check_names(leaf, name)
        if has_array_metadata(info.metadata):
            builder.raw_array(leaf, info)
        elif not builder.npy_object(leaf, info):
            raise ValueError(f"{name} is not an array (no array metadata, not a .npy file)")
        return builder.finish()
    manifest = store.head_if_exists(f"{prefix}/{MANIFEST}") if prefix else None
    if manifest is not None:
        doc, parts = read_manifest(store, prefix, "dask array")
        if isinstance(doc, dict) and "dask" in doc:
            _check_names(leaf, store.describe(prefix))
            builder.dask_folder(leaf, prefix, doc, parts)
            return builder.finish()
    builder.folder(prefix)
    return builder.finish()
