"""S3 (and S3-compatible) object store over one shared, thread-safe boto3 client.

Requests are retried by botocore (``retry_config``: its ``standard`` mode unless the environment,
the profile or the settings choose); ``retry.RetryPolicy`` retries only a body that breaks
half-way (the ranged GET is asked again as a whole) and clean-up after a failed write. Integrity
checks (CRC request checksums, response validation) keep botocore's defaults on AWS and are asked
for only when required on other endpoints (``checksum_config``). Uploads of buffers never copy
them: the body is a seekable reader over the caller's memory, and above the threshold parts go up
in parallel.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import io
import itertools
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody

from ... import fastpaths, waits
from ...config import Settings, from_shareable, legacy_keys, recall, remember, shareable
from ...printable import normalized_endpoint, without_userinfo
from .. import answers, conditions, progress
from ..answers import MAX_KEYS, ListPage
from ..base import (
    Account,
    Buffer,
    Capabilities,
    CopiedRange,
    Listing,
    MaybeStoredError,
    ObjectInfo,
    ObjectStore,
    Piece,
    Progress,
    StoreSpec,
    WholePart,
    add_note,
    as_byte_view,
    check_copy_source,
    check_range,
    stale_source,
)
from ..conditions import ConditionalSupport, WriteCondition
from ..errors import NoAnswer, aws_unreachable, check_bucket_name, connection_failed, error_code, failed, translate
from ..http_ranges import content_range_prefix, http_range, parse_content_range
from ..registry import StoreKind, StoreOptions
from ..retry import (
    CLEANUP_RETRY,
    AttemptLog,
    BrokenBody,
    RetryPolicy,
    ShortReadError,
    body_policy,
    is_body_failure,
    may_have_taken_effect,
    reading_body,
)
from ..upload_journal import UploadJournal
from . import joining
from .credential_process import bound_credential_process
from .list_bodies import cap_list_bodies

if TYPE_CHECKING:  # imported lazily: the fast path's botocore internals must never break this import
    from .signed import SignedRequests

log = logging.getLogger(__name__)
T = TypeVar("T")

#: S3's own limits
MAX_SINGLE_COPY = 5 * 2**30
MIN_PART = 5 * 2**20
#: the part size of a server-side copy too large for one request
COPY_PART_SIZE = 512 * 2**20
#: part size and parts being sent at once for streamed bodies (``put_chunks``): memory is about
#: (2 + STREAM_IN_FLIGHT) parts, the held first part and the one being filled included. S3's
#: smallest part: 30 MiB for the parts, which leaves room for the blocks being compressed within
#: the 64 MiB a transfer may hold (issue 15). Four in flight since ISA-L compresses faster than two
#: parts upload: 128 MiB of float32, default gzip, medians of 4: 1.51 -> 1.32 s on loopback,
#: 2.12 -> 1.67 s remote-like (20 ms, 100 MB/s per connection)
STREAM_PART = MIN_PART
STREAM_IN_FLIGHT = 4
#: the most a streamed part is allocated ahead of its bytes (``_cut_parts``; it doubles as they come):
#: a size hint is a promise (a ``.npy`` header written through a mount), and parts grown to fit a
#: large hint into S3's 10,000 were allocated whole before a byte of them arrived
PART_AHEAD = 16 * 2**20
#: seconds a writer whose CompleteMultipartUpload answer was lost waits for the object to appear once
#: the server no longer knows the upload (its lost attempt may still be joining the parts), looking
#: every COMPLETING_POLL seconds
COMPLETING_WAIT = 120.0
COMPLETING_POLL = 0.5
#: seconds to connect, and seconds without a byte of an answer before it is abandoned (and retried by
#: botocore): every call of our clients
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
#: seconds without a byte allowed to the answers of CompleteMultipartUpload and UploadPartCopy, during
#: which the server joins the parts or copies up to 5 GiB before it answers (``joining``): AWS keeps the
#: connection alive meanwhile, a server sending nothing (moto joining 1 GiB under load) outlasts
#: ``READ_TIMEOUT``. Still a bound: an attempt silent this long is abandoned, botocore's attempts counted
JOINING_READ_TIMEOUT = 300.0
#: error codes of a DeleteObjects refused whole for an entry's ``ETag`` field (an endpoint without
#: per-object conditions): deletes are then one ``DeleteObject`` with ``If-Match`` per key
ETAG_FIELD_REFUSED = frozenset({"MalformedXML", "InvalidArgument", "InvalidRequest", "NotImplemented", "400", "501"})
READ_CHUNK = 2**20


class BufferReader(io.RawIOBase):
    """A seekable binary stream over a memoryview: botocore can sign, send and re-send it (retries)
    without the bytes ever being copied as a whole."""

    def __init__(self, view: memoryview):
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._view)

    def readinto(self, b: Any) -> int:
        n = min(len(b), len(self._view) - self._pos)
        if n <= 0:
            return 0
        memoryview(b).cast("B")[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, size: int = -1) -> memoryview:
        """The next ``size`` bytes lent as a view, not copied: botocore reads a body to hash it (1 MiB
        at a time) and to send it, and hashlib and sockets take views. A copy was a new 1 MiB
        ``bytes`` per read, in the mount daemon a fresh mapping each (its allocator maps anything over
        256 KiB): page faults for every byte uploaded."""
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = self._view[self._pos : end]
        self._pos = end
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class ResumingStream(io.RawIOBase):
    """A whole-object body that survives a broken download: a read that fails for a passing reason
    (a reset, a truncated body, a timeout) asks again from the first byte not yet read (``Range``,
    pinned to the object's ETag so two versions never mix), with the store's retry policy. What
    cannot be resumed surfaces as ``OSError`` naming the object: ``ESTALE`` if the object changed,
    ``EIO`` otherwise.

    Why here: gzip bodies are decoded as they stream (the compressed body is never held whole), and
    the mount decodes compressed arrays the same way; a 10% reset rate used to fail one gzip read
    in five, where ranged reads retried.
    """

    def __init__(self, store: S3Store, key: str, response: Mapping[str, Any], if_match: str | None):
        super().__init__()
        self._store = store
        self._key = key
        self._body = response["Body"]
        self._etag = if_match or response.get("ETag")
        self._size = int(response.get("ContentLength", -1))
        self._pos = 0
        self._failures = 0  # consecutive failures without a byte of progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        want = len(b)
        while True:
            try:
                data = self._body.read(want) if want else b""
                if not data and want and self._size >= 0 and self._pos < self._size:
                    raise ShortReadError(errno.EIO, f"body ended at byte {self._pos} of {self._size}")
            except Exception as exc:
                self._resume(exc)
                continue
            n = len(data)
            memoryview(b).cast("B")[:n] = data
            self._pos += n
            if n:
                self._failures = 0
            return n

    def _resume(self, exc: Exception) -> None:
        """Reopen the body at the current position, or raise ``exc`` as the final ``OSError``."""
        policy = self._store.retry
        name = self._store.describe(self._key)
        self._failures += 1
        if not is_body_failure(exc) or self._failures >= policy.max_attempts or self._size < 0:
            raise failed(exc, f"{name}: read failed at byte {self._pos} ({type(exc).__name__}: {exc})") from exc
        log.debug("resuming the body of %s at byte %d after %s", name, self._pos, type(exc).__name__)
        with contextlib.suppress(Exception):  # the connection is broken anyway
            self._body.close()
        time.sleep(policy.delay(self._failures))
        kwargs: dict[str, Any] = {"Bucket": self._store.bucket, "Key": self._key, "Range": http_range(self._pos)}
        if self._etag:
            kwargs["IfMatch"] = self._etag
        response = self._store._call(
            lambda: self._store._pinned(self._store.client.get_object(**kwargs), self._key, self._etag),
            self._key, "read")
        self._body = response["Body"]
        answered = str(response.get("ContentRange") or "")
        if not answered.startswith(content_range_prefix(self._pos)) and not (self._pos == 0 and not answered):
            raise OSError(errno.EIO, f"{name}: asked to resume at byte {self._pos}, the server answered "
                                     f"{answered or 'the whole object'}")

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


#: where ``is_aws_endpoint`` recognises AWS's own S3 endpoints
AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
#: attempts per request (the first included) when neither the settings, the environment nor the
#: profile choose: more than botocore's 3, as cottoncandy always had (a mount outlives short faults)
DEFAULT_MAX_ATTEMPTS = 5


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    """No endpoint (boto3 picks AWS's) or an AWS host name."""
    if not endpoint_url:
        return True
    host = (urllib.parse.urlsplit(endpoint_url).hostname or "").lower().rstrip(".")
    return any(host.endswith(suffix) or host == suffix[1:] for suffix in AWS_HOST_SUFFIXES)


def _chain_sets(core: Any, name: str) -> bool:
    """Whether the environment (``AWS_<NAME>``) or the profile in ``~/.aws/config`` sets ``name``."""
    if os.environ.get(f"AWS_{name.upper()}"):
        return True
    try:
        return bool(core.get_scoped_config().get(name))
    except Exception:  # an unreadable or missing profile: boto3 says so when the client is made
        return False


def retry_config(settings: Settings, core: Any) -> dict[str, Any]:
    """botocore's ``retries``: what the settings (options.cfg, ``Settings``) say wins; else nothing,
    so botocore reads ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE`` and the profile's ``max_attempts``/
    ``retry_mode``; when none of them names one, ``DEFAULT_MAX_ATTEMPTS`` and the ``standard`` mode
    (old botocores default to ``legacy``)."""
    retries: dict[str, Any] = {}
    if settings.max_attempts:
        retries["total_max_attempts"] = max(1, int(settings.max_attempts))
    elif not _chain_sets(core, "max_attempts"):
        retries["total_max_attempts"] = DEFAULT_MAX_ATTEMPTS
    if settings.retry_mode:
        retries["mode"] = settings.retry_mode
    elif not _chain_sets(core, "retry_mode"):
        retries["mode"] = "standard"
    return retries


def checksum_config(settings: Settings, core: Any) -> dict[str, Any]:
    """Request checksums and response validation only when required, for endpoints other than
    AWS's (S3-compatible servers, moto, reject some of boto3 >= 1.36's default CRC headers) and
    unless the environment or profile chose; on AWS, botocore's defaults (integrity checks on)."""
    if is_aws_endpoint(settings.endpoint_url or _configured_endpoint(core)):
        return {}
    return {name: "when_required" for name in ("request_checksum_calculation", "response_checksum_validation")
            if not _chain_sets(core, name)}


def _configured_endpoint(core: Any) -> str | None:
    """The endpoint the environment or profile gives boto3 (``AWS_ENDPOINT_URL_S3``,
    ``AWS_ENDPOINT_URL``, a profile's ``endpoint_url``), when no setting names one."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        scoped = core.get_scoped_config()
    except Exception:
        return None
    services = scoped.get("s3") if isinstance(scoped.get("s3"), dict) else {}
    return services.get("endpoint_url") or scoped.get("endpoint_url")


def asks_aws_by_default(settings: Settings) -> bool:
    """Whether requests go to AWS because no endpoint was given (neither the settings, the environment
    nor the profile name one): a failure to connect then says how to give one."""
    if settings.endpoint_url:
        return False
    try:
        return not _configured_endpoint(make_session(settings)[1])
    except Exception:  # a profile boto3 cannot read: it says so itself; no advice about endpoints
        return False


def make_session(settings: Settings) -> tuple[Any, Any]:
    """The boto3 session for these settings (profile, keys, region) and its botocore session.

    Keys come from the settings only when given there (``get_interface``'s arguments, options.cfg);
    else boto3's chain finds them: environment, ``~/.aws`` profiles (SSO, ``credential_process``,
    assumed roles), instance metadata. 0.4.0's own sources are the last resort.
    """
    core = botocore.session.get_session()
    session = boto3.session.Session(
        botocore_session=core,
        profile_name=settings.profile,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        aws_session_token=settings.session_token,
        region_name=settings.region,
    )
    bound_credential_process(core)  # a credential_process that never exits is stopped (30 s)
    return session, core


def _legacy_credentials(session: Any) -> dict[str, Any]:
    """0.4.0's key sources as client arguments, only when boto3's chain finds no credentials."""
    if session.get_credentials() is None:
        legacy = legacy_keys()
        if legacy:
            return {"aws_access_key_id": legacy[0], "aws_secret_access_key": legacy[1]}
    return {}


def client_config(settings: Settings, core: Any) -> Config:
    """The botocore ``Config`` of our clients: retries, checksums, pool and timeouts; a ``Config``
    given to ``get_interface(config=...)`` is merged over it (the user's choices win)."""
    config_kwargs: dict[str, Any] = {
        "max_pool_connections": max(32, settings.threads * 4),
        # a stalled answer is abandoned (and retried by botocore) after this long without a byte
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "tcp_keepalive": True,
        **checksum_config(settings, core),
    }
    retries = retry_config(settings, core)
    if retries:
        config_kwargs["retries"] = retries
    if settings.signature_version:
        config_kwargs["signature_version"] = settings.signature_version
    style = addressing_style(settings, core)
    if style:
        config_kwargs["s3"] = {"addressing_style": style}
    config = Config(**config_kwargs)
    if settings.boto_config is not None:  # get_interface(config=...): the user's choices win
        theirs = getattr(settings.boto_config, "s3", None)
        if isinstance(theirs, dict) and style:  # their s3 options over ours, not instead of them
            config = config.merge(settings.boto_config).merge(Config(s3={"addressing_style": style, **theirs}))
        else:
            config = config.merge(settings.boto_config)
    return config


def addressing_style(settings: Settings, core: Any) -> str | None:
    """How bucket names are addressed: the settings' choice (``ccfs mount --addressing-style``), else the
    profile's ``s3.addressing_style``, else ``path`` with an endpoint (S3-compatible stores and local
    servers rarely have a name for each bucket); ``None``: botocore's own choice. A ``config=`` naming
    one wins over all of them (``client_config``). The fast path follows the same choice: it takes its
    URL from a request boto3 builds (``s3.signed``)."""
    if settings.addressing_style:
        return settings.addressing_style
    try:
        profile = core.get_config_variable("s3") or {}
    except Exception:  # an unreadable profile: boto3 says so when the client is made
        profile = {}
    if isinstance(profile, dict) and profile.get("addressing_style"):
        return str(profile["addressing_style"])
    return "path" if settings.endpoint_url else None


def make_client(settings: Settings) -> Any:
    """One boto3 S3 client for these settings (thread-safe; share it)."""
    session, core = make_session(settings)
    client = session.client("s3", endpoint_url=settings.endpoint_url, config=client_config(settings, core),
                            **_legacy_credentials(session))
    AttemptLog.install(client)
    joining.install(client)
    check_list_answers(client)
    return client


def check_list_answers(client: Any) -> None:
    """Have ``answers`` read every ListObjectsV2 body of ``client`` before botocore does.

    botocore's first handler of S3 answers (``_handle_200_error``) parses every 200 body whole to
    look for an embedded error, and turns a body that does not parse into a retried 500: a page of
    10^6 entries became a tree of 10^6 elements before anything could count them, and cut-off XML
    was reported as "500 Internal Server Error" after five tries. So ours goes first, and
    botocore's is put back after it (a private name: without it, ours runs after botocore's)."""
    cap_list_bodies(client)  # read no further than a page can be long (storage/s3/list_bodies.py)
    events = client.meta.events
    events.register_first("before-parse.s3.*", answers.check_boto_answer, unique_id="cottoncandy-list-answers")
    try:
        botocores = fastpaths.private("botocore.handlers", "_handle_200_error")
    except fastpaths.Unavailable:
        log.debug("botocore's 200-error handler not found: LIST bodies are checked after it")
        return
    events.unregister("before-parse.s3.*", botocores)
    events.register_first("before-parse.s3.*", botocores)


def attempts_of(client: Any) -> int:
    """How many times botocore tries one request with this client (its resolved setting; the
    default for a client that is not botocore's, such as a test's stand-in)."""
    config = getattr(getattr(client, "meta", None), "config", None)
    retries = getattr(config, "retries", None) or {}
    return int(retries.get("total_max_attempts") or DEFAULT_MAX_ATTEMPTS)


class S3Account(Account):
    """Bucket-level calls, and the factory of per-bucket stores sharing one client."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        #: buckets' regions learned by bucket checks, where they are not the client's (``store`` passes them on)
        self.regions: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"S3Account(endpoint={without_userinfo(self.endpoint)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its settings, which carry no secret (``Settings.__reduce__``); never its client."""
        return S3Account, (self.settings,)

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint_url or "AWS S3"

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = make_client(self.settings)
            return self._client

    def _call(self, fn: Callable[[], T], bucket: str, action: str) -> T:
        """``fn`` (botocore retries it); failures as built-in exceptions naming the bucket."""
        try:
            return fn()
        except (ClientError, BotoCoreError) as exc:
            aws = connection_failed(exc) and asks_aws_by_default(self.settings)
            raise translate(exc, bucket, None, action, default_endpoint=aws) from exc

    def check_bucket_name(self, bucket: str) -> None:
        check_bucket_name(bucket)

    def store(self, bucket: str) -> S3Store:
        return S3Store(bucket, self.settings, client=self.client, region=self.regions.get(bucket))

    def list_buckets(self) -> list[str]:
        resp = self._call(lambda: self.client.list_buckets(), "*", "list buckets of")
        return [b["Name"] for b in resp.get("Buckets", [])]

    def bucket_exists(self, bucket: str) -> bool:
        try:
            check_bucket_name(bucket)
        except ValueError:  # no store has such a bucket (0.4.0 asked, and its server answered 404)
            return False
        try:
            answer = self._call(lambda: self.client.head_bucket(Bucket=bucket), bucket, "check")
        except FileNotFoundError:
            return False
        self._learn_region(bucket, answer)
        return True

    def _learn_region(self, bucket: str, answer: Mapping[str, Any]) -> None:
        """Keep the bucket's region a HeadBucket answer names (botocore followed it there), where it is
        not the client's: its stores sign their fast requests for it from the first (no 301 each)."""
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = answer.get("BucketRegion") or headers.get("x-amz-bucket-region")
        if isinstance(region, str) and region and region != self.client.meta.region_name:
            self.regions[bucket] = region

    def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        check_bucket_name(bucket)
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":  # with an endpoint too: S3-compatible stores check it as S3 does
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if acl:
            kwargs["ACL"] = acl
        self._call(lambda: self.client.create_bucket(**kwargs), bucket, "create")

    def delete_bucket(self, bucket: str) -> None:
        check_bucket_name(bucket)
        self._call(lambda: self.client.delete_bucket(Bucket=bucket), bucket, "delete")

    def _resource(self) -> Any:
        """A boto3 resource with the client's session: same profile, keys, region and config."""
        session, core = make_session(self.settings)
        resource = session.resource("s3", endpoint_url=self.settings.endpoint_url,
                                    config=client_config(self.settings, core), **_legacy_credentials(session))
        check_list_answers(resource.meta.client)  # its LIST bodies capped as ours (a user's paginator)
        return resource

    def native_bucket(self, bucket: str) -> Any:
        """The boto3 ``Bucket`` resource, as 0.4.0's ``get_bucket()`` returned."""
        return self._resource().Bucket(bucket)

    def native_object(self, bucket: str, key: str) -> Any:
        """The boto3 ``Object`` resource, as 0.4.0's ``get_object()`` returned."""
        return self._resource().Object(bucket, key)


class S3Store(ObjectStore):
    """One bucket of an S3 endpoint."""

    capabilities = Capabilities(batched_head=True, cross_bucket_copy=True, other_processes=True)

    def __init__(self, bucket: str, settings: Settings, client: Any = None, region: str | None = None):
        check_bucket_name(bucket)
        self.bucket = bucket
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        #: the bucket's region, when known to differ from the client's (learned: ``bucket_region``)
        self.region = region
        #: the one loop left to us: bodies that break after botocore returned the answer
        self.retry = body_policy(attempts_of(self.client))
        self.part_size = settings.download_part_size
        self.concurrency = settings.threads
        self._signed: SignedRequests | None | bool = False  # False: not built yet
        self._signed_head_lock = threading.Lock()
        #: memory one folder level's listing may take (``answers.LISTING_MEMORY``; ``None``: no limit)
        self.listing_memory: int | None = answers.LISTING_MEMORY
        #: which conditional writes the endpoint honours (``conditional_writes``; ``None``: not asked yet)
        self._conditions: ConditionalSupport | None = None
        #: where the multipart uploads this store starts are written down (``record_uploads``)
        self._journal: UploadJournal | None = None
        #: whether DeleteObjects takes per-object ETag conditions (until the endpoint refuses the field)
        self._batched_conditions = True

    def __repr__(self) -> str:
        endpoint = without_userinfo(self.settings.endpoint_url) if self.settings.endpoint_url else "AWS S3"
        return f"S3Store(bucket={self.bucket!r}, endpoint={endpoint!r})"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its ``spec()`` (no secret, no client), as dask graphs carry stores."""
        return _from_spec, (self.spec(),)

    def cache_scope(self) -> str | None:
        """``change_scope()``, or ``None`` with ``Settings(metadata_cache=False)``."""
        return self.change_scope() if self.settings.metadata_cache else None

    def change_scope(self) -> str | None:
        """``s3 <endpoint> <bucket>``: the endpoint without any user part, query or fragment."""
        endpoint = self.settings.endpoint_url
        return f"s3 {normalized_endpoint(endpoint) if endpoint else 'aws'} {self.bucket}"

    def spec(self) -> StoreSpec:
        """Every non-secret setting (``config.shareable``) and a token for this process's credentials
        (``config.remember``).

        No secret travels: in this process or a forked worker the token finds the settings the
        interface was made with; elsewhere workers use the spec's settings with their own credentials.
        """
        chosen = replace(self.settings, addressing_style=self.addressing_style())
        return StoreSpec(KIND.scheme, self.bucket, shareable(chosen), remember(self.settings),
                         region=self.bucket_region())

    def bucket_region(self) -> str | None:
        """The bucket's region where it was learned to differ from the client's: by the bucket check
        (``S3Account.bucket_exists``) or by the fast path following a 301 (``s3_signed.follow_region``)."""
        fast = self._signed
        moved = fast is not False and fast is not None and getattr(fast, "moved_from", None) is not None
        return getattr(fast, "region", None) if moved else self.region

    def addressing_style(self) -> str | None:
        """The addressing style this store's client uses (``client_config``'s choice, the profile's
        included), for workers: their profile may not say it."""
        chosen = getattr(getattr(self.client, "meta", None), "config", None)
        s3_options = getattr(chosen, "s3", None) or {}
        used = s3_options.get("addressing_style") if isinstance(s3_options, dict) else None
        return str(used) if used else self.settings.addressing_style  # the client's is the merged result

    # --- plumbing ----------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], key: str | None, action: str, *, writes: bool = False,
              retry: RetryPolicy | None = None) -> T:
        """``fn`` (botocore retries its requests; ``self.retry`` a body that broke, ``retry`` what
        it covers); failures as built-in exceptions naming the object.

        ``writes``: ``fn`` changes the store. If any attempt may have been carried out before it
        failed (its answer was lost; botocore's attempts are seen through ``AttemptLog``), the
        final error says that the server may have stored it.
        """
        with AttemptLog.watching() as attempts:
            try:
                return (retry or self.retry).call(fn, f"{action} {self.describe(key)}")
            except (ClientError, BotoCoreError, BrokenBody, ConnectionError, TimeoutError) as exc:
                error = self._error(exc, key, action)
                if writes and error.errno == errno.EIO and (any(attempts) or may_have_taken_effect(exc)):
                    error = MaybeStoredError(errno.EIO, f"{error.strerror}; the server may have stored it "
                                                        "before its answer was lost")
                raise error from exc

    def _error(self, exc: BaseException, key: str | None, action: str) -> OSError:
        """The built-in exception a failure of ``action`` on ``key`` is raised as."""
        if isinstance(exc, BrokenBody):
            return failed(exc, f"{self.describe(key)}: {exc.strerror or exc}")
        aws = connection_failed(exc) and asks_aws_by_default(self.settings)
        if isinstance(exc, (ClientError, BotoCoreError)):
            return translate(exc, self.bucket, key, action, default_endpoint=aws)
        if aws:
            return aws_unreachable(self.describe(key), action, type(exc).__name__)
        return failed(exc, f"failed to {action} {self.describe(key)}: {type(exc).__name__}")

    def _info(self, key: str, resp: Mapping[str, Any]) -> ObjectInfo:
        meta = {str(k).lower(): v for k, v in resp.get("Metadata", {}).items()}
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), etag=self._version_of(key, resp, "HEAD"),
                          last_modified=resp.get("LastModified"), metadata=meta)

    def _version_of(self, key: str, resp: Mapping[str, Any], request: str = "GET") -> str:
        """The ETag an answer names. Every S3 HEAD and GET of an object names one; an answer without
        it (a portal's HTML page sent with 200) is ``answers.BadAnswer``, never the object."""
        etag = resp.get("ETag")
        if etag and str(etag).strip():
            return str(etag)
        endpoint = without_userinfo(self.settings.endpoint_url) if self.settings.endpoint_url else "AWS S3"
        kind = resp.get("ContentType") or "no Content-Type"
        raise answers.BadAnswer(f"{self.describe(key)}: the {request} answer of {endpoint} names no version (no "
                                f"ETag; {kind}, {resp.get('ContentLength', '?')} bytes): it is not S3's")

    # --- reading -----------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        fast = self._signed_requests()
        if fast is not None:
            info = fast.head(key)
            if info is not None:
                return info
        resp = self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=key), key, "read")
        return self._info(key, resp)

    def head_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo | None]:
        """The plain-200 answers to HEADs of many keys, sent from this thread (see ``s3.signed``).

        A key maps to ``None`` when its answer was anything else (a 404, a refusal, a fault): ask
        ``head`` for it, so boto3 says what it is and retries. Every key maps to ``None`` at once
        when this client cannot batch at all (then callers use threads).
        """
        fast = self._signed_requests()
        return dict.fromkeys(keys) if fast is None else fast.head_many(keys)

    def _signed_requests(self) -> SignedRequests | None:
        """The cheap HEAD and GET path (see ``s3.signed``), built on first use; ``None`` where it cannot
        work, or is switched off (``Settings.fast_paths``, ``CCFS_FAST_PATHS=0``): then plain boto3 calls."""
        if self._signed is False:
            with self._signed_head_lock:
                if self._signed is False:
                    self._signed = self._build_signed_requests()
        return self._signed  # type: ignore[return-value]

    def _build_signed_requests(self) -> SignedRequests | None:
        if not (self.settings.fast_paths and fastpaths.enabled()):
            return None
        try:
            from .signed import SignedRequests
        except ImportError as exc:  # a botocore release moved a name it imports
            fastpaths.fell_back("botocore", f"{type(exc).__name__}: {exc}", "plain boto3 calls")
            return None
        return SignedRequests.for_client(self.client, self.bucket, region=self.region)

    def _fast_bodies(self) -> bool:
        """Whether a GET's body may be read by its socket straight into the buffer (``_socket_readinto``)."""
        return self.settings.fast_paths and fastpaths.enabled()

    def _head_in(self, bucket: str, key: str) -> ObjectInfo:
        resp = self._call(lambda: self.client.head_object(Bucket=bucket, Key=key), key, "read")
        return self._info(key, resp)

    def _ranged(self, key: str, start: int, end: int, if_match: str | None) -> Any:
        """A ranged GET's answer; with ``if_match``, only an answer of that version (``ESTALE``)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Range": http_range(start, end)}
        if if_match:
            kwargs["IfMatch"] = if_match
        return self._pinned(self.client.get_object(**kwargs), key, if_match)

    def _pinned(self, response: Any, key: str, if_match: str | None) -> Any:
        """``response`` if it is of the version ``if_match`` names; else its body is closed unread and
        ``OSError(ESTALE)`` says which version came (an endpoint that ignores ``If-Match``). Without
        ``if_match``, an answer naming no version at all is ``answers.BadAnswer``."""
        try:
            if if_match:
                answers.check_etag(if_match, response.get("ETag"), self.describe(key))
            else:
                self._version_of(key, response)
        except OSError:
            with contextlib.suppress(Exception):
                response["Body"].close()
            raise
        return response

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        check_range(start, end)
        if end == start:
            return b""

        def fetch() -> bytes:
            body = self._ranged(key, start, end, if_match)["Body"]
            try:
                data = reading_body(body.read)
            finally:
                body.close()
            if len(data) != end - start:
                raise ShortReadError(errno.EIO, f"short read: {len(data)} of {end - start} bytes")
            return data

        return self._call(fetch, key, "read")

    def readinto(self, key: str, start: int, buffer: memoryview, if_match: str | None = None) -> None:
        total = len(buffer)
        if total == 0:
            return

        fast = self._signed_requests()
        try:
            if fast is not None and fast.get_into(key, start, buffer, if_match):
                return
        except TimeoutError as exc:  # slow answers were abandoned and asked again: give up, do not wait on
            raise NoAnswer(errno.EIO, f"failed to read {self.describe(key)} bytes {start}-{start + total - 1}: "
                                      f"{exc}") from exc

        def fill(body: Any) -> int:
            direct = _socket_readinto(body, buffer) if self._fast_bodies() else None
            return direct if direct is not None else _copy_body(body, buffer, total)

        def fetch() -> None:
            body = self._ranged(key, start, start + total, if_match)["Body"]
            try:
                pos = reading_body(lambda: fill(body))
            finally:
                body.close()
            if pos != total:
                raise ShortReadError(errno.EIO, f"short read: {pos} of {total} bytes")

        self._call(fetch, key, "read")

    def read_start(self, key: str, buffer: memoryview) -> tuple[ObjectInfo, int]:
        """One ranged GET of the first ``len(buffer)`` bytes; its headers give what a HEAD would
        (ETag, user metadata, the size from ``Content-Range``). An empty object has no first byte to
        range over (S3 answers ``InvalidRange``): a HEAD then says what it is."""
        if len(buffer) == 0:
            return self.head(key), 0
        fast = self._signed_requests()
        try:
            probed = fast.get_start(key, buffer) if fast is not None else None
        except TimeoutError as exc:  # slow answers were abandoned and asked again: give up, do not wait on
            raise NoAnswer(errno.EIO, f"failed to read {self.describe(key)}: {exc}") from exc
        if probed is not None:
            return probed

        def fetch() -> tuple[ObjectInfo, int] | None:
            try:
                resp = self._ranged(key, 0, len(buffer), None)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return None
                raise
            body = resp["Body"]
            try:
                self._version_of(key, resp)  # before a byte of the body is taken
            except OSError:
                body.close()
                raise
            # a body sent ``Transfer-Encoding: chunked`` has no Content-Length: ``Content-Range``
            # says how long it is, or (the whole object) the body's own end
            length = _answer_length(resp)
            content_range = str(resp.get("ContentRange") or "")
            size: int | None
            if content_range:
                parsed = parse_content_range(content_range)
                if parsed is None or parsed[0] != 0:
                    body.close()
                    raise ShortReadError(errno.EIO, f"answer {content_range!r} to a range of {len(buffer)} bytes")
                _, want, total = parsed
                size = total if total is not None else want
                if (length is not None and length != want) or want != min(size, len(buffer)):
                    body.close()
                    raise ShortReadError(errno.EIO, f"answer of {length if length is not None else want} bytes "
                                                    f"to a range of {len(buffer)}")
            else:  # an endpoint that ignores Range answers the whole object: its first bytes will do
                size = length
                want = min(length, len(buffer)) if length is not None else len(buffer)

            try:  # a body broken midway is asked again, as every read's (botocore cannot retry it)
                pos = reading_body(lambda: _copy_body(body, buffer, want))
                if size is None:  # a whole body of no stated length ends where it ends
                    size = pos if pos < want or not reading_body(lambda: body.read(1)) else None
                    want = pos
            finally:
                body.close()
            if size is None:  # longer than the buffer, of no stated length: a HEAD says how long
                return None
            if pos != want:
                raise ShortReadError(errno.EIO, f"short read: {pos} of {want} bytes")
            meta = {str(k).lower(): v for k, v in resp.get("Metadata", {}).items()}
            return ObjectInfo(key=key, size=size, etag=self._version_of(key, resp),
                              last_modified=resp.get("LastModified"), metadata=meta), want

        answer = self._call(fetch, key, "read")
        return answer if answer is not None else (self.head(key), 0)

    def open_read(self, key: str, if_match: str | None = None) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match:
            kwargs["IfMatch"] = if_match
        resp = self._call(lambda: self._pinned(self.client.get_object(**kwargs), key, if_match), key, "read")
        return io.BufferedReader(ResumingStream(self, key, resp, if_match), READ_CHUNK)

    # --- writing -----------------------------------------------------------------------------
    def _extra(self, metadata: Mapping[str, str] | None, acl: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"Metadata": dict(metadata or {})}
        acl = acl or self.settings.default_acl
        if acl:
            extra["ACL"] = acl
        return extra

    def put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None = None,
            acl: str | None = None, progress: Progress | None = None, *,
            condition: WriteCondition | None = None) -> ObjectInfo:
        info = self._put(key, data, metadata, acl, progress, condition)
        self.changed([key])
        return info

    def _put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None,
             acl: str | None, progress: Progress | None, condition: WriteCondition | None = None) -> ObjectInfo:
        extra = self._extra(metadata, acl)
        if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "__array_interface__"):
            view = as_byte_view(data)  # type: ignore[arg-type]
            if len(view) < self.settings.mpu_threshold:
                return self._put_single(key, view, extra, progress, condition)
            parts = self._plan_parts(len(view))
            return self._multipart(key, extra, ((i, view[s:e]) for i, (s, e) in enumerate(parts, 1)), progress,
                                   condition=condition)
        stream = data
        first = _read_full(stream, self.settings.mpu_threshold)
        if len(first) < self.settings.mpu_threshold:
            return self._put_single(key, memoryview(first), extra, progress, condition)
        return self._multipart(key, extra, _stream_parts(first, stream, self.settings.mpu_chunksize), progress,
                               condition=condition)

    def put_chunks(self, key: str, chunks: Iterable[Buffer], metadata: Mapping[str, str] | None = None,
                   acl: str | None = None, progress: Progress | None = None, *,
                   head: Callable[[], bytes] | None = None, size_hint: int | None = None,
                   in_flight: int | None = None, condition: WriteCondition | None = None,
                   part_size: int | None = None) -> ObjectInfo:
        """Stream ``head() + chunks`` in parts of :meth:`_stream_part_size`: with a ``head``, the first
        part is held back and sent last (its head is known only at the end), at most ``in_flight`` (default
        :data:`STREAM_IN_FLIGHT`) others are being sent, one is being filled. A body that fits one
        part is one PUT."""
        extra = self._extra(metadata, acl)
        expected = None if size_hint is None else size_hint + size_hint // 100 + 1024  # incompressible + headers
        parts = _cut_parts(chunks, self._stream_part_size(size_hint, part_size), expected)
        held = next(parts, bytearray())
        second = next(parts, None)
        if second is None:
            held[:0] = head() if head is not None else b""
            info = self._put_single(key, memoryview(held), extra, progress, condition)
            self.changed([key])
            return info

        def numbered() -> Iterator[tuple[int, memoryview]]:
            # no reference to a part outlives its yield: the closure's ``second`` held part 2 for the
            # whole upload, and the loop variable held each sent part while the next one was filled
            nonlocal second, held
            if head is None:  # nothing goes before the first part: sent first, not held to the end
                view, held = memoryview(held), bytearray()
                yield 1, view
                del view
            view = memoryview(second)  # type: ignore[arg-type]
            second = None
            yield 2, view
            del view
            for number, part in enumerate(parts, 3):
                view = memoryview(part)
                del part
                yield number, view
                del view
            if head is not None:
                held[:0] = head()
                yield 1, memoryview(held)

        sending = STREAM_IN_FLIGHT if in_flight is None else max(1, in_flight)
        info = self._multipart(key, extra, numbered(), progress, in_flight=min(self.settings.threads, sending),
                               condition=condition)
        self.changed([key])
        return info

    def _stream_part_size(self, size_hint: int | None, asked: int | None = None) -> int:
        """Parts of a streamed body: small (memory is a few parts) unless ``asked``, grown to stay under
        the part limit."""
        part = max(MIN_PART, asked if asked else min(self.settings.mpu_chunksize, STREAM_PART))
        most = None if size_hint is None else size_hint + size_hint // 100 + 2**20  # incompressible data grows
        while most is not None and -(-most // part) > self.settings.max_mpu_parts:
            part *= 2
        return part

    def _put_single(self, key: str, view: memoryview, extra: dict[str, Any],
                    progress: Progress | None = None, condition: WriteCondition | None = None) -> ObjectInfo:
        asked = condition.headers() if condition is not None else {}

        def send() -> Any:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=BufferReader(view),
                                          ContentLength=len(view), **extra, **asked)

        with AttemptLog.watching() as attempts:  # botocore's attempts: was one answer lost?
            try:
                etag = str(self._conditional(condition, key, lambda: self._call(
                    send, key, "write", writes=True))["ETag"])
            except OSError as exc:
                if not (any(attempts) and conditions.lost_race(exc)):
                    raise
                # a retry refused for its condition after an attempt whose answer was lost: that
                # attempt may have stored this very body (S3's ETag of a single PUT is its MD5)
                found = self._ours(key, hashlib.md5(view, usedforsecurity=False).hexdigest(), len(view), exc)
                if found is None:
                    raise
                etag = found
        if progress is not None:
            progress(len(view))
        return ObjectInfo(key=key, size=len(view), etag=etag, metadata=extra["Metadata"])

    def _ours(self, key: str, etag: str, size: int, refusal: OSError) -> str | None:
        """``key``'s ETag (quoted) if the object there now is the one this write sent -- ETag ``etag``
        and ``size`` bytes -- else ``None``. Asked when a conditional write was refused (412) on a
        retry after an attempt whose answer was lost: the lost attempt stored it, and the retry
        found it there (``If-None-Match: *``: the key exists; ``If-Match``: the version changed),
        so the write succeeded. Anything else stays the loser's error (EEXIST/ESTALE)."""
        try:
            info = self.head(key)
        except OSError:
            return None
        if info.etag.strip('"') != etag or info.size != size:
            return None
        log.info("%s: a retried conditional write was refused (%s), but the object there is the one this write "
                 "sent (an earlier attempt's answer was lost); taken as done", self.describe(key),
                 refusal.strerror or refusal)
        return f'"{etag}"'

    def _plan_parts(self, size: int) -> list[tuple[int, int]]:
        chunk = max(MIN_PART, self.settings.mpu_chunksize)
        while -(-size // chunk) > self.settings.max_mpu_parts:
            chunk *= 2
        return [(s, min(s + chunk, size)) for s in range(0, size, chunk)]

    def compose(self, key: str, pieces: Iterable[Piece], metadata: Mapping[str, str] | None = None,
                acl: str | None = None, *, condition: WriteCondition | None = None,
                in_flight: int | None = None) -> ObjectInfo:
        """One multipart upload, a part per piece: bytes are sent (``UploadPart``), a ``CopiedRange`` is
        copied by the server (``UploadPartCopy`` with ``CopySourceRange`` and ``CopySourceIfMatch``);
        aborted on any failure, so nothing partial is ever visible. One bytes piece alone is one PUT."""
        extra = self._extra(metadata, acl)
        numbered = enumerate((p if isinstance(p, CopiedRange) else as_byte_view(p) for p in pieces), 1)
        first = next(numbered, None)
        second = next(numbered, None)
        if second is None and (first is None or not isinstance(first[1], CopiedRange)):
            body = first[1] if first is not None else memoryview(b"")
            info = self._put_single(key, body, extra, None, condition)  # type: ignore[arg-type]
        else:
            parts = itertools.chain((first, second) if second is not None else (first,), numbered)  # one copied piece
            info = self._multipart(key, extra, parts, in_flight=in_flight, condition=condition)  # type: ignore[arg-type]
        self.changed([key])
        return info

    def _copy_part(self, key: str, upload_id: str, number: int, piece: CopiedRange) -> str:
        """``UploadPartCopy`` of ``piece`` as part ``number``: its ETag (``ESTALE`` if the source changed)."""
        answer = self._joining(lambda: self.client.upload_part_copy(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": piece.key}, CopySourceRange=http_range(piece.start, piece.end),
            CopySourceIfMatch=piece.etag))
        return str(answer["CopyPartResult"]["ETag"])

    def _joining(self, send: Callable[[], T]) -> T:
        """``send()``, a ``CompleteMultipartUpload`` or an ``UploadPartCopy``: its answer read with
        ``JOINING_READ_TIMEOUT`` (or the client's read timeout, if longer), during which the server
        works before it answers (``joining``). A thread whose waits may be given up (a FUSE request)
        waits for it in slices and gives up when told (``waits.offload``: EINTR, or EIO when the mount
        stops; the call goes on and settles what it settles, as any lost answer); botocore's attempts
        made meanwhile are seen by this thread's ``AttemptLog``, so a lost answer is still known."""
        config = getattr(getattr(self.client, "meta", None), "config", None)
        seconds = max(JOINING_READ_TIMEOUT, float(getattr(config, "read_timeout", 0) or 0))
        if not joining.supported():
            return send()
        if not waits.active():
            with joining.reading_for(seconds):
                return send()
        seen: list[bool] = []

        def run() -> T:
            with AttemptLog.watching() as attempts, joining.reading_for(seconds):
                try:
                    return send()
                finally:
                    seen.extend(attempts)

        try:
            return waits.offload(run, "cc-joining")
        finally:
            AttemptLog.tell(seen)

    def _multipart(self, key: str, extra: dict[str, Any], parts: Iterator[tuple[int, memoryview | CopiedRange]],
                   progress: Progress | None = None, in_flight: int | None = None,
                   condition: WriteCondition | None = None) -> ObjectInfo:
        """Upload numbered parts with at most ``in_flight`` (default ``threads``) being sent; abort
        the upload on any failure (also one raised by ``parts`` itself). A ``CopiedRange`` part is
        copied server-side (``compose``)."""
        in_flight = max(1, in_flight or self.settings.threads)
        upload_id = self._create_upload(key, extra, "write")
        done: dict[int, str] = {}
        size = 0

        def send(number: int, holder: list[memoryview | CopiedRange]) -> None:
            view = holder.pop()  # the pool's work item keeps its arguments until the worker moves on:
            # the part goes with this frame, before the caller, woken by its result, fills the next

            def once() -> Any:
                if isinstance(view, CopiedRange):
                    return {"ETag": self._copy_part(key, upload_id, number, view)}
                return self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                               PartNumber=number, Body=BufferReader(view),
                                               ContentLength=len(view))

            done[number] = self._call(once, key, "write")["ETag"]
            if progress is not None:
                progress(len(view))

        try:
            with _parts_pool(in_flight, "cc-put") as pool:
                pending: set[Future[None]] = set()
                for number, view in parts:
                    size += len(view)
                    pending.add(pool.submit(send, number, [view]))
                    del view  # the future holds the part until it is sent
                    if len(pending) >= in_flight:
                        finished, pending = waits.first_settled(pending)
                        for fut in finished:
                            fut.result()
                for fut in pending:
                    waits.done(fut)
                    fut.result()
            listing = [{"PartNumber": n, "ETag": done[n]} for n in sorted(done)]
            etag = self._complete(key, upload_id, listing, size, condition)
        except BaseException as exc:
            self._abort(key, upload_id, exc)
            raise
        return ObjectInfo(key=key, size=size, etag=etag, metadata=extra["Metadata"])

    def _create_upload(self, key: str, extra: dict[str, Any], action: str) -> str:
        """``CreateMultipartUpload``; when an attempt's answer was lost, the server may have started
        an upload nobody knows the id of: find this writer's (same key, initiated since its first
        attempt) and abort them, so no invisible in-progress upload keeps its parts (and its bill)."""
        started = time.monotonic()
        with AttemptLog.watching() as attempts:  # botocore's attempts, each may have started one
            try:
                upload_id = str(self._call(lambda: self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=key, **extra), key, action)["UploadId"])
            except BaseException as exc:
                if any(attempts) or may_have_taken_effect(exc.__cause__ or exc):
                    self._abort_orphans(key, started, keep=None, failure=exc)
                raise
        if self._journal is not None:  # before any part is sent: a daemon killed from here on is recovered
            self._journal.started(key, upload_id)
        lost = any(attempts)
        if lost:
            self._abort_orphans(key, started, keep=upload_id, failure=None)
        return upload_id

    def _complete(self, key: str, upload_id: str, listing: list[dict[str, Any]], size: int | None = None,
                  condition: WriteCondition | None = None) -> str:
        """``CompleteMultipartUpload``; its ETag.

        S3 documents that Complete may fail (a 500, a lost answer, a timeout) after it succeeded. So
        when an attempt's answer may have been lost and the call then fails (the retry finds the
        upload gone, every retry fails too, or a conditional retry is refused because the key now
        holds what the lost attempt completed), the object is looked at: if it has this upload's
        multipart ETag (and ``size``, when known), the upload is done and that ETag is returned.
        """
        asked = condition.headers() if condition is not None else {}

        def complete() -> Any:
            return self._joining(lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listing}, **asked))

        with AttemptLog.watching() as attempts:  # botocore's attempts: was one answer lost?
            try:
                done = str(self._conditional(condition, key, lambda: self._call(
                    complete, key, "write", writes=True))["ETag"])
                self._ended(upload_id)
                return done
            except OSError as exc:
                lost = any(attempts) or isinstance(exc, MaybeStoredError)
                # a retry after a lost answer finds the upload gone (404), fails (EIO), or is refused for
                # its condition because the lost attempt completed it (412: EEXIST/ESTALE)
                if lost and (isinstance(exc, FileNotFoundError) or exc.errno == errno.EIO or
                             (condition is not None and conditions.lost_race(exc))):
                    etag = self._completed_etag(key, listing, size)
                    if etag is None and self._upload_gone(key, upload_id):  # a lost attempt may still be
                        etag = self._completed_etag(key, listing, size, wait=COMPLETING_WAIT)  # completing it
                    if etag is not None:
                        self._ended(upload_id)
                        log.info("%s: completing the upload failed (%s), but the object is there with this "
                                 "upload's ETag; taken as done", self.describe(key), exc.strerror or exc)
                        return etag
                raise

    def _completed_etag(self, key: str, listing: list[dict[str, Any]], size: int | None,
                        wait: float = 0.0) -> str | None:
        """The ETag of ``key`` if it is the object these parts make (``None`` if not, or if unknown),
        looking again every ``COMPLETING_POLL`` seconds for up to ``wait`` seconds while it is not."""
        expected = multipart_etag(part["ETag"] for part in listing)
        deadline = time.monotonic() + wait
        while True:
            try:
                info: ObjectInfo | None = self.head(key)
            except OSError:
                info = None
            if info is not None and info.etag.strip('"') == expected and (size is None or info.size == size):
                return f'"{expected}"'
            if time.monotonic() >= deadline:
                return None
            waits.check()  # a FUSE request interrupted, or the mount stopping, gives up (GaveUp: EINTR/EIO)
            time.sleep(COMPLETING_POLL)

    def _upload_gone(self, key: str, upload_id: str) -> bool:
        """Whether the server no longer knows ``upload_id`` (``NoSuchUpload``): completed, by an attempt
        whose answer was lost and which may still be under way (a server stores the object only once
        it has joined the parts: moto joins 1 GiB for longer than the client's read timeout), or
        aborted. ``False`` when it is still there, or when that cannot be told."""
        try:
            self._call(lambda: self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=1),
                       key, "check the upload of")
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return False

    def record_uploads(self, journal: UploadJournal | None) -> None:
        self._journal = journal

    def abort_upload(self, key: str, upload_id: str) -> None:
        """``AbortMultipartUpload``, retried patiently; the journal learns it ended (gone counts too)."""
        with contextlib.suppress(FileNotFoundError):  # already gone (an earlier answer was lost): done too
            self._call(lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id),
                       key, "abort the upload of", retry=CLEANUP_RETRY)
        self._ended(upload_id)

    def _ended(self, upload_id: str) -> None:
        if self._journal is not None:
            self._journal.ended(upload_id)

    def _conditional(self, condition: WriteCondition | None, key: str, send: Callable[[], T]) -> T:
        """``send()``, a write carrying ``condition``: a refusal of the condition is the loser's error
        (``conditions.refused``), anything else passes through."""
        try:
            return send()
        except OSError as exc:
            code = error_code(exc.__cause__) if exc.__cause__ is not None else ""
            lost = conditions.refused(condition, exc, code, self.describe(key))
            if lost is exc:
                raise
            raise lost from exc

    def conditional_writes(self) -> ConditionalSupport:
        """What this endpoint honours, found by ``conditions.probe`` on a private key the first time
        it is asked (then kept): AWS honours all; stand-in servers often ignore some, or all."""
        if self._conditions is None:
            key = conditions.probe_key()
            try:
                self._conditions = conditions.probe(self._probe_write, key)
            except OSError as exc:
                log.warning("%s: could not find out which conditional writes the endpoint honours (%s); "
                            "assuming none", self.describe(), exc)
                self._conditions = conditions.NO_SUPPORT
            finally:
                try:
                    self._delete_batch([key], cleanup=True)
                except OSError as exc:
                    log.warning("could not remove the probe object %s: %s", self.describe(key), exc)
        return self._conditions

    def _probe_write(self, kind: str, key: str, condition: WriteCondition | None) -> bool:
        """One write of ``conditions.probe``: whether the server refused it for its condition."""
        extra = self._extra({}, None)
        try:
            if kind == "put":
                self._put_single(key, memoryview(b"probe"), extra, None, condition)
            elif kind == "delete":
                assert condition is not None and condition.if_match is not None
                return bool(self.delete_versions({key: condition.if_match}))
            elif kind == "copy":  # onto itself: legal with its metadata replaced
                asked = condition.headers() if condition is not None else {}
                self._conditional(condition, key, lambda: self._call(lambda: self.client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE", Metadata={"probe": "copy"}, **asked), key, "write", writes=True))
            else:
                self._multipart(key, extra, iter([(1, memoryview(b"probe"))]), None, condition=condition)
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or exc.errno == errno.ESTALE:
                return True
            raise
        return False

    def _abort(self, key: str, upload_id: str, failure: BaseException | None = None) -> None:
        """Abort an upload, retrying patiently (the endpoint has just failed); an abort that cannot be
        done is logged and noted on ``failure`` (the original error matters more)."""
        try:
            self.abort_upload(key, upload_id)
        except FileNotFoundError:  # already gone (an earlier attempt's answer was lost)
            return
        except OSError as exc:
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, self.describe(key), exc)
            if failure is not None:
                add_note(failure, f"cottoncandy: the in-progress multipart upload {upload_id} of "
                                  f"{self.describe(key)} could not be aborted ({exc})")

    def _abort_orphans(self, key: str, started: float, keep: str | None, failure: BaseException | None) -> None:
        """Abort the in-progress uploads of ``key`` initiated since ``started`` (this writer's, whose
        ids were lost), except ``keep``. The window is reckoned on the server's clock (its ``Date``
        header), so the client's clock does not matter."""
        try:
            resp = self._call(lambda: self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key), key,
                              "list the uploads of", retry=CLEANUP_RETRY)
        except OSError as exc:
            log.warning("could not look for lost multipart uploads of %s: %s", self.describe(key), exc)
            if failure is not None:
                add_note(failure, f"cottoncandy: an in-progress multipart upload of {self.describe(key)} may be "
                                  f"left behind (its start was not acknowledged; listing uploads failed: {exc})")
            return
        date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else datetime.datetime.now(datetime.timezone.utc)
        since = now - datetime.timedelta(seconds=time.monotonic() - started + 2.0)  # Date has 1 s resolution
        for upload in resp.get("Uploads", []):
            initiated = upload.get("Initiated")
            if upload.get("Key") != key or upload.get("UploadId") == keep or initiated is None or initiated < since:
                continue
            log.info("aborting multipart upload %s of %s (its start was not acknowledged)",
                     upload["UploadId"], self.describe(key))
            self._abort(key, upload["UploadId"], failure)

    def owner(self, key: str) -> dict[str, str]:
        resp = self._call(lambda: self.client.get_object_acl(Bucket=self.bucket, Key=key), key, "read")
        return {k: str(v) for k, v in resp.get("Owner", {}).items()}

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        """Server-side copy within this bucket; ``condition`` on ``dst`` (CopyObject's ``If-None-Match``/
        ``If-Match``, or the CompleteMultipartUpload's of a copy in parts); ``source_etag`` on ``src``
        (``CopySourceIfMatch`` on the CopyObject or on each UploadPartCopy)."""
        self._copy(src, dst, None, condition, source_etag)
        self.changed([dst])

    def copy_from(self, source: ObjectStore, src: str, dst: str) -> None:
        """Server-side from any bucket of this endpoint; streamed through this process otherwise."""
        if isinstance(source, S3Store) and not self.same_bucket(source) and (
                source.settings.endpoint_url == self.settings.endpoint_url):
            self._copy(src, dst, source.bucket)
            self.changed([dst])
        else:
            super().copy_from(source, src, dst)

    def _copy(self, src: str, dst: str, source_bucket: str | None, condition: WriteCondition | None = None,
              source_etag: str | None = None) -> None:
        """Server-side copy; ``source_bucket`` copies from another bucket of the same endpoint;
        ``source_etag``: only that version of ``src`` (else ``stale_source``, nothing written)."""
        source = {"Bucket": source_bucket or self.bucket, "Key": src}
        try:
            info = self.head(src) if source_bucket in (None, self.bucket) else self._head_in(source_bucket, src)
        except FileNotFoundError as exc:
            if source_etag is None:
                raise
            raise stale_source(self.describe(src)) from exc
        check_copy_source(source_etag, info.etag, self.describe(src))
        acl = {"ACL": self.settings.default_acl} if self.settings.default_acl else {}
        if info.size <= MAX_SINGLE_COPY:
            asked = dict(condition.headers()) if condition is not None else {}
            if source_etag is not None:
                asked["CopySourceIfMatch"] = source_etag
            try:
                self._conditional(condition, dst, lambda: self._call(lambda: self.client.copy_object(
                    Bucket=self.bucket, Key=dst, CopySource=source, MetadataDirective="COPY", **acl, **asked),
                    dst, "copy to", writes=True))
            except OSError as exc:
                if source_etag is not None and source_bucket in (None, self.bucket):
                    self._refused_source(src, source_etag, exc)
                raise
            return
        extra = {"Metadata": dict(info.metadata or {}), **acl}
        upload_id = self._create_upload(dst, extra, "copy to")
        chunk = COPY_PART_SIZE
        ranges = [(s, min(s + chunk, info.size)) for s in range(0, info.size, chunk)]

        def part(number: int, start: int, end: int) -> dict[str, Any]:
            r = self._call(lambda: self._joining(lambda: self.client.upload_part_copy(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, PartNumber=number, CopySource=source,
                CopySourceRange=http_range(start, end), CopySourceIfMatch=info.etag)), dst, "copy to")
            return {"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]}

        try:
            with _parts_pool(self.settings.threads, "cc-copy") as pool:
                futures = [pool.submit(part, i, s, e) for i, (s, e) in enumerate(ranges, 1)]
                for fut in futures:
                    waits.done(fut)
                parts = [fut.result() for fut in futures]
            self._complete(dst, upload_id, parts, info.size, condition)
        except BaseException as exc:
            self._abort(dst, upload_id, exc)
            raise

    def _refused_source(self, src: str, source_etag: str, exc: OSError) -> None:
        """After a copy pinned to ``source_etag`` failed with ``exc``: ``stale_source`` when ``src`` is no
        longer at that version (S3 answers 412 for the source's condition and the destination's alike,
        so one HEAD tells them apart); returns when the source is as asked (``exc`` stands)."""
        if not (isinstance(exc, FileNotFoundError) or exc.errno in (errno.ESTALE, errno.EEXIST)):
            return
        try:
            now: str | None = self.head(src).etag
        except FileNotFoundError:
            now = None
        except OSError:
            return
        try:
            check_copy_source(source_etag, now, self.describe(src))
        except OSError as stale:
            raise stale from exc

    def delete_versions(self, versions: Mapping[str, str | None]) -> list[str]:
        """Each key given an ETag deleted only at that version: ``DeleteObjects`` of up to 1,000 keys,
        each entry carrying its ``ETag`` (S3's per-object condition; a ``PreconditionFailed`` entry is
        left, another version is there; ``NoSuchKey``: already gone), so a folder rename of N objects
        is one request, not N. An endpoint that refuses the ``ETag`` field itself is asked one
        ``DeleteObject`` with ``If-Match`` per key, ``threads`` at once (``_delete_each``). Whether an
        endpoint honours the condition is what the mount-time probe asks (``conditions.probe``, through
        this method). Keys without an ETag go in plain batches."""
        pinned = [(key, etag) for key, etag in versions.items() if etag is not None]
        left: list[str] = []
        for start in range(0, len(pinned), 1000):
            batch = pinned[start:start + 1000]
            if self._batched_conditions:
                try:
                    left += self._delete_batch_if_match(batch)
                    continue
                except OSError as exc:
                    code = error_code(exc.__cause__) if exc.__cause__ is not None else ""
                    if code not in ETAG_FIELD_REFUSED:
                        raise
                    log.info("%s: the endpoint refuses ETag conditions in DeleteObjects (%s); deleting one "
                             "key at a time with If-Match", self.describe(), code)
                    self._batched_conditions = False
            left += self._delete_each(batch)
        plain = [key for key, etag in versions.items() if etag is None]
        if plain:
            self.delete_many(plain)
        self.changed([key for key in versions if key not in left])
        return left

    def _delete_batch_if_match(self, batch: list[tuple[str, str]]) -> list[str]:
        """One ``DeleteObjects`` whose entries carry their ``ETag``: the keys left for their condition."""
        request = {"Objects": [{"Key": key, "ETag": etag} for key, etag in batch], "Quiet": True}
        resp = self._call(lambda: self.client.delete_objects(Bucket=self.bucket, Delete=request), batch[0][0],
                          "delete")
        left = []
        for error in resp.get("Errors") or []:
            code = str(error.get("Code"))
            if code in conditions.REFUSED_CODES:
                left.append(str(error.get("Key")))
            elif code != "NoSuchKey":
                raise OSError(errno.EIO, f"could not delete {self.describe(error.get('Key'))}: {code} "
                                         f"({len(resp.get('Errors') or [])} of {len(batch)} refused)")
        return left

    def _delete_each(self, batch: list[tuple[str, str]]) -> list[str]:
        """One ``DeleteObject`` with ``If-Match`` per key, ``threads`` at once: the keys left for their
        condition (412); a 404 is already gone."""

        def one(key: str, etag: str) -> bool:
            try:
                self._delete_if_match(key, etag)
            except FileNotFoundError:
                return False
            except OSError as exc:
                code = error_code(exc.__cause__) if exc.__cause__ is not None else ""
                if exc.errno != errno.ESTALE and code not in conditions.REFUSED_CODES:
                    raise
                return True
            return False

        with ThreadPoolExecutor(max_workers=max(1, min(self.settings.threads, len(batch))),
                                thread_name_prefix="cc-delete") as pool:
            refused = list(pool.map(lambda pair: one(*pair), batch))
        return [key for (key, _), was in zip(batch, refused) if was]

    def _delete_if_match(self, key: str, etag: str) -> None:
        self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag), key, "delete")

    def delete_many(self, keys: Iterable[str], *, cleanup: bool = False) -> None:
        """Delete ``keys`` in batches of 1,000; ``cleanup``: undoing a failed write, so retry as
        patiently as an abort (the endpoint has just failed)."""
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                try:
                    self._delete_batch(batch, cleanup)
                finally:  # a batch that failed in part still removed some keys: the mounts ask
                    self.changed(batch)
                batch = []
        if batch:
            try:
                self._delete_batch(batch, cleanup)
            finally:
                self.changed(batch)

    def _delete_batch(self, keys: list[str], cleanup: bool = False) -> None:
        request = {"Objects": [{"Key": k} for k in keys], "Quiet": True}
        resp = self._call(lambda: self.client.delete_objects(Bucket=self.bucket, Delete=request),
                          keys[0], "delete", retry=CLEANUP_RETRY if cleanup else None)
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise OSError(errno.EIO, f"could not delete {len(errors)} object(s), first "
                                     f"{self.describe(first.get('Key'))}: {first.get('Code')}")

    # --- listing -----------------------------------------------------------------------------
    def listing_where(self, prefix: str) -> str:
        """How a listing's errors name it: the folder and the endpoint that answered."""
        endpoint = without_userinfo(self.settings.endpoint_url) if self.settings.endpoint_url else "AWS S3"
        return f"LIST of {self.describe(prefix)} at {endpoint}"

    def _page(self, prefix: str, delimiter: str | None, token: str | None, where: str, *,
              max_keys: int = MAX_KEYS, start_after: str | None = None) -> ListPage:
        """One ListObjectsV2 page through boto3 (its retries and error words), its body read by
        ``answers.parse_list_page`` before botocore parses it (``answers.check_boto_answer``)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        if start_after:
            kwargs["StartAfter"] = start_after

        def list_page() -> dict[str, Any]:
            with answers.expecting(max_keys, prefix, where):
                return self.client.list_objects_v2(**kwargs)

        answer = self._call(list_page, prefix, "list")
        page = answer.get("CottoncandyPage")
        if isinstance(page, ListPage):
            return page
        # a client without the hook (another make of client): botocore's parse, counted here
        page = ListPage(prefixes=[p["Prefix"] for p in answer.get("CommonPrefixes", [])],
                        objects=[self._listed(o) for o in answer.get("Contents", [])],
                        truncated=bool(answer.get("IsTruncated")), next_token=answer.get("NextContinuationToken"))
        if len(page.prefixes) + len(page.objects) > max_keys:
            raise answers.BadAnswer(f"{where}: a page with more than the {max_keys} entries asked for")
        return page

    @staticmethod
    def _listed(entry: Mapping[str, Any]) -> ObjectInfo:
        owner = entry.get("Owner", {})
        return ObjectInfo(key=entry["Key"], size=int(entry["Size"]), etag=entry.get("ETag", ""),
                          last_modified=entry.get("LastModified"),
                          owner=owner.get("DisplayName") or owner.get("ID"))

    def _listing(self, prefix: str, delimiter: str | None, limit_bytes: int | None) -> Iterator[ListPage]:
        """Every page of one listing, as they arrive: signed directly where possible; a page that
        path does not take is asked of boto3 with the same continuation token, so the listing goes
        on from there. Both paths' pages are checked by one ``answers.ListingGuard``: a repeated
        token, a page that goes back, pages without end or (``limit_bytes``) a listing bigger than
        that are errors naming the endpoint."""
        where = self.listing_where(prefix)
        guard = answers.ListingGuard(where, limit_bytes)
        fast = self._signed_requests()
        token: str | None = None
        while True:
            page = fast.list_page(prefix, delimiter, token, where=where) if fast is not None else None
            if page is None:
                page = self._page(prefix, delimiter, token, where)
            page = guard.page(page)
            yield page
            token = guard.next_token(page)
            if token is None:
                return

    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        listing = Listing()
        for page in self.list_dir_pages(prefix, delimiter):
            listing.prefixes.extend(page.prefixes)
            listing.objects.extend(page.objects)
        return listing

    def list_dir_pages(self, prefix: str, delimiter: str = "/") -> Iterator[Listing]:
        """Each LIST page as it arrives (see ``_listing``); one folder level may take at most
        ``listing_memory`` bytes (``answers.ListingTooLarge`` beyond)."""
        for page in self._listing(prefix, delimiter, self.listing_memory):
            yield Listing(prefixes=page.prefixes, objects=page.objects)

    def list_page_after(self, prefix: str, start_after: str, max_keys: int = 1000) -> list[ObjectInfo]:
        where = self.listing_where(prefix)
        fast = self._signed_requests()
        objects = fast.list_page_after(prefix, start_after, max_keys, where) if fast is not None else None
        if objects is not None:
            return objects
        return self._page(prefix, "/", None, where, max_keys=max_keys, start_after=start_after or None).objects

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, a page at a time (nothing is held: no size limit; a token
        that repeats or a page that goes back still ends it with ``answers.BadAnswer``)."""
        for page in self._listing(prefix, None, None):
            yield from page.objects


