"""Compressed arrays, decoded once per (key, ETag, codec, size: :func:`decoded_version`) into a bounded cache.

A compressed body cannot be read by range, so the first read of a compressed array decodes it
whole -- unless it is a gzip body with our block index or one whose seek points are kept
(``stretches.py`` reads both by stretch); here are the others, and that reader's fallback.
Small results stay in memory (an LRU bounded in bytes); larger ones are decoded into a
file under the cache directory (an LRU bounded in bytes on disk) and read with ``pread``. An array
larger than both limits is refused with a clear error rather than breaking the limits. (Neither outlives
the daemon: with a ``--cache-dir`` the mount also writes every block of such a decode to the persistent
block tier, ``disk.KeptDecoded``, and a later mount reads it from there by block.) A spilled
array is written with ``pwrite`` as it is decoded, not through a memory map: every page written
through a map stays in the daemon's resident set until it is unmapped (four 128 MiB arrays being
decoded at once took a daemon with ``--cache-size 256M`` past 550 MB).

LZ4 and zstd are the exception: numcodecs decodes them in one C call into one contiguous buffer,
so they cannot stream through ``pwrite``. Decoding them into anonymous memory first would hold the
whole array in the daemon's memory (and then copy it); instead ``SpillWriter.writable_view`` maps
the spill file (``MAP_SHARED``) for the one call and unmaps it straight after. Its pages are file
pages: the kernel can write them back and reclaim them under pressure (no swap needed), and once
unmapped they leave the daemon's resident set and are the same page cache that ``pwrite`` leaves.
Only one array is mapped at a time (a lock), so the transient resident file pages are at most one
array, not the sum of concurrent decodes (the 550 MB case above). Both C decoders release the
GIL, so while one runs a helper thread calls ``madvise(MADV_DONTNEED)`` on the mapping every
``TRIM_INTERVAL``: for a shared file mapping that only unmaps the pages from the daemon (their
dirty contents stay in the page cache, and a page touched again, e.g. by a back-reference, faults
back in from there), which keeps the resident part to what is decoded between two trims instead of
the whole array. The pages are not dropped from
the page cache after unmapping (no ``posix_fadvise(DONTNEED)``): the array is read next, and the
``pwrite`` path leaves its pages cached too. A corrupt body leaves nothing mapped: the decoder
keeps no view alive when it fails. Measured (96 MiB LZ4 or Zstd array, ``--cache-size 64M``): the
daemon's RSS went 60 MB -> 189 MB during the decode without the trimming thread (the whole mapped
array plus the compressed body) and 60 -> 133 MB (LZ4, 43 MB body) / 103 MB (Zstd, 26 MB body) with
it, i.e. 17-30 MB of mapped pages at once instead of 96; 65 MB once unmapped. gzip, streamed through
``pwrite``, peaked at 71 MB. The compressed body itself is held whole while it decodes, as before.

``memory_limit`` bounds what decoding holds in memory, not only what the LRU holds: an array kept in
memory stays alive while an open file reads it, after the LRU has let it go (eight readers of eight
24 MiB arrays held 192 MiB against a 64 MiB limit), and a decode needs working memory besides its
output (an indexed gzip body inflates 4 blocks at once: 4 compressed blocks and their 4 MiB outputs,
~32 MiB; four large gzip arrays opened at once held ~130 MB outside every count). So each decode
reserves its working memory (``decode_work``) and, if it is to stay in memory, its array, against
``memory_limit``, released when the decode ends and when the array is freed (by the LRU and the last
handle); a decode that does not fit waits for room (one always runs), and an array whose room is
taken is decoded into a spill file instead.
"""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cachetools import LRUCache

from ..singleflight import SingleFlight

Decoder = Callable[[memoryview], None]


