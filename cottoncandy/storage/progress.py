"""How far a buffer being filled by a GET's body has come, told to whoever waits on its first bytes.

Why: a read-ahead run is one ranged GET of 4-16 MiB; without this, its blocks went to the cache
when the whole body was in, so a reader that needed the run's first block waited for its last
byte too (on a 100 MB/s connection shared by 8 runs in flight: about 0.6 s for the first bytes of
a 16 MiB run). A caller that can use a partly filled buffer (``cache.prefetch``) wraps its fetch in
``reporting(callback)``; the store's body loops then read in ``PIECE``-sized steps and call
``callback(buffer, filled)`` after each, ``filled`` being how many bytes from the buffer's start
hold the body. Thread-local, so nothing between the caller and the store (wrappers, retries, the
disk cache) changes its signature; a fetch on another thread reports to nobody.

Invariants: bytes once reported are the asked version's (ETag-pinned GETs; a retry rewrites the
same bytes), so a callback may hand them out at once. ``filled`` never exceeds ``len(buffer)``.
A callback must not raise: it runs inside the store's body loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: (the buffer being filled, bytes filled from its start)
Progress = Callable[[memoryview, int], None]
#: bytes read between two reports: a block of the mount's cache (its default size)
PIECE = 256 * 1024

_local = threading.local()


@contextmanager
def reporting(callback: Progress) -> Iterator[None]:
    """Body reads on this thread report to ``callback`` while the block runs."""
    previous = getattr(_local, "callback", None)
    _local.callback = callback
    try:
        yield
    finally:
        _local.callback = previous


def listener() -> Progress | None:
    """This thread's callback, or None (then read in one step: nobody waits on parts)."""
    return getattr(_local, "callback", None)


def fill(readinto: Callable[[memoryview], int], buffer: memoryview) -> int:
    """Read a body into ``buffer`` with ``readinto`` until it is full or the body ends (the bytes
    read), reporting progress every ``PIECE`` bytes when this thread has a listener."""
    report = listener()
    pos, total = 0, len(buffer)
    while pos < total:
        got = readinto(buffer[pos:] if report is None else buffer[pos : pos + PIECE])
        if not got:
            break
        pos += got
        if report is not None:
            report(buffer, pos)
    return pos
