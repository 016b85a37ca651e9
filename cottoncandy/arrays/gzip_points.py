"""gzip arrays without a block index (0.4.0's), read by stretches once a full decode has found seek points.

The mount's first open of such an array decodes it whole (as before), now through
``formats.zran.gunzip_recording``, which also records a seek point every ``zran.SPAN`` bytes of
output; the points go to the ``cache.seek_index`` shelf, keyed by the object's identity, ETag and
size. Every later open of that version (this mount or a later one with the same cache folder) reads
through ``cache.segments.SegmentFetch``: a row costs one ranged GET of one stretch (~4 MiB of
output) instead of the whole body. Arrays below ``zran.MIN_ARRAY`` (16 MiB) are not indexed: their
whole decode is quick and a record would not pay; nor are bodies we wrote (``cc-gzip-blocks``:
they carry their own index), nor anything where libz cannot be loaded (``zran.available``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from ..cache.budget import MemoryBudget
from ..cache.seek_index import SeekIndexShelf
from ..cache.segments import SegmentFetch
from ..formats import codecs, pgzip, zran
from ..formats.codecs import Sink
from ..formats.raw import ArraySpec
from ..storage.base import ObjectInfo, ObjectStore
from .raw import STREAM_CHUNK, decode_body_into

log = logging.getLogger(__name__)


def indexable(info: ObjectInfo, spec: ArraySpec) -> bool:
    """A gzip body with no index of its own, of an array large enough for seek points to pay."""
    return (spec.compression is not None and codecs.codec_id(spec.compression) == codecs.GZIP  # any spelling
            and pgzip.INDEX_KEY not in (info.metadata or {})
            and zran.worth_indexing(spec.nbytes))


def decode_recording(store: ObjectStore, info: ObjectInfo, spec: ArraySpec, out: memoryview | Sink,
                     shelf: SeekIndexShelf | None, identity: str) -> None:
    """``raw.decode_body_into``; for an indexable body with a shelf, also record its seek points there."""
    if shelf is None or not indexable(info, spec):
        decode_body_into(store, info, spec, out)
        return
    with store.open_read(info.key, if_match=info.etag) as stream:
        try:
            points = zran.gunzip_recording(iter(lambda: stream.read(STREAM_CHUNK), b""), out)
        except codecs.CorruptBodyError as exc:
            raise ValueError(f"{store.describe(info.key)}: {exc}") from exc
    if points is None:
        log.info("%s: gzip body of several members: no seek points kept", store.describe(info.key))
        return
    shelf.remember(identity, info.etag, info.size, spec.nbytes, points)
    log.info("%s: %d seek points kept: later opens read it by stretches", store.describe(info.key), len(points))


class OpenFetches:
    """The ``SegmentFetch`` of each version open now, so that every file open on one version shares
    its stretches (``np.load`` opens a file three times; two readers of one array want the same
    stretches): held weakly, gone with the last file reading through it."""

    def __init__(self) -> None:
        self._open: weakref.WeakValueDictionary[tuple[str, str, int, int], SegmentFetch] = \
            weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int, int], make: Callable[[], SegmentFetch | None]) -> SegmentFetch | None:
        with self._lock:
            fetch = self._open.get(key)
            if fetch is not None and not fetch.broken:
                return fetch
            fetch = make()  # a read of the shelf: quick, and under the lock no two opens make two
            if fetch is not None:
                self._open[key] = fetch
            return fetch


def point_fetch(info: ObjectInfo, spec: ArraySpec, shelf: SeekIndexShelf | None, identity: str,
                fetch_body: Callable[[int, int], bytes], fallback: Callable[[int, int], bytes],
                budget: MemoryBudget | None = None, shared: OpenFetches | None = None) -> SegmentFetch | None:
    """A fetch of decoded bytes through the kept seek points of this version, or ``None`` (none kept,
    or the record was bad and is dropped). A stretch that later fails its check drops the record and
    sends the reads to ``fallback``. With ``shared``, files open on one version share one fetch
    (``fetch_body`` and ``fallback`` must then read the same version whichever file made them)."""
    if shelf is None or not indexable(info, spec):
        return None

    def make() -> SegmentFetch | None:
        points = shelf.recall(identity, info.etag, info.size, spec.nbytes)
        if points is None:
            return None
        return SegmentFetch(points, info.size, spec.nbytes, fetch_body, fallback,
                            lambda why: shelf.forget(identity, info.etag, info.size, why), budget)

    if shared is None:
        return make()
    return shared.get((identity, info.etag, info.size, spec.nbytes), make)
