"""moto's S3 on loopback, made fit for large arrays and many small requests, with a log of what it sent.

Stock ``moto_server`` costs far more per request than the S3 it stands in for, which on a 2-core
machine is CPU taken from the client under test:

* it copies the *whole object* for every ranged GET (a 64 KiB range of a 256 MiB object costs
  ~175 ms); ``enable_range_reads`` makes a ranged GET read only the requested slice;
* werkzeug's development server closes the connection after every response and starts a thread per
  connection; we serve moto's S3 app with waitress instead (HTTP/1.1 keep-alive, a thread pool,
  response bodies kept in memory up to 64 MiB rather than spilled to temporary files);
* moto's service dispatcher serialises every request behind one lock while it scans its own
  package directory; this server is S3 only and routes straight to moto's S3 app;
* a plain HEAD Object goes through Flask and moto's whole request parsing (~0.5 ms of CPU); the
  fast path answers it from moto's own store with the headers moto's handler would send, and
  leaves anything unusual (query strings, conditions, checksums, missing keys, auth checks) to moto;
* moto lists every multipart upload as initiated on 2010-11-10; ``enable_upload_times`` makes
  ListMultipartUploads report the real time, as S3 does (a writer finds its lost uploads by it);
* moto walks and sorts every key of the bucket for each ListObjectsV2 page (a 100,000-key folder:
  ~1 s per page); ``s3listing.enable_fast_listing`` answers a page from a sorted name index.

Every answer still comes from moto's S3 backend. The request log records method, path, status and
body bytes of each response so benchmarks can report bytes moved per read.

**Loopback is not a network.** ``latency_ms`` and ``mbps`` (``--latency-ms``/``--mbps``) make the server
answer like a remote S3: every response waits ``latency_ms`` before its first byte, and every
connection moves at most ``mbps`` megabytes (10**6 bytes) per second each way. Both are applied on the
server's worker threads, one request per connection at a time, so concurrent requests overlap as they
would on a network: eight ranged GETs in flight take one latency, not eight.

**Endpoints as users meet them.** ``auth=True`` (``--auth``) turns on moto's own IAM/SigV4 checks: at
start the server makes, through moto's IAM and STS APIs, a user with keys, a role it assumed and a
revoked key (``identities``, see ``s3identities``); from then on every S3 request is verified against
them (a wrong secret, an unknown or revoked key, a missing session token: 403). The fast HEAD path
stands aside while checks are on (moto answers, and checks, every HEAD); fast listing pages are built
inside moto's handler, after its check. moto's switch is process-wide, so one process runs either
authenticating servers or open ones, never both (``start`` refuses the mix); ``reset`` then empties S3
only, keeping the identities. ``tls=True`` (``--tls``) adds an https port (``tls_endpoint_url``) served by
a ``tlsfront.TLSFront`` with a CA made at start by ``certificates`` (``ca_file``: what ``AWS_CA_BUNDLE`` names;
``tls_names`` adds names to its certificate, e.g. ``BUCKET.localhost``). Requests signed for IAM or STS go to moto's
IAM and STS: a profile with ``role_arn`` assumes the role here (``AWS_ENDPOINT_URL_STS``).
Virtual-hosted requests (``Host: BUCKET.localhost:PORT``) are routed by moto from the Host header
(``virtual_endpoint_url`` is the endpoint a virtual-hosted client uses; ``localnames`` makes
``*.localhost`` resolve to loopback in tests). The control paths (``/_local-s3/*``, ``/moto-api``) are
never checked: they are not S3.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import random
import re
import secrets
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .certificates import LOOPBACK_NAMES, make_certificates
from .s3identities import Identities, make_identities
from .s3listing import enable_fast_listing
from .tlsfront import TLSFront

_local = threading.local()
LOG_PATH = "/_local-s3/log"
FILL_PATH = "/_local-s3/fill"
RESET_S3_PATH = "/_local-s3/reset-s3"
_patched = False
_times_patched = False


class _SliceableValue:
    """Stands in for a key's bytes during a ranged GET: moto slices it, we read only that slice."""

    def __init__(self, key: Any):
        self._key = key

    def __len__(self) -> int:
        return int(self._key.size)

    def __bool__(self) -> bool:
        return self._key.size > 0

    def __getitem__(self, item: slice) -> bytes:
        start, stop, _ = item.indices(len(self))
        with self._key.lock:
            buffer = self._key._value_buffer
            buffer.seek(start)
            return buffer.read(max(0, stop - start))

    def materialize(self) -> bytes:
        return self[0 : len(self)]


