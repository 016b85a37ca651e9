"""Raw arrays on a store: the read and write paths shared by the API, dask tasks and the mount.

Reads allocate the result once and fill it in place: uncompressed bodies by parallel ranged GETs
straight into the array's memory, gzip by streaming through a decompressor, numcodecs bodies by
one parallel fetch of the compressed bytes and one decode into the array. gzip bodies we wrote
carry a block index and inflate in parallel (``gzip_blocks``). Every path checks that
the body has exactly the size the metadata implies, so a truncated or corrupt object is an error,
never a wrong array.

``progress`` counts array bytes on every path, read or write, whatever the codec (a store counts
the body bytes it moves; ``progress.BodyMap`` turns those into array bytes): it ends at ``nbytes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..cache.disk import DiskBackedFetch, DiskBlockStore
from ..cache.folder import shared_blocks
from ..cache.identity import object_identity
from ..config import Settings
from ..errors import NotAnArray
from ..formats import codecs, pgzip
from ..formats.flat import FlatBytes
from ..formats.npy import npy_header
from ..formats.raw import (
    LARGE_ARRAY,
    SMALL_ARRAY,
    ArraySpec,
    check_body_size,
    metadata_from_spec,
    resolve_compression,
    spec_for_body,
)
from ..progress import BodyMap
from ..storage.base import ObjectInfo, ObjectStore, Progress
from .gzip_blocks import read_gzip_blocks, write_gzip_blocks

STREAM_CHUNK = 2**20
#: bytes of a strided array copied at once when it is uploaded uncompressed
STRIDED_PIECE = 4 * 2**20
#: upload parts being sent at once by one part of a dask upload (``strided=True``): two, not the
#: store's default for a lone upload, since a strided part also holds the block copies read out of
#: the caller's array (measured: 72 MiB beyond a 128 MiB array with four, 59-64 with two)
PART_STREAM_IN_FLIGHT = 2


#: bytes a download asks for together with the object's metadata (one ranged GET, which answers
#: with the same headers as a HEAD): an array whose body fits comes in one round trip
FIRST_READ = 256 * 1024


@dataclass(frozen=True)
class FirstLook:
    """What the first request of a download found: the version, the array it holds, and the body's
    first bytes (all of it when it fitted in that request; empty when the request was a HEAD)."""

    info: ObjectInfo
    spec: ArraySpec
    first: bytes

    @property
    def body(self) -> bytes | None:
        """The whole body, when the first request brought it all."""
        return self.first if 0 < len(self.first) == self.info.size else None


def first_look(store: ObjectStore, key: str) -> FirstLook:
    """The object's metadata and, for a small body, the body itself, in one request (``read_start``)
    where a HEAD would have been sent; a download through a disk block cache keeps its HEAD (its
    blocks come from the cache)."""
    if disk_cache_of(store) is not None:
        info, spec = read_array_spec(store, key)
        return FirstLook(info, spec, b"")
    first = bytearray(FIRST_READ)
    info, filled = store.read_start(key, memoryview(first))
    spec = spec_for_body(info.metadata, info.size, store.describe(key))
    # a copy, not a resize: a view of ``first`` may outlive the read (a fast-path reader given up on
    # holds it until its socket closes), and a bytearray with views cannot shrink (BufferError)
    return FirstLook(info, spec, bytes(first[:filled]))


def read_looked_array(store: ObjectStore, look: FirstLook, progress: Progress | None = None) -> np.ndarray:
    """The array ``look`` describes: decoded from the body it already holds, else downloaded (an
    uncompressed one from where its first bytes end: those are not fetched twice)."""
    check_body_size(look.spec, look.info.size, store.describe(look.info.key))  # before allocating
    array, view = empty_for(look.spec)
    _read_looked(store, look, view, progress)
    return array


def read_looked_into(store: ObjectStore, look: FirstLook, out: memoryview | codecs.Sink,
                     progress: Progress | None = None) -> None:
    """Fill ``out`` (``look.spec.nbytes`` long) with the array's bytes in stored order.

    ``out`` is a byte view, or a sink (``formats.flat.FlatSink``: a strided slot of a larger array),
    filled as :func:`decode_body_into` fills one: straight from the body, except where a codec needs
    contiguous memory.
    """
    check_body_size(look.spec, look.info.size, store.describe(look.info.key))
    _read_looked(store, look, out, progress)


def _read_looked(store: ObjectStore, look: FirstLook, out: memoryview | codecs.Sink,
                 progress: Progress | None) -> None:
    info, spec = look.info, look.spec
    if look.body is None:
        if spec.compression is not None or not look.first:
            decode_body_into(store, info, spec, out, progress)
            return
        have = len(look.first)
        out[0:have] = look.first
        if progress is not None:
            progress(have)
        if isinstance(out, memoryview):
            store.download_into(info.key, out[have:], if_match=info.etag, offset=have, progress=progress)
        else:
            download_into_sink(store, info, out, have, progress)
        return
    try:
        if spec.compression is None:
            out[0 : len(look.body)] = look.body  # check_body_size: exactly the array's size
        else:
            codecs.decode_into(look.body, spec.compression, out)
    except codecs.CorruptBodyError as exc:
        raise ValueError(f"{store.describe(info.key)}: {exc}") from exc
    if progress is not None and spec.nbytes:
        progress(spec.nbytes)


#: a sink that is not one contiguous buffer takes an uncompressed body in pieces of this size, a few
#: at a time: memory stays a few pieces, whatever the array's size
SINK_PIECE = 8 * 2**20
SINK_PIECES_AT_ONCE = 4


def download_into_sink(store: ObjectStore, info: ObjectInfo, out: codecs.Sink, start: int = 0,
                       progress: Progress | None = None) -> None:
    """Bytes ``[start, len(out))`` of an uncompressed body into ``out``, by ranged GETs of
    :data:`SINK_PIECE` bytes (pinned to the ETag), :data:`SINK_PIECES_AT_ONCE` in flight."""

    def piece(offset: int) -> None:
        buffer = bytearray(min(SINK_PIECE, len(out) - offset))
        store.download_into(info.key, memoryview(buffer), if_match=info.etag, offset=offset, progress=progress)
        out[offset : offset + len(buffer)] = buffer

    offsets = range(start, len(out), SINK_PIECE)
    with ThreadPoolExecutor(max_workers=max(1, min(SINK_PIECES_AT_ONCE, store.concurrency, len(offsets))),
                            thread_name_prefix="cc-sink") as pool:
        for _ in pool.map(piece, offsets):
            pass


def read_array_spec(store: ObjectStore, key: str) -> tuple[ObjectInfo, ArraySpec]:
    """One HEAD: the object's identity and what array it holds (``ValueError`` if none, or if its
    metadata is malformed or does not fit its body)."""
    info = store.head(key)
    return info, spec_for_body(info.metadata, info.size, store.describe(key))


def decode_body_into(store: ObjectStore, info: ObjectInfo, spec: ArraySpec, out: memoryview | codecs.Sink,
                     progress: Progress | None = None) -> None:
    """Fill ``out`` (``spec.nbytes`` long) with the array's bytes in stored order, pinned to ``info.etag``.

    ``progress`` counts array bytes (body bytes fetched, mapped by ``BodyMap``). ``out`` may be a
    sink instead of a byte view (the mount's spill file, a strided slot): gzip, zlib, bz2 and lzma
    bodies stream into it, LZ4/Zstd decode into the contiguous view a ``MappableSink`` lends (else
    into one temporary copy), an uncompressed body arrives in pieces (:func:`download_into_sink`).
    """
    name = store.describe(info.key)
    progress = BodyMap.of(progress, info.size, spec.nbytes)
    try:
        codec = None if spec.compression is None else codecs.record(spec.compression)
        if codec is not None and codec.blocks and read_gzip_blocks(store, info, spec.nbytes, out, progress):
            return
        if codec is not None and codec.id == codecs.GZIP and _recorded_download(store, info, spec, out, progress):
            return  # 0.4.0's gzip with a cache folder named: its seek points recorded for the mount too
        if codec is not None and codec.stream_into is not None:  # decoded as it arrives (Codec.decode)
            with store.open_read(info.key, if_match=info.etag) as stream:
                codec.stream_into(_counted(iter(lambda: stream.read(STREAM_CHUNK), b""), progress), out)
        elif codec is None:
            if info.size != spec.nbytes:
                raise ValueError(f"{name}: body is {info.size} bytes but a {spec.dtype.str} array of shape "
                                 f"{spec.shape} needs {spec.nbytes} (truncated or not this array)")
            disk = disk_cache_of(store)
            if not isinstance(out, memoryview):
                download_into_sink(store, info, out, 0, progress)
            elif disk is not None:
                download_through_disk(store, disk, info, spec, out, progress)
            else:
                store.download_into(info.key, out, if_match=info.etag, progress=progress)
        else:
            body = bytearray(info.size)
            store.download_into(info.key, memoryview(body), if_match=info.etag, progress=progress)
            codecs.decode_into(body, codec.id, out)
    except codecs.CorruptBodyError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def _recorded_download(store: ObjectStore, info: ObjectInfo, spec: ArraySpec, out: memoryview | codecs.Sink,
                       progress: Progress | None) -> bool:
    """``gzip_points.recorded_download`` (imported here: ``gzip_points`` builds on this module)."""
    from .gzip_points import recorded_download

    return recorded_download(store, info, spec, out, progress)


#: the block geometry of ``ccfs mount``'s default ``--block-size``: blocks line up with the file the
#: mount shows (``.npy`` header, then the body), so a download and a mount share block files
MOUNT_BLOCK_SIZE = 256 * 1024


def disk_cache_of(store: ObjectStore) -> DiskBlockStore | None:
    """The disk block cache the store's settings name (``Settings.block_cache_dir``: opt-in), or None."""
    settings = getattr(store, "settings", None)
    if not isinstance(settings, Settings) or not settings.block_cache_dir:
        return None
    return shared_blocks(settings.block_cache_dir, settings.block_cache_size)


def download_through_disk(store: ObjectStore, disk: DiskBlockStore, info: ObjectInfo, spec: ArraySpec,
                          out: memoryview, progress: Progress | None = None) -> None:
    """``store.download_into`` for a raw body, answering blocks from ``disk`` and fetching only the
    missing stretches (one ranged GET each, pinned to the ETag), in parallel parts cut at block edges;
    fetched blocks are written to ``disk`` behind the download."""
    block = MOUNT_BLOCK_SIZE
    origin = len(npy_header(spec)) % block  # where the body starts in the mount's file, within a block
    total = len(out)
    per_part = max(1, store.part_size // block) * block
    edges = sorted({0, total, *range(per_part - origin, total, per_part)})
    parts = [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]

    def fill(start: int, buffer: memoryview) -> None:
        store.readinto(info.key, start, buffer, if_match=info.etag)

    def part(lo: int, hi: int) -> None:
        # fetched into a buffer of its own, then copied: the disk writes it later, and the caller may
        # change the array before that
        got = DiskBackedFetch(disk, object_identity(store, info.key), info.etag, fill,
                              lambda n: memoryview(bytearray(n)), block, origin)(lo, hi)
        out[lo:hi] = got
        if progress is not None:
            progress(hi - lo)

    if len(parts) <= 1:
        for lo, hi in parts:
            part(lo, hi)
        return
    with ThreadPoolExecutor(max_workers=min(store.concurrency, len(parts)), thread_name_prefix="cc-get") as pool:
        for fut in [pool.submit(part, lo, hi) for lo, hi in parts]:
            fut.result()


def _counted(chunks: Iterator[bytes], progress: Progress | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def empty_for(spec: ArraySpec) -> tuple[np.ndarray, memoryview]:
    """An uninitialised array for ``spec`` and a flat byte view of its memory (in stored order)."""
    flat = np.empty(spec.nbytes, dtype=np.uint8)
    array = np.ndarray(spec.shape, dtype=spec.dtype, buffer=flat, order=spec.order)  # type: ignore[arg-type]
    return array, memoryview(flat)  # type: ignore[arg-type]  # numpy's stubs: a Buffer on 3.12+ only


def read_raw_array(store: ObjectStore, key: str, info: ObjectInfo | None = None,
                   spec: ArraySpec | None = None, progress: Progress | None = None) -> np.ndarray:
    """Download a raw array; peak extra memory is the compressed body (zero when uncompressed)."""
    if info is None or spec is None:
        info, spec = read_array_spec(store, key)
    check_body_size(spec, info.size, store.describe(key))  # before allocating what the metadata claims
    array, view = empty_for(spec)
    decode_body_into(store, info, spec, view, progress)
    return array


def encode_array(array: np.ndarray, compression: object, *, name: str, small_array: str = SMALL_ARRAY,
                 large_array: str = LARGE_ARRAY, do_compression: bool = True,
                 gzip_flag: object = None) -> tuple[ArraySpec, memoryview | bytes]:
    """The spec to store and the body: the array's own memory when uncompressed (no copy)."""
    spec, raw = prepare_array(array, compression, name=name, small_array=small_array, large_array=large_array,
                              do_compression=do_compression, gzip_flag=gzip_flag)
    if spec.compression is None:
        return spec, raw
    return spec, codecs.encode(raw, spec.compression)


def prepare_array(array: np.ndarray, compression: object, *, name: str, small_array: str = SMALL_ARRAY,
                  large_array: str = LARGE_ARRAY, do_compression: bool = True,
                  gzip_flag: object = None) -> tuple[ArraySpec, memoryview]:
    """The spec to store and the array's C-order bytes (its own memory when C-contiguous)."""
    if not isinstance(array, np.ndarray):
        raise NotAnArray(f"array must be a numpy.ndarray, not {type(array).__name__}")
    if array.dtype.hasobject:
        raise TypeError(f"{name}: arrays of Python objects (dtype {array.dtype}) cannot be stored as raw "
                        "arrays; use upload_pickle")
    if not array.flags.c_contiguous:
        warnings.warn(f"{name}: array is not C-contiguous; storing a C-ordered copy (uses extra memory)",
                      UserWarning, stacklevel=3)
        array = np.ascontiguousarray(array)
    codec = resolve_compression(compression, array.nbytes, small_array, large_array, do_compression, gzip_flag)
    spec = ArraySpec(dtype=array.dtype, shape=tuple(array.shape), order="C", compression=codec)
    raw = memoryview(array.reshape(-1).view(np.uint8)) if array.nbytes else memoryview(b"")  # type: ignore[arg-type]
    return spec, raw


def write_raw_array(store: ObjectStore, key: str, array: np.ndarray, compression: object = True, *,
                    extra: Mapping[str, str] | None = None, acl: str | None = None,
                    progress: Progress | None = None, strided: bool = False, **choice: object) -> ObjectInfo:
    """Upload ``array`` with 0.4.0's four metadata keys plus ``extra``.

    gzip bodies are compressed in parallel blocks as they upload (``gzip_blocks``); other codecs
    compress the whole body first, as 0.4.0 does. ``strided=True`` (a part of a dask upload): a
    non-contiguous ``array`` is streamed a few MiB at a time when uncompressed or gzip (no warning,
    no whole copy); other codecs need the whole body and copy it.
    """
    name = store.describe(key)
    if strided and isinstance(array, np.ndarray) and not array.flags.c_contiguous:
        return _write_strided(store, key, array, compression, extra, acl, progress, choice)
    spec, raw = prepare_array(array, compression, name=name, **choice)  # type: ignore[arg-type]
    metadata = metadata_from_spec(spec)
    metadata.update(extra or {})
    if spec.compression is not None and codecs.record(spec.compression).blocks:
        return write_gzip_blocks(store, key, raw, metadata, acl=acl, progress=progress,
                                 block_size=pgzip.row_block_size(spec.nbytes, spec.row_bytes),
                                 strategy=pgzip.strategy_for(spec.dtype),
                                 in_flight=PART_STREAM_IN_FLIGHT if strided else None)
    body = raw if spec.compression is None else codecs.encode(raw, spec.compression)
    return store.put(key, body, metadata, acl=acl, progress=BodyMap.of(progress, len(body), spec.nbytes))


def _write_strided(store: ObjectStore, key: str, array: np.ndarray, compression: object,
                   extra: Mapping[str, str] | None, acl: str | None, progress: Progress | None,
                   choice: Mapping[str, object]) -> ObjectInfo:
    if array.dtype.hasobject:
        raise TypeError(f"{store.describe(key)}: arrays of Python objects (dtype {array.dtype}) cannot be stored "
                        "as raw arrays; use upload_pickle")
    codec = resolve_compression(compression, array.nbytes, **choice)  # type: ignore[arg-type]
    if codec is not None and not codecs.record(codec).blocks:
        return write_raw_array(store, key, np.ascontiguousarray(array), compression, extra=extra, acl=acl,
                               progress=progress, **choice)  # type: ignore[arg-type]
    spec = ArraySpec(dtype=array.dtype, shape=tuple(array.shape), order="C", compression=codec)
    metadata = metadata_from_spec(spec)
    metadata.update(extra or {})
    source = FlatBytes(array)
    if codec is not None:
        return write_gzip_blocks(store, key, source, metadata, acl=acl, progress=progress,
                                 block_size=pgzip.row_block_size(spec.nbytes, spec.row_bytes),
                                 strategy=pgzip.strategy_for(spec.dtype), in_flight=PART_STREAM_IN_FLIGHT)
    return store.put_chunks(key, source.chunks(STRIDED_PIECE), metadata, acl=acl, progress=progress,
                            size_hint=len(source), in_flight=PART_STREAM_IN_FLIGHT)
