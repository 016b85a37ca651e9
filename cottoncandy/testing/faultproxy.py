"""An HTTP-aware fault proxy between an S3 client and an S3 endpoint (the local moto server in tests).

Why: retries, timeouts and clean-up code only run when the network misbehaves, which a loopback
server never does. This proxy sits on loopback in front of ``LocalS3Server`` (or any HTTP/1.1
endpoint), forwards every request unchanged, and on the requests a rule picks does what a flaky
network or an overloaded S3 does:

============  ============================================================================
mode          what the client sees
============  ============================================================================
``reset``     the connection is reset (RST) after ``after`` bytes of the answer's body (default:
              half of it; before the status line for a body-less answer such as a HEAD's). With
              ``forward=False`` it is reset before the request reaches the server; by default
              the server has handled it (a PUT or POST may have taken effect: "lost answer").
``truncate``  the headers promise the whole body, fewer bytes come (``after``, default half),
              then a clean close (FIN).
``stall``     half the body (or ``after`` bytes), then nothing for ``seconds``, then the rest.
``delay``     nothing for ``seconds``, then the whole answer.
``hold``      the request is held ``seconds`` before it reaches the server (a server working before it
              answers, sending nothing: moto joining 1 GiB at CompleteMultipartUpload), then forwarded
              and its answer sent back; if the client gives up meanwhile (closes the connection), the
              request never reaches the server (counted as ``dropped:METHOD``), so a test knows the
              server did not carry out a request its client abandoned.
``slowdown``  ``503 SlowDown`` (S3's XML error body); the server never sees the request.
``error500``  ``500 InternalError``; the server never sees the request.
``denied``    ``403 SignatureDoesNotMatch``; the server never sees the request (with ``raw=True``:
              a server that refuses the fast path's signed requests and takes boto3's).
``policy``    ``403 AccessDenied`` (a bucket policy refusing the request); the server never sees it.
``lost500``   the server handles the request, the client gets ``500 InternalError`` instead of
              its answer (S3's "Complete failed after it succeeded").
``error200``  ``200 OK`` whose body is S3's ``<Error>`` (``InternalError``): AWS documents this answer
              for CopyObject, UploadPartCopy and CompleteMultipartUpload (an error met after the
              200 status was sent); the server never sees the request.
============  ============================================================================

Answers that are well-formed but wrong (a LIST that loops its continuation token or overflows its
page, an HTML portal page, cut-off XML, ``If-Match`` ignored, a HEAD that disagrees with the GET)
are modes of the same rules, described in ``misbehave``: ``loop_token``, ``new_token``,
``overflow``, ``html``, ``cut_xml``, ``ignore_if_match``, ``head_etag``, ``head_size``, ``head_stale``; so is
``chunked`` (a GET's body sent ``Transfer-Encoding: chunked``: valid, but not what moto sends).

``outage(seconds)`` refuses connections for a period: the listening socket is closed (clients get
ECONNREFUSED), and a request arriving on an already open connection is reset.

A ``FaultRule`` matches by method (``GET`` ``HEAD`` ``PUT`` ``POST`` ``DELETE``), by ranged/whole
GET, by a substring of the decoded path (the key) or of the query string, by who sent it (``raw``:
``True`` only requests without botocore's User-Agent -- the fast path's own --, ``False`` only
boto3's), and fires for a ``fraction`` of the matching
requests, drawn from one seeded RNG so a test run is repeatable for a given request order; ``limit``
caps how often it fires. The first rule that matches and fires applies. Rules can be replaced at
any time (``set_rules``, ``clear``), so a test ends a fault and then checks that the same client
recovers. ``counts`` says how many requests went through per method and how many faults fired per
``mode:method``.

Requests are parsed as HTTP/1.1: keep-alive, ``Content-Length`` and chunked bodies (botocore's
``aws-chunked`` content encoding rides on either, so it passes as opaque bytes), and
``Expect: 100-continue``, which the proxy answers itself (``100 Continue`` when a body is announced;
botocore sends the header with an empty body too, where it must not be answered) and does not pass
on. The upstream connection is one per client connection, opened on demand.

Another process (scripts/soak.py) drives a proxy started with
``python -m cottoncandy.testing.faultproxy --upstream URL`` through control requests to the proxy
itself: ``GET /_fault-proxy/counts``; ``POST /_fault-proxy/rules`` with a JSON list of rule fields;
``POST /_fault-proxy/clear``; ``POST /_fault-proxy/outage?seconds=S``.

Note: ``LocalS3Server`` answers a plain HEAD on a fast path that bypasses moto's request parsing;
faults on HEADs are applied here, in front of it, so that path makes no difference to them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import select
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from . import misbehave

log = logging.getLogger(__name__)

MODES = ("reset", "truncate", "stall", "delay", "hold", "slowdown", "error500", "error200", "lost500", "denied",
         "policy", *misbehave.MODES)
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
CONTROL_PATH = "/_fault-proxy/"
_MAX_HEAD = 256 * 1024
_CHUNK = 256 * 1024
_ERRORS = {
    "slowdown": (503, "Service Unavailable", "SlowDown", "Please reduce your request rate."),
    "error500": (500, "Internal Server Error", "InternalError",
                 "We encountered an internal error. Please try again."),
    "denied": (403, "Forbidden", "SignatureDoesNotMatch",
               "The request signature we calculated does not match the signature you provided."),
    "policy": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "error200": (200, "OK", "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass
class FaultRule:
    """One kind of fault, for the requests it matches.

    ``methods`` empty: every method. ``ranged`` ``True``/``False``: only ranged/whole GETs (and any
    other method is not matched); ``None``: either. ``key``: a substring of the decoded request
    path; ``query``: a substring of the raw query string (``uploads`` is CreateMultipartUpload,
    ``uploadId`` an UploadPart, CompleteMultipartUpload or AbortMultipartUpload; ``delete`` is
    DeleteObjects). ``after``: body bytes sent before a reset, truncation or stall (``None``: half).
    ``seconds``: a stall's or delay's length. ``limit``: fire at most this often (``None``: always).
    ``count``: entries of a made-up LIST page (``misbehave``'s ``new_token`` and ``overflow``).
    ``raw``: ``True`` only requests without botocore's User-Agent (the fast path's), ``False`` only
    boto3's, ``None`` either. ``header``: only requests carrying this header (case-insensitive;
    ``x-amz-copy-source`` with ``query="uploadId"`` is an UploadPartCopy, not an UploadPart).
    A ``misbehave`` mode matches only the requests it can apply to (a LIST mode only LISTs).
    """

    mode: str
    methods: tuple[str, ...] = ()
    fraction: float = 1.0
    key: str | None = None
    query: str | None = None
    ranged: bool | None = None
    after: int | None = None
    seconds: float = 1.0
    forward: bool = True
    limit: int | None = None
    count: int | None = None
    raw: bool | None = None
    header: str | None = None
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r} (one of {', '.join(MODES)})")
        self.methods = tuple(m.upper() for m in self.methods)
        unknown = set(self.methods) - set(METHODS)
        if unknown:
            raise ValueError(f"unknown method(s) {sorted(unknown)} (one of {', '.join(METHODS)})")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction must be within [0, 1], not {self.fraction}")

    def matches(self, request: _Request) -> bool:
        if self.mode in misbehave.MODES and not misbehave.applies(self.mode, request.method, request.query,
                                                                   request.if_match):
            return False
        if self.methods and request.method not in self.methods:
            return False
        if self.ranged is not None and (request.method != "GET" or request.ranged != self.ranged):
            return False
        if self.query is not None and self.query not in request.query:
            return False
        if self.raw is not None and self.raw == ("botocore" in request.agent.lower()):
            return False
        if self.header is not None and self.header.lower() not in request.names:
            return False
        return self.key is None or self.key in request.key

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> FaultRule:
        values = dict(fields)
        values.pop("fired", None)
        methods = values.get("methods", ())
        values["methods"] = tuple(methods.split("+") if isinstance(methods, str) else methods)
        return cls(**values)

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """``mode=reset,methods=GET+HEAD,fraction=0.1,after=4096`` (the command line's form)."""
        values: dict[str, Any] = {}
        for item in filter(None, text.split(",")):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not name=value")
            values[name.strip()] = value.strip()
        types: dict[str, Callable[[str], object]] = {"fraction": float, "seconds": float, "after": int, "limit": int,
                 "count": int,
                 "forward": lambda v: v.lower() in ("1", "true", "yes"),
                 "ranged": lambda v: None if v.lower() in ("", "any", "none") else v.lower() in ("1", "true", "yes"),
                 "raw": lambda v: None if v.lower() in ("", "any", "none") else v.lower() in ("1", "true", "yes")}
        for name, convert in types.items():
            if name in values:
                values[name] = convert(values[name])
        return cls.from_dict(values)


@dataclass
class _Request:
    method: str
    target: str
    key: str
    query: str
    ranged: bool
    head: bytes  # the request line and headers as sent upstream
    body: bytes
    keep_alive: bool
    if_match: bool = False  # it carries an If-Match header
    agent: str = ""  # its User-Agent header
    names: frozenset[str] = frozenset()  # its headers' names, lower-case


class FaultProxy:
    """A threaded HTTP/1.1 proxy on ``host:port`` forwarding to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0, seed: int = 0):
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.host = host
        self.port = port
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._listener: socket.socket | None = None
        self._outage_until = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._remembered: dict[int, dict[str, bytes]] = {}  # a rule's first answers by key (``head_stale``)

    # --- the small API -------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        """Replace every rule (and end an outage: the new rules say what happens now)."""
        with self._lock:
            self._rules = list(rules)
            self._outage_until = 0.0
            self._remembered = {}

    def clear(self) -> None:
        """No more faults: every request is forwarded as it is."""
        self.set_rules(())

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def outage(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` from now (``clear`` ends it early)."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds  # open connections break at their next request

    @property
    def in_outage(self) -> bool:
        with self._lock:
            return time.monotonic() < self._outage_until

    @property
    def counts(self) -> dict[str, int]:
        """``{"GET": n, ..., "reset:GET": n, ..., "refused": n}``: requests seen per method, faults
        fired per ``mode:method``, connections refused or reset by an outage."""
        with self._lock:
            return dict(self._counts)

    def count(self, mode: str | None = None, method: str | None = None) -> int:
        """How many faults of ``mode`` (any with ``None``) fired on ``method`` (any with ``None``)."""
        total = 0
        for name, n in self.counts.items():
            fault, sep, verb = name.partition(":")
            if sep and (mode is None or fault == mode) and (method is None or verb == method):
                total += n
        return total

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._listener = self._listen()
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for sock in self._client_sockets():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading it

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(256)
        sock.settimeout(0.05)
        return sock

    def _client_sockets(self) -> list[socket.socket]:
        with self._lock:
            return list(self._clients)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            if self.in_outage:
                if self._listener is not None:  # refuse: nobody listens on the port
                    self._listener.close()
                    self._listener = None
                time.sleep(0.02)
                continue
            if self._listener is None:
                try:
                    self._listener = self._listen()
                except OSError:  # the port is in TIME_WAIT trouble: try again shortly
                    time.sleep(0.05)
                    continue
            try:
                client, _ = self._listener.accept()  # the listener's timeout bounds the wait
            except OSError:  # a timeout (then look at the outage and stop flags again)
                continue
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.add(client)
            threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True).start()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # --- one client connection -----------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        reader = _Reader(client)
        upstream: _Upstream | None = None
        try:
            while not self._stopping.is_set():
                request = self._read_request(reader, client)
                if request is None:
                    return
                if request.target.startswith(CONTROL_PATH):
                    self._control(client, request)
                    continue
                with self._lock:
                    self._counts[request.method] += 1
                    if time.monotonic() < self._outage_until:
                        self._counts["refused"] += 1
                        rule = None
                        outage = True
                    else:
                        rule = self._pick(request)
                        outage = False
                if outage:
                    _reset(client)
                    return
                if rule is not None and rule.mode in _ERRORS:
                    client.sendall(_error_answer(rule.mode, request.key, head=request.method == "HEAD"))
                    if not request.keep_alive:
                        return
                    continue
                if rule is not None and rule.mode == "reset" and not rule.forward:
                    _reset(client)
                    return
                if rule is not None and rule.mode in misbehave.SYNTHESIZED:
                    head, pieces = misbehave.synthesized(rule, request.method, request.target)
                    client.sendall(head)
                    for piece in pieces:
                        client.sendall(piece)
                    if not request.keep_alive:
                        return
                    continue
                if rule is not None and rule.mode in misbehave.REQUEST_CHANGED:
                    request.head = misbehave.changed_request(rule.mode, request.head)
                if rule is not None and rule.mode == "hold" and not _held(client, rule.seconds):
                    with self._lock:
                        self._counts[f"dropped:{request.method}"] += 1
                    return
                if upstream is None:
                    upstream = _Upstream(self.upstream)
                keep = self._relay(client, upstream, request, rule)
                if not keep:
                    return
        except (OSError, ValueError) as exc:
            log.debug("fault proxy connection ended: %s", exc)
        finally:
            if upstream is not None:
                upstream.close()
            with self._lock:
                self._clients.discard(client)
            _close(client)

    def _pick(self, request: _Request) -> FaultRule | None:
        """The first rule that matches and fires (call with the lock held)."""
        for rule in self._rules:
            if not rule.matches(request) or (rule.limit is not None and rule.fired >= rule.limit):
                continue
            if rule.fraction >= 1.0 or self._rng.random() < rule.fraction:
                rule.fired += 1
                self._counts[f"{rule.mode}:{request.method}"] += 1
                return rule
        return None

    def _read_request(self, reader: _Reader, client: socket.socket) -> _Request | None:
        head = reader.read_head()
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = _headers(lines[1:])
        expect = headers.get("expect", "").lower() == "100-continue"
        length = int(headers.get("content-length", "0") or 0)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if expect and (length > 0 or chunked):
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = reader.read_chunked() if chunked else reader.read_exact(length)
        kept = [line for line in lines[1:] if line and not line.lower().startswith("expect:")]
        parts = urllib.parse.urlsplit(target)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return _Request(method=method.upper(), target=target, key=urllib.parse.unquote(parts.path),
                        query=parts.query, ranged="range" in headers, body=body,
                        head=("\r\n".join([lines[0], *kept]) + "\r\n\r\n").encode("latin-1"),
                        keep_alive=keep_alive, if_match="if-match" in headers, agent=headers.get("user-agent", ""),
                        names=frozenset(headers))

    def _relay(self, client: socket.socket, upstream: _Upstream, request: _Request, rule: FaultRule | None) -> bool:
        """Forward ``request``, send the answer back with ``rule``'s fault; whether to keep the connection."""
        status_head, body_length, chunked, upstream_closes = upstream.exchange(request)
        mode = rule.mode if rule is not None else None
        if rule is not None and mode in misbehave.REWRITTEN:  # small answers (LIST pages, HEADs): read whole
            body = b"".join(upstream.body(body_length, chunked))
            if upstream_closes:
                upstream.close()
            with self._lock:
                remembered = self._remembered.setdefault(id(rule), {})
                answer = misbehave.rewritten(rule, request.method, status_head, body, request.key, remembered)
            client.sendall(answer)
            return request.keep_alive and not upstream_closes
        if mode == "lost500":
            upstream.drain_body(body_length, chunked)
            if upstream_closes:
                upstream.close()
            client.sendall(_error_answer("error500", request.key, head=request.method == "HEAD"))
            return request.keep_alive and not upstream_closes
        if mode == "delay":
            time.sleep(rule.seconds)  # type: ignore[union-attr]
        has_body = body_length != 0 or chunked
        if rule is not None and mode in misbehave.REFRAMED and has_body:
            client.sendall(misbehave.chunked_head(status_head))
            for piece in misbehave.chunks(iter(upstream.body(body_length, chunked)), rule.after):
                client.sendall(piece)
            if upstream_closes:
                upstream.close()
            return request.keep_alive and not upstream_closes
        if mode == "reset" and not has_body:
            upstream.drain_body(body_length, chunked)
            _reset(client)
            return False
        client.sendall(status_head)
        cut = None
        if mode in ("reset", "truncate", "stall"):
            cut = rule.after if rule.after is not None else (body_length // 2 if body_length > 0 else 0)  # type: ignore[union-attr]
            if not has_body and mode == "stall":
                time.sleep(rule.seconds)  # type: ignore[union-attr]
                cut = None
        sent = 0
        for piece in upstream.body(body_length, chunked):
            if cut is not None and sent + len(piece) >= cut:
                head, rest = piece[: max(0, cut - sent)], piece[max(0, cut - sent):]
                if head:
                    client.sendall(head)
                sent += len(head)
                if mode == "reset":
                    upstream.close()
                    _reset(client)
                    return False
                if mode == "truncate":
                    upstream.close()
                    client.shutdown(socket.SHUT_RDWR)
                    return False
                time.sleep(rule.seconds)  # type: ignore[union-attr]  # stall, then the rest
                cut = None
                piece = rest
            if piece:
                client.sendall(piece)
                sent += len(piece)
        if cut is not None and mode in ("reset", "truncate"):  # the body was shorter than ``after``
            upstream.close()
            if mode == "reset":
                _reset(client)
            else:
                client.shutdown(socket.SHUT_RDWR)
            return False
        if upstream_closes:
            upstream.close()
        return request.keep_alive and not upstream_closes

    def _control(self, client: socket.socket, request: _Request) -> None:
        """The control requests of a proxy run as a separate process (see the module's docstring)."""
        parts = urllib.parse.urlsplit(request.target)
        action = parts.path[len(CONTROL_PATH):].strip("/")
        answer: dict[str, Any]
        status, answer = 200, {}
        try:
            if action == "counts":
                answer = self.counts
            elif action == "rules" and request.method == "POST":
                self.set_rules(FaultRule.from_dict(item) for item in json.loads(request.body or b"[]"))
                answer = {"rules": [asdict(r) for r in self.rules]}
            elif action == "rules":
                answer = {"rules": [asdict(r) for r in self.rules]}
            elif action == "clear" and request.method == "POST":
                self.clear()
            elif action == "outage" and request.method == "POST":
                seconds = float(urllib.parse.parse_qs(parts.query).get("seconds", ["1"])[0])
                self.outage(seconds)
                answer = {"seconds": seconds}
            else:
                status, answer = 404, {"error": f"no control action {action!r}"}
        except (TypeError, ValueError) as exc:
            status, answer = 400, {"error": str(exc)}
        body = json.dumps(answer).encode()
        client.sendall(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json"
                       f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)


class _Reader:
    """Buffered reads of one socket: a head up to the blank line, exact lengths, chunked bodies."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(_CHUNK)
        if not data:
            return False
        self.buffer += data
        return True

    def read_head(self) -> bytes | None:
        """The bytes up to the blank line (excluded); ``None`` when the peer closed between requests."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > _MAX_HEAD:
                raise ValueError("header too long")
            if not self._fill():
                if self.buffer:
                    raise ValueError("connection closed inside a header")
                return None

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ValueError("connection closed inside a body")
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read_some(self, limit: int) -> bytes:
        if not self.buffer and not self._fill():
            raise ValueError("connection closed inside a body")
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return data

    def read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 2])
                del self.buffer[: end + 2]
                return line
            if not self._fill():
                raise ValueError("connection closed inside a chunked body")

    def chunks(self) -> Iterable[bytes]:
        """A chunked body's raw bytes (size lines, data, trailers), piece by piece, as received."""
        while True:
            size_line = self.read_line()
            yield size_line
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the blank line
                    line = self.read_line()
                    yield line
                    if line == b"\r\n":
                        return
            remaining = size + 2  # data and its CRLF
            while remaining:
                piece = self.read_some(min(remaining, _CHUNK))
                remaining -= len(piece)
                yield piece

    def read_chunked(self) -> bytes:
        return b"".join(self.chunks())


