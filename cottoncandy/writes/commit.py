"""A staged file's commit point: the object rebuilt in one write, untouched stretches copied server-side.

Why: updating 1,000 rows of a 1 GiB memmap changes a few MiB; sending 1 GiB again at every ``fsync`` is
what s3fs-fuse and rclone do. Here the object is one ``ObjectStore.compose`` (one multipart upload):
stretches the program did not change and that are ``MIN_COMPOSE_PIECE`` (5 MiB) or longer are copied by
the server from the version seen at open (``UploadPartCopy`` pinned by ``CopySourceIfMatch``); the rest
is sent in parts of at most the store's part size, each starting where a changed stretch starts (shorter
gaps are sent, since a copied part must be 5 MiB). Nothing is visible before the write completes, and a
failure leaves nothing (the store aborts the upload).

What is stored (the reverse naming rule's two outcomes, keys given by the caller):

* a ``.npy`` file holding a plain array (its header parses; exactly the array's bytes follow) is the raw
  array ``array_key``: the bytes after the header, with cottoncandy's metadata (the base's own metadata
  kept when dtype, shape and order did not change). Its codec: the base array's when it replaces one
  (a staged rewrite keeps how the array was stored), else ``compression`` (the mount's
  ``--write-compression``, as a streamed ``np.save`` of the name gets). An encoded body is made by the
  streamed writer's own encoder (``encoders.encoder_for``: gzip in the library's indexed row-aligned
  blocks) from the staged bytes in the header's order (a Fortran-order array stays Fortran-order:
  its metadata says so), a few MiB at a time, under the commit's condition; a gzip array of the
  library's blocks whose rewrite keeps its header and size first tries ``gzip_patch`` (only the
  changed blocks deflated again, the others' compressed bytes kept);
* a ``.npy`` file with fewer data bytes than its header promises is ``Incomplete``: not stored;
* anything else is stored byte for byte as ``bytes_key``.

A header that changes moves the data: copies are then taken from where the bytes were in the base
(any offset), so even a re-shaped array copies what it did not change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..formats import codecs
from ..formats.keys import INTERNAL_KEYS
from ..formats.npy import MAGIC as NPY_MAGIC
from ..formats.npy import NPY_HEADER_LIMIT, parse_npy_header
from ..formats.raw import ArraySpec, metadata_from_spec
from ..storage.base import MIN_COMPOSE_PIECE, CopiedRange, ObjectInfo, Piece
from ..storage.conditions import WriteCondition
from .encoders import encoder_for
from .gzip_patch import store_changed_blocks
from .ranges import RangeSet
from .staged import Base, StagedFile

log = logging.getLogger("cottoncandy.writes")
#: the most bytes one copied piece may hold (S3's UploadPartCopy limit)
MAX_COPY_PIECE = 5 * 2**30
#: S3's most parts in one upload
MAX_PIECES = 10_000
#: sent parts of one commit in flight at once (memory: as many parts of the store's part size)
COMMIT_IN_FLIGHT = 4
#: bytes of the staged file handed to an encoder at once (an encoded commit's memory beyond the encoder's)
ENCODE_PIECE = 4 * 2**20
#: bytes of the base an encoded commit fetches (and decodes) into the staged file at once, ahead of
#: the encoder (a multiple of ``ENCODE_PIECE``)
DECODE_AHEAD = 16 * 2**20


class Incomplete(Exception):
    """A ``.npy`` with fewer data bytes than its header promises: it stays staged, not stored."""


@dataclass(frozen=True)
class Layout:
    """How the stored object maps onto the file: ``file[skip : skip + size]`` is the object."""

    key: str
    skip: int
    size: int
    metadata: dict[str, str]
    spec: ArraySpec | None = None
    header: bytes = b""


def plan(size: int, send: RangeSet, part_size: int, least: int = MIN_COMPOSE_PIECE) -> list[tuple[str, int, int]]:
    """Pieces ``("send"|"copy", start, end)`` covering ``[0, size)`` in order: every offset of ``send``
    is sent; a clean stretch is copied when it is at least ``least`` long or is the last piece, else
    sent with the changed stretch after it; every piece but the last is at least ``least`` long; a
    sent piece starts where a changed stretch (or the short gap before it) starts and holds at most
    ``part_size + least`` bytes."""
    part_size = max(part_size, least)
    runs = list(send.overlapping(0, size))
    pieces: list[tuple[str, int, int]] = []
    pos = i = 0
    while pos < size:
        while i < len(runs) and runs[i][1] <= pos:
            i += 1
        following = max(runs[i][0], pos) if i < len(runs) else size
        if following > pos and (following - pos >= least or following == size):
            pieces += [("copy", a, min(following, a + MAX_COPY_PIECE)) for a in range(pos, following, MAX_COPY_PIECE)]
            pos = following
            continue
        start, end = pos, runs[i][1]
        while True:  # take in the changed stretches after it that are closer than a copyable gap
            end = max(end, min(size, start + least))
            while i < len(runs) and runs[i][1] <= end:
                i += 1
            if i < len(runs) and runs[i][0] - end < least:
                end = runs[i][1]
                continue
            break
        bounds = [*range(start, end, part_size), end]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < least:
            bounds.pop(-2)
        pieces += [("send", a, b) for a, b in zip(bounds, bounds[1:])]
        pos = end
    return pieces


def npy_prefix(staged: StagedFile) -> bytes:
    """The file's ``.npy`` header as far as its own length field says (at most ``NPY_HEADER_LIMIT``
    bytes), or its first bytes when it is no ``.npy``: a commit reads no data byte to find out what
    the file is (a data byte of a compressed base read here would decode a whole block)."""
    first = bytes(staged.read(min(staged.size, 12), 0))
    if not first.startswith(NPY_MAGIC) or len(first) < 10:
        return first
    length = 10 + int.from_bytes(first[8:10], "little") if first[6] == 1 else \
        12 + int.from_bytes(first[8:12], "little")
    return first if length <= len(first) else bytes(staged.read(min(staged.size, length, NPY_HEADER_LIMIT), 0))


def layout_of(staged: StagedFile, array_key: str | None, bytes_key: str, compression: str | None = None) -> Layout:
    """What ``staged`` is stored as (module docstring); ``compression``: the codec of an array that
    replaces no stored array (``None``: raw). ``Incomplete`` for a short ``.npy``."""
    base = staged.base
    if array_key is not None:
        found = parse_npy_header(npy_prefix(staged))
        if found is not None:
            spec, header_length = found
            data = staged.size - header_length
            if data < spec.nbytes:
                raise Incomplete(f"{staged.path}: {data} of the {spec.nbytes} data bytes its header promises")
            if data == spec.nbytes:
                codec = base.spec.compression if base is not None and base.spec is not None else compression
                spec = replace(spec, compression=codec)
                same = base is not None and base.spec is not None and (
                    base.spec.dtype, base.spec.shape, base.spec.order) == (spec.dtype, spec.shape, spec.order)
                metadata = dict(base.info.metadata or {}) if same and base is not None else metadata_from_spec(spec)
                header = bytes(staged.read(header_length, 0))
                return Layout(array_key, header_length, spec.nbytes, metadata, spec, header)
    metadata = dict(base.info.metadata or {}) if base is not None and base.spec is None else {}
    return Layout(bytes_key, 0, staged.size, metadata)


def must_send(staged: StagedFile, layout: Layout) -> RangeSet:
    """Offsets of the stored object that cannot be copied from the base (everything for a new file)."""
    base = staged.base
    everything = RangeSet([(0, layout.size)])
    if base is None or base.compressed or layout.size == 0:
        return everything
    # in the file's offsets: changed bytes, the header the mount made up, and what lies past the base
    send = RangeSet(staged.dirty.runs())
    send.add(0, len(base.header))
    send.add(staged.base_end, staged.size)
    stored = RangeSet()
    for a, b in send.overlapping(layout.skip, layout.skip + layout.size):
        stored.add(a - layout.skip, b - layout.skip)
    return stored


def commit(staged: StagedFile, array_key: str | None, bytes_key: str,
           condition: WriteCondition | None = None, compression: str | None = None) -> ObjectInfo:
    """Store ``staged`` as it is now (one write; ``Incomplete`` when it is a short ``.npy``); the
    staged file then names the new version as its base. ``compression``: as for ``layout_of``.
    Raises the store's refusal as it came."""
    with staged.lock:
        layout = layout_of(staged, array_key, bytes_key, compression)
        store = staged.store
        if layout.spec is not None and layout.spec.compression is not None:
            info = _encode(staged, layout, condition)
        else:
            send = must_send(staged, layout)
            pieces = plan(layout.size, send, store.part_size)
            if len(pieces) > MAX_PIECES:  # a huge object in small parts: fewer, larger sent parts
                pieces = plan(layout.size, send, store.part_size * -(-len(pieces) // MAX_PIECES))
            sent = sum(b - a for kind, a, b in pieces if kind == "send")
            info = store.compose(layout.key, _pieces(staged, layout, pieces), layout.metadata, condition=condition,
                                 in_flight=COMMIT_IN_FLIGHT)
            log.info("%s: stored %s (%d bytes: %d sent, %d copied by the server, %d fetched)", staged.path,
                     store.describe(layout.key), layout.size, sent, layout.size - sent, staged.fetched)
        info = ObjectInfo(key=info.key, size=info.size, etag=info.etag, last_modified=info.last_modified,
                          metadata=layout.metadata if layout.spec is None or not layout.spec.compression
                          else info.metadata)
        staged.committed(Base(info, layout.header, layout.spec))
        return info


def _pieces(staged: StagedFile, layout: Layout, pieces: list[tuple[str, int, int]]) -> Iterator[Piece]:
    """The pieces' bytes, read from the staged file one at a time (memory: the parts in flight)."""
    base = staged.base
    for kind, a, b in pieces:
        if kind == "copy":
            assert base is not None
            shift = layout.skip - len(base.header)  # stored offset -> base body offset
            yield CopiedRange(base.info.key, a + shift, b + shift, base.info.etag)
        else:
            yield staged.bytes_of(layout.skip + a, layout.skip + b)


def _encode(staged: StagedFile, layout: Layout, condition: WriteCondition | None) -> ObjectInfo:
    """A compressed array (no range of an encoded body can be copied): its body encoded again from
    the staged bytes as they lie in the file (the header's order), by the streamed writer's encoder,
    in one ``put_chunks`` under ``condition``. The user's metadata is kept; the description and the
    gzip index are the new body's."""
    spec = layout.spec
    assert spec is not None and spec.compression is not None
    store = staged.store
    name = store.describe(layout.key)
    metadata = metadata_from_spec(spec)
    metadata.update({k: v for k, v in layout.metadata.items() if k.lower() not in INTERNAL_KEYS})
    record = codecs.record(spec.compression)
    if record.blocks:  # the library's gzip blocks: only the changed ones deflated again, if it applies
        patched = store_changed_blocks(staged, layout.key, layout.skip, metadata, condition, store.part_size,
                                       COMMIT_IN_FLIGHT)
        if patched is not None:
            return patched
    if not record.blocks and record.stream_encoder is None:  # a codec that encodes whole only (LZ4, Zstd)
        body = codecs.encode(memoryview(staged.bytes_of(layout.skip, layout.skip + spec.nbytes)), spec.compression)
        return store.put(layout.key, body, metadata, condition=condition)
    encoder = encoder_for(spec, name)
    try:
        metadata.update(encoder.metadata())

        def pieces() -> Iterator[bytes]:
            for a in range(0, spec.nbytes, ENCODE_PIECE):
                b = min(spec.nbytes, a + ENCODE_PIECE)
                if a % DECODE_AHEAD == 0:  # the base's bytes ahead, fetched and decoded together, on disk
                    staged.hold_base(layout.skip + a, layout.skip + a + DECODE_AHEAD)
                yield from encoder.compress(staged.bytes_of(layout.skip + a, layout.skip + b))
            yield from encoder.flush()

        info = store.put_chunks(layout.key, pieces(), metadata, head=encoder.header, size_hint=spec.nbytes,
                                in_flight=COMMIT_IN_FLIGHT, condition=condition, part_size=store.part_size)
    finally:
        encoder.close()
    log.info("%s: stored %s (%d array bytes encoded %s, %d fetched)", staged.path, name, spec.nbytes,
             spec.compression, staged.fetched)
    return info
