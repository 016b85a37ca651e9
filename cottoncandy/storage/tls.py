"""TLS as both request paths see it: one host-name rule, and what a refused certificate means.

boto3's connections (urllib3 under botocore) verify the chain with OpenSSL and then match the host
name with urllib3's own rule (botocore's TLS context turns OpenSSL's matcher off). The fast path
(``s3.signed``) opened its sockets with Python's default context, which matches with OpenSSL's rule:
the two disagree on some certificates (a wildcard ``*.localhost``, which urllib3 accepts and OpenSSL
refuses), and then every fast request failed TLS and was asked again through boto3. ``check_host``
is urllib3's rule, used by the fast path after its handshake, so both paths take the same servers.

A refused certificate was reported as ``failed to check s3://B: SSLError`` (the mount: ``cannot reach
https://...: SSLError``): ``refusal`` finds the reason in the exception's chain -- OpenSSL's verify
message (``self-signed certificate``, ``certificate has expired``, ``unable to get local issuer
certificate``) or the host-name mismatch -- and says how a private CA is trusted (``AWS_CA_BUNDLE``).
"""

from __future__ import annotations

import ssl
from typing import Any

#: how the message of a refused certificate says what to do
ADVICE = ("if the endpoint's certificate is from a private CA, give its CA file in AWS_CA_BUNDLE "
          "(or the profile's ca_bundle)")


def check_host(sock: ssl.SSLSocket, hostname: str) -> None:
    """Raise ``ssl.SSLCertVerificationError`` unless the verified peer certificate of ``sock`` names
    ``hostname`` by urllib3's rule (boto3's). Nothing to check when the context verifies nothing."""
    from urllib3.util.ssl_match_hostname import CertificateError, match_hostname

    if sock.context.verify_mode == ssl.CERT_NONE:
        return
    try:
        match_hostname(sock.getpeercert(), hostname, hostname_checks_common_name=False)  # type: ignore[arg-type]
    except CertificateError as exc:
        error = ssl.SSLCertVerificationError(1, str(exc))
        error.verify_message = str(exc)
        error.verify_code = 62  # X509_V_ERR_HOSTNAME_MISMATCH, as OpenSSL's own matcher says it
        raise error from exc


def refusal(exc: BaseException) -> str | None:
    """Why the server's certificate was refused, if ``exc`` (or what it wraps) is such a failure:
    ``TLS certificate refused (REASON); ADVICE``; ``None`` for any other failure."""
    for error in _chain(exc):
        reason = None
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = error.verify_message or error.reason or str(error)
        elif type(error).__name__ == "CertificateError" and isinstance(error, ValueError):  # urllib3's mismatch
            reason = str(error)
        if reason:
            return f"TLS certificate refused ({reason}); {ADVICE}"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, botocore's ``kwargs['error']``, urllib3's ``args``."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 20:
        error = todo.pop()
        if not isinstance(error, BaseException) or any(error is known for known in seen):
            continue
        seen.append(error)
        todo += [error.__cause__, error.__context__, getattr(error, "kwargs", {}).get("error")
                 if isinstance(getattr(error, "kwargs", None), dict) else None, *error.args]
    return seen
