"""moto in server mode on loopback, made fit for large arrays, with a log of what it sent.

Stock moto copies the *whole object* for every ranged GET (a 64 KiB range of a 256 MiB object
costs ~175 ms). ``enable_range_reads`` makes a GET carrying a Range header read only the requested
slice from the key's buffer; everything else stays stock moto. The request log records method,
path, status and body bytes of each response so benchmarks can report bytes moved per read.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_local = threading.local()
LOG_PATH = "/_local-s3/log"
_patched = False


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

    value_property = models.FakeKey.value

    def value_getter(self: Any) -> Any:
        if getattr(_local, "lazy", False):
            return _SliceableValue(self)
        return value_property.fget(self)  # type: ignore[misc]

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
    responses.S3Response._handle_range_header = handle_range  # type: ignore[method-assign]
    _patched = True


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    bytes_sent: int
    range: str | None


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
        status_holder: list[int] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(int(status.split()[0]))
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        sent = 0
        try:
            for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            if hasattr(body, "close"):
                body.close()
            if self.enabled:
                entry = LoggedRequest(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                                      environ.get("QUERY_STRING", ""), status_holder[0] if status_holder else 0,
                                      sent, environ.get("HTTP_RANGE"))
                with self.lock:
                    self.entries.append(entry)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalS3Server:
    """A moto S3 endpoint on ``host:port`` (a free port by default), in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, range_reads: bool = True):
        self.host = host
        self.port = port or free_port(host)
        self.range_reads = range_reads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.log: _RequestLog | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3Server:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        if self.range_reads:
            enable_range_reads()

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.log = _RequestLog(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, self.log, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-s3", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()
        if self.log is not None:
            with self.log.lock:
                self.log.entries.clear()

    def requests(self) -> list[LoggedRequest]:
        assert self.log is not None
        with self.log.lock:
            return list(self.log.entries)

    def clear_log(self) -> None:
        assert self.log is not None
        with self.log.lock:
            self.log.entries.clear()

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - manual use: python -m cottoncandy.testing.s3server
    import argparse
    import time

    parser = argparse.ArgumentParser(description="a local S3 endpoint (moto) on loopback")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = LocalS3Server(port=args.port).start()
    print(server.endpoint_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