def decoded_version(etag: str, compression: str, nbytes: int) -> str:
    """What names one decode of a version of an object (in place of its ETag in every cache of decoded
    bytes: this one, the block cache, ``--cache-dir``'s decoded blocks, the block indexes): the ETag,
    the codec and the decoded size.

    Why not the ETag alone: it pins the body, not the metadata saying how to decode it, and a body
    stored again with other metadata keeps its ETag (S3's ETag of a one-part object is its MD5). A
    decode kept under the former metadata then answered for metadata the body does not fit (half the
    rows: the mount served the old rows after a remount where ``download_raw_array`` raised), and the
    raw view of the same ETag (compression removed) could be served the decoded blocks."""
    return f"{etag}\0decoded\0{compression.strip().lower()}\0{int(nbytes)}"


#: working memory of one decode at most, besides its output: an indexed gzip body inflates
#: ``READ_WORKERS`` (4) blocks at once, each a compressed block and its output of up to 4 MiB
DECODE_WORK = 32 * 2**20


def decode_work(nbytes: int) -> int:
    """What decoding an array of ``nbytes`` holds besides its output (a body is no larger than twice
    the array: ``ccfs refs``' and the reader's size checks refuse larger ones)."""
    return min(DECODE_WORK, 2 * nbytes)


class DecodedArray:
    """Random access to one decoded array (in memory or in a spill file)."""

    def __init__(self, data: bytearray | None = None, path: Path | None = None, size: int = 0):
        self._data = data
        self.path = path
        self.size = size if data is None else len(data)
        self._fd = os.open(path, os.O_RDONLY) if path is not None else -1

    def read(self, offset: int, length: int) -> bytes:
        if self._data is not None:
            return bytes(self._data[offset : offset + length])
        return os.pread(self._fd, length, offset)

    def evict(self) -> None:
        """Drop the spill file's name; open readers keep reading until the object goes away."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1


class SpillWriter:
    """The decoder's output buffer for a spill file: ``out[a:b] = data`` becomes a ``pwrite``."""

    def __init__(self, fd: int, size: int):
        self._fd = fd
        self._size = size

    def __len__(self) -> int:
        return self._size

    #: one mapped decode at a time in the process (see the module docstring)
    _mapping = threading.Lock()
    #: seconds between two ``MADV_DONTNEED`` of the mapping while a decoder writes into it
    TRIM_INTERVAL = 0.02

    @contextmanager
    def writable_view(self) -> Iterator[memoryview]:
        """The whole spill file as one writable buffer, for decoders that need one (LZ4, zstd).

        Unmapped when the block ends; the caller must not keep the view (or arrays over it).
        """
        with self._mapping:
            mapping = mmap.mmap(self._fd, self._size, flags=mmap.MAP_SHARED,
                                prot=mmap.PROT_READ | mmap.PROT_WRITE)
            view = memoryview(mapping)
            stop = threading.Event()
            trimmer = threading.Thread(target=self._trim, args=(mapping, stop), name="cc-spill-trim", daemon=True)
            trimmer.start()
            try:
                yield view
            finally:
                stop.set()
                trimmer.join()
                view.release()
                mapping.close()

    def _trim(self, mapping: mmap.mmap, stop: threading.Event) -> None:
        """Unmap the written pages from this process now and then (their data stays in the file)."""
        while not stop.wait(self.TRIM_INTERVAL):
            mapping.madvise(mmap.MADV_DONTNEED)

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None:
        offset = where.start or 0
        view = memoryview(data).cast("B")
        if offset + len(view) > self._size:
            raise ValueError(f"write of {len(view)} bytes at {offset} past the end ({self._size})")
        while view:
            done = os.pwrite(self._fd, view, offset)
            view, offset = view[done:], offset + done


class _SpillLRU(LRUCache):  # type: ignore[type-arg]
    def popitem(self):  # type: ignore[no-untyped-def]
        key, value = super().popitem()
        value.evict()
        return key, value