class _Upstream:
    """The one kept-alive connection to the server that a client connection's requests go through."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.sock: socket.socket | None = None
        self.reader: _Reader | None = None

    def exchange(self, request: _Request) -> tuple[bytes, int, bool, bool]:
        """Send the request; the answer's status line and headers (as bytes to pass on), its body
        length (-1: until close), whether it is chunked and whether the server closes after it."""
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(self.address, timeout=120)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.reader = _Reader(self.sock)
            assert self.sock is not None and self.reader is not None
            try:
                self.sock.sendall(request.head + request.body)
                head = self.reader.read_head()
                if head is None:
                    raise ConnectionError("server closed the connection")
                break
            except (OSError, ValueError):
                self.close()
                if fresh or attempt:  # a dropped keep-alive is worth one more try; a fresh failure is not
                    raise
        assert head is not None  # the second attempt returns or raises
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        headers = _headers(lines[1:])
        code = int(status)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if request.method == "HEAD" or code in (204, 304) or 100 <= code < 200:
            length, chunked = 0, False
        elif chunked:
            length = -1
        elif "content-length" in headers:
            length = int(headers["content-length"])
        else:
            length = -1
        connection = headers.get("connection", "").lower()
        closes = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive") or \
            (length == -1 and not chunked)
        return head + b"\r\n\r\n", length, chunked, closes

    def body(self, length: int, chunked: bool) -> Iterable[bytes]:
        assert self.reader is not None
        if chunked:
            yield from self.reader.chunks()
            return
        if length < 0:  # until the server closes
            while True:
                try:
                    yield self.reader.read_some(_CHUNK)
                except ValueError:
                    return
        remaining = length
        while remaining > 0:
            piece = self.reader.read_some(min(remaining, _CHUNK))
            remaining -= len(piece)
            yield piece

    def drain_body(self, length: int, chunked: bool) -> None:
        for _ in self.body(length, chunked):
            pass

    def close(self) -> None:
        if self.sock is not None:
            _close(self.sock)
        self.sock = None
        self.reader = None


def _headers(lines: Iterable[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _error_answer(mode: str, key: str, head: bool = False) -> bytes:
    """S3's error answer; for a HEAD, the status and headers only (a HEAD answer has no body, and
    bytes after it would be read as the next answer on the connection)."""
    status, reason, code, message = _ERRORS[mode]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<Resource>{key}</Resource><RequestId>fault-proxy</RequestId></Error>").encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"x-amz-request-id: fault-proxy\r\n\r\n").encode() + (b"" if head else body)


def _held(client: socket.socket, seconds: float) -> bool:
    """Wait ``seconds`` before forwarding a request; ``False`` as soon as the client closed the
    connection meanwhile (it gave up: the request is not forwarded)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([client], [], [], min(left, 0.05))
        if readable:
            try:
                if not client.recv(1, socket.MSG_PEEK):
                    return False
            except OSError:
                return False
            time.sleep(min(max(0.0, deadline - time.monotonic()), 0.05))  # a next request already sent: wait on
    return True


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (linger 0): the peer reads ECONNRESET, not a clean end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use and scripts/soak.py
    import argparse

    parser = argparse.ArgumentParser(description="an HTTP fault proxy in front of an S3 endpoint",
                                     epilog="rule: mode=reset,methods=GET+HEAD,fraction=0.1[,after=N]"
                                            "[,seconds=S][,key=SUBSTR][,query=SUBSTR][,header=NAME][,ranged=true|false][,forward=false]"
                                            f"[,limit=N][,count=N][,raw=true|false]; modes: {', '.join(MODES)}")
    parser.add_argument("--upstream", required=True, help="http://host:port of the S3 endpoint")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", action="append", default=[], help="a fault rule (repeatable)")
    args = parser.parse_args(argv)
    try:
        proxy = FaultProxy(args.upstream, host=args.host, port=args.port, seed=args.seed)
        proxy.set_rules([FaultRule.parse(text) for text in args.rule])
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    proxy.start()
    print(proxy.endpoint_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
