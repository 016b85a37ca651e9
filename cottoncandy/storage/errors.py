"""One table from S3 error codes to Python built-in exceptions.

Every layer above storage sees only built-ins: ``FileNotFoundError`` for a missing bucket or key (an
``ObjectNotFound``, also 0.4.0's ``RuntimeError``/``AssertionError``),
``PermissionError`` for refused credentials, ``OSError(ESTALE)`` when an object changed under a pinned
ETag, and ``OSError(EIO)`` for everything else. The original exception is kept as ``__cause__`` so
nothing is lost for debugging, and the messages name bucket and key but never a credential.
"""

from __future__ import annotations

import errno

from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import ObjectNotFound

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404", "NoSuchUpload"})
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
        "AccountProblem",
    }
)
STALE_CODES = frozenset({"PreconditionFailed", "412"})
#: error codes that are the store's way of not answering now (throttled, busy, timed out)
NO_ANSWER_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "429",
                             "RequestTimeout", "ServiceUnavailable", "InternalError", "503", "500"})


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``''`` for anything else)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        if code:
            return code
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status or "")
    return ""


def where(bucket: str, key: str | None = None) -> str:
    """How errors name an object: ``s3://bucket/key``."""
    return f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"


def translate(exc: BaseException, bucket: str, key: str | None = None, action: str = "access") -> OSError:
    """Map a botocore failure to the built-in exception callers handle; chain it with ``from exc``."""
    target = where(bucket, key)
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        what = "bucket" if code == "NoSuchBucket" or key is None else "object"
        return ObjectNotFound(errno.ENOENT, f"{what} not found: {target}" if what == "object"
                                 else f"bucket not found: {where(bucket)}")
    if code in DENIED_CODES or isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        reason = code or type(exc).__name__
        return PermissionError(errno.EACCES, f"permission denied to {action} {target} ({reason})")
    if code in STALE_CODES:
        return OSError(errno.ESTALE, f"{target} changed since it was opened (ETag no longer matches)")
    reason = code or type(exc).__name__
    message = exc.response.get("Error", {}).get("Message") if isinstance(exc, ClientError) else None
    detail = f" ({message})" if message else ""
    return OSError(errno.EIO, f"failed to {action} {target}: {reason}{detail}")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store gave no answer (after the retries): a timeout, a refused or
    broken connection, a 5xx or throttling answer, an answer not of S3's shape (``BadAnswer``: an
    HTML portal page, a LIST that loops) -- rather than an answer about the object (missing,
    denied, replaced, a 4xx refusal, 501) or a failure of this client (credentials it could not get,
    a bad parameter). What a cache holds may stand in for the former, never the latter."""
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return False
    from .answers import BadAnswer  # an answer not of the protocol's shape: a portal, a looping LIST
    from .retry import BrokenBody  # a body that broke after its answer began (reset, stall, truncation)

    if isinstance(exc, BadAnswer):
        return True

    if isinstance(exc, (TimeoutError, ConnectionError, BotoConnectionError, HTTPClientError, BrokenBody)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error_code(exc)
        return (isinstance(status, int) and status >= 500 and status != 501) or status == 429 or \
            code in NO_ANSWER_CODES
    if not isinstance(exc, OSError) or exc.errno not in (errno.EIO, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                                                         errno.ENETUNREACH):
        return False
    cause = exc.__cause__
    return cause is not None and cause is not exc and unreachable(cause)