@contextlib.contextmanager
def _parts_pool(workers: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """The threads sending one upload's parts. Left as the ``with`` of a ``ThreadPoolExecutor``
    (the parts under way are waited for, so an abort that follows frees every part), except when
    the caller's wait was given up (``waits.GaveUp``: a FUSE request interrupted, the mount
    stopping): parts not started are dropped and those under way are not waited for (an
    UploadPartCopy may take ``JOINING_READ_TIMEOUT``)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    given_up = False
    try:
        yield pool
    except waits.GaveUp:
        given_up = True
        raise
    finally:
        pool.shutdown(wait=not given_up, cancel_futures=given_up)


def multipart_etag(part_etags: Iterable[str]) -> str:
    """The ETag S3 gives an object completed from parts with these ETags: the MD5 of their MD5s, "-N"."""
    digests = [bytes.fromhex(etag.strip('"')) for etag in part_etags]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _socket_readinto(body: Any, buffer: memoryview) -> int | None:
    """Let the socket fill ``buffer`` directly (no intermediate bytes, no copy): the body's
    http.client response reads into it in C. Returns the bytes read, or ``None`` when that path
    is not there (another botocore/urllib3 layout, a content encoding) and the caller must read
    the portable way. Saves about a tenth of the daemon's CPU on sequential reads."""
    if type(body) is not StreamingBody:  # e.g. botocore's checksum-validating body: read it the portable way
        return None
    try:  # private names of botocore and urllib3: fenced (``cottoncandy.fastpaths``)
        stream: Any = fastpaths.private(body, "_raw_stream")
        raw = fastpaths.private(stream, "_fp")
    except fastpaths.Unavailable as exc:
        fastpaths.fell_back("botocore-body", str(exc), "the body's read()")
        return None
    if raw is None or not hasattr(raw, "readinto") or getattr(stream, "_decoder", None) is not None \
            or stream.headers.get("content-encoding"):
        return None
    pos = progress.fill(raw.readinto, buffer)  # told as they come to a waiting reader (``storage.progress``)
    if pos == len(buffer) and getattr(raw, "chunked", False) and raw.read(1):
        return pos  # a chunked body longer than asked: the connection is closed with the body, never reused
    if pos == len(buffer):  # (a chunked body's last chunk was read just above: the connection is clean)
        stream.release_conn()  # urllib3 did not see these bytes: hand the connection back ourselves
    return pos


def _answer_length(resp: Mapping[str, Any]) -> int | None:
    """A GET answer's ``Content-Length``; ``None`` for a body sent ``Transfer-Encoding: chunked``
    (valid HTTP/1.1, which some proxies and gateways send: its length is where it ends)."""
    length = resp.get("ContentLength")
    return int(length) if length is not None else None


def _read_full(stream: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _copy_body(body: Any, buffer: memoryview, want: int) -> int:
    """Read up to ``want`` bytes of a response body into ``buffer``, a chunk at a time; how many came."""
    pos = 0
    while pos < want:
        chunk = body.read(min(READ_CHUNK, want - pos))
        if not chunk:
            break
        buffer[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    return pos


def _cut_parts(chunks: Iterable[Buffer], size: int, expected: int | None = None) -> Iterator[bytearray]:
    """Regroup ``chunks`` into parts of exactly ``size`` bytes (the last may be shorter, never empty
    unless the whole stream is). A ``WholePart`` of ``size`` bytes that starts a part is that part
    (no copy). Each other part is filled in place; it is allocated at its full size,
    except while the stream is expected (``expected`` bytes, a hint) to be shorter: then at the
    hint, doubled if the stream is longer (zero-filling 8 MiB per tiny body cost more than its upload).
    With a hint, the first part is allocated at most ``PART_AHEAD`` ahead of its bytes: a hint of
    terabytes (parts of 512 MiB) that is never met costs what arrives, not a whole part.
    """
    start = size if expected is None else max(1, min(size, expected, PART_AHEAD))
    part, filled = bytearray(start), 0
    for chunk in chunks:
        if filled == 0 and isinstance(chunk, WholePart) and len(chunk) == size:
            yield chunk  # handed over whole: sent as it is, not copied
            continue
        view = memoryview(chunk).cast("B")
        while view:
            if filled == len(part):  # only a part started below ``size`` is ever full before it
                part.extend(bytes(min(size, 2 * len(part)) - len(part)))
            take = min(len(part) - filled, len(view))
            part[filled : filled + take] = view[:take]
            filled += take
            view = view[take:]
            if filled == size:
                yield part
                part, filled = bytearray(size), 0
        del view
    if filled or len(part) != size:
        del part[filled:]
    if filled:
        yield part


def _stream_parts(first: bytes, stream: BinaryIO, chunk: int) -> Iterator[tuple[int, memoryview]]:
    """Number the parts of a stream: the already-read head split in chunks, then the rest."""
    chunk = max(MIN_PART, chunk)
    number = 0
    head = memoryview(first)
    for s in range(0, len(head), chunk):
        number += 1
        piece = head[s : s + chunk]
        if len(piece) < chunk and s + chunk >= len(head):
            rest = _read_full(stream, chunk - len(piece))
            if rest:
                piece = memoryview(bytes(piece) + rest)
        yield number, piece
    while True:
        data = _read_full(stream, chunk)
        if not data:
            return
        number += 1
        yield number, memoryview(data)


def _open(bucket: str, options: StoreOptions) -> S3Store:
    return S3Account(options.resolved_settings()).store(bucket)


def _from_spec(spec: StoreSpec) -> S3Store:
    """In this process (or a fork) the token recalls the full settings, keys included, for the same
    endpoint, profile and region only; elsewhere the spec's settings and the worker's own keys."""
    shared = from_shareable(spec.settings)
    settings = recall(spec.token, shared.endpoint_url, shared.profile, shared.region) or shared
    account = S3Account(settings)
    if spec.region:
        account.regions[spec.bucket] = spec.region
    return account.store(spec.bucket)


KIND = StoreKind(scheme="s3", open_bucket=_open, account=S3Account, from_spec=_from_spec)