class DecodedArrayCache:
    def __init__(self, memory_limit: int, spill_dir: str | os.PathLike[str] | None, spill_limit: int):
        self.memory_limit = memory_limit
        self.spill_limit = spill_limit if spill_dir is not None else 0
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self._memory: LRUCache[tuple[str, str], DecodedArray] = LRUCache(maxsize=max(1, memory_limit),
                                                                         getsizeof=lambda a: a.size)
        self._spilled: _SpillLRU = _SpillLRU(maxsize=max(1, self.spill_limit), getsizeof=lambda a: max(1, a.size))
        self._lock = threading.Lock()
        self._inflight: SingleFlight[tuple[str, str], DecodedArray] = SingleFlight(self._lock)
        self.decodes = 0
        #: bytes of ``memory_limit`` taken: decodes' working memory, and arrays held in memory (until
        #: freed: an array evicted from the LRU but still read through an open file counts)
        self._room = threading.Condition()
        self._working = 0  # of which decodes in flight
        self.reserved = 0
        self.peak_reserved = 0

    @property
    def spilled_bytes(self) -> int:
        """Bytes of spill files held (the block tier sharing the folder leaves room for them)."""
        return int(self._spilled.currsize)

    def held(self, ident: tuple[str, str]) -> DecodedArray | None:
        """The decoded array for ``ident`` if it is held now (memory or spill), without decoding: a
        reader with another way to the bytes (seek points) takes this one first, it costs no request."""
        with self._lock:
            return self._memory.get(ident) or self._spilled.get(ident)

    def get(self, ident: tuple[str, str], nbytes: int, decode: Decoder) -> DecodedArray:
        """The decoded array for ``ident``; decodes it (once, whatever the concurrency) if needed.
        A failed decode fails every caller waiting for it (the body is bad for all of them)."""

        def cached() -> DecodedArray | None:
            return self._memory.get(ident) or self._spilled.get(ident)

        def keep(result: DecodedArray) -> None:
            target = self._memory if result.path is None else self._spilled
            target[ident] = result

        return self._inflight.run(ident, lambda: self._decode(ident, nbytes, decode), cached=cached, keep=keep)

    def _reserve(self, work: int, output: int) -> bool:
        """Wait until ``work`` bytes fit in ``memory_limit`` beside what is held (or no other decode
        runs: one always does); take them, and ``output`` more if those fit too (True then)."""
        with self._room:
            while self._working and self.reserved + work > self.memory_limit:
                self._room.wait()
            keep = bool(output) and self.reserved + work + output <= self.memory_limit
            self._working += work
            self.reserved += work + (output if keep else 0)
            self.peak_reserved = max(self.peak_reserved, self.reserved)
            return keep

    def _release(self, nbytes: int, work: int = 0) -> None:
        with self._room:
            self.reserved -= nbytes
            self._working -= work
            self._room.notify_all()

    def _decode(self, ident: tuple[str, str], nbytes: int, decode: Decoder) -> DecodedArray:
        self.decodes += 1
        in_memory = nbytes <= self.memory_limit // 2
        work = decode_work(nbytes)
        kept = self._reserve(work, nbytes if in_memory else 0)
        try:
            # in memory if its room was free (or if there is nowhere else: no cache folder), else spilled
            if kept or (in_memory and self.spill_dir is None):
                data = bytearray(nbytes)
                try:
                    decode(memoryview(data))
                except BaseException:
                    if kept:
                        self._release(nbytes)
                    raise
                result = DecodedArray(data=data)
                if kept:  # its room is given back when the array is freed (LRU and every handle)
                    weakref.finalize(result, self._release, nbytes)
                return result
            return self._spill(ident, nbytes, decode)
        finally:
            self._release(work, work)

    def _spill(self, ident: tuple[str, str], nbytes: int, decode: Decoder) -> DecodedArray:
        if nbytes > self.spill_limit or self.spill_dir is None:
            raise OSError(errno.EFBIG, f"{ident[0]}: decoded array of {nbytes} bytes exceeds the cache limits "
                                       f"(memory {self.memory_limit}, cache directory {self.spill_limit})")
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spill_dir, prefix="decoded-")
        path = Path(name)
        try:
            try:
                os.ftruncate(fd, nbytes)
                decode(SpillWriter(fd, nbytes))  # type: ignore[arg-type]  # a codecs.MappableSink
            finally:
                os.close(fd)
            return DecodedArray(path=path, size=nbytes)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        with self._lock:
            for item in list(self._spilled.values()):
                item.evict()
            self._spilled.clear()
            self._memory.clear()
