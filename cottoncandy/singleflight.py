"""One call in flight per key: concurrent callers asking for the same thing share one fetch.

The mount asks for the same item from many threads at once (the kernel's readahead and the reader
want the same block; ``ls -l`` and a glob want the same folder; two readers open the same
compressed array). Each item must cost one request or one decode however many threads want it,
so the first caller runs the call and the others wait for its outcome. Block cache, decoded-array
cache and folder listings all need this; it is written once here.

The table holds a key only while its call runs, so it never grows with the number of items seen
(a table of per-key locks that is never pruned does). A failure is not remembered: it reaches the
callers waiting at that moment (or, with ``share_failure=False``, lets each of them try on its own)
and the next caller starts a new call.

Waiting for another caller's call goes through ``waits``: a FUSE request gives it up when its reader
is signalled or the mount stops, and the call goes on for the others. With ``offload``, the caller's
own call runs on a helper thread when the caller may give up (a folder's LIST: a request must not
sit in a socket read it cannot leave); the call then settles its key whatever the caller does.

This module is a leaf (it imports nothing of the project but the leaf ``waits``): the namespace,
below the caches in the layering, uses it as well as they do.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

from . import waits

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Calls in flight, keyed; ``lock`` guards the table (pass a cache's own lock to make "is it
    cached?" and "is it being fetched?" one step, with no window between them)."""

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self.lock = lock if lock is not None else threading.Lock()
        self._calls: dict[K, Future[V]] = {}

    def __len__(self) -> int:
        """How many calls are in flight (0 once every caller has returned)."""
        return len(self._calls)

    # --- primitives, for callers that claim several keys at once; call with ``lock`` held --------
    def waiting(self, key: K) -> Future[V] | None:
        """The outcome of the call in flight for ``key``, or ``None``."""
        return self._calls.get(key)

    def claim(self, key: K) -> Future[V]:
        """Make the caller the one running ``key``'s call. It must ``release`` the key and settle
        the returned future (result or exception), whatever happens."""
        if key in self._calls:
            raise RuntimeError(f"a call for {key!r} is already in flight")
        future: Future[V] = Future()
        self._calls[key] = future
        return future

    def release(self, key: K) -> None:
        """Forget ``key``'s call: the next caller starts a new one."""
        self._calls.pop(key, None)

    # --- the usual way ---------------------------------------------------------------------------
    def run(self, key: K, call: Callable[[], V], *, cached: Callable[[], V | None] | None = None,
            keep: Callable[[V], None] | None = None, share_failure: bool = True, offload: bool = False) -> V:
        """``call()``'s result, run once for all the callers that ask for ``key`` meanwhile.

        ``cached`` (called with ``lock`` held) answers without a call when it returns non-``None``;
        ``keep`` (called with ``lock`` held, before the key is released) stores the result, so no
        caller finds the key neither cached nor in flight and fetches it twice. A failure of the
        call is raised to every caller waiting for it; with ``share_failure=False`` a waiter whose
        call failed (an ``Exception``) tries again instead, and raises only its own failure: for
        callers that must not fail for another's reason (a read waiting on a prefetch).
        ``offload``: a caller that may give up its waits (``waits.active``) runs its call on a
        helper thread and waits for it as for another's; the call settles the key either way."""
        while True:
            with self.lock:
                if cached is not None:
                    hit = cached()
                    if hit is not None:
                        return hit
                pending = self._calls.get(key)
                if pending is None:
                    mine = self.claim(key)
            if pending is not None:
                waits.done(pending)  # a caller that gives up raises here, not the call's error
                if share_failure:
                    return pending.result()
                try:
                    return pending.result()
                except Exception:
                    continue  # the other call failed: try ourselves (and raise our own error)
            if offload and waits.active():
                waits.offload(functools.partial(self._settle, key, mine, call, keep), "cc-call")
                return mine.result()
            return self._settle(key, mine, call, keep)

    def _settle(self, key: K, mine: Future[V], call: Callable[[], V], keep: Callable[[V], None] | None) -> V:
        """Run the claimed ``key``'s call, keep its result, release the key and settle ``mine``."""
        try:
            value = call()
            with self.lock:
                try:
                    if keep is not None:
                        keep(value)
                finally:
                    self.release(key)
        except BaseException as exc:
            with self.lock:
                self.release(key)
            mine.set_exception(exc)
            raise
        mine.set_result(value)
        return value
