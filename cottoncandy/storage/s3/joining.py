"""A longer read timeout for the calls during which the server joins or copies data before it answers.

Why: ``CompleteMultipartUpload`` joins every part of an upload, and ``UploadPartCopy`` copies up to
5 GiB inside the server, before the first byte of the answer. AWS documents that a Complete may take
several minutes, and keeps the connection alive meanwhile by sending whitespace, so the ordinary read
timeout (seconds without a byte, ``store.READ_TIMEOUT``) never runs out there; a server that sends
nothing while it works (the local moto server joining 1 GiB under load) outlasts it, and botocore
then abandons an answer that was coming and asks again. These two calls read their answer with
``store.JOINING_READ_TIMEOUT`` instead: still a bound (each attempt gives up after that long without
a byte, and botocore's attempts are counted), only a longer one.

How: botocore (the locked 1.44 does) reads a per-request ``read_timeout`` from the request's context
(``URLLib3Session._get_request_timeout``); one ``before-call`` handler per client puts the seconds
``reading_for`` set on this thread there. Only the calls made inside ``reading_for`` get it, on the
thread that makes them (botocore's retries run on it too). An older botocore has no such override:
the calls keep the ordinary read timeout, and one warning says so (``fastpaths.fell_back``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ... import fastpaths

_local = threading.local()


def install(client: Any) -> None:
    """Have ``client`` honour ``reading_for`` (once per client; a client without events is left as it is)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:
        events.register("before-call.s3", _give, unique_id="cottoncandy-joining-timeout")


def supported() -> bool:
    """Whether this botocore honours a per-request read timeout (else ``reading_for`` changes nothing)."""
    try:
        fastpaths.private("botocore.httpsession", "URLLib3Session", "_get_request_timeout")
    except fastpaths.Unavailable as exc:
        fastpaths.fell_back("joining-read-timeout", str(exc), "the ordinary read timeout for Complete and "
                                                             "UploadPartCopy")
        return False
    return True


@contextlib.contextmanager
def reading_for(seconds: float) -> Iterator[None]:
    """The botocore calls made on this thread inside read their answers with ``seconds`` as their
    read timeout (seconds without a byte)."""
    previous = getattr(_local, "seconds", None)
    _local.seconds = seconds
    try:
        yield
    finally:
        _local.seconds = previous


def _give(context: dict[str, Any] | None = None, **_: Any) -> None:
    seconds = getattr(_local, "seconds", None)
    if seconds is not None and context is not None:
        context["read_timeout"] = seconds
