"""One table from S3 error codes to Python built-in exceptions.

Every layer above storage sees only built-ins: ``FileNotFoundError`` for a missing bucket or key (an
``ObjectNotFound``, also 0.4.0's ``RuntimeError``/``AssertionError``),
``PermissionError`` for refused credentials, ``OSError(ESTALE)`` when an object changed under a pinned
ETag, and ``OSError(EIO)`` for everything else. The original exception is kept as ``__cause__`` so
nothing is lost for debugging, and the messages name bucket and key but never a credential.
"""

from __future__ import annotations

import errno
import re

from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import InvalidBucketName, ObjectNotFound, OptionAdvice, advised
from . import tls

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


#: S3's rule for bucket names, as messages state it
BUCKET_NAME_RULE = ("S3 bucket names are 3 to 63 characters: lowercase letters, digits, dots and hyphens, "
                    "starting and ending with a letter or digit")
#: what no S3 store takes, checked before any request: older AWS buckets (us-east-1, before 2018) and some
#: S3-compatible stores (Ceph's relaxed names) also allow capitals and underscores, up to 255 characters,
#: so only names outside that are refused here; the server decides the rest
_ANY_STORES_NAME = re.compile(r"[A-Za-z0-9._-]{3,255}")


def check_bucket_name(bucket: str) -> None:
    """``InvalidBucketName`` for a name no S3 store takes (too short or long, other characters)."""
    if bucket.startswith("arn:"):  # an access point's ARN, which boto3 takes where a bucket goes
        return
    if not _ANY_STORES_NAME.fullmatch(bucket):
        raise InvalidBucketName(errno.EINVAL, f"invalid bucket name {bucket!r}: {BUCKET_NAME_RULE}")


class NoAnswer(OSError):
    """The store gave no answer (after its retries): a timeout, a refused or broken connection, a
    5xx or throttling answer, an answer not of the protocol's shape (``answers.BadAnswer``).

    Part of the store contract: a store raises this -- never its client library's exceptions --
    whenever what it was asked met no answer, and only then (``unreachable`` decides, here, from the
    library's failure); layers above (the namespace, the mount) let what a cache holds stand in for
    the answer by catching this type, with no knowledge of botocore. An answer *about* the object
    (missing, denied, replaced, a 4xx refusal) is never one. ``errno`` is ``EIO`` unless given, so
    callers of 0.4.0 catching ``OSError``/``IOError`` see what they saw."""


def failed(exc: BaseException, message: str) -> OSError:
    """The error a store raises for ``exc`` (a failure of its client library, chained by the
    caller): ``NoAnswer`` when the store gave no answer (``unreachable``), else ``OSError(EIO)``."""
    return (NoAnswer if unreachable(exc) else OSError)(errno.EIO, message)


def connection_failed(exc: BaseException) -> bool:
    """No answer at all: the connection was refused, reset, or timed out (not an answer of 5xx)."""
    return isinstance(exc, (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError))


def aws_unreachable(target: str, action: str, reason: str) -> OSError:
    """A request that went to AWS because no endpoint was given, and got no answer: the way to the
    store meant (a local or S3-compatible one) is its endpoint, which the advice names."""
    advice = OptionAdvice(f"cannot reach AWS S3 (no endpoint given) to {action} {target}: {reason}", "endpoint_url",
                          "or set AWS_ENDPOINT_URL to use another S3-compatible store", value="URL")
    return advised(NoAnswer(errno.EIO, advice.render()), advice)


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


def translate(exc: BaseException, bucket: str, key: str | None = None, action: str = "access",
              default_endpoint: bool = False) -> OSError:
    """Map a botocore failure to the built-in exception callers handle; chain it with ``from exc``.

    ``default_endpoint``: the request went to AWS because no endpoint was given, so a failure to
    connect says how to give one."""
    target = where(bucket, key)
    code = error_code(exc)
    certificate = tls.refusal(exc)  # the reason, not 'SSLError'
    if default_endpoint and connection_failed(exc):
        return aws_unreachable(target, action, certificate or type(exc).__name__)
    if certificate:
        return failed(exc, f"failed to {action} {target}: {certificate}")  # no answer: NoAnswer
    if code == "InvalidBucketName":
        return InvalidBucketName(errno.EINVAL, f"the server refused the bucket name {bucket!r} (InvalidBucketName): "
                                               f"{BUCKET_NAME_RULE}")
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
    return failed(exc, f"failed to {action} {target}: {reason}{detail}")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store gave no answer (after the retries): a ``NoAnswer``, or a failure
    of the client library that is one -- a timeout, a refused or broken connection, a 5xx or
    throttling answer -- rather than an answer about the object (missing, denied, replaced, a 4xx
    refusal, 501) or a failure of this client (credentials it could not get, a bad parameter). What
    a cache holds may stand in for the former, never the latter. Stores decide with this which
    error they raise (``failed``); layers above catch ``NoAnswer``."""
    if isinstance(exc, NoAnswer):  # an answer not of the protocol's shape (``BadAnswer``) is one
        return True
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return False
    from .retry import BrokenBody  # a body that broke after its answer began (reset, stall, truncation)

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
