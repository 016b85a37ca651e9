"""A file being written out of order: its bytes in a sparse private file until a commit point.

Why: a shared mmap, ``O_RDWR`` on an existing file, an append or an ``ftruncate`` write anywhere, in
any order, and read back what they wrote; no single upload can follow them. A ``StagedFile`` holds
what the program wrote, and of the stored version it started from (its ``Base``) only what was read
or is needed at commit: a byte range is fetched (one ranged GET with ``If-Match`` the version seen at
open) the first time it is read, never because a page near it was written. ``commit`` (``writes.commit``)
then rebuilds the object with the untouched stretches copied by the server.

The file's offsets are the program's: for a raw array shown as ``NAME.npy`` the file is the ``.npy``
header (the ``Base.header`` the mount shows, served from memory) followed by the array's bytes, and
file offset ``f >= len(header)`` is the stored body's offset ``f - len(header)``.

Invariants (under ``lock``):

* ``held``: offsets whose bytes are in the sparse file (written, or fetched from the base); the
  staging budget is charged for exactly ``held.total`` bytes of this file.
* ``dirty``: offsets written since the base (or the last commit); ``dirty`` is within ``held``.
* offsets below ``base_end`` and not held are the base's bytes; offsets from ``base_end`` to ``size``
  not held are zeros (a hole, or a file grown by ``truncate``). A shrinking ``truncate`` lowers
  ``base_end``, so bytes cut off never come back from the base.
* a compressed stored array cannot be read by range: it is fetched and decoded whole at open
  (``held`` is everything) and re-encoded whole at commit.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass

import numpy as np

from ..arrays.raw import decode_body_into
from ..formats.raw import ArraySpec
from ..storage.base import ObjectInfo, ObjectStore
from .ranges import RangeSet
from .staging import StagingArea

#: a read of bytes not held fetches the base in aligned blocks of this size (the kernel asks
#: 128 KiB - 1 MiB at a time, so a sequential read costs one GET per block, not per READ)
FETCH_BLOCK = 2**20


@dataclass(frozen=True)
class Base:
    """The stored version a staged file started from, as the mount showed it."""

    info: ObjectInfo
    #: the ``.npy`` header shown before a raw array's body (``b""``: a plain object, shown as stored)
    header: bytes = b""
    #: the raw array it holds (``None``: a plain object)
    spec: ArraySpec | None = None

    @property
    def size(self) -> int:
        """The file's size as shown: header plus the array's bytes, or the object's size."""
        return len(self.header) + (self.spec.nbytes if self.spec is not None else self.info.size)

    @property
    def compressed(self) -> bool:
        """Whether the body is encoded (read whole, never by range)."""
        return self.spec is not None and self.spec.compression is not None