def enable_range_reads() -> None:
    """Patch moto (once per process) so ranged GETs touch only the requested bytes."""
    global _patched
    if _patched:
        return
    from moto.s3 import models, responses

    value_property: Any = models.FakeKey.value  # a property: the class attribute, not a value

    def value_getter(self: Any) -> Any:
        if getattr(_local, "lazy", False):
            return _SliceableValue(self)
        return value_property.fget(self)

    models.FakeKey.value = property(value_getter, value_property.fset)  # type: ignore[assignment]

    original_get = responses.S3Response.get_object

    def get_object(self: Any) -> Any:
        _local.lazy = bool(self.headers.get("range"))
        try:
            status, headers, body = original_get(self)
        finally:
            _local.lazy = False
        if status != 200 and isinstance(body, _SliceableValue):  # not a path that slices it
            body = body.materialize()
        return status, headers, body

    original_range = responses.S3Response._handle_range_header

    def handle_range(self: Any, request: Any, headers: Any, content: Any) -> Any:
        status, headers, body = original_range(self, request, headers, content)
        if isinstance(body, _SliceableValue):  # a Range moto chose to ignore: send everything
            body = body.materialize()
        return status, headers, body

    responses.S3Response.get_object = get_object  # type: ignore[method-assign]
    responses.S3Response._handle_range_header = handle_range  # type: ignore[method-assign,assignment]
    _patched = True


def enable_upload_times() -> None:
    """Patch moto (once per process) so ListMultipartUploads reports when each upload was initiated.

    moto answers a fixed ``2010-11-10T20:48:33Z`` for every upload; S3 gives the real time, which is
    how a writer whose ``CreateMultipartUpload`` answer was lost finds the upload it started.
    """
    global _times_patched
    if _times_patched:
        return
    import datetime

    from moto.s3 import models, responses

    original_init = models.FakeMultipart.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.cc_initiated = datetime.datetime.now(datetime.timezone.utc)

    original_list = responses.S3Response.list_multipart_uploads

    def list_uploads(self: Any) -> Any:
        serialize = self.serialized
        multiparts = self.backend.list_multipart_uploads(self.bucket_name)

        def with_times(result: Any) -> Any:
            body = getattr(result, "result", None)
            for upload in body.get("Uploads", []) if isinstance(body, dict) else []:
                started = getattr(multiparts.get(upload.get("UploadId")), "cc_initiated", None)
                if started is not None:
                    upload["Initiated"] = started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            return serialize(result)

        self.serialized = with_times
        try:
            return original_list(self)
        finally:
            del self.serialized

    models.FakeMultipart.__init__ = init  # type: ignore[method-assign]
    responses.S3Response.list_multipart_uploads = list_uploads  # type: ignore[method-assign]
    _times_patched = True


_PLAIN_KEY_PATH = re.compile(r"/([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/([A-Za-z0-9._\-~/]+)")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9\-]+)/s3/")
# request headers that change what a HEAD answers: left to moto
_HEAD_MODIFIERS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE",
                   "HTTP_X_AMZ_CHECKSUM_MODE", "HTTP_X_MOTO_ACCOUNT_ID",
                   "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM")


