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


class ShortReadError(OSError):
    """The server sent fewer bytes than the range asked for; retried like a dropped connection."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``max_attempts`` counts the first try."""

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0

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
        while True:
            try:
                return fn()
            except Exception as exc:
                attempt += 1
                if attempt >= self.max_attempts or not self.is_retryable(exc):
                    raise
                pause = self.delay(attempt)
                log.debug("retrying %s after %s (attempt %d, %.2fs)", describe, type(exc).__name__,
                          attempt, pause)
                time.sleep(pause)
