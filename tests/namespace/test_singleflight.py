"""The one "one call in flight per key" helper used by the block cache, the decoded-array cache and
the namespace's folder listings.

Waiters are counted, not timed: the table's lock counts how often it was taken, and the call in
flight waits until every caller has taken it (each has then seen the call and will wait for it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cottoncandy.singleflight import SingleFlight

CALLERS = 8
HANG = 30.0  # seconds before a test that would otherwise hang gives up (never reached when it passes)


class CountingLock:
    """A lock that counts acquisitions, so a test can wait until N callers have looked at the table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = threading.Condition()
        self.taken = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        with self._seen:
            self.taken += 1
            self._seen.notify_all()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait_taken(self, n: int) -> None:
        with self._seen:
            assert self._seen.wait_for(lambda: self.taken >= n, timeout=HANG), f"only {self.taken} of {n}"


def _together(n: int, fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in ``n`` threads; each one's result or exception."""

    def one() -> Any:
        try:
            return fn()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: one(), range(n)))


def test_concurrent_callers_of_one_key_share_one_call() -> None:
    lock = CountingLock()
    flight: SingleFlight[str, bytes] = SingleFlight(lock)  # type: ignore[arg-type]
    calls = []

    def call() -> bytes:
        calls.append(1)
        lock.wait_taken(CALLERS)  # every caller has seen this call in flight
        return b"value"

    results = _together(CALLERS, lambda: flight.run("k", call))
    assert results == [b"value"] * CALLERS and len(calls) == 1
    assert len(flight) == 0


def test_a_failure_reaches_every_waiter_and_is_not_remembered() -> None:
    lock = CountingLock()
    flight: SingleFlight[str, bytes] = SingleFlight(lock)  # type: ignore[arg-type]
    calls = []
    boom = OSError(5, "the store failed")

    def failing() -> bytes:
        calls.append(1)
        lock.wait_taken(CALLERS)
        raise boom

    results = _together(CALLERS, lambda: flight.run("k", failing))
    assert all(r is boom for r in results) and len(calls) == 1
    assert len(flight) == 0
    assert flight.run("k", lambda: b"now") == b"now"  # the next caller asks again
    assert len(flight) == 0


def test_without_shared_failure_a_waiter_tries_for_itself() -> None:
    lock = CountingLock()
    flight: SingleFlight[str, bytes] = SingleFlight(lock)  # type: ignore[arg-type]
    calls = []

    def first_fails() -> bytes:
        calls.append(1)
        if len(calls) == 1:
            lock.wait_taken(CALLERS)
            raise OSError(5, "a prefetch failed")
        return b"mine"

    results = _together(CALLERS, lambda: flight.run("k", first_fails, share_failure=False))
    assert sum(isinstance(r, OSError) for r in results) == 1  # only the caller whose call it was
    assert results.count(b"mine") == CALLERS - 1
    assert 2 <= len(calls) <= CALLERS and len(flight) == 0


def test_different_keys_run_in_parallel() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    started = {k: threading.Event() for k in "ab"}

    def call(key: str, other: str) -> str:
        started[key].set()
        assert started[other].wait(HANG), f"{key} ran alone: {other} never started"  # serialised: never set
        return key

    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(flight.run, "a", lambda: call("a", "b"))
        b = pool.submit(flight.run, "b", lambda: call("b", "a"))
        assert (a.result(), b.result()) == ("a", "b")
    assert len(flight) == 0


def test_cached_answers_and_keep_stores_before_the_key_is_released() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    store: dict[str, str] = {}
    seen_in_flight = []

    def keep(value: str) -> None:
        seen_in_flight.append(flight.waiting("k") is not None)  # still claimed: no gap for a second fetch
        store["k"] = value

    assert flight.run("k", lambda: "v", cached=lambda: store.get("k"), keep=keep) == "v"
    assert flight.run("k", lambda: pytest.fail("fetched again"), cached=lambda: store.get("k")) == "v"
    assert seen_in_flight == [True] and len(flight) == 0


def test_a_failing_keep_releases_the_key_and_fails_the_call() -> None:
    flight: SingleFlight[str, str] = SingleFlight()

    def keep(value: str) -> None:
        raise MemoryError("no room")

    with pytest.raises(MemoryError):
        flight.run("k", lambda: "v", keep=keep)
    assert len(flight) == 0 and flight.run("k", lambda: "w") == "w"


def test_claim_refuses_a_key_in_flight() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    with flight.lock:
        future = flight.claim("k")
        with pytest.raises(RuntimeError, match="already in flight"):
            flight.claim("k")
        assert flight.waiting("k") is future
        flight.release("k")
    assert len(flight) == 0