class _FastHead:
    """WSGI middleware answering a plain ``HEAD /bucket/key`` from moto's backend directly.

    The headers are the ones moto's ``head_object`` builds (the key's metadata, its response
    headers, ``Accept-Ranges``) plus the two its Flask layer adds. A request this path does not
    fully understand, or a key it does not find, goes to moto unchanged.
    """

    def __init__(self, app: Any):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        answer = self._answer(environ) if environ.get("REQUEST_METHOD") == "HEAD" else None
        if answer is None:
            return self.app(environ, start_response)
        start_response("200 OK", answer)
        return [b""]

    @staticmethod
    def _answer(environ: dict[str, Any]) -> list[tuple[str, str]] | None:
        from moto import settings

        if environ.get("QUERY_STRING") or any(h in environ for h in _HEAD_MODIFIERS):
            return None
        if "MOTO_ACCOUNT_ID" in os.environ or not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT):
            return None
        match = _PLAIN_KEY_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        try:
            credential = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            access_key, region = credential.groups() if credential else ("", "us-east-1")
            key = _backend_of(access_key, region).head_object(match.group(1), match.group(2))
        except Exception:  # a missing bucket, a delete marker, ...: moto words the answer
            return None
        if key is None:
            return None
        headers: dict[str, Any] = {}
        headers.update(key.metadata)
        headers.update(key.response_dict)
        headers.update({"Accept-Ranges": "bytes", "x-amzn-requestid": _request_id(),
                        "Access-Control-Allow-Origin": "*"})
        return [(str(name), str(value)) for name, value in headers.items()]


_accounts: dict[tuple[str, str], tuple[str, str]] = {}  # (access key, region) -> (account, partition)
_ids = random.Random(secrets.randbits(64))


def _backend_of(access_key: str, region: str) -> Any:
    """moto's S3 backend for a request's credential. moto's own lookup (``BackendDict.__getitem__``)
    takes a global lock and compares the dict with every other service's, and finding the account
    walks IAM: together a third of this server's CPU per HEAD in a 100,000-array ``ls -l``. The
    account and partition are remembered; the backend itself is looked up again each time (a
    ``/moto-api/reset`` may replace it), with a plain dict read when it is there."""
    from moto.s3.models import s3_backends

    found = _accounts.get((access_key, region))
    if found is None:
        from moto.iam.models import get_account_id_from
        from moto.utilities.utils import get_partition

        found = _accounts[(access_key, region)] = (get_account_id_from(access_key), get_partition(region))
    account, partition = found
    per_account = dict.get(s3_backends, account)
    if per_account is None or not dict.__contains__(per_account, partition):
        return s3_backends[account][partition]  # moto creates it
    return dict.__getitem__(per_account, partition)


def _request_id() -> str:
    """A request id shaped like S3's (52 URL-safe characters), without a system call per HEAD."""
    return base64.urlsafe_b64encode(_ids.getrandbits(312).to_bytes(39, "big")).decode()[:52]


def _channel_class() -> Any:
    """waitress's HTTP channel, except that a body-less request gets no ``100 Continue``.

    botocore sends ``Expect: 100-continue`` even with ``Content-Length: 0`` (an empty object); waitress
    then answers ``100 Continue`` *and* the response, and botocore, sending no body, reads the wrong
    status line and waits forever. With nothing to wait for, the final response alone is correct
    HTTP (RFC 9110 10.1.1: a server may omit the 100 once it has the content).
    """
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser

    class Parser(HTTPRequestParser):  # type: ignore[misc]
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if not self.chunked and self.content_length == 0:
                self.expect_continue = False

    class Channel(HTTPChannel):  # type: ignore[misc]
        parser_class = Parser

    return Channel


_SCOPE_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/[a-z0-9\-]+/(iam|sts)/aws4_request")


