"""Certificates made at test time: a private CA and a server certificate it signed, as PEM files.

The one certificate maker of the rig: ``tlsfront.TLSFront`` (the https port of ``LocalS3Server(tls=True)``)
and ``s3front.S3Front`` (the checking front) both serve what ``make_certificates`` wrote, through
``server_context``. A client trusts the server through ``AWS_CA_BUNDLE=<folder>/ca.pem`` (or boto3's
``verify=``) exactly as it would trust a company CA; nothing is read from or written to the machine's
trust store. The certificates a client must refuse are made here too: ``self_signed`` (no CA vouches
for it), ``expired``, and any names (a wrong one, a wildcard).

Invariants: the CA is valid from an hour ago (clock skew) for a day, and its key never leaves the
process that made it (only its certificate is written); every name given is in the server
certificate's subjectAltName (addresses as IP, the rest as DNS), since no client matches the subject's
CN; the server's key file is readable by its owner only.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: the names a loopback server answers to: what a test's endpoint URL may say
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertFiles:
    """Where ``make_certificates`` put its PEM files."""

    ca_file: Path  # the CA's certificate: what a client trusts (AWS_CA_BUNDLE)
    cert_file: Path  # the server's certificate
    key_file: Path  # the server's private key (unencrypted; a test file)


def make_certificates(folder: Path, names: Sequence[str] = LOOPBACK_NAMES, *, expired: bool = False,
                      self_signed: bool = False) -> CertFiles:
    """A private CA and a server certificate for ``names`` (host names, wildcards or IP addresses)
    signed by it -- or, with ``self_signed``, by itself; ``expired``: its validity ended yesterday."""
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
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    if expired:
        start, end = now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject if self_signed else ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if self_signed:
        cert = builder.sign(key, hashes.SHA256())
    else:
        cert = (builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                                      critical=False)
                .sign(ca_key, hashes.SHA256()))
    files = CertFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    files.key_file.chmod(0o600)
    return files


def server_context(certs: CertFiles) -> ssl.SSLContext:
    """The TLS context a front serves ``certs`` with (no client certificate asked)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    return context
