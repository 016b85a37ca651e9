"""TLS for the local S3 endpoint: a private CA and server certificate made on the spot, and an https front.

waitress speaks plain HTTP only, so ``TLSFront`` accepts TLS connections on its own loopback port and
pipes the decrypted bytes, unchanged, to the plain server (one asyncio loop in one daemon thread for
every connection). The request a client sent -- its ``Host`` header included -- reaches moto as sent,
so a signature is checked over what was really on the wire.

``make_certificates`` writes a CA (``ca.pem``) and a server certificate for the given names signed by
it (``server.pem``, ``server-key.pem``) into a folder: a client trusts the server through
``AWS_CA_BUNDLE=<folder>/ca.pem`` (or boto3's ``verify=``) exactly as it would trust a company CA.
Nothing is read from or written to the machine's trust store.

Invariants: the CA is valid for one day from an hour ago (clock skew), its key never leaves the process
that made it (only the certificate is written), and every name given is in the server certificate's
subjectAltName (DNS names as DNS, addresses as IP), since no client matches the subject's CN.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the names a loopback server answers to: what a test's endpoint URL may say
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertFiles:
    """Where ``make_certificates`` put its PEM files."""

    ca_file: Path  # the CA's certificate: what a client trusts (AWS_CA_BUNDLE)
    cert_file: Path  # the server's certificate
    key_file: Path  # the server's private key (unencrypted; a test file)


def make_certificates(folder: Path, names: Sequence[str] = LOOPBACK_NAMES) -> CertFiles:
    """A private CA and a server certificate for ``names`` (host names or IP addresses) signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cottoncandy test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256()))
    files = CertFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    files.key_file.chmod(0o600)
    return files


class TLSFront:
    """https on ``host:port`` (a free port when 0), each connection piped to the plain server at ``backend``."""

    CHUNK = 256 * 1024

    def __init__(self, backend: tuple[str, int], certs: CertFiles, host: str = "127.0.0.1", port: int = 0):
        self.backend = backend
        self.host = host
        self.port = port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certs.cert_file, certs.key_file)
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