def _s3_only_app() -> Any:
    """moto's S3 app, plus its ``/moto-api`` (reset) app, without the per-request service dispatcher.

    A request signed for IAM or STS (its credential scope says so) goes to moto's IAM or STS app: how
    the authenticating mode makes its user and role, and how a client assumes a role here."""
    from moto.moto_server.werkzeug_app import create_backend_app

    s3_app = create_backend_app("s3")
    api_app = create_backend_app("moto_api")
    other_apps: dict[str, Any] = {}

    def other(service: str) -> Any:
        if service not in other_apps:
            other_apps[service] = create_backend_app("iam" if service == "iam" else "sts")
        return other_apps[service]

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # moto reads keys from the undecoded path (a key may hold "%20" or an encoded "/"); werkzeug's
        # server calls it RAW_URI, waitress REQUEST_URI
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return api_app(environ, start_response)
        scope = _SCOPE_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is not None:
            return other(scope.group(1))(environ, start_response)
        return s3_app(environ, start_response)

    return app


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    bytes_sent: int
    range: str | None
    #: request body bytes (the decoded length of an aws-chunked body): what a PUT or UploadPart uploaded
    bytes_received: int = 0
    #: ``x-amz-copy-source`` of a server-side copy (CopyObject, UploadPartCopy), else None
    copy_source: str | None = None
    #: wall-clock seconds (``time.time()``) the request reached the server and its entry was logged
    #: (its answer complete): a benchmark's timeline of what was in flight when
    started_at: float = 0.0
    ended_at: float = 0.0


