"""What is retried where: botocore retries requests; this module retries what botocore cannot.

Requests are retried by botocore itself, in its ``standard`` (or ``adaptive``) mode, as many times
as ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE``, the profile's ``max_attempts``/``retry_mode`` in
``~/.aws/config`` or cottoncandy's own settings say (``s3.retry_config``). Two things are left to
the loop here (``RetryPolicy.call``), because botocore has returned before they fail:

- a body that breaks midway (a reset, a truncated or stalled body after the answer's head came):
  ``BrokenBody``; the whole ranged GET is asked again (or the stream resumes where it broke);
- clean-up after a failed write (aborting a multipart upload, deleting what was stored), which
  keeps asking for ``CLEANUP_RETRY.patience`` seconds after botocore's attempts ran out: the
  endpoint has just failed, and an upload left behind is billed.

``AttemptLog`` lets a caller see each attempt botocore made out of sight (its ``needs-retry``
event), so "the server may have stored it before its answer was lost" is still known. Errors are
matched on S3 error codes and exception types, never on message text (s3fs's approach).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from .errors import error_code

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)

RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    IncompleteReadError,
    ResponseStreamingError,
    ProtocolError,
    ConnectionError,
    TimeoutError,
)


#: answers after which a write may or may not have happened (S3 may have acted before failing)
MAYBE_DONE_CODES = frozenset({"InternalError", "500", "502", "504", "RequestTimeout"})
#: transport failures that happen before a request is sent: the server never saw it
NOT_SENT_EXCEPTIONS: tuple[type[BaseException], ...] = (EndpointConnectionError, ConnectTimeoutError,
                                                        ConnectionRefusedError)


def may_have_taken_effect(exc: BaseException) -> bool:
    """Whether the server may have carried out a request that failed with ``exc``: its answer was
    lost (a reset, a timeout, a broken body) or it said it failed inside (500). A refused
    connection or an answer such as 503 SlowDown or 4xx means it did nothing."""
    if isinstance(exc, ClientError):
        return error_code(exc) in MAYBE_DONE_CODES
    if isinstance(exc, NOT_SENT_EXCEPTIONS):
        return False
    return isinstance(exc, RETRYABLE_EXCEPTIONS)


def attempt_may_have_taken_effect(response: Any = None, caught_exception: BaseException | None = None) -> bool:
    """``may_have_taken_effect`` for one attempt as botocore's ``needs-retry`` event describes it:
    ``response`` is ``(http_response, parsed)``, or ``caught_exception`` what the transport raised."""
    if caught_exception is not None:
        return may_have_taken_effect(caught_exception)
    if not response:
        return False
    http, parsed = response
    status = int(getattr(http, "status_code", 200) or 200)
    if status < 300:
        return False
    code = str((parsed or {}).get("Error", {}).get("Code") or "")
    return code in MAYBE_DONE_CODES or str(status) in MAYBE_DONE_CODES


class AttemptLog:
    """Whether each attempt of the botocore calls made on this thread may have taken effect.

    ``install`` registers one observer on a client's ``needs-retry`` event (emitted after every
    attempt, the last one included; it returns nothing, so botocore's own retry decision stands);
    ``watching()`` collects, for the calls made inside it, one boolean per attempt.
    """

    _local = threading.local()

    @classmethod
    def install(cls, client: Any) -> None:
        client.meta.events.register("needs-retry.s3", cls._observe, unique_id="cottoncandy-attempt-log")

    @classmethod
    def _observe(cls, response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
        watchers: list[list[bool]] = getattr(cls._local, "watchers", [])
        if watchers:
            outcome = attempt_may_have_taken_effect(response, caught_exception)
            for seen in watchers:
                seen.append(outcome)

    @classmethod
    def tell(cls, outcomes: list[bool]) -> None:
        """Add attempts seen on another thread (a call this thread offloaded) to this thread's watchers."""
        for seen in getattr(cls._local, "watchers", []):
            seen.extend(outcomes)

    @classmethod
    @contextlib.contextmanager
    def watching(cls) -> Iterator[list[bool]]:
        seen: list[bool] = []
        watchers = cls._local.__dict__.setdefault("watchers", [])
        watchers.append(seen)
        try:
            yield seen
        finally:  # by identity: two watchers' lists may be equal
            del watchers[next(i for i, w in enumerate(watchers) if w is seen)]


class BrokenBody(OSError):
    """An answer's body failed after botocore returned the answer (a reset, a stall, a truncation):
    botocore cannot retry that, so ``RetryPolicy`` asks again."""


class ShortReadError(BrokenBody):
    """The server sent fewer bytes than the range asked for; retried like a dropped connection."""


def is_body_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised while reading a body, is a passing transport failure."""
    return isinstance(exc, (BrokenBody, *RETRYABLE_EXCEPTIONS))


def reading_body(read: Callable[[], T]) -> T:
    """Run ``read`` (it reads an answer's body); a transport failure becomes ``BrokenBody``, which
    ``RetryPolicy`` retries even when it retries bodies only."""
    try:
        return read()
    except BrokenBody:
        raise
    except RETRYABLE_EXCEPTIONS as exc:
        raise BrokenBody(errno.EIO, f"the body broke ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``max_attempts`` counts the first try."""

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0
    #: seconds to keep retrying even after ``max_attempts`` (an outage must not outlast a clean-up)
    patience: float = 0.0
    #: retry ``BrokenBody`` only: the requests themselves were retried by botocore
    bodies_only: bool = False

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, BrokenBody):
            return True
        if self.bodies_only:
            return False
        if isinstance(exc, ClientError):
            return error_code(exc) in RETRYABLE_CODES
        return isinstance(exc, RETRYABLE_EXCEPTIONS)

    def delay(self, attempt: int) -> float:
        """Full-jitter backoff: uniform in [0, min(cap, base * 2**attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))

    def call(self, fn: Callable[[], T], describe: str) -> T:
        """Run ``fn`` until it succeeds, fails with a non-retryable error, or attempts run out."""
        attempt = 0
        started = time.monotonic()
        while True:
            try:
                return fn()
            except Exception as exc:
                attempt += 1
                spent = attempt >= self.max_attempts and time.monotonic() - started >= self.patience
                if spent or not self.is_retryable(exc):
                    raise
                pause = self.delay(attempt)
                log.debug("retrying %s after %s (attempt %d, %.2fs)", describe, type(exc).__name__,
                          attempt, pause)
                time.sleep(pause)


def body_policy(max_attempts: int) -> RetryPolicy:
    """How often a broken body is asked again: as often as botocore tries a request, with its
    standard mode's backoff (50 ms doubling, capped at 20 s)."""
    return RetryPolicy(max_attempts=max(1, max_attempts), base_delay=0.05, max_delay=20.0, bodies_only=True)


#: clean-up after a failed write (aborting a multipart upload, removing parts already stored): it
#: runs when the endpoint has just failed, so it keeps trying for 30 s (around botocore's own
#: attempts), not the few seconds a request whose caller is waiting gets
CLEANUP_RETRY = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=4.0, patience=30.0)
