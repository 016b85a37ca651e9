"""Why a signed fast request (``s3.signed``) was not taken, and what to change: counted, not hidden.

``s3.signed`` gives ``None``/``False`` for any answer that is not exactly what it asked for, and the
store asks boto3 again: retries and error messages stay in one place. That is right for a 404 or a
412 (boto3 gets the same answer and says what it is), but a server that refuses *every* fast request
(a signature it computes otherwise, a bucket in another region, a certificate OpenSSL refuses) doubles
every request, silently. Each fast request's outcome comes here: ``answered`` (taken), or ``refused``
with the status, S3 error code and headers, or the exception; the cause is counted by
``cottoncandy.fastpaths.refused``, which warns once after a run of them with ``advice``'s text.

Causes are short and stable, so counts add up across requests: ``HTTP 403 SignatureDoesNotMatch``,
``HTTP 301 PermanentRedirect``, ``HTTP 403`` (a HEAD: no body, no code), ``HTTP 206 not the asked
bytes``, ``TLS: certificate verify failed (self-signed certificate)``, ``connection: ConnectionRefusedError``,
``protocol: BadStatusLine``, ``timeout``. Of what the endpoint sends, only S3's shapes get in (an
error code, a region name): a hostile endpoint can neither write into the log nor grow the counts
past ``fastpaths.MAX_CAUSES``.

Not refusals (boto3 answers the same, and the caller wants that answer): 404, 412, 416 (the range of
an empty object), 304, and an answer of another version than ``If-Match`` named.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from ... import fastpaths

#: statuses that are the object's own answer, which boto3 gets alike: not a fast-path refusal
SAME_ANSWER = frozenset({304, 404, 412, 416})
#: an error body longer than this is not read for its code
_ERROR_BODY_LIMIT = 64 * 1024
#: what the endpoint says is shown only in S3's shapes (its error codes, region names): a hostile body
#: cannot put other text into a log line or a count's name
_CODE = re.compile(rb"<Code>([A-Za-z][A-Za-z0-9.]{0,63})</Code>")
_REGION = re.compile(rb"<Region>([a-z0-9-]{1,40})</Region>")
_REGION_NAME = re.compile(r"[a-z0-9-]{1,40}")
#: causes whose fix is the region (``x-amz-bucket-region``, or the error says so)
_REGION_CODES = ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException",
                 "TemporaryRedirect", "AuthorizationQueryParametersError")


class Endpoint(Protocol):
    """What is known of the requests' target (a ``SignedRequests``)."""

    base_url: str
    region: str


def answered() -> None:
    """A fast request was taken."""
    fastpaths.answered()


def answer(where: Endpoint, request: str, status: int, headers: Mapping[str, str] | Any = None,
           body: bytes | http.client.HTTPResponse | None = None) -> None:
    """A fast ``request`` (HEAD, GET, LIST) got ``status`` with ``headers``; ``body`` is its bytes, or
    the response to read a short error body from (4xx/5xx/3xx only; its connection is given up after)."""
    if status in (200, 206):
        fastpaths.answered()
        return
    if status in SAME_ANSWER:
        return
    data = _error_body(body) if status >= 300 else b""
    found = _CODE.search(data)
    code = found.group(1).decode("latin-1", "replace") if found else ""
    cause = f"HTTP {status} {code}".rstrip()
    region = _header(headers, "x-amz-bucket-region")
    if not _REGION_NAME.fullmatch(region):
        named = _REGION.search(data)
        region = named.group(1).decode("latin-1", "replace") if named else ""
    fastpaths.refused(cause, lambda: advice(cause, where, region))


def failed(where: Endpoint, request: str, exc: BaseException,
           response: http.client.HTTPResponse | None = None) -> None:
    """A fast ``request`` failed with ``exc`` (``response``: the answer it had got so far, if any)."""
    if response is not None and response.status not in (200, 206):
        answer(where, request, response.status, response, response)
        return
    text = str(exc)
    if text.startswith("another version"):  # an endpoint ignoring If-Match: boto3 says ESTALE alike
        return
    if response is not None:  # a 200/206 that was not the asked bytes
        refused = type(exc).__name__ == "_Refused"  # s3_signed's own words, or the status it refused
        what = (text if text and not text.isdigit() else "not the asked bytes") if refused else type(exc).__name__
        cause = f"HTTP {response.status} {what}"
    else:
        cause = _failure_cause(exc)
    fastpaths.refused(cause, lambda: advice(cause, where, ""))