class _RequestLog:
    """WSGI middleware counting the body bytes of every response."""

    def __init__(self, app: Any):
        self.app = app
        self.entries: list[LoggedRequest] = []
        self.lock = threading.Lock()
        self.enabled = True

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(LOG_PATH):
            return self._serve_log(environ, start_response)
        if environ.get("PATH_INFO", "") == FILL_PATH and environ.get("REQUEST_METHOD") == "POST":
            return _fill(environ, start_response)
        if environ.get("PATH_INFO", "") == RESET_S3_PATH and environ.get("REQUEST_METHOD") == "POST":
            return _reset_s3(environ, start_response)
        return self._logged(environ, start_response)

    def _serve_log(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """``GET /_local-s3/log`` gives the log as JSON; ``POST`` clears it (for benchmarks)."""
        with self.lock:
            body = json.dumps([e.__dict__ for e in self.entries]).encode()
            if environ.get("REQUEST_METHOD") == "POST":
                self.entries.clear()
                body = b"[]"
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _logged(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Pass the answer through and log it. The entry is in the log before the answer's last
        bytes leave (once its ``Content-Length`` is reached), so a client that has its whole answer
        always finds it logged; an answer without a length is logged when its body ends."""
        status_holder: list[int] = []
        length_holder: list[int] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(int(status.split()[0]))
            for name, value in headers:
                if name.lower() == "content-length" and str(value).isdigit():
                    length_holder.append(int(value))
            return start_response(status, headers, exc_info)

        sent = 0
        logged = False
        started_at = time.time()

        def record() -> None:
            nonlocal logged
            if self.enabled and not logged:
                logged = True
                entry = LoggedRequest(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                                      environ.get("QUERY_STRING", ""), status_holder[0] if status_holder else 0,
                                      sent, environ.get("HTTP_RANGE"), _received(environ),
                                      environ.get("HTTP_X_AMZ_COPY_SOURCE"), started_at, time.time())
                with self.lock:
                    self.entries.append(entry)

        body = self.app(environ, capture)
        try:
            for chunk in body:
                sent += len(chunk)
                if length_holder and sent >= length_holder[0]:
                    record()
                yield chunk
        finally:
            if hasattr(body, "close"):
                body.close()
            record()


def _received(environ: dict[str, Any]) -> int:
    """The request body's length: the decoded one of an aws-chunked body, else Content-Length."""
    for name in ("HTTP_X_AMZ_DECODED_CONTENT_LENGTH", "CONTENT_LENGTH"):
        value = str(environ.get(name) or "")
        if value.isdigit():
            return int(value)
    return 0


class _Throttle:
    """At most ``rate`` bytes per second through one request, counted from its first byte."""

    def __init__(self, rate: float):
        self.rate = rate
        self.start = time.monotonic()
        self.moved = 0

    def take(self, n: int) -> None:
        self.moved += n
        ahead = self.moved / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


class _ThrottledInput:
    """A request body read no faster than the connection's bandwidth (uploads feel the cap too)."""

    def __init__(self, stream: Any, throttle: _Throttle):
        self._stream = stream
        self._throttle = throttle

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._throttle.take(len(data))
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._throttle.take(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._throttle.take(len(line))
            yield line


class _RemoteLike:
    """WSGI middleware: a first-byte delay per response and a bandwidth cap per connection.

    It runs in the worker thread that serves the request, so the delay and the cap cost that
    request's own time only; other connections proceed meanwhile, as on a network. Bodies are
    passed on in slices of at most 64 KiB so the cap holds within a large GET as well."""

    SLICE = 64 * 1024

    def __init__(self, app: Any, latency_ms: float, mbps: float | None):
        self.app = app
        self.latency = latency_ms / 1000
        self.rate = mbps * 1e6 if mbps else None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith((LOG_PATH, FILL_PATH, RESET_S3_PATH)):
            return self.app(environ, start_response)  # control requests are not traffic
        return self._shaped(environ, start_response)

    def _shaped(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        if self.rate:
            environ["wsgi.input"] = _ThrottledInput(environ["wsgi.input"], _Throttle(self.rate))
        body = self.app(environ, start_response)
        try:
            if self.latency:
                time.sleep(self.latency)
            throttle = _Throttle(self.rate) if self.rate else None
            for chunk in body:
                if throttle is None:
                    yield chunk
                    continue
                view = memoryview(chunk)
                for at in range(0, len(view), self.SLICE):
                    piece = bytes(view[at:at + self.SLICE])
                    throttle.take(len(piece))
                    yield piece
        finally:
            if hasattr(body, "close"):
                body.close()


def _fill(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``POST /_local-s3/fill``: many identical objects at once, straight into moto's store.

    Benchmarks need folders of 100,000 arrays; PUT by PUT that costs minutes of both cores. The
    JSON body names ``bucket``, ``prefix``, ``count``, ``body`` (latin-1 text), ``metadata`` and the
    ``access_key`` whose account owns the bucket; keys are ``prefix`` + a six-digit number."""
    from moto.iam.models import get_account_id_from
    from moto.s3.models import s3_backends
    from moto.s3.utils import metadata_from_headers

    spec = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    backend = s3_backends[get_account_id_from(spec["access_key"])]["aws"]
    body = spec["body"].encode("latin-1")
    headers = {f"x-amz-meta-{name}": value for name, value in spec.get("metadata", {}).items()}
    for i in range(int(spec["count"])):  # metadata stored as moto's PUT stores it
        backend.put_object(spec["bucket"], f"{spec['prefix']}{i:06d}", body).set_metadata(
            metadata_from_headers(headers))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def _reset_s3(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``POST /_local-s3/reset-s3``: forget every bucket and object, keep IAM and STS (their keys)."""
    from moto.s3.models import s3_backends

    for account in list(s3_backends.keys()):
        for partition in list(s3_backends[account].keys()):
            s3_backends[account][partition].reset()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


#: what to do when moto or waitress is missing (``pip install`` of the library alone does not bring them)
SERVER_EXTRA_HINT = ("the local S3 endpoint needs the 'server' extra: pip install 'cottoncandy-ccfs[server]' "
                     "(from a clone: pip install -e '.[server]')")


class ServerExtraMissing(ImportError):
    """moto or waitress is not installed: the message says which, and how to install them."""


def require_server_extra() -> None:
    """Fail with one actionable line, before any work, when the server's packages are missing."""
    try:
        import moto.moto_server.werkzeug_app  # noqa: F401
        import waitress.server  # noqa: F401
    except ImportError as exc:
        missing = (exc.name or "moto/waitress").split(".")[0]
        raise ServerExtraMissing(f"{missing} is not installed; {SERVER_EXTRA_HINT}", name=exc.name) from None


_modes = {True: 0, False: 0}  # running servers of this process, by ``auth``
_modes_lock = threading.Lock()


def _claim_mode(auth: bool) -> None:
    """moto's signature checking is one switch for the whole process: refuse to mix the two kinds."""
    with _modes_lock:
        if _modes[not auth]:
            kinds = ("an open", "an authenticating") if auth else ("an authenticating", "an open")
            raise RuntimeError(f"{kinds[0]} local S3 server runs in this process: moto's IAM checks are "
                               f"process-wide, so {kinds[1]} one must run in another process")
        _modes[auth] += 1


def _release_mode(auth: bool) -> None:
    with _modes_lock:
        _modes[auth] = max(0, _modes[auth] - 1)
        if auth and not _modes[auth]:
            _checking(False)


def _checking(on: bool) -> None:
    """Turn moto's IAM/SigV4 checks on (every request from now) or off, for this process."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")
    ActionAuthenticatorMixin.request_count = 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalS3Server:
    """A moto S3 endpoint on ``host:port`` (a free port by default), in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, range_reads: bool = True,
                 latency_ms: float = 0.0, mbps: float | None = None, auth: bool = False, tls: bool = False,
                 cert_dir: Path | None = None, tls_names: Sequence[str] = ()):
        if latency_ms < 0 or (mbps is not None and mbps <= 0):
            raise ValueError(f"latency_ms must be >= 0 and mbps > 0, not {latency_ms!r} and {mbps!r}")
        self.host = host
        self.port = port or free_port(host)
        self.range_reads = range_reads
        self.latency_ms = latency_ms
        self.mbps = mbps
        self.auth = auth
        self.tls = tls
        self.cert_dir = cert_dir
        self.tls_names = tuple(tls_names)  # more names for the certificate (virtual-hosted BUCKET.localhost)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._tls_front: TLSFront | None = None
        self.log: _RequestLog | None = None
        self.identities: Identities | None = None  # with ``auth``: the keys moto checks requests against
        self.ca_file: Path | None = None  # with ``tls``: the CA that signed the https port's certificate

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def virtual_endpoint_url(self) -> str:
        """The plain endpoint by a name whose subdomains are bucket hosts (``BUCKET.localhost:PORT``)."""
        return f"http://localhost:{self.port}"

    @property
    def tls_endpoint_url(self) -> str:
        """The https endpoint (``tls=True``), by the name its certificate carries."""
        if self._tls_front is None:
            raise RuntimeError("this server was not started with tls=True")
        return f"https://localhost:{self._tls_front.port}"

    def describe(self) -> dict[str, Any]:
        """What a client needs, as JSON-able data (``--json``): endpoints, CA, keys."""
        return {"endpoint_url": self.endpoint_url, "virtual_endpoint_url": self.virtual_endpoint_url,
                "tls_endpoint_url": self.tls_endpoint_url if self._tls_front else None,
                "ca_file": str(self.ca_file) if self.ca_file else None,
                "identities": self.identities.to_json() if self.identities else None}

    def start(self) -> LocalS3Server:
        require_server_extra()
        from waitress.server import create_server

        _claim_mode(self.auth)

        if self.range_reads:
            enable_range_reads()
        enable_upload_times()
        enable_fast_listing()
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" under load
        self.log = _RequestLog(_FastHead(_s3_only_app()))
        app: Any = self.log
        if self.latency_ms or self.mbps:
            app = _RemoteLike(self.log, self.latency_ms, self.mbps)
        try:
            self._server = create_server(
                app, host=self.host, port=self.port, threads=64, connection_limit=2000, backlog=1024,
                outbuf_overflow=64 * 2**20, inbuf_overflow=64 * 2**20, asyncore_use_poll=True, ident="local-s3",
                expose_tracebacks=False)
        except BaseException:  # a port taken, ...: the mode claimed above is given back
            _release_mode(self.auth)
            raise
        self._server.channel_class = _channel_class()
        self._thread = threading.Thread(target=self._server.run, name="local-s3", daemon=True)
        self._thread.start()
        try:
            if self.tls:
                folder = self.cert_dir or Path(tempfile.mkdtemp(prefix="local-s3-tls-"))
                certs = make_certificates(folder, (*LOOPBACK_NAMES, *self.tls_names))
                self.ca_file = certs.ca_file
                self._tls_front = TLSFront((self.host, self.port), certs, host=self.host).start()
            if self.auth:
                self.identities = make_identities(self.endpoint_url)  # made while moto checks nothing yet
                _checking(True)
        except BaseException:
            self.stop(grace=0)  # no half-made server (nor a claimed mode) is left behind
            raise
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Close the listening socket and every connection at once, then give the requests being
        answered up to ``grace`` seconds to finish. ``grace=0`` waits for none (``ccfs server`` on a
        signal: a copy of a big object is CPU-seconds of moto's work); their threads are daemons, which
        a process exiting does not wait for."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._tls_front is not None:
            self._tls_front.stop()
        _release_mode(self.auth)
        done = threading.Event()

        def close_everything() -> None:  # runs in the server's own loop thread
            for channel in list(server._map.values()):
                if channel is not server and channel is not server.trigger:
                    channel.close()
            server.close()
            done.set()

        server.trigger.pull_trigger(close_everything)
        done.wait(10)
        if grace > 0:
            server.task_dispatcher.shutdown(timeout=grace)
        if self._thread is not None:
            self._thread.join(10)

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API; with ``auth``, S3's only: the keys stay)."""
        path = RESET_S3_PATH if self.auth else "/moto-api/reset"
        req = urllib.request.Request(f"{self.endpoint_url}{path}", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()
        if self.log is not None:
            with self.log.lock:
                self.log.entries.clear()

    def requests(self, at_least: int = 0, timeout: float = 10.0) -> list[LoggedRequest]:
        """The log. A response is logged once its last byte is written, which may be just after the
        client got it: ``at_least`` waits (up to ``timeout`` seconds) until that many entries are in."""
        assert self.log is not None
        log = self.log

        def read() -> list[LoggedRequest]:
            with log.lock:
                return list(log.entries)

        return at_least_logged(read, at_least, timeout)

    def clear_log(self) -> None:
        assert self.log is not None
        with self.log.lock:
            self.log.entries.clear()

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def at_least_logged(read: Callable[[], list[LoggedRequest]], at_least: int, timeout: float) -> list[LoggedRequest]:
    """``read()`` again until it has ``at_least`` entries or ``timeout`` seconds passed (a response is
    logged once its last byte is written, which may be just after the client got it)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = read()
        if len(entries) >= at_least or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


def main() -> None:  # pragma: no cover - manual use: python -m cottoncandy.testing.s3server
    import argparse

    parser = argparse.ArgumentParser(description="a local S3 endpoint (moto) on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="wait this long before the first byte of every response (remote-like)")
    parser.add_argument("--mbps", type=float, default=None,
                        help="at most this many MB (10**6 bytes) per second per connection (remote-like)")
    parser.add_argument("--auth", action="store_true",
                        help="check every request's signature (moto's IAM): a user, a role and keys made at start")
    parser.add_argument("--tls", action="store_true", help="also serve https, with a CA made at start")
    parser.add_argument("--cert-dir", type=Path, default=None, help="where --tls writes ca.pem and the server's files")
    parser.add_argument("--tls-name", action="append", default=[],
                        help="another name for the certificate (repeatable), e.g. BUCKET.localhost for virtual-hosted "
                             "buckets over https (OpenSSL matches no wildcard directly under localhost)")
    parser.add_argument("--json", action="store_true",
                        help="print endpoints, CA file and keys as one JSON line (else the endpoint URL)")
    args = parser.parse_args()
    try:
        server = LocalS3Server(port=args.port, latency_ms=args.latency_ms, mbps=args.mbps, auth=args.auth,
                               tls=args.tls, cert_dir=args.cert_dir, tls_names=args.tls_name).start()
    except ServerExtraMissing as exc:
        raise SystemExit(f"error: {exc}") from None
    print(json.dumps(server.describe()) if args.json else server.endpoint_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
