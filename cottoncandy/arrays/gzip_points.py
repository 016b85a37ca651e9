"""gzip arrays without a block index (0.4.0's), read by stretches once a full decode has found seek points.

The mount's first open of such an array decodes it whole (as before), now through
``formats.zran.gunzip_recording``, which also records a seek point every ``zran.SPAN`` bytes of
output; the points go to the ``cache.seek_index`` shelf, keyed by the object's identity, ETag and
size. Every later open of that version (this mount or a later one with the same cache folder) reads
through ``cache.stretches.StretchReader`` over the points (``cache.segments.PointTable``): a row
costs one ranged GET of one stretch (~4 MiB of output) instead of the whole body. Arrays below
``zran.MIN_ARRAY`` (16 MiB) are not indexed: their whole decode is quick and a record would not
pay; nor are bodies we wrote (``cc-gzip-blocks``: they carry their own index), nor anything where
libz cannot be loaded (``zran.available``).

The library's whole decodes (``download_raw_array``, a dask part, through ``raw.decode_body_into``)
record the points too when the user named a cache folder for the library
(``Settings.block_cache_dir``: the folder ``ccfs mount --cache-dir`` keeps), in that folder's
``metadata/`` where the mount looks; so a mount's first open of an array downloaded before reads
it by stretches. Without a named folder the library writes nothing (:func:`library_shelf`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator

from ..cache.budget import MemoryBudget
from ..cache.identity import object_identity
from ..cache.seek_index import SeekIndexShelf, in_cache_folder
from ..cache.segments import PointTable
from ..cache.stretches import StretchReader
from ..config import Settings
from ..formats import codecs, pgzip, zran
from ..formats.codecs import Sink
from ..formats.raw import ArraySpec
from ..storage.base import ObjectInfo, ObjectStore, Progress
from .raw import STREAM_CHUNK, decode_body_into

log = logging.getLogger(__name__)


def indexable(info: ObjectInfo, spec: ArraySpec) -> bool:
    """A gzip body with no index of its own, of an array large enough for seek points to pay."""
    return (spec.compression is not None and codecs.codec_id(spec.compression) == codecs.GZIP  # any spelling
            and pgzip.INDEX_KEY not in (info.metadata or {})
            and zran.worth_indexing(spec.nbytes))


def records_points(info: ObjectInfo, spec: ArraySpec, shelf: SeekIndexShelf | None) -> bool:
    """Whether a whole decode of this body records its seek points (:func:`decode_recording`): later
    opens then read it by stretches, so the mount does not also keep its decoded bytes whole."""
    return shelf is not None and indexable(info, spec) and zran.available()


def decode_recording(store: ObjectStore, info: ObjectInfo, spec: ArraySpec, out: memoryview | Sink,
                     shelf: SeekIndexShelf | None, identity: str, progress: Progress | None = None) -> None:
    """``raw.decode_body_into``; for an indexable body with a shelf, also record its seek points there
    (the same decode: recording costs no measurable time, 0.60 s either way for a 30 MB body).
    ``progress`` counts body bytes."""
    if shelf is None or not indexable(info, spec):
        decode_body_into(store, info, spec, out, progress)
        return
    with store.open_read(info.key, if_match=info.etag) as stream:
        def chunks() -> Iterator[bytes]:
            for chunk in iter(lambda: stream.read(STREAM_CHUNK), b""):
                if progress is not None:
                    progress(len(chunk))
                yield chunk

        try:
            points = zran.gunzip_recording(chunks(), out)
        except codecs.CorruptBodyError as exc:
            raise ValueError(f"{store.describe(info.key)}: {exc}") from exc
    if points is None:
        log.info("%s: gzip body of several members: no seek points kept", store.describe(info.key))
        return
    shelf.remember(identity, info.etag, info.size, spec.nbytes, points)
    log.info("%s: %d seek points kept: later opens read it by stretches", store.describe(info.key), len(points))


class OpenFetches:
    """The stretch reader of each version open now, so that every file open on one version shares
    its stretches (``np.load`` opens a file three times; two readers of one array want the same
    stretches): held weakly, gone with the last file reading through it."""

    def __init__(self) -> None:
        self._open: weakref.WeakValueDictionary[tuple[str, str, int, int], StretchReader] = \
            weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int, int], make: Callable[[], StretchReader | None]) -> StretchReader | None:
        with self._lock:
            fetch = self._open.get(key)
            if fetch is not None and not fetch.broken:
                return fetch
            fetch = make()  # a read of the shelf: quick, and under the lock no two opens make two
            if fetch is not None:
                self._open[key] = fetch
            return fetch


def library_shelf(store: ObjectStore) -> SeekIndexShelf | None:
    """Where the library's decodes record seek points: the shelf of the cache folder the user named
    for the library (``Settings.block_cache_dir``, the folder ``ccfs mount --cache-dir`` keeps), or
    ``None``. Without a named folder the library keeps nothing on disk, and it does not start to here:
    a mount without ``--cache-dir`` keeps its records in the user's cache folder, which no download
    was asked to write."""
    settings = getattr(store, "settings", None)
    if not isinstance(settings, Settings) or not settings.block_cache_dir:
        return None
    return in_cache_folder(settings.block_cache_dir)


def recorded_download(store: ObjectStore, info: ObjectInfo, spec: ArraySpec, out: memoryview | Sink,
                      progress: Progress | None = None) -> bool:
    """For ``raw.decode_body_into``: decode an indexable gzip body (0.4.0's) whole into ``out`` and
    record its seek points where a mount of the same cache folder finds them, so that the mount's
    first open of that version reads by stretches; ``False`` (nothing done) when the body is not
    indexable, no cache folder is named, or its points are kept already."""
    if not indexable(info, spec):
        return False
    shelf = library_shelf(store)
    identity = object_identity(store, info.key)
    if shelf is None or shelf.holds(identity, info.etag, info.size):
        return False
    decode_recording(store, info, spec, out, shelf, identity, progress)
    return True


def point_fetch(info: ObjectInfo, spec: ArraySpec, shelf: SeekIndexShelf | None, identity: str,
                fetch_body: Callable[[int, int], bytes], fallback: Callable[[int, int], bytes],
                budget: MemoryBudget | None = None, shared: OpenFetches | None = None,
                allocate: Callable[[int], memoryview] | None = None) -> StretchReader | None:
    """A fetch of decoded bytes through the kept seek points of this version, or ``None`` (none kept,
    or the record was bad and is dropped). A stretch that later fails its check drops the record and
    sends the reads to ``fallback``. With ``shared``, files open on one version share one fetch
    (``fetch_body`` and ``fallback`` must then read the same version whichever file made them).
    ``allocate``: where answers are written (the mount's buffer pool; default fresh bytearrays)."""
    if shelf is None or not indexable(info, spec):
        return None

    def make() -> StretchReader | None:
        points = shelf.recall(identity, info.etag, info.size, spec.nbytes)
        if points is None:
            return None
        return StretchReader(PointTable(points, info.size, spec.nbytes), fetch_body, fallback,
                             lambda why: shelf.forget(identity, info.etag, info.size, why), budget=budget,
                             allocate=allocate)

    if shared is None:
        return make()
    return shared.get((identity, info.etag, info.size, spec.nbytes), make)
