"""A checking front for the local S3 server: what moto in its default mode does not check (issue 25).

The local server (``s3server``, moto) takes any signature, over plain HTTP, path-style, in one
region. Real endpoints do not: a client that signs one ``Host`` and sends another, that cannot
follow a bucket to its region, or that ignores the addressing style works against moto and fails
against S3. This front sits on loopback in front of the local server and, for each request:

- serves TLS with a certificate made at test time (``certificates.make_certificates``: a private CA,
  or a self-signed, expired or misnamed certificate);
- checks its SigV4 header signature against the keys it was given, with the ``Host`` *as received*
  (a mismatch is S3's ``403 SignatureDoesNotMatch``);
- reads a virtual-hosted bucket (``BUCKET.<virtual_host>``) into the path the local server takes,
  and with ``virtual_only`` refuses path-style requests (``400``, as a service that requires
  virtual-hosted buckets does);
- and answers a request signed for another region than its bucket's (``bucket_regions``) with S3's
  ``301 PermanentRedirect`` naming the bucket's region in ``x-amz-bucket-region`` (a HEAD of the
  bucket names it too).

Answers are sent with a ``Content-Length`` on kept-alive connections; ``statuses`` counts them by
method and status (``"HEAD 403"``). Request bodies are read by ``Content-Length`` (what botocore
sends for the small bodies tests write); ``aws-chunked`` bodies pass as opaque bytes.

For ``tests/endpoint_variants``: a front in the test's own process, before the open local server, on
an address, port and certificate each test chooses. Why not ``LocalS3Server(auth=True, tls=True)``
(``tlsfront``, moto's own checks): moto answers no ``301`` naming a bucket's region, takes path-style
requests where a virtual-hosted-only service refuses them, and checks signatures only in a child process
of its own (its switch is process-wide), where no test can give it a self-signed or expired certificate,
port 443 on another loopback address or a wildcard name.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import re
import socket
import ssl
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass

from .certificates import CertFiles, server_context

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, ?"
                   r"SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})")
_MAX_HEAD = 64 * 1024


class S3Front:
    """The front (see the module's text); ``start()`` it, point clients at ``endpoint_url``."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, url_host: str | None = None,
                 certificates: CertFiles | None = None, keys: dict[str, str] | None = None,
                 bucket_regions: dict[str, str] | None = None,
                 virtual_host: str | None = None, virtual_only: bool = False):
        parts = urllib.parse.urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host, self.port = host, port
        self.url_host = url_host or host  # the host name clients are given (it may resolve to ``host``)
        self.certificates = certificates
        self.keys = dict(keys or {})
        self.bucket_regions = dict(bucket_regions or {})
        self.virtual_host = virtual_host
        self.virtual_only = virtual_only
        self.statuses: Counter[str] = Counter()
        self.hosts: Counter[str] = Counter()  # the Host headers received
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._tls: ssl.SSLContext | None = None
        self._stopped = threading.Event()

    @property
    def endpoint_url(self) -> str:
        scheme = "https" if self.certificates else "http"
        return f"{scheme}://{self.url_host}:{self.port}"

    def start(self) -> S3Front:
        if self.certificates is not None:
            self._tls = server_context(self.certificates)
        listener = socket.create_server((self.host, self.port))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, daemon=True, name="s3front").start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()

    def __enter__(self) -> S3Front:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(30)
        upstream: http.client.HTTPConnection | None = None
        try:
            if self._tls is not None:
                client = self._tls.wrap_socket(client, server_side=True)
            reader = client.makefile("rb")
            while not self._stopped.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                if upstream is None:
                    upstream = http.client.HTTPConnection(*self._upstream, timeout=60)
                status, answer = self._answer(request, upstream)
                with self._lock:
                    self.statuses[f"{request.method} {status}"] += 1
                client.sendall(answer)
        except (OSError, ValueError, ssl.SSLError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            client.close()

    def _answer(self, request: _Request, upstream: http.client.HTTPConnection) -> tuple[int, bytes]:
        host = request.headers.get("host", "")
        with self._lock:
            self.hosts[host] += 1
        path, query = request.path, request.query
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        suffix = f".{self.virtual_host}" if self.virtual_host else None
        if suffix and hostname.endswith(suffix):
            path = f"/{hostname[: -len(suffix)]}{path}"
        elif self.virtual_only and path.strip("/"):
            return _error(400, "InvalidRequest", "path-style requests are not served: address buckets "
                                                 "as BUCKET." + (self.virtual_host or "host"), request.method)
        bucket = urllib.parse.unquote(path.lstrip("/").split("/", 1)[0])
        scope_region = None
        if self.keys:
            checked = _check_signature(request, self.keys)
            if isinstance(checked, str):
                return _error(403, "SignatureDoesNotMatch", checked, request.method)
            scope_region = checked[1]
        else:
            match = _AUTH.match(request.headers.get("authorization", ""))
            scope_region = match.group(3) if match else None
        home = self.bucket_regions.get(bucket)
        if home and scope_region and scope_region != home:
            return _error(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed "
                                                    "using the specified endpoint.", request.method,
                          {"x-amz-bucket-region": home})
        headers = {name: value for name, value in request.headers.items()
                   if name not in ("host", "connection", "keep-alive", "expect")}
        headers["host"] = f"{self._upstream[0]}:{self._upstream[1]}"
        target = path + (f"?{query}" if query else "")
        upstream.request(request.method, target, body=request.body or None, headers=headers)
        response = upstream.getresponse()
        body = response.read()
        if home and response.status == 200 and request.method == "HEAD" and path.strip("/") == bucket:
            extra = {"x-amz-bucket-region": home}
        else:
            extra = {}
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "keep-alive",
                                    "x-amz-bucket-region"):
                lines.append(f"{name}: {value}")
        lines += [f"{name}: {value}" for name, value in extra.items()]
        if request.method != "HEAD" or response.getheader("Content-Length") is None:
            lines.append(f"Content-Length: {len(body)}")
        else:
            lines.append(f"Content-Length: {response.getheader('Content-Length')}")
        return response.status, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class _Request:
    method: str
    path: str  # as sent, escaped
    query: str  # as sent
    headers: dict[str, str]  # names lower-cased
    body: bytes


