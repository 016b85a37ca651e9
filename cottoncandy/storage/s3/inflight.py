"""How many small requests (a folder's HEADs) to keep in flight: as many as make answers come faster.

Why: with a fixed 16 HEADs in flight, a folder's HEADs ran at 16 per round trip. On loopback that
is already all the CPU can do, but an endpoint 20 ms away answered 800 HEADs a second when it could
serve several times more (20,000 arrays: 25 s of waiting). The right number is the bandwidth-delay
product of the endpoint, unknown in advance, so it is found by climbing: every round (twice the
window's answers) measures the answer rate, and the window doubles while a doubling raised the rate
by at least ``GAIN``; the first doubling that did not pays off is taken back and the window stays
(``settled``). Bounded by ``limit`` sockets. What a window learnt is where the next batch starts
(``learned``), still free to grow again when the network got faster.
"""

from __future__ import annotations

import time

#: a doubling must raise the answer rate by this factor to be kept
GAIN = 1.2


class InFlightWindow:
    def __init__(self, start: int = 16, limit: int = 128):
        self.limit = max(1, limit)
        self.size = max(1, min(start, self.limit))
        self.settled = False
        self._best = 0.0
        self._began = time.monotonic()
        self._answers = 0

    def answered(self, now: float | None = None) -> None:
        """One answer came in (which may end a round and change ``size``)."""
        self._answers += 1
        if self.settled or self._answers < 2 * self.size:
            return
        now = time.monotonic() if now is None else now
        rate = self._answers / max(now - self._began, 1e-6)
        if rate >= self._best * GAIN and self.size < self.limit:
            self._best = rate
            self.size = min(self.limit, self.size * 2)
        else:
            if rate < self._best * GAIN and self._best:
                self.size = max(1, self.size // 2)  # the last doubling bought nothing: give it back
            self.settled = True
        self._began, self._answers = now, 0
