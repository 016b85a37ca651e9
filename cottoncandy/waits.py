"""Waits a caller may give up: a FUSE request whose reader was signalled, a daemon that is stopping.

Why: once the kernel has handed a request to the daemon, the process that asked (``ls``, ``stat``)
waits for the answer in the kernel, and not even SIGKILL frees it before the daemon answers. So a
request that waits on a listing -- a big folder on a slow endpoint, or an endpoint that never ends
its listing -- must be able to stop waiting: when the kernel interrupts it (the reader got a signal:
answer ``EINTR``) and when the daemon is told to stop (SIGTERM, ``ccfs umount``: answer ``EIO``, so
libfuse's loop can end).

The thread serving a request installs a check (``install``/``restore``, or ``giving_up``) that
returns the errno to give up with, or ``None``. The waits of the core go through this module:
``done`` (another thread's call, a future), ``wait`` (a condition), ``happened`` (an event) and
``offload`` (work that would block this thread, a LIST, runs on a helper thread; the request may go,
the work goes on and its result serves the next caller). They wait in slices of ``SLICE`` seconds and
ask the check between them, raising ``GaveUp``. A thread without a check (the library, the daemon's own
workers) waits as before, and pays nothing.

A leaf: imports nothing of the project (``singleflight`` waits through it).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_for_futures
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

#: seconds between two looks at the check while waiting
SLICE = 0.1

#: returns the errno to give up with (``EINTR``, ``EIO``...), or ``None`` to keep waiting
Check = Callable[[], "int | None"]

_local = threading.local()


class GaveUp(OSError):
    """A wait was given up (its ``errno`` says why: ``EINTR`` interrupted, ``EIO`` stopping)."""


def install(check: Check | None) -> Check | None:
    """Make ``check`` this thread's; the one it replaces (give it to ``restore``)."""
    previous: Check | None = getattr(_local, "check", None)
    _local.check = check
    return previous


def restore(previous: Check | None) -> None:
    _local.check = previous


def current() -> Check | None:
    """This thread's check (``None``: its waits are not given up), to install on the threads
    that do this thread's work, so they give up when it would."""
    found: Check | None = getattr(_local, "check", None)
    return found


@contextmanager
def giving_up(check: Check | None) -> Iterator[None]:
    """While inside, this thread's waits give up when ``check`` says so."""
    previous = install(check)
    try:
        yield
    finally:
        restore(previous)


def active() -> bool:
    """Whether this thread's waits may be given up."""
    return getattr(_local, "check", None) is not None


def check() -> None:
    """Raise ``GaveUp`` if this thread's check says to give up."""
    current: Check | None = getattr(_local, "check", None)
    if current is None:
        return
    code = current()
    if code is not None:
        reason = {errno.EINTR: "interrupted (the reader was signalled)",
                  errno.EIO: "given up: the mount is stopping"}.get(code, f"given up ({errno.errorcode.get(code)})")
        raise GaveUp(code, reason)


def done(future: Future[T]) -> None:
    """Wait until ``future`` is settled (its outcome is the caller's to take), giving up as the
    check says."""
    if not active():
        future.exception()  # waits; the outcome is read by the caller
        return
    while True:
        check()
        try:
            future.exception(timeout=SLICE)
            return
        except FutureTimeout:
            continue


def first_settled(pending: set[Future[T]]) -> tuple[set[Future[T]], set[Future[T]]]:
    """``concurrent.futures.wait(pending, return_when=FIRST_COMPLETED)``: (settled, still pending),
    in slices that look at the check when this thread's waits may be given up."""
    while True:
        check()
        finished, rest = wait_for_futures(pending, timeout=SLICE if active() else None, return_when=FIRST_COMPLETED)
        if finished:
            return finished, rest


def wait(condition: threading.Condition, timeout: float | None = None) -> None:
    """``condition.wait(timeout)`` (the condition held), woken at least every ``SLICE`` seconds to
    look at the check. Callers re-test their predicate in a loop, as for any condition."""
    if not active():
        condition.wait(timeout)
        return
    check()
    condition.wait(SLICE if timeout is None else min(timeout, SLICE))
    check()


def happened(event: threading.Event) -> None:
    """``event.wait()``, in slices that look at the check when this thread's waits may be given up."""
    if not active():
        event.wait()
        return
    check()
    while not event.wait(SLICE):
        check()


def offload(call: Callable[[], T], name: str = "cc-offload") -> T:
    """``call()``: on a helper thread when this thread's waits may be given up (the result is waited
    for with ``done``; given up, the call goes on and settles whatever it was to settle); inline
    otherwise."""
    if not active():
        return call()
    future: Future[T] = Future()

    def run() -> None:
        try:
            value = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter
            future.set_exception(exc)
        else:
            future.set_result(value)

    threading.Thread(target=run, name=name, daemon=True).start()
    done(future)
    return future.result()
