"""HEAD and ranged GET without botocore's per-call machinery: folders of thousands of arrays,
and the mount's block reads.

A folder listing needs one HEAD per array (its name and size come from the metadata). Through
boto3 each HEAD costs about 1 ms of client CPU -- parameter validation, endpoint rules, event hooks,
response parsing -- so 2,000 arrays are 2 s of CPU before any server is asked. ``SignedRequests``
sends the same request for about a fifth of that: the URL boto3 would use (taken once from a
request boto3 builds and we catch before it is sent, so addressing style, region and endpoint
rules are botocore's), signed by botocore's
own S3 SigV4 signer with the client's credentials (refreshed as boto3 refreshes them), over one
kept-alive connection per thread with the client's TLS verification and timeouts (through a proxy,
over the client's own pool).

``head_many`` does a folder's worth from the calling thread: one selector over up to 16 kept-alive
non-blocking sockets, each carrying one request at a time. A thread per request (as a pool of
workers calling ``head``) spent as much CPU handing the GIL and futures around as on the HEADs.

``list_page`` is one ListObjectsV2 page, read by ``answers.parse_list_page`` (ElementTree, and the
checks every LIST answer gets): botocore's parser spent ~45 us per listed object (2,000 arrays: 90 ms
of CPU per listing). A 200 that is not a page is ``answers.BadAnswer``, not asked again of boto3.

``get_into`` is the mount's ranged GET: signed the same way (``Range`` and ``If-Match`` signed
with the rest), its body read by the socket straight into the caller's buffer. boto3's ~0.7 ms
of CPU per GET was half the latency of a random 16 KiB row read through the mount.

Only an unambiguous answer is taken: 200 gives an ``ObjectInfo``, a 206 (or 200) of exactly the
asked bytes -- and, when ``If-Match`` named a version, that version's ETag -- fills the buffer.
Anything else -- 403, 404, 412, 5xx, another ETag, a redirect, a connection error -- gives ``None``
and the caller asks boto3 again, so retries, error translation and messages stay in one place.
Each such refusal is counted by cause, and a run of them warned once (``refusals``).

The private botocore names this takes (the client's signer credentials and endpoint session, the
session's proxy and TLS settings, ``botocore.auth._host_from_url``) are looked up in ``for_client``
through ``cottoncandy.fastpaths``: if a botocore release renamed one, ``for_client`` gives ``None``
(the store uses plain boto3 calls) and one warning says so. ``s3.py`` imports this module lazily.
"""

from __future__ import annotations

import datetime
import functools
import http.client
import logging
import re
import secrets
import select
import selectors
import socket
import ssl
import threading
import time
import urllib.parse
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.utils import percent_encode

from ... import fastpaths
from .. import progress
from ..answers import BadAnswer, ListingGuard, ListPage, page_bytes, parse_list_page, same_etag
from ..base import ObjectInfo
from ..http_ranges import content_range_prefix, http_range
from ..tls import check_host
from . import refusals
from .inflight import InFlightWindow
from .latency import LatencyTracker
from .sigv4 import LeanSigner, query_string, verified

