"""An https front for the local S3 server: TLS on its own loopback port, each connection piped, as bytes, to it.

For ``LocalS3Server(tls=True)`` (the endpoint modes' ``tls`` and ``tls-virtual``): waitress speaks plain
HTTP only, so ``TLSFront`` accepts TLS connections and pipes the decrypted bytes, unchanged, to the plain
server (one asyncio loop in one daemon thread for every connection). The request a client sent -- its
``Host`` header included -- reaches moto as sent, so moto's own IAM/STS checks verify what was on the wire.
Its certificate is ``certificates.make_certificates``'s.

Why not ``s3front.S3Front``: that front parses each request and rewrites its ``Host`` and path to play S3's
part itself, so moto behind it would check a request other than the client's and its IAM keys, roles and
session tokens would go unchecked.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

from .certificates import CertFiles, server_context


class TLSFront:
    """https on ``host:port`` (a free port when 0), each connection piped to the plain server at ``backend``."""

    CHUNK = 256 * 1024

    def __init__(self, backend: tuple[str, int], certs: CertFiles, host: str = "127.0.0.1", port: int = 0):
        self.backend = backend
        self.host = host
        self.port = port
        self._context = server_context(certs)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> TLSFront:
        self._server = self._loop.run_until_complete(asyncio.start_server(
            self._serve, self.host, self.port, ssl=self._context, backlog=1024, ssl_handshake_timeout=30))
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-s3-tls", daemon=True)
        self._thread.start()
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            back_reader, back_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            return
        try:
            # either side ending (a client done with a kept-alive connection, the server closing it) ends both
            pumps = [asyncio.ensure_future(self._pump(reader, back_writer)),
                     asyncio.ensure_future(self._pump(back_reader, writer))]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
        finally:
            for side in (writer, back_writer):
                side.close()
            if task is not None:
                self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(self.CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # a reset or a client gone mid-handshake: the connection ends, nothing else does

    def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._thread is None:
            return

        def close_all() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            self._loop.call_later(0.05, self._loop.stop)

        self._loop.call_soon_threadsafe(close_all)
        self._thread.join(10)
        self._thread = None