def _read_request(reader: object) -> _Request | None:
    """One request from a buffered socket reader; ``None`` at a clean end of the connection."""
    line = reader.readline(_MAX_HEAD)  # type: ignore[attr-defined]
    if not line:
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline(_MAX_HEAD)  # type: ignore[attr-defined]
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = reader.read(length) if length else b""  # type: ignore[attr-defined]
    path, _, query = target.partition("?")
    return _Request(method, path, query, headers, body)


def _check_signature(request: _Request, keys: dict[str, str]) -> tuple[str, str] | str:
    """(access key, region) of a request whose SigV4 header signature holds, with its headers as
    received; else what is wrong (the 403's message)."""
    match = _AUTH.match(request.headers.get("authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    access, date, region, signed_names, signature = match.groups()
    secret = keys.get(access)
    if secret is None:
        return "The AWS Access Key Id you provided does not exist in our records."
    names = signed_names.split(";")
    if "host" not in names:
        return "the Host header is not signed"
    canonical_headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in names)
    canonical = "\n".join([request.method, request.path, _canonical_query(request.query), canonical_headers,
                           signed_names, request.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")])
    timestamp = request.headers.get("x-amz-date", "")
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return ("The request signature we calculated does not match the signature you provided "
                f"(Host as received: {request.headers.get('host', '')!r})")
    return access, region


def _canonical_query(query: str) -> str:
    pairs = []
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(name), safe="-_.~"),
                      urllib.parse.quote(urllib.parse.unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _error(status: int, code: str, message: str, method: str, extra: dict[str, str] | None = None) -> tuple[int, bytes]:
    reasons = {301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden"}
    body = b"" if method == "HEAD" else (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        + "".join(f"<{'Region' if k == 'x-amz-bucket-region' else k}>{v}</"
                  f"{'Region' if k == 'x-amz-bucket-region' else k}>" for k, v in (extra or {}).items())
        + "<RequestId>s3front</RequestId></Error>").encode()
    lines = [f"HTTP/1.1 {status} {reasons.get(status, 'Error')}", "Content-Type: application/xml",
             "x-amz-request-id: s3front", *(f"{k}: {v}" for k, v in (extra or {}).items()),
             f"Content-Length: {len(body)}"]
    return status, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