log = logging.getLogger(__name__)
_PROBE_KEY = "cottoncandy-probe"
_META = "x-amz-meta-"
_SCOPE = re.compile(r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request")


class _EmptyBody:
    """The raw body of the caught probe's stand-in response."""

    def stream(self, **_: Any) -> Any:
        return iter(())


class SignedRequests:
    """HEAD requests for one bucket, built and signed as boto3 would build and sign them."""

    def __init__(self, base_url: str, region: str, credentials: Any, http_session: Any,
                 timeouts: tuple[float, float] = (10.0, 60.0)):
        self._credentials = credentials
        self._http = http_session
        self._aim(base_url, region)
        self.moved_from: str | None = None  # the region a 301 moved these requests from (``follow_region``)
        self._moving = threading.Lock()
        self._tls: ssl.SSLContext | None = None  # built once, on the first https connection
        self._timeouts = timeouts
        self._local = threading.local()  # one kept-alive connection per thread
        self._idle: list[tuple[_Exchange, float]] = []  # head_many's kept-alive sockets, with when last used
        self._idle_lock = threading.Lock()
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()  # every thread's
        self.latency = LatencyTracker()  # first-byte latencies of GETs: when is an answer late
        self.head_window = HEAD_WINDOW_START  # HEADs in flight a batch starts with (what the last one learnt)
        self.hedged = 0  # GETs that got a second request
        self.abandoned = 0  # GET attempts given up (no answer in time, or a body that stalled)

    def _aim(self, base_url: str, region: str) -> None:
        """Send to ``base_url`` (it ends with "/": the key's escaped form follows), signed for ``region``."""
        self.base_url = base_url
        self._base_path = urllib.parse.urlsplit(base_url).path  # what a request line's path starts with
        # the Host the signature covers (no default port), as botocore derives it: the same for every key
        self._host_header = fastpaths.private("botocore.auth", "_host_from_url")(base_url)
        self.region = region
        self._signer = S3SigV4Auth(self._credentials, "s3", region)  # reads the credentials at each signing
        # the same headers for a fifth of the CPU, once shown equal to botocore's (``sigv4``)
        lean = LeanSigner(self._credentials, region, self._host_header)
        probe_url = self.url_for(_PROBE_KEY + "/ä b+c")
        try:
            self._lean: LeanSigner | None = lean if verified(lean, self._signer, probe_url,
                                                             urllib.parse.urlsplit(probe_url).path) else None
        except Exception as exc:  # no credentials yet, an unusual credentials object: botocore signs
            log.debug("lean SigV4 signer not used (%s)", type(exc).__name__)
            self._lean = None
        parts = urllib.parse.urlsplit(base_url)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname or "", parts.port
        proxies = getattr(fastpaths.private(self._http, "_proxy_config"), "proxy_url_for", None)
        # through a proxy, botocore's own pool does the sending
        self._direct = self._scheme in ("http", "https") and not (proxies and proxies(base_url))

    def relocate(self, region: str) -> None:
        """Sign for ``region`` from now on (the bucket is there), and on AWS send to its regional host."""
        if region == self.region or not _REGION_NAME.fullmatch(region):
            return
        old_host = self._host
        self.moved_from = self.region
        self._aim(regional_url(self.base_url, region), region)
        log.info("bucket of %s is in region %s: fast requests are signed for it", self.base_url, region)
        if self._host != old_host:
            self.close()  # kept-alive connections to the old host

    def follow_region(self, status: int, named: str | None, signed_for: str) -> bool:
        """Whether to ask again, signed for the bucket's region: a ``301`` (or S3's ``400`` for a wrong
        signing region) naming it in ``x-amz-bucket-region`` (``named``), for a request signed for
        ``signed_for``. Followed once per client (a second move is boto3's to follow): requests are
        re-signed for it from then on, where they used to be refused and asked again through boto3
        for the life of the process."""
        if status not in (301, 400) or not named or named == signed_for:
            return False
        if named == self.region:  # already moved there (by another request): this one was signed before
            return True
        with self._moving:
            if self.moved_from is not None:
                return named == self.region
            self.relocate(named)
        return named == self.region

    @classmethod
    def for_client(cls, client: Any, bucket: str, region: str | None = None) -> SignedRequests | None:
        """A ``SignedRequests`` using ``client``'s endpoint, credentials and pool; ``None`` if it cannot.

        boto3 builds one HEAD of a probe key, which is caught before it is sent: its URL and its
        signature's scope are the ones every later HEAD must have.
        """
        probe = f"{_PROBE_KEY}-{secrets.token_hex(8)}"
        seen: dict[str, str] = {}

        def catch(request: Any, **_: Any) -> AWSResponse | None:
            if not urllib.parse.urlsplit(request.url).path.endswith("/" + probe):
                return None  # another thread's request: let it go
            seen["url"] = request.url
            value = request.headers.get("Authorization", b"")
            seen["authorization"] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return AWSResponse(request.url, 200, {}, _EmptyBody())

        try:
            credentials = fastpaths.private(client, "_request_signer", "_credentials")
            http_session = fastpaths.private(client, "_endpoint", "http_session")
            for name in ("_verify", "_proxy_config"):  # read by ``_tls_context`` and ``__init__``
                fastpaths.private(http_session, name)
            fastpaths.private("botocore.auth", "_host_from_url")
        except fastpaths.Unavailable as exc:  # a botocore release renamed it: plain boto3 calls
            fastpaths.fell_back("botocore", str(exc), "plain boto3 calls")
            return None
        try:
            if credentials is None or not hasattr(http_session, "send"):
                return None
            client.meta.events.register_first("before-send.s3.HeadObject", catch)
            try:
                client.head_object(Bucket=bucket, Key=probe)
            finally:
                client.meta.events.unregister("before-send.s3.HeadObject", catch)
        except Exception as exc:  # no credentials, an unusual client: boto3 it is
            log.debug("signed HEAD unavailable for %s: %s", bucket, type(exc).__name__)
            return None
        scope = _SCOPE.match(seen.get("authorization", ""))
        url = urllib.parse.urlsplit(seen.get("url", ""))
        if scope is None or url.query or not url.path.endswith("/" + probe):
            return None  # SigV2, SigV4a, S3 Express or a query string: not what this signer does
        base = urllib.parse.urlunsplit((url.scheme, url.netloc, url.path[: -len(probe)], "", ""))
        config = client.meta.config
        timeouts = (float(config.connect_timeout or 10), float(config.read_timeout or 60))
        made = cls(base, scope.group(1), credentials, http_session, timeouts)
        if region:  # the bucket's region, learned before (a bucket check, a store's spec)
            made.relocate(region)
        return made

    def url_for(self, key: str) -> str:
        return self.base_url + _escaped(key)

    def signed_headers(self, key: str, method: str = "HEAD",
                       headers: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
        """The escaped path and the signed headers of a bodiless request for ``key`` (to send directly)."""
        path = self._base_path + _escaped(key)  # the path of url_for(key), without parsing it
        if self._lean is not None:
            return path, self._as_sent(self._lean.sign(method, path, headers or {}))
        return path, self._as_sent(_header_strings(self.signed_request(key, method, headers)))

    def _as_sent(self, signed: dict[str, str]) -> dict[str, str]:
        """``signed`` with the ``Host`` its signature covers (``_host_header``: botocore's, without a
        default port), sent as such: http.client would write its own, with ``:443`` for an https
        endpoint given as ``https://host:443`` (its connection class's default port is 80), and every
        fast request was refused 403 and asked again through boto3."""
        if any(name.lower() == "host" for name in signed):
            return signed
        return {"Host": self._host_header, **signed}

    def signed_request(self, key: str, method: str = "HEAD", headers: Mapping[str, str] | None = None) -> AWSRequest:
        request = AWSRequest(method=method, url=self.url_for(key), headers=dict(headers or {}))
        self._signer.add_auth(request)
        return request

    def list_dir(self, prefix: str, delimiter: str = "/", page_size: int = 1000,
                 where: str = "LIST") -> tuple[list[str], list[ObjectInfo]] | None:
        """(sub-prefixes, objects) of one level, every page of it, checked as ``S3Store``'s listings
        are (``answers.ListingGuard``); ``None`` when an answer was not a plain 200 (the caller lists
        through boto3, with its retries and errors)."""
        prefixes: list[str] = []
        objects: list[ObjectInfo] = []
        guard = ListingGuard(where)
        token: str | None = None
        while True:
            page = self.list_page(prefix, delimiter, token, page_size, where=where)
            if page is None:
                return None
            page = guard.page(page)
            prefixes += page.prefixes
            objects += page.objects
            token = guard.next_token(page)
            if token is None:
                return prefixes, objects

    def list_page(self, prefix: str, delimiter: str | None, token: str | None,
                  page_size: int = 1000, *, where: str = "LIST") -> ListPage | None:
        """One ListObjectsV2 page, read by ``answers.parse_list_page`` (``BadAnswer`` for a 200 that is
        not a page); ``None`` when the answer was not a 200 or the request failed (the caller asks
        boto3 for the same page, with the same token: S3's tokens are the server's)."""
        params = {"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": str(page_size)}
        if delimiter:
            params["delimiter"] = delimiter
        if token:
            params["continuation-token"] = token
        return self._signed_list(params, prefix, page_size, where)

    def list_page_after(self, prefix: str, start_after: str, max_keys: int,
                        where: str = "LIST") -> list[ObjectInfo] | None:
        """One page of one level's objects after ``start_after`` (one request); ``None`` as ``list_page``."""
        params = {"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": str(max_keys),
                  "delimiter": "/"}
        if start_after:
            params["start-after"] = start_after
        page = self._signed_list(params, prefix, max_keys, where)
        return None if page is None else page.objects

    def _signed_list(self, params: dict[str, str], prefix: str, max_keys: int, where: str) -> ListPage | None:
        """One ListObjectsV2 request: its checked page; ``None`` when the answer was not a 200 (or
        the request failed: the caller asks boto3). A 200 that is not a page is ``BadAnswer``, and
        a body longer than a page can be is not read past that length."""
        if not self._direct:
            return None
        signed_for = self.region
        try:
            url = f"{self.base_url}?{query_string(params)}"  # the one query, signed and sent as it is
            request = AWSRequest(method="GET", url=url)
            self._signer.add_auth(request)
            status, answer_headers, body = self._send_direct("GET", url, _header_strings(request),
                                                             limit=page_bytes(max_keys), where=where)
        except BadAnswer:
            raise
        except Exception as exc:
            refusals.failed(self, "LIST", exc)
            log.debug("signed LIST of %s (%s) not taken (%s); asking boto3", prefix, params.get("start-after", ""),
                      type(exc).__name__)
            return None
        refusals.answer(self, "LIST", status, answer_headers, body)
        if status != 200:
            if self.follow_region(status, answer_headers.get("x-amz-bucket-region"), signed_for):
                return self._signed_list(params, prefix, max_keys, where)
            return None
        return parse_list_page(body, max_keys=max_keys, prefix=prefix, where=where)

    def get_start(self, key: str, buffer: memoryview) -> tuple[ObjectInfo, int] | None:
        """The object's first bytes into ``buffer`` (fewer when it is shorter) and its info from the
        same answer's headers (``Content-Range`` gives the size); ``None`` as ``get_into`` gives False
        (an empty object, whose range S3 refuses, is one). Bounded and hedged as ``get_into``."""
        answer: dict[str, str] = {}
        if not self.get_into(key, 0, buffer, None, answer=answer):
            return None
        info = _object_info(key, answer)
        return (info, int(answer["bytes-read"])) if info is not None else None

    def get_into(self, key: str, start: int, buffer: memoryview, if_match: str | None = None,
                 answer: dict[str, str] | None = None) -> bool:
        """Fill ``buffer`` with the object's bytes from ``start``. ``False`` (and the buffer's
        contents undefined) when the answer was anything but exactly those bytes: a 412, a 404, a
        short body, a fault -- the caller asks boto3, which says what it is and retries.

        Slow answers are bounded here: an answer whose head is later than ``hedge_after`` (a
        multiple of the first-byte latencies seen so far) gets a second, hedged request on another
        connection and the first answer to arrive is read; no answer within ``GET_FIRST_BYTE``
        seconds, or a body that stops for ``GET_BETWEEN_CHUNKS`` seconds, is abandoned and asked
        again, ``GET_ATTEMPTS`` times in all; then ``TimeoutError``.
        """
        if not self._direct or len(buffer) == 0:
            return False
        for attempt in range(1, GET_ATTEMPTS + 1):
            try:
                return self._get_once(key, start, buffer, if_match, answer)
            except TimeoutError as exc:
                self._forget_connection()
                self.abandoned += 1
                log.debug("GET of %s bytes %d+%d abandoned (%s, attempt %d)", key, start, len(buffer), exc, attempt)
        raise TimeoutError(f"no timely answer in {GET_ATTEMPTS} attempts "
                           f"({GET_FIRST_BYTE:.0f} s to the first byte, {GET_BETWEEN_CHUNKS:.0f} s between chunks)")

    def _get_once(self, key: str, start: int, buffer: memoryview, if_match: str | None,
                  answer: dict[str, str] | None = None) -> bool:
        """One attempt of ``get_into``. With ``answer`` (a probe from byte 0): an object shorter than
        the buffer is taken too, and ``answer`` gets the headers (lower-cased; ``content-length`` set to
        the object's size, the bytes read being its own length)."""
        end = start + len(buffer)
        size = -1  # a probe's object size, once known
        headers = {"Range": http_range(start, end)}
        if if_match:
            headers["If-Match"] = if_match
        signed_for = self.region
        path, sent = self.signed_headers(key, "GET", headers)
        response: http.client.HTTPResponse | None = None  # the answer, once it came (``refusals``)
        kept = getattr(self._local, "conn", None) is not None  # a kept-alive connection, maybe dropped
        try:
            conn = getattr(self._local, "conn", None) or self._connect()
            conn.request("GET", path, headers=sent)
            began = time.monotonic()
            conn = self._first_answer(conn, path, sent, began)
            self.latency.record(time.monotonic() - began)
            assert conn.sock is not None
            conn.sock.settimeout(GET_BETWEEN_CHUNKS)  # each recv of the body: a stall is a timeout
            response = conn.getresponse()
            if self.follow_region(response.status, response.getheader("x-amz-bucket-region"), signed_for):
                raise _Moved(response.status)
            whole = response.status == 200 and start == 0
            if answer is not None:
                buffer, size = _probe_answer(response, len(buffer), buffer)
            # no Content-Length: a body sent ``Transfer-Encoding: chunked`` (or until close), whose
            # length is where it ends (http.client reads the chunks)
            length = response.getheader("Content-Length")
            exact = (length is None or length == str(len(buffer))) and (
                whole or (response.status == 206 and
                          (response.getheader("Content-Range") or "").startswith(
                              content_range_prefix(start, start + len(buffer)))))
            if not exact:
                raise _Refused(response.status)
            if if_match and not same_etag(if_match, response.getheader("ETag")):
                raise _Refused("another version than If-Match named")  # boto3's answer says ESTALE
            pos = _fill(response, buffer)
            if length is None:
                if pos == len(buffer) and response.read(1):  # also reads the last chunk: the connection is reusable
                    raise _Refused("a body longer than asked")
                if pos < len(buffer) and size < 0:  # a probe's whole object, shorter than the buffer
                    buffer = buffer[:pos]
                size = size if size >= 0 else pos
            if pos < len(buffer):
                raise _Refused("short body")
        except TimeoutError:
            raise
        except Exception as exc:
            if kept and response is None and _dropped(exc):  # the server had closed it (idle): anew
                self._forget_connection()
                return self._get_once(key, start, buffer, if_match, answer)
            refusals.failed(self, "GET", exc, response)
            self._forget_connection()
            if isinstance(exc, _Moved):  # signed for the bucket's region now: once more
                return self._get_once(key, start, buffer, if_match, answer)
            log.debug("signed GET of %s bytes [%d, %d) not taken (%s); asking boto3", key, start, end,
                      exc if isinstance(exc, _Refused) else type(exc).__name__)
            return False
        if response.will_close:
            self._forget_connection()
        else:
            conn.sock.settimeout(self._timeouts[1])
        if answer is not None:
            answer.clear()
            answer.update({name.lower(): value for name, value in response.getheaders()})
            answer["content-length"] = str(size)
            answer["bytes-read"] = str(len(buffer))
        refusals.answered()
        return True

    def _first_answer(self, conn: http.client.HTTPConnection, path: str, headers: dict[str, str],
                      began: float) -> http.client.HTTPConnection:
        """The connection whose answer starts first: ``conn``, or a hedged copy of the request sent
        on a new connection once ``conn`` is late (at most one hedge; the loser is closed)."""
        assert conn.sock is not None
        if _readable([conn.sock], self.latency.hedge_after()):
            return conn
        try:
            spare = self._connect(keep=False)
            spare.request("GET", path, headers=headers)
        except OSError:  # no hedge to be had: wait for the first request alone
            spare = None
        self.hedged += spare is not None
        socks = [conn.sock] + ([spare.sock] if spare is not None and spare.sock is not None else [])
        ready = _readable(socks, max(0.0, GET_FIRST_BYTE - (time.monotonic() - began)))
        if not ready:
            if spare is not None:
                spare.close()
            raise TimeoutError(f"no answer within {GET_FIRST_BYTE:.0f} s")
        if spare is None or ready[0] is conn.sock:
            if spare is not None:
                spare.close()
            return conn
        conn.close()  # the hedge won: it becomes this thread's connection
        self._local.conn = spare
        with self._idle_lock:
            self._connections.add(spare)
        return spare

    def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or ``None`` when the answer is anything but a plain 200."""
        signed_for = self.region
        try:
            if self._direct:
                path, sent = self.signed_headers(key)
                status, headers, _ = self._send_direct("HEAD", path, sent)
            else:
                response = self._http.send(self.signed_request(key).prepare())
                status, headers = response.status_code, response.headers
        except Exception as exc:
            refusals.failed(self, "HEAD", exc)
            log.debug("signed HEAD of %s failed (%s); asking boto3", key, type(exc).__name__)
            return None
        refusals.answer(self, "HEAD", status, headers)
        if status != 200:
            if self.follow_region(status, headers.get("x-amz-bucket-region"), signed_for):
                return self.head(key)
            return None
        return _object_info(key, {name.lower(): value for name, value in headers.items()})

    # --- many at once, from one thread ---------------------------------------------------------
    def head_many(self, keys: Iterable[str], connections: int | None = None) -> dict[str, ObjectInfo | None]:
        """``head`` for each key, up to ``connections`` requests in flight from this thread
        (``None``: as many as make answers come faster, see ``inflight``; a far endpoint gets many
        more than loopback, up to ``HEAD_WINDOW_LIMIT``).

        Keys whose answer is not a plain 200 (or whose connection failed) map to ``None``.
        """
        todo = deque(dict.fromkeys(keys))
        results: dict[str, ObjectInfo | None] = {}
        if not self._direct:
            for key in todo:
                results[key] = self.head(key)
            return results
        window = InFlightWindow(connections or self.head_window, connections or HEAD_WINDOW_LIMIT)
        selector = selectors.DefaultSelector()
        _, read_timeout = self._timeouts
        counted = 0  # this call's sockets in ``HEAD_SOCKETS``

        def fill() -> None:
            nonlocal counted
            while todo and len(selector.get_map()) < window.size and HEAD_SOCKETS.take(len(selector.get_map())):
                counted += 1
                self._start(selector, self._idle_connection(), todo, results)
            counted = HEAD_SOCKETS.settle(counted, len(selector.get_map()))

        try:
            fill()
            while selector.get_map():
                events = selector.select(read_timeout)
                if not events:  # nothing answered within the read timeout: boto3 gets those keys
                    for item in list(selector.get_map().values()):
                        refusals.failed(self, "HEAD", TimeoutError("no answer within the read timeout"))
                        results[item.data.key] = None
                        self._drop(selector, item.data)
                    break
                before = len(results)
                for item, _ in events:
                    self._receive(selector, item.data, todo, results)
                for _ in range(len(results) - before):
                    window.answered()
                fill()  # the window grew, or sockets were freed: more in flight
            if connections is None and window.settled:
                self.head_window = max(HEAD_WINDOW_START, window.size)
        finally:
            for item in list(selector.get_map().values()):
                self._drop(selector, item.data)
            selector.close()
            HEAD_SOCKETS.settle(counted, 0)
        for key in todo:  # connections kept failing: boto3 gets the rest
            results.setdefault(key, None)
        return results

    def _start(self, selector: selectors.BaseSelector, exchange: _Exchange | None, todo: deque[str],
               results: dict[str, ObjectInfo | None]) -> None:
        """Send the next key's request on ``exchange`` (a fresh connection if it is ``None``)."""
        while todo:
            key = todo.popleft()
            try:
                if exchange is None:
                    exchange = _Exchange(self._open_socket(), fresh=True)
                exchange.region = self.region  # what its request is signed for
                exchange.begin(key, self._request_bytes(key))
            except Exception as exc:
                refusals.failed(self, "HEAD", exc)
                log.debug("signed HEAD of %s not sent (%s); asking boto3", key, type(exc).__name__)
                results[key] = None
                if exchange is not None:
                    exchange.close()
                exchange = None
                continue
            selector.register(exchange.sock, selectors.EVENT_READ, exchange)
            return
        if exchange is not None:
            self._keep(exchange)

    def _receive(self, selector: selectors.BaseSelector, exchange: _Exchange, todo: deque[str],
                 results: dict[str, ObjectInfo | None]) -> None:
        failure: Exception | None = None  # why no answer came (counted once the key is given up)
        try:
            answer = exchange.receive()
        except Exception as exc:
            answer, closed, failure = None, True, exc
            log.debug("signed HEAD of %s failed (%s)", exchange.key, type(exc).__name__)
        else:
            if answer is _PENDING:
                return
            closed = answer is None
        selector.unregister(exchange.sock)
        if closed and not exchange.fresh and not exchange.received:
            todo.appendleft(exchange.key)  # a kept-alive connection the server had closed: once more, anew
        elif isinstance(answer, tuple):
            status, headers = answer
            exchange.fresh = False  # from now on, a close before an answer may be a dropped keep-alive
            refusals.answer(self, "HEAD", status, headers)
            if status != 200 and self.follow_region(status, headers.get("x-amz-bucket-region"), exchange.region):
                todo.appendleft(exchange.key)  # signed for the bucket's region now (maybe at its host): anew
                closed = True
            else:
                results[exchange.key] = _object_info(exchange.key, headers) if status == 200 else None
                closed = headers.get("connection", "").lower() == "close"
        else:
            refusals.failed(self, "HEAD", failure or ConnectionResetError("closed before an answer"))
            results[exchange.key] = None
        if closed:
            exchange.close()
            self._start(selector, None, todo, results)
        else:
            self._start(selector, exchange, todo, results)

    def _request_bytes(self, key: str) -> bytes:
        path, sent = self.signed_headers(key)
        lines = [f"HEAD {path} HTTP/1.1", *(f"{name}: {value}" for name, value in sent.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _open_socket(self) -> socket.socket:
        connect_timeout, _ = self._timeouts
        https = self._scheme == "https"
        sock = socket.create_connection((self._host, self._port or (443 if https else 80)), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            sock = self._wrap(sock)  # handshake within the timeout
        sock.setblocking(False)
        return sock

    def _idle_connection(self) -> _Exchange | None:
        with self._idle_lock:
            while self._idle:
                exchange, since = self._idle.pop()
                if time.monotonic() - since < _IDLE_SECONDS:
                    return exchange
                exchange.close()
        return None

    def _keep(self, exchange: _Exchange) -> None:
        exchange.fresh = False
        with self._idle_lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append((exchange, time.monotonic()))
                return
        exchange.close()

    def close(self) -> None:
        """Close the kept-alive sockets, every thread's (a later call opens new ones)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
            connections = list(self._connections)
        for exchange, _ in idle:
            exchange.close()
        for conn in connections:
            conn.close()

    def __del__(self) -> None:
        self.close()

    def _drop(self, selector: selectors.BaseSelector, exchange: _Exchange) -> None:
        selector.unregister(exchange.sock)
        exchange.close()

    def _send_direct(self, method: str, url: str, headers: dict[str, str], limit: int | None = None,
                     where: str = "") -> tuple[int, Any, bytes]:
        """Send over this thread's kept-alive ``http.client`` connection (urllib3's pool costs ~0.1 ms
        more); the status, headers and whole (small) body. ``limit``: a 200 body longer than this is
        ``BadAnswer`` (``where`` names the request), and is not read past it."""
        parts = urllib.parse.urlsplit(url)
        kept = getattr(self._local, "conn", None) is not None  # a kept-alive connection, maybe dropped
        try:
            conn = getattr(self._local, "conn", None) or self._connect()
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                         headers=self._as_sent(headers))
            response = conn.getresponse()
            if limit is None or response.status != 200:
                body = response.read()
            else:
                length = response.getheader("Content-Length")
                if length is not None and length.isdigit() and int(length) > limit:
                    raise BadAnswer(f"{where}: an answer of {int(length)} bytes, where a page takes at most "
                                    f"{limit} bytes; the endpoint does not answer as S3 does")
                body = response.read(limit + 1)
                if len(body) > limit:
                    raise BadAnswer(f"{where}: an answer of more than {limit} bytes, where a page takes at most "
                                    f"{limit} bytes; the endpoint does not answer as S3 does")
        except Exception as exc:
            self._forget_connection()
            if kept and _dropped(exc):  # the server had closed it (idle): once more, on a new connection
                return self._send_direct(method, url, headers, limit, where)
            raise
        if response.will_close:
            self._forget_connection()
        return response.status, response.headers, body

    def _forget_connection(self) -> None:
        """Close this thread's connection: what is left of an answer must not be read as the next one's."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _connect(self, keep: bool = True) -> http.client.HTTPConnection:
        """A connection made within the connect timeout, then reading with the read timeout (as boto3);
        this thread's kept-alive connection unless ``keep`` is false."""
        connect_timeout, read_timeout = self._timeouts
        https = self._scheme == "https"
        conn = http.client.HTTPConnection(self._host, self._port, timeout=read_timeout)  # given its socket below
        sock = socket.create_connection((self._host, self._port or (443 if https else 80)), timeout=connect_timeout)
        sock.settimeout(read_timeout)
        if https:
            sock = self._wrap(sock)
        conn.sock = sock
        if keep:
            self._local.conn = conn
            with self._idle_lock:
                self._connections.add(conn)
        return conn

    def _wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        """``sock`` after its TLS handshake, its certificate's host name checked by boto3's rule
        (``tls.check_host``: OpenSSL's own matcher refuses some names urllib3 takes, ``*.localhost``)."""
        if self._tls is None:
            self._tls = self._tls_context()
        wrapped = self._tls.wrap_socket(sock, server_hostname=self._host)
        try:
            check_host(wrapped, self._host)
        except ssl.SSLError:
            wrapped.close()
            raise
        return wrapped

    def _tls_context(self) -> ssl.SSLContext:
        """TLS as botocore verifies it: its CA bundle, or no verification where boto3 was told so;
        host names are matched after the handshake, by ``_wrap``, as urllib3 matches them."""
        verify = fastpaths.private(self._http, "_verify")  # present: ``for_client`` checked
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        context.check_hostname = False
        if verify is False:
            context.verify_mode = ssl.CERT_NONE
        return context


#: bounds on one ranged GET (seconds; attempts): see ``SignedRequests.get_into``
GET_FIRST_BYTE = 4.0
GET_BETWEEN_CHUNKS = 4.0
GET_ATTEMPTS = 3


def _readable(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets of ``socks`` with bytes to read (or closed) within ``timeout`` seconds."""
    pending: list[socket.socket] = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
    if pending:
        return pending
    return _wait(socks, timeout)


def _wait(socks: list[socket.socket], timeout: float, writable: bool = False) -> list[socket.socket]:
    """The sockets of ``socks`` ready to read (or closed; to write with ``writable``) within ``timeout``
    seconds. poll, not select: a daemon holding more than 1,024 descriptors (cache files, connections)
    made select() refuse every wait with ValueError, and each GET quietly went the slower boto3 way."""
    if not hasattr(select, "poll"):  # Windows: select() is what there is
        if writable:
            return list(select.select([], socks, [], timeout)[1])
        return list(select.select(socks, [], [], timeout)[0])
    poller = select.poll()
    events = select.POLLOUT if writable else select.POLLIN | select.POLLPRI
    for sock in socks:
        poller.register(sock, events | select.POLLERR | select.POLLHUP)
    ready = {fd for fd, _ in poller.poll(max(0, int(timeout * 1000 + 0.999)))}
    return [sock for sock in socks if sock.fileno() in ready]


#: an AWS region's name (what ``x-amz-bucket-region`` may name)
_REGION_NAME = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-\d{1,2}")
#: AWS's own S3 hosts a bucket's region is part of: (bucket.)s3.amazonaws.com, s3.REGION.amazonaws.com,
#: s3-REGION.amazonaws.com
_AWS_S3_HOST = re.compile(r"(?P<bucket>.+\.)?s3(?:[.-][a-z]{2}(?:-[a-z0-9]+)+-\d{1,2})?\.amazonaws\.com")


def regional_url(base_url: str, region: str) -> str:
    """``base_url`` on ``region``'s host where it is one of AWS's own S3 hosts; else unchanged (an
    S3-compatible endpoint serves every region it has at one address)."""
    parts = urllib.parse.urlsplit(base_url)
    match = _AWS_S3_HOST.fullmatch(parts.hostname or "")
    if match is None:
        return base_url
    host = f"{match.group('bucket') or ''}s3.{region}.amazonaws.com" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _escaped(key: str) -> str:
    """``key`` as it follows the bucket's base URL (``/`` and ``~`` kept; ``?`` and ``#`` escaped)."""
    return percent_encode(key, safe="/~")


def _fill(response: http.client.HTTPResponse, buffer: memoryview) -> int:
    """Read ``response``'s body into ``buffer`` until it is full or the body ends; the bytes read
    (told as they come to a waiting reader: ``storage.progress``)."""
    return progress.fill(response.readinto, buffer)


def _probe_answer(response: http.client.HTTPResponse, asked: int, buffer: memoryview) -> tuple[memoryview, int]:
    """(the part of ``buffer`` a probe's answer fills, the object's size): a 206's ``Content-Range``
    total, or a 200's length (a whole object no longer than asked; -1 for a chunked body, whose
    length is where it ends)."""
    if response.status == 206:
        total = (response.getheader("Content-Range") or "").rpartition("/")[2]
        if not total.isdigit():
            raise _Refused("no size in Content-Range")
        size = int(total)
    elif response.status == 200:
        length = response.getheader("Content-Length")
        if length is None:  # chunked: the size is where the body ends (at most ``asked``: checked then)
            return buffer, -1
        size = int(length) if length.isdigit() else -1
        if not 0 <= size <= asked:
            raise _Refused("a whole answer longer than asked")
    else:
        raise _Refused(response.status)
    return buffer[: min(size, asked)], size


def _dropped(exc: BaseException) -> bool:
    """A kept-alive connection the server had closed, found when a request was sent on it (before
    any answer): asked again on a new connection, as HTTP clients do for idempotent requests."""
    return isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                            http.client.RemoteDisconnected))


class _Refused(Exception):
    """An answer that is not the asked bytes."""


class _Moved(_Refused):
    """An answer naming the bucket's region, which the requests now follow (``follow_region``)."""


def _header_strings(request: AWSRequest) -> dict[str, str]:
    return {name: value.decode("latin-1") if isinstance(value, bytes) else value
            for name, value in request.headers.items()}


_PENDING = object()
_IDLE_SECONDS = 20.0  # servers close idle keep-alive connections (S3 after ~20 s): do not reuse older
_MAX_IDLE = 128  # head_many's window may reach HEAD_WINDOW_LIMIT sockets; the next folder reuses them
#: HEADs in flight at the start of a batch, and at most (``inflight.InFlightWindow``)
HEAD_WINDOW_START = 16
HEAD_WINDOW_LIMIT = 128


class _SocketBudget:
    """HEAD sockets open at once in this process, across concurrent ``head_many`` calls (a mount
    loads many folders ahead at once: each call's own window alone could pass the descriptor limit,
    and then every open of the daemon fails). A call with nothing in flight may always open one."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, held: int) -> bool:
        with self._lock:
            if held and self.used >= self.limit:
                return False
            self.used += 1
            return True

    def settle(self, counted: int, actual: int) -> int:
        """A call counted ``counted`` sockets and holds ``actual``: the budget learns; ``actual``."""
        with self._lock:
            self.used += actual - counted
        return actual


HEAD_SOCKETS = _SocketBudget(2 * HEAD_WINDOW_LIMIT)
_MAX_HEADER_BYTES = 256 * 1024


class _Exchange:
    """One non-blocking connection carrying one HEAD at a time."""

    def __init__(self, sock: socket.socket, fresh: bool):
        self.sock = sock
        self.fresh = fresh  # never used before: a close on it is a real failure, not a stale keep-alive
        self.region = ""  # the region its request is signed for
        self.key = ""
        self.received = False
        self._buffer = bytearray()

    def begin(self, key: str, request: bytes) -> None:
        self.key, self.received = key, False
        self._buffer.clear()
        view = memoryview(request)
        deadline = time.monotonic() + 10.0
        while view:  # a few hundred bytes: the socket buffer takes them at once but for pathologies
            try:
                view = view[self.sock.send(view):]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                if time.monotonic() > deadline:
                    raise TimeoutError("request not sent") from None
                _wait([self.sock], 0.1, writable=True)

    def receive(self) -> tuple[int, dict[str, str]] | object | None:
        """The (status, lower-cased headers) once the head of the answer is in; ``_PENDING`` before;
        ``None`` if the server closed the connection first."""
        try:
            chunk = self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            return _PENDING
        if not chunk:
            return None
        self.received = True
        self._buffer += chunk
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEADER_BYTES:
                raise ValueError("answer headers too long")
            return _PENDING
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        if len(self._buffer) != end + 4:
            raise ValueError("bytes after a HEAD answer")  # a body or a second answer: not ours to read
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x answer")
        status = int(rest.split(" ", 1)[0])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        return status, headers

    def close(self) -> None:
        self.sock.close()


@functools.lru_cache(maxsize=256)
def _http_date(text: str) -> datetime.datetime:
    """``Last-Modified`` parsed (cached: the objects of a folder written together share a few seconds,
    and parsing was a tenth of a folder HEAD's client time)."""
    return parsedate_to_datetime(text)


def _object_info(key: str, headers: Mapping[str, str]) -> ObjectInfo | None:
    """An ``ObjectInfo`` from a 200 answer's headers (names lower-cased); ``None`` if they are not usable."""
    try:
        modified = headers.get("last-modified")
        return ObjectInfo(key=key, size=int(headers["content-length"]), etag=headers["etag"],
                          last_modified=_http_date(modified) if modified else None,
                          metadata={name[len(_META):]: value for name, value in headers.items()
                                    if name.startswith(_META)})
    except (KeyError, ValueError, TypeError):
        return None