class StagedFile:
    """One file staged for writing (module docstring); also a ``seam.WriteHandle``'s file."""

    def __init__(self, area: StagingArea, store: ObjectStore, path: str, key: str, base: Base | None = None):
        self.area = area
        self.store = store
        self.path = path
        self.key = key
        self.base = base
        self.lock = threading.RLock()
        self.fd, self.file = area.create()
        self.held = RangeSet()
        self.dirty = RangeSet()
        self._size = base.size if base is not None else 0
        self.base_end = self._size
        #: bytes fetched from the base (reads and commits), for the log and the tests
        self.fetched = 0
        self._closed = False
        try:
            os.ftruncate(self.fd, self._size)
            if base is not None and base.compressed:
                self._load_whole(base)
        except BaseException:
            self.discard()
            raise

    def __repr__(self) -> str:
        return f"StagedFile({self.path!r}, {self._size} bytes, {self.dirty.total} dirty)"

    @property
    def size(self) -> int:
        return self._size

    # --- the base's bytes --------------------------------------------------------------------
    def _load_whole(self, base: Base) -> None:
        """A compressed array: decoded at once into the sparse file (there is no ranged read of it)."""
        assert base.spec is not None
        header, nbytes = len(base.header), base.spec.nbytes
        self._hold(0, self._size, "decoding the stored array")
        os.pwrite(self.fd, base.header, 0)
        if nbytes:
            body = np.memmap(self.file, dtype=np.uint8, mode="r+", offset=header, shape=(nbytes,))
            try:
                decode_body_into(self.store, base.info, base.spec, memoryview(body))  # type: ignore[arg-type]
                body.flush()
            finally:
                del body
        self.fetched += base.info.size

    def _fetch_into(self, start: int, buffer: memoryview) -> None:
        """The base's bytes of the file range ``[start, start + len(buffer))`` (below ``base_end``)."""
        assert self.base is not None and not self.base.compressed
        header = self.base.header
        at = 0
        if start < len(header):
            piece = header[start : start + len(buffer)]
            buffer[: len(piece)] = piece
            at = len(piece)
        if at < len(buffer):
            body_start = start + at - len(header)
            try:
                self.store.readinto(self.base.info.key, body_start, buffer[at:], if_match=self.base.info.etag)
            except FileNotFoundError as exc:
                raise OSError(errno.ESTALE, f"{self.store.describe(self.base.info.key)} was deleted since it "
                                            "was opened") from exc
            self.fetched += len(buffer) - at

    def _hold(self, start: int, end: int, what: str) -> None:
        """Charge the staging budget for the bytes of ``[start, end)`` not held yet, and mark them held."""
        self.area.charge(end - start - self.held.covered(start, end), f"{self.path}: {what}")
        self.held.add(start, end)

    def _fill(self, start: int, end: int) -> None:
        """Make ``[start, end)`` (within ``base_end``) held, fetching in aligned blocks what is not."""
        block_start = start - start % FETCH_BLOCK
        block_end = min(self.base_end, -(-end // FETCH_BLOCK) * FETCH_BLOCK)
        for a, b in list(self.held.missing(block_start, block_end)):
            buffer = bytearray(b - a)
            self._fetch_into(a, memoryview(buffer))
            self._hold(a, b, "reading the stored version")
            os.pwrite(self.fd, buffer, a)

    # --- the program's calls -----------------------------------------------------------------
    def read(self, size: int, offset: int) -> bytes:
        """Bytes ``[offset, offset + size)`` as the program wrote them over the base."""
        with self.lock:
            end = min(self._size, offset + size)
            if offset >= end:
                return b""
            if self.base is not None and offset < self.base_end and not self.base.compressed:
                for a, b in list(self.held.missing(offset, min(end, self.base_end))):
                    self._fill(a, b)
            data = os.pread(self.fd, end - offset, offset)
            if len(data) < end - offset:  # past the sparse file's end: a hole of zeros
                data += bytes(end - offset - len(data))
            return data

    def write(self, offset: int, data: bytes | memoryview) -> int:
        """Write ``data`` at ``offset`` (the file grows as needed); ``ENOSPC`` past the budget."""
        with self.lock:
            end = offset + len(data)
            self._hold(offset, end, "writing")
            os.pwrite(self.fd, data, offset)
            self.dirty.add(offset, end)
            self._size = max(self._size, end)
            return len(data)

    def truncate(self, length: int) -> None:
        """Cut the file to ``length`` or grow it with zeros (what ``ftruncate``/``O_TRUNC`` ask)."""
        with self.lock:
            if length < self._size:
                self.area.refund(self.held.clip(length))
                self.dirty.clip(length)
                self.base_end = min(self.base_end, length)
            os.ftruncate(self.fd, length)  # a grown tail is a hole of zeros, past base_end: sent at commit
            self._size = length

    def bytes_of(self, start: int, end: int) -> bytearray:
        """``[start, end)`` of the file for an upload: held bytes from disk, the rest from the base or
        zeros, straight into one buffer (not staged: a commit holds no more on disk)."""
        with self.lock:
            buffer = bytearray(end - start)
            view = memoryview(buffer)
            for a, b in self.held.overlapping(start, end):
                if os.preadv(self.fd, [view[a - start : b - start]], a) != b - a:
                    raise OSError(errno.EIO, f"{self.path}: the staged file {self.file} was cut short")
            if self.base is not None and self.base.compressed:  # held whole at open or written here: holes are zeros
                return buffer
            for a, b in self.held.missing(start, min(end, self.base_end)):
                self._fetch_into(a, view[a - start : b - start])
            return buffer

    @property
    def changed(self) -> bool:
        """Whether anything differs from the base (a new file always does)."""
        return self.base is None or bool(self.dirty) or self._size != self.base.size

    def committed(self, base: Base) -> None:
        """The file is now stored as ``base``: nothing is dirty, everything below its size is the base's."""
        with self.lock:
            self.base = base
            self.dirty = RangeSet()
            self.base_end = self._size

    def discard(self) -> None:
        """Remove the sparse file and give its bytes back to the budget (idempotent)."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            self.area.refund(self.held.total)
            self.held = RangeSet()
            os.close(self.fd)
            self.file.unlink(missing_ok=True)
