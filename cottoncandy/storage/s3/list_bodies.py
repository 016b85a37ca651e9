"""The boto3 path reads a LIST answer no further than a page can be long.

botocore reads every answer of a non-streaming operation whole into memory before any handler sees
it (``AWSResponse.content``), so ``answers.parse_list_page``'s length check came after an endpoint's
60 MB "page" of a million entries had been read (issue 24 item 1: 802 MB daemons). The signed path
stops reading at ``answers.page_bytes(max_keys)`` (``s3.signed``); here the client's own HTTP session
(its proxies, TLS settings and timeouts) sends ListObjects/ListObjectsV2/ListObjectVersions as a
stream and reads at most that many bytes: a ``Content-Length`` above it, or a body that goes on past
it, is ``answers.BadAnswer`` naming the listing, its endpoint and the limit, and the connection is
closed rather than drained. botocore does not retry it (not a connection error); a body that breaks
while read here, or ends before its ``Content-Length`` (botocore parsed what came), is botocore's own
``ConnectionClosedError``/``ReadTimeoutError``, retried as botocore's. The answer is a complete
``AWSResponse``, so everything after (botocore's parsers, ``answers.check_boto_answer``) is unchanged.

How a listing is told from other requests: a ``before-send`` handler marks the request and answers
nothing, so any other ``before-send`` responder (moto's in-process ``mock_aws``, a user's stubs) still
answers first; only a request that reaches the session is capped. (A handler that sent the request
itself, as this module once did, answered before such responders and sent their requests to the network.)

The client's HTTP session is a private name (fenced by ``fastpaths.private``): without it, bodies are
read as botocore reads them and checked after (one debug line).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, HTTPClientError, ReadTimeoutError
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError

from ... import fastpaths
from ...printable import without_userinfo
from ..answers import MAX_KEYS, BadAnswer, expected_where, page_bytes

log = logging.getLogger(__name__)
#: botocore's names of the listing operations whose answers are capped
OPERATIONS = ("ListObjectsV2", "ListObjects", "ListObjectVersions")
_READ = 64 * 1024


class _Body:
    """What ``AWSResponse`` reads a body from (``stream()``), holding bytes already read."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


#: the attribute a listing request carries to the session (set by the ``before-send`` mark)
_MARK = "cottoncandy_capped_listing"


def _mark(request: Any, **_: Any) -> None:
    setattr(request, _MARK, True)


def cap_list_bodies(client: Any) -> None:
    """Install the cap on ``client``'s listing operations (see the module); idempotent."""
    try:
        session = fastpaths.private(client, "_endpoint", "http_session")
    except fastpaths.Unavailable as exc:
        log.debug("LIST bodies of boto3 are read whole, then checked (%s)", exc)
        return
    if getattr(session, _MARK, False):
        return
    send = session.send

    def send_or_cap(request: Any) -> Any:
        return send_capped(send, request) if getattr(request, _MARK, False) else send(request)

    session.send = send_or_cap
    setattr(session, _MARK, True)
    for operation in OPERATIONS:
        client.meta.events.register(f"before-send.s3.{operation}", _mark,
                                    unique_id=f"cottoncandy-list-body-cap-{operation}")


def _listing_of(url: str) -> tuple[int, str]:
    """(max-keys asked, how messages name the listing) from a LIST request's URL."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    asked = (query.get("max-keys") or [""])[0]
    max_keys = int(asked) if asked.isascii() and asked.isdigit() and len(asked) < 10 else MAX_KEYS
    where = expected_where()
    if where is None:
        prefix = (query.get("prefix") or [""])[0]  # the bucket is in the path or the host name (virtual)
        where = f"LIST of prefix {prefix!r} at {without_userinfo(f'{parts.scheme}://{parts.netloc}{parts.path}')}"
    return max(1, min(max_keys, MAX_KEYS)), where


def send_capped(send: Callable[[Any], Any], request: Any) -> AWSResponse:
    """``request`` sent by ``send`` (the session's); its answer's body read up to a page's length (see the module)."""
    request.stream_output = True  # the session leaves the body to us (else it reads it whole at once)
    response = send(request)
    max_keys, where = _listing_of(request.url)
    limit = page_bytes(max_keys)
    raw = response.raw
    length = response.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:
        _close(raw)
        raise BadAnswer(f"{where}: an answer of {int(length)} bytes (Content-Length), where a page takes at most "
                        f"{limit} bytes; the endpoint does not answer as S3 does")
    chunks: list[bytes] = []
    got = 0
    try:
        while got <= limit:
            chunk = raw.read(min(_READ, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except URLLib3ReadTimeoutError as exc:  # as botocore's session says them: retried as its own would be
        raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
    except ProtocolError as exc:
        raise ConnectionClosedError(error=exc, request=request, endpoint_url=request.url) from exc
    except (OSError, ValueError) as exc:
        raise HTTPClientError(error=exc) from exc
    if length.isascii() and length.isdigit() and got < int(length):  # cut off: botocore would parse half a page
        _close(raw)
        cut = ProtocolError(f"the answer ended after {got} of its {int(length)} bytes (Content-Length)")
        raise ConnectionClosedError(error=cut, request=request, endpoint_url=request.url)
    if got > limit:
        _close(raw)
        raise BadAnswer(f"{where}: an answer of more than {limit} bytes, where a page takes at most {limit} bytes; "
                        "the endpoint does not answer as S3 does")
    return AWSResponse(response.url, response.status_code, response.headers, _Body(b"".join(chunks)))


def _close(raw: Any) -> None:
    """Give up the connection of an answer not read to its end (never drain it)."""
    try:
        raw.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is dropped either way
        log.debug("closing a capped LIST answer failed", exc_info=True)
