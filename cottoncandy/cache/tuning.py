"""How far ahead a sequential stream reads, and in what runs, from what its own fetches show.

Why: fixed 8 MiB runs and a 64 MiB window suit one network (about 20 ms to the first byte and
100 MB/s per connection: 8 runs in flight match 8 parallel ranged GETs). On loopback they hold
memory for nothing; where the first byte takes longer, each GET spends more of its time waiting,
and 8 runs in flight no longer keep the link busy (the bandwidth-delay product grew).

The model: a ranged GET of ``n`` bytes takes ``d = L + n / b`` (first-byte latency ``L``, throughput
``b`` of one connection). ``observe`` records the stream's fetches (bytes, seconds); ``L`` and ``b``
are fitted by least squares over the last few, which differ in size as a stream's window grows
(a first block, then runs of growing size); with sizes too alike to fit, ``b`` is refreshed from the
last known ``L``. From them:

* **run size**: the smallest power-of-two MiB (``min_run`` .. ``max_run``) with ``n >= 4 L b``, so
  the wait for the first byte is at most a fifth of each GET;
* **runs in flight**: enough that the stream gets ``streams`` connections' worth of data at 80%
  efficiency, ``k = ceil(streams * 0.8 / e)`` with ``e = (n / b) / (L + n / b)``, at most
  ``connections`` (the fetch threads; ``streams`` is that many unless told otherwise);
* **window** = ``k * n``: the bytes the stream keeps in flight, i.e. the target throughput times the
  time a run is in flight. At most ``max_window``: when that binds, runs are halved (down to
  ``min_run``) before runs in flight are given up, since more, smaller GETs hide latency better.

Floors, measured: the model knows the wire (latency, throughput), not the work each request costs
both ends, which on a fast link is what bounds a stream. So runs are at least ``min_run`` (8 MiB,
the mount's ``prefetch_run``) and the window at least the configured one: the plan only ever adds to
them, for links whose bandwidth-delay product asks for more. The stream aims at all the fetch
threads' worth of connections, not at eight: while a reader waits on one run, the runs after it that
have arrived hold the window without a GET in flight, and more, smaller runs lose less to that. 1
GiB cold read on this 2-core machine, ratio to 8 x 8 MiB ranged GETs from a new process, medians of
5 paired rounds: 20 ms to the first byte and 100 MB/s per connection, 0.79-0.85 with 8 connections'
worth (it planned runs of 16 MiB, 128 MiB ahead) against 0.94-0.99 with 16 (runs of 8 MiB, 128 MiB
ahead); 80 ms, 0.94 -> 1.08; loopback, 0.48-0.51 -> 0.52-0.63 (runs of 4 MiB were the loopback floor
before: 8 MiB is cheaper per byte at both ends).

Until the first estimate the configured run size and window are used. The window is further bounded
by the memory budget (``MemoryBudget.reserve_ahead``), shared by all streams: the plan is a wish, the
budget decides. Pure arithmetic on the numbers given, so tests feed it deterministic observations.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

MiB = 2**20


@dataclass(frozen=True)
class Plan:
    run: int  # bytes per ranged GET ahead of the reader
    window: int  # bytes ahead of the reader in flight or fetched
    latency: float | None = None  # seconds to the first byte (estimated)
    throughput: float | None = None  # bytes per second of one connection (estimated)


class StreamTuning:
    def __init__(self, run_size: int = 8 * MiB, max_window: int = 64 * MiB, block_size: int = 256 * 1024,
                 min_run: int = 8 * MiB, max_run: int = 32 * MiB, streams: int | None = None, connections: int = 16,
                 history: int = 16, initial_window: int | None = None):
        self.block_size = block_size
        self.min_run = max(block_size, min_run)
        self.max_run = max(self.min_run, max_run)
        self.max_window = max(block_size, max_window)
        self.connections = max(1, connections)
        self.streams = streams or self.connections
        self._lock = threading.Lock()
        self._seen: deque[tuple[int, float]] = deque(maxlen=history)
        window = min(self.max_window, initial_window or self.max_window)
        self.min_window = window  # the configured window: a plan never keeps less ahead (see the module)
        self._plan = Plan(run=min(run_size, window), window=window)

    @property
    def plan(self) -> Plan:
        return self._plan

    def observe(self, nbytes: int, seconds: float) -> Plan:
        """One fetch of ``nbytes`` took ``seconds``; the plan from everything seen so far."""
        if nbytes <= 0 or seconds <= 0:
            return self._plan
        with self._lock:
            self._seen.append((nbytes, seconds))
            latency, throughput = self._estimate()
            if latency is not None and throughput is not None:
                self._plan = self.plan_for(latency, throughput)
            return self._plan

    def _estimate(self) -> tuple[float | None, float | None]:
        seen = list(self._seen)
        latency = self._plan.latency
        if len(seen) >= 2:
            sizes = [n for n, _ in seen]
            if max(sizes) >= 2 * min(sizes):  # sizes apart enough to tell latency from throughput
                mean_n = sum(sizes) / len(seen)
                mean_d = sum(d for _, d in seen) / len(seen)
                var = sum((n - mean_n) ** 2 for n in sizes)
                cov = sum((n - mean_n) * (d - mean_d) for n, d in seen)
                slope = cov / var
                shortest = min(d for _, d in seen)
                if slope > 0 and mean_d - slope * mean_n < shortest:  # d = L + n / b: L is below every d
                    return max(0.0, mean_d - slope * mean_n), 1.0 / slope
        if latency is not None:  # sizes alike (or a fit that makes no sense): refresh the throughput
            n, d = seen[-1]
            latency = min(latency, d / 2)  # the link changed: a latency above the fetch times is stale
            return latency, n / (d - latency)
        return None, None

    def plan_for(self, latency: float, throughput: float) -> Plan:
        """The run size and window for a connection of that latency and throughput (see the module)."""
        want = 4 * latency * throughput
        run = self.min_run
        while run < want and run < self.max_run:
            run *= 2
        run = min(run, self.max_run)

        def runs_in_flight(size: int) -> int:
            transfer = size / throughput
            efficiency = transfer / (latency + transfer)
            return max(2, min(self.connections, math.ceil(self.streams * 0.8 / efficiency - 1e-9)))

        k = runs_in_flight(run)
        while k * run > self.max_window and run > self.min_run:
            run //= 2
            k = runs_in_flight(run)
        k = max(1, min(k, self.max_window // run))
        run = -(-run // self.block_size) * self.block_size
        window = min(self.max_window, max(k * run, min(self.min_window, self.connections * run)))
        return Plan(run=run, window=window, latency=latency, throughput=throughput)
