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
* the base's bytes are fetched (and decoded) by ``base_bytes``: nothing at open or at a WRITE;
  a read fetches the units holding the range (a raw body's aligned blocks, a gzip body's indexed
  blocks, a body without blocks whole); a commit fetches exactly what it sends that is not held.
  What a commit fetched is kept in the sparse file (charged to the budget; when the budget is
  full it is only sent), so the next commit of the same file does not fetch it again: a loop of
  commands appending to one descriptor fetches the start of the file once, not once per command.
  A compressed body is encoded again at commit (``writes.commit``; a gzip body of the library's
  blocks keeps its unchanged blocks: ``writes.gzip_patch``).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..formats import pgzip
from ..formats.raw import ArraySpec
from ..storage.base import ObjectInfo, ObjectStore
from .base_bytes import BaseBytes, GzipBlocks, base_bytes
from .ranges import RangeSet
from .staging import StagingArea


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
        """Whether the body is encoded (decoded to be read, encoded again to be stored)."""
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
        self._bytes: BaseBytes | None = None  # the base's reader, made at its first use
        try:
            os.ftruncate(self.fd, self._size)
        except BaseException:
            self.discard()
            raise

    def __repr__(self) -> str:
        return f"StagedFile({self.path!r}, {self._size} bytes, {self.dirty.total} dirty)"

    @property
    def size(self) -> int:
        return self._size

    # --- the base's bytes --------------------------------------------------------------------
    def _base_bytes(self) -> BaseBytes:
        assert self.base is not None
        if self._bytes is None:
            self._bytes = base_bytes(self.store, self.base.info, self.base.spec, len(self.base.header), self.area)
        return self._bytes

    def base_index(self) -> pgzip.Index | None:
        """The base's gzip block index when it is a body of the library's indexed blocks (one ranged GET
        of its header the first time), else ``None`` (``writes.gzip_patch`` reuses its blocks)."""
        with self.lock:
            if self.base is None or not self.base.compressed:
                return None
            source = self._base_bytes()
            return source.index() if isinstance(source, GzipBlocks) else None

    def _take(self, start: int, end: int, reading: bool, put: Callable[[int, memoryview], None]) -> None:
        """``put(file offset, bytes)`` the base's bytes not held yet of ``[start, end)`` (within
        ``base_end``) widened to the reader's units (``base_bytes``: what it fetches at once), so a
        ``put`` that does not keep them takes what it wants; the header the mount shows comes from
        memory."""
        assert self.base is not None
        header = self.base.header
        for a, b in list(self.held.missing(start, min(end, len(header), self.base_end))):
            put(a, memoryview(header)[a:b])
        lo, hi = max(start, len(header)), min(end, self.base_end)
        if lo >= hi:
            return
        source = self._base_bytes()
        ua, ub = source.units(lo - len(header), hi - len(header), reading)
        ua, ub = ua + len(header), min(self.base_end, ub + len(header))
        wanted = [(a - len(header), b - len(header)) for a, b in self.held.missing(ua, ub)]
        self.fetched += source.fetch(wanted, lambda at, data: put(at + len(header), data))

    def _keep(self, at: int, data: memoryview) -> None:
        """Hold base bytes in the sparse file (charged to the budget first)."""
        self._hold(at, at + len(data), "reading the stored version")
        os.pwrite(self.fd, data, at)

    def _hold(self, start: int, end: int, what: str) -> None:
        """Charge the staging budget for the bytes of ``[start, end)`` not held yet, and mark them held."""
        self.area.charge(end - start - self.held.covered(start, end), f"{self.path}: {what}")
        self.held.add(start, end)

    # --- the program's calls -----------------------------------------------------------------
    def read(self, size: int, offset: int) -> bytes:
        """Bytes ``[offset, offset + size)`` as the program wrote them over the base."""
        with self.lock:
            end = min(self._size, offset + size)
            if offset >= end:
                return b""
            if self.base is not None and offset < self.base_end:
                self._take(offset, end, True, self._keep)
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
        """``[start, end)`` of the file for an upload: the base's bytes not held are fetched and kept
        in the sparse file (the next commit sends them again: they are not fetched twice), or only
        put in the buffer when the budget cannot hold them; the rest from disk, or zeros."""
        with self.lock:
            buffer = bytearray(end - start)
            view = memoryview(buffer)
            if self.base is not None and start < self.base_end:
                try:
                    self._take(start, end, False, self._keep)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC or self._base_bytes().whole:
                        raise  # a body without blocks decodes whole for any range: it must be staged

                    def put(at: int, data: memoryview) -> None:
                        lo, hi = max(at, start), min(at + len(data), end)
                        if lo < hi:
                            view[lo - start : hi - start] = data[lo - at : hi - at]

                    self._take(start, end, False, put)  # what is still not held: this buffer only
            for a, b in self.held.overlapping(start, end):
                if os.preadv(self.fd, [view[a - start : b - start]], a) != b - a:
                    raise OSError(errno.EIO, f"{self.path}: the staged file {self.file} was cut short")
            return buffer

    def hold_base(self, start: int, end: int) -> None:
        """Fetch into the sparse file the base's bytes of ``[start, end)`` not held yet, so that later
        ``bytes_of`` calls read them from disk (a commit asks this ahead of what it encodes: one
        fetch of many gzip blocks, inflated together, instead of one per piece). Best effort: with
        the budget full they are left to ``bytes_of``."""
        with self.lock:
            if self.base is None or start >= self.base_end:
                return
            try:
                self._take(start, min(end, self.base_end), False, self._keep)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise

    @property
    def changed(self) -> bool:
        """Whether anything differs from the base (a new file always does)."""
        return self.base is None or bool(self.dirty) or self._size != self.base.size

    def committed(self, base: Base) -> None:
        """The file is now stored as ``base``: nothing is dirty, everything below its size is the base's."""
        with self.lock:
            self.base = base
            self._bytes = None
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
