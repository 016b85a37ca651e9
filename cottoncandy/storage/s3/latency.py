"""When is an answer late: a small tracker of recent first-byte latencies.

S3's performance guidelines advise sending a second request for a read that is late compared
with the latencies seen so far, and taking the first answer ("hedged" requests, as in "The Tail
at Scale"): a slow answer is usually one slow server or connection, not a slow object. Late means
``FACTOR`` times the 95th percentile of the last ``WINDOW`` answers, within [``FLOOR``, ``CAP``]
seconds, so that loopback's sub-millisecond answers do not hedge every scheduling hiccup and a
slow network does not hedge everything.
"""

from __future__ import annotations

import threading
from collections import deque

WINDOW = 256
FACTOR = 4.0
FLOOR = 0.5
CAP = 2.0
DEFAULT = 1.0  # until MIN_SAMPLES answers were seen
MIN_SAMPLES = 16


class LatencyTracker:
    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        self._cached: float | None = None

    def record(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)
            if len(self._samples) % 16 == 0:
                self._cached = None  # recompute now and then, not on every answer

    def hedge_after(self) -> float:
        """Seconds after which an answer that has not started is late."""
        with self._lock:
            if len(self._samples) < MIN_SAMPLES:
                return DEFAULT
            if self._cached is None:
                ordered = sorted(self._samples)
                p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
                self._cached = min(CAP, max(FLOOR, FACTOR * p95))
            return self._cached
