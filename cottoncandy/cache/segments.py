"""A gzip body's seek points (``formats.zran``) as a table of stretches for ``cache.stretches``.

Why: with seek points a read of decoded bytes ``[a, b)`` needs only the stretches of the body
between the point before ``a`` and the point at or after ``b``, each inflated from its point's
priming state (bit offset and window). :class:`PointTable` tells ``cache.stretches.StretchReader``
(the one reader of gzip arrays in place, our block indexes included) where each stretch lies and
how it inflates and is checked; that reader fetches runs of adjacent stretches in one ranged GET,
shares them between the files open on one version (``gzip_points.point_fetch``) and keeps a stretch
until every byte of it was handed out once, since the mount's reader runs do not line up with
stretches that end at deflate blocks.

Invariants: the points were checked whole when their record was read back (``zran.decode_index``).
A stretch is served only if it inflates to exactly its recorded length and CRC-32
(``zran.inflate_segment``); one that does not raises ``ValueError`` (the record is wrong: the
reader tells ``on_bad``, the mount drops the record, and reads go to the whole decode).
"""

from __future__ import annotations

import bisect

from ..formats import zran


class PointTable:
    """The stretches between the seek ``points`` of a body of ``body_size`` bytes that decodes to
    ``nbytes``."""

    span = zran.SPAN  # decoded bytes between two points (the first stretch is shorter)
    aligned = False  # points end at deflate blocks, which no reader's runs line up with

    def __init__(self, points: list[zran.SeekPoint], body_size: int, nbytes: int):
        self.points = points
        self.body_size = body_size
        self.nbytes = nbytes
        self._starts = [p.out_start for p in points]

    def __len__(self) -> int:
        return len(self.points)

    def bounds(self, i: int) -> tuple[int, int, int, int]:
        return zran.segment_bounds(self.points, i, self.body_size, self.nbytes)

    def index_of(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self._starts, pos) - 1)

    def inflate(self, i: int, data: memoryview) -> bytes:
        out_start, out_end = self.bounds(i)[2:]
        return zran.inflate_segment(self.points[i], data, out_end - out_start)