#: OpenSSL's verify codes a cause may name (X509_V_ERR_*): the server's own words (a certificate's
#: names, in a mismatch's message) never become a cause, which other local users may read
_VERIFY_REASONS = {10: "certificate has expired", 18: "self-signed certificate",
                   19: "self-signed certificate in certificate chain", 20: "unable to get local issuer certificate",
                   21: "unable to verify the first certificate", 62: "hostname mismatch"}


def _failure_cause(exc: BaseException) -> str:
    """A refusal's cause from the failure, in words of a fixed set (never free text from outside)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code if isinstance(exc.verify_code, int) else -1
        return f"TLS: certificate verify failed ({_VERIFY_REASONS.get(code, f'code {code}')})"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)  # OpenSSL's name of it (WRONG_VERSION_NUMBER...), else none
        reason = reason if isinstance(reason, str) and reason.isascii() and reason.isupper() else None
        return f"TLS: {reason or type(exc).__name__}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, (http.client.HTTPException, ValueError)):
        return f"protocol: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"connection: {type(exc).__name__}"
    return f"other: {type(exc).__name__}"  # its text may be a credential helper's or a URL: not counted


def _error_body(body: bytes | http.client.HTTPResponse | None) -> bytes:
    if isinstance(body, (bytes, bytearray)):
        return bytes(body[:_ERROR_BODY_LIMIT])
    if body is None or body.isclosed():
        return b""
    length = body.getheader("Content-Length")
    if length is not None and (not length.isdigit() or int(length) > _ERROR_BODY_LIMIT):
        return b""
    try:
        return body.read(_ERROR_BODY_LIMIT)
    except Exception:  # noqa: BLE001 - the code is a nicety; the refusal is counted without it
        return b""


def _header(headers: Mapping[str, str] | Any, name: str) -> str:
    if headers is None:
        return ""
    getheader = getattr(headers, "getheader", None)
    if getheader is not None:  # an HTTPResponse
        return str(getheader(name) or "")
    if not hasattr(headers, "get"):
        return ""
    return str(headers.get(name) or headers.get(name.title()) or "")


def advice(cause: str, where: Endpoint, bucket_region: str) -> str:
    """What the refusals say about the endpoint, and what to change (one or two sentences)."""
    parts = urllib.parse.urlsplit(where.base_url)
    endpoint = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    if cause.startswith("HTTP 403"):
        if parts.port is not None and parts.port == default_port:
            return (f"The endpoint URL {endpoint} names its scheme's default port: give it without "
                    f":{parts.port}.")
        if cause.endswith("SignatureDoesNotMatch") or cause == "HTTP 403":
            return (f"{endpoint} computes another signature for these requests than for boto3's: a proxy "
                    f"or gateway that rewrites the Host header or the path would; if boto3's requests are "
                    f"refused too, the credentials lack permission.")
        return f"{endpoint} refused the credentials; if boto3's requests succeed meanwhile, please report it."
    if cause.startswith(("HTTP 301", "HTTP 307", "HTTP 400")) or any(cause.endswith(c) for c in _REGION_CODES):
        if bucket_region and bucket_region != where.region:
            return (f"The bucket is in region {bucket_region}; requests are signed for {where.region}: give "
                    f"--region {bucket_region} (region={bucket_region!r}, or region in the AWS profile).")
        return (f"{endpoint} redirects or refuses requests signed for region {where.region}: give the "
                f"bucket's region (--region, region=, or the AWS profile's region).")
    if cause.startswith("TLS"):
        return (f"The certificate of {endpoint} is not accepted: set AWS_CA_BUNDLE to the file of the CA "
                f"that signed it, and give the endpoint by a host name the certificate names.")
    if cause.startswith("HTTP 5"):
        return f"{endpoint} is failing or throttling; boto3 retries with backoff. Nothing to change if it passes."
    if cause.startswith(("HTTP 200", "HTTP 206")):
        return (f"{endpoint} answers ranged GETs with other bytes than asked (no or another Content-Length "
                f"or Content-Range, Range ignored): a proxy in between may rewrite answers.")
    if cause == "timeout":
        return f"{endpoint} answers slower than the read timeout."
    return (f"The fast requests to {endpoint} fail ({cause}); boto3's take another connection pool: a "
            f"proxy in between may be the cause.")
