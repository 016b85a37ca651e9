"""Retry policy as data, applied by one loop.

Throttling, 5xx answers, timeouts and dropped connections are retried with capped, jittered
exponential backoff; everything else fails at once. Errors are matched on S3 error codes and
exception types, never on message text (s3fs's approach).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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


class ShortReadError(OSError):
    """The server sent fewer bytes than the range asked for; retried like a dropped connection."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``max_attempts`` counts the first try."""

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0
    #: seconds to keep retrying even after ``max_attempts`` (an outage must not outlast a clean-up)
    patience: float = 0.0

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, ClientError):
            return error_code(exc) in RETRYABLE_CODES
        return isinstance(exc, (*RETRYABLE_EXCEPTIONS, ShortReadError))

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


#: clean-up after a failed write (aborting a multipart upload, removing parts already stored): it
#: runs when the endpoint has just failed, so it keeps trying for 30 s, not the few seconds a
#: request whose caller is waiting gets
CLEANUP_RETRY = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=4.0, patience=30.0)
