"""S3 (and S3-compatible) object store over one shared, thread-safe boto3 client.

botocore's own retries are switched off: ``retry.RetryPolicy`` is the one retry loop, so a ranged
GET whose body breaks half-way is retried as a whole. Uploads of buffers never copy them: the body
is a seekable reader over the caller's memory, and above the threshold parts go up in parallel.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import io
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .. import fastpaths
from ..config import Settings, from_shareable, legacy_keys, recall, remember, shareable
from .base import (
    Account,
    Buffer,
    Capabilities,
    Listing,
    MaybeStoredError,
    ObjectInfo,
    ObjectStore,
    Progress,
    StoreSpec,
    add_note,
    as_byte_view,
    check_range,
)
from .errors import translate
from .http_ranges import content_range_prefix, http_range
from .registry import StoreKind, StoreOptions
from .retry import CLEANUP_RETRY, RetryPolicy, ShortReadError, may_have_taken_effect

if TYPE_CHECKING:  # imported lazily: the fast path's botocore internals must never break this import
    from .s3_signed import SignedRequests

log = logging.getLogger(__name__)
T = TypeVar("T")

#: S3's own limits
MAX_SINGLE_COPY = 5 * 2**30
MIN_PART = 5 * 2**20
#: the part size of a server-side copy too large for one request
COPY_PART_SIZE = 512 * 2**20
#: part size and parts being sent at once for streamed bodies (``put_chunks``): memory is about
#: (2 + STREAM_IN_FLIGHT) parts, the held first part and the one being filled included
STREAM_PART = 8 * 2**20
STREAM_IN_FLIGHT = 2
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

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = bytes(self._view[self._pos : end])
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
        if not policy.is_retryable(exc) or self._failures >= policy.max_attempts or self._size < 0:
            raise OSError(errno.EIO, f"{name}: read failed at byte {self._pos} ({type(exc).__name__}: "
                                     f"{exc})") from exc
        log.debug("resuming the body of %s at byte %d after %s", name, self._pos, type(exc).__name__)
        with contextlib.suppress(Exception):  # the connection is broken anyway
            self._body.close()
        time.sleep(policy.delay(self._failures))
        kwargs: dict[str, Any] = {"Bucket": self._store.bucket, "Key": self._key, "Range": http_range(self._pos)}
        if self._etag:
            kwargs["IfMatch"] = self._etag
        response = self._store._call(lambda: self._store.client.get_object(**kwargs), self._key, "read")
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


def make_client(settings: Settings) -> Any:
    """One boto3 S3 client for these settings (thread-safe; share it)."""
    session = boto3.session.Session(
        profile_name=settings.profile,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        aws_session_token=settings.session_token,
        region_name=settings.region,
    )
    creds_kwargs: dict[str, Any] = {}
    if session.get_credentials() is None:
        legacy = legacy_keys()
        if legacy:
            creds_kwargs = {"aws_access_key_id": legacy[0], "aws_secret_access_key": legacy[1]}
    config_kwargs: dict[str, Any] = {
        "max_pool_connections": max(32, settings.threads * 4),
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        # a stalled answer is abandoned (and retried by ``RetryPolicy``) after this long without a byte
        "connect_timeout": 5,
        "read_timeout": 10,
        "tcp_keepalive": True,
        # S3-compatible servers (and moto) reject boto3 >= 1.36's default CRC headers on some calls
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if settings.signature_version:
        config_kwargs["signature_version"] = settings.signature_version
    if settings.endpoint_url:
        config_kwargs["s3"] = {"addressing_style": "path"}
    config = Config(**config_kwargs)
    if settings.boto_config is not None:  # get_interface(config=...): the user's choices win
        config = config.merge(settings.boto_config)
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config, **creds_kwargs)


class S3Account(Account):
    """Bucket-level calls, and the factory of per-bucket stores sharing one client."""

    def __init__(self, settings: Settings, retry: RetryPolicy | None = None):
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Account(endpoint={self.endpoint!r})"

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
        try:
            return self.retry.call(fn, f"{action} s3://{bucket}")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, bucket, None, action) from exc

    def store(self, bucket: str) -> S3Store:
        return S3Store(bucket, self.settings, client=self.client, retry=self.retry)

    def list_buckets(self) -> list[str]:
        resp = self._call(lambda: self.client.list_buckets(), "*", "list buckets of")
        return [b["Name"] for b in resp.get("Buckets", [])]

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call(lambda: self.client.head_bucket(Bucket=bucket), bucket, "check")
        except FileNotFoundError:
            return False
        return True

    def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1" and not self.settings.endpoint_url:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if acl:
            kwargs["ACL"] = acl
        self._call(lambda: self.client.create_bucket(**kwargs), bucket, "create")

    def delete_bucket(self, bucket: str) -> None:
        self._call(lambda: self.client.delete_bucket(Bucket=bucket), bucket, "delete")

    def _resource(self) -> Any:
        return boto3.resource("s3", endpoint_url=self.settings.endpoint_url,
                              aws_access_key_id=self.settings.access_key,
                              aws_secret_access_key=self.settings.secret_key)

    def native_bucket(self, bucket: str) -> Any:
        """The boto3 ``Bucket`` resource, as 0.4.0's ``get_bucket()`` returned."""
        return self._resource().Bucket(bucket)

    def native_object(self, bucket: str, key: str) -> Any:
        """The boto3 ``Object`` resource, as 0.4.0's ``get_object()`` returned."""
        return self._resource().Object(bucket, key)


class S3Store(ObjectStore):
    """One bucket of an S3 endpoint."""

    capabilities = Capabilities(batched_head=True, cross_bucket_copy=True, other_processes=True)

    def __init__(self, bucket: str, settings: Settings, client: Any = None, retry: RetryPolicy | None = None):
        self.bucket = bucket
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        self.retry = retry or RetryPolicy()
        self.part_size = settings.download_part_size
        self.concurrency = settings.threads
        self._signed: SignedRequests | None | bool = False  # False: not built yet
        self._signed_head_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint={self.settings.endpoint_url or 'AWS S3'!r})"

    def cache_scope(self) -> str | None:
        """``s3 <endpoint> <bucket>``: the endpoint without any user part, query or fragment
        (``None`` with ``Settings(metadata_cache=False)``)."""
        if not self.settings.metadata_cache:
            return None
        endpoint = self.settings.endpoint_url
        if endpoint:
            parts = urllib.parse.urlsplit(endpoint)
            endpoint = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
        return f"s3 {endpoint or 'aws'} {self.bucket}"

    def spec(self) -> StoreSpec:
        """Every non-secret setting (``config.shareable``) and a token for this process's credentials
        (``config.remember``).

        No secret travels: in this process or a forked worker the token finds the settings the
        interface was made with; elsewhere workers use the spec's settings with their own credentials.
        """
        return StoreSpec(KIND.scheme, self.bucket, shareable(self.settings), remember(self.settings))

    # --- plumbing ----------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], key: str | None, action: str, *, writes: bool = False,
              retry: RetryPolicy | None = None) -> T:
        """``fn`` under the retry policy; failures as built-in exceptions naming the object.

        ``writes``: ``fn`` changes the store. If any attempt may have been carried out before it
        failed (its answer was lost), the final error says that the server may have stored it.
        """
        maybe_done = False

        def attempt() -> T:
            nonlocal maybe_done
            try:
                return fn()
            except Exception as exc:
                maybe_done = maybe_done or (writes and may_have_taken_effect(exc))
                raise

        try:
            return (retry or self.retry).call(attempt, f"{action} {self.describe(key)}")
        except (ClientError, BotoCoreError, ShortReadError, ConnectionError, TimeoutError) as exc:
            if isinstance(exc, ShortReadError):
                error = OSError(errno.EIO, f"{self.describe(key)}: {exc.strerror or exc}")
            elif isinstance(exc, (ClientError, BotoCoreError)):
                error = translate(exc, self.bucket, key, action)
            else:
                error = OSError(errno.EIO, f"failed to {action} {self.describe(key)}: {type(exc).__name__}")
            if maybe_done and error.errno == errno.EIO:
                error = MaybeStoredError(errno.EIO, f"{error.strerror}; the server may have stored it before "
                                                    "its answer was lost")
            raise error from exc

    @staticmethod
    def _info(key: str, resp: Mapping[str, Any]) -> ObjectInfo:
        meta = {str(k).lower(): v for k, v in resp.get("Metadata", {}).items()}
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), etag=resp["ETag"],
                          last_modified=resp.get("LastModified"), metadata=meta)

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
        """The plain-200 answers to HEADs of many keys, sent from this thread (see ``s3_signed``).

        A key maps to ``None`` when its answer was anything else (a 404, a refusal, a fault): ask
        ``head`` for it, so boto3 says what it is and retries. Every key maps to ``None`` at once
        when this client cannot batch at all (then callers use threads).
        """
        fast = self._signed_requests()
        return dict.fromkeys(keys) if fast is None else fast.head_many(keys)

    def _signed_requests(self) -> SignedRequests | None:
        """The cheap HEAD and GET path (see ``s3_signed``), built on first use; ``None`` where it cannot
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
            from .s3_signed import SignedRequests
        except ImportError as exc:  # a botocore release moved a name it imports
            fastpaths.fell_back("botocore", f"{type(exc).__name__}: {exc}", "plain boto3 calls")
            return None
        return SignedRequests.for_client(self.client, self.bucket)

    def _head_in(self, bucket: str, key: str) -> ObjectInfo:
        resp = self._call(lambda: self.client.head_object(Bucket=bucket, Key=key), key, "read")
        return self._info(key, resp)

    def _ranged(self, key: str, start: int, end: int, if_match: str | None) -> Any:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Range": http_range(start, end)}
        if if_match:
            kwargs["IfMatch"] = if_match
        return self.client.get_object(**kwargs)

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        check_range(start, end)
        if end == start:
            return b""

        def fetch() -> bytes:
            body = self._ranged(key, start, end, if_match)["Body"]
            try:
                data = body.read()
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
            raise OSError(errno.EIO, f"failed to read {self.describe(key)} bytes {start}-{start + total - 1}: "
                                     f"{exc}") from exc

        def fetch() -> None:
            body = self._ranged(key, start, start + total, if_match)["Body"]
            pos = 0
            try:
                direct = _socket_readinto(body, buffer)
                pos = direct or 0
                while direct is None and pos < total:
                    chunk = body.read(min(READ_CHUNK, total - pos))
                    if not chunk:
                        break
                    buffer[pos : pos + len(chunk)] = chunk
                    pos += len(chunk)
            finally:
                body.close()
            if pos != total:
                raise ShortReadError(errno.EIO, f"short read: {pos} of {total} bytes")

        self._call(fetch, key, "read")

    def open_read(self, key: str, if_match: str | None = None) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match:
            kwargs["IfMatch"] = if_match
        resp = self._call(lambda: self.client.get_object(**kwargs), key, "read")
        return io.BufferedReader(ResumingStream(self, key, resp, if_match), READ_CHUNK)

    # --- writing -----------------------------------------------------------------------------
    def _extra(self, metadata: Mapping[str, str] | None, acl: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"Metadata": dict(metadata or {})}
        acl = acl or self.settings.default_acl
        if acl:
            extra["ACL"] = acl
        return extra

    def put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None = None,
            acl: str | None = None, progress: Progress | None = None) -> ObjectInfo:
        extra = self._extra(metadata, acl)
        if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "__array_interface__"):
            view = as_byte_view(data)  # type: ignore[arg-type]
            if len(view) < self.settings.mpu_threshold:
                return self._put_single(key, view, extra, progress)
            parts = self._plan_parts(len(view))
            return self._multipart(key, extra, ((i, view[s:e]) for i, (s, e) in enumerate(parts, 1)), progress)
        stream = data
        first = _read_full(stream, self.settings.mpu_threshold)
        if len(first) < self.settings.mpu_threshold:
            return self._put_single(key, memoryview(first), extra, progress)
        return self._multipart(key, extra, _stream_parts(first, stream, self.settings.mpu_chunksize), progress)

    def put_chunks(self, key: str, chunks: Iterable[Buffer], metadata: Mapping[str, str] | None = None,
                   acl: str | None = None, progress: Progress | None = None, *,
                   head: Callable[[], bytes] | None = None, size_hint: int | None = None) -> ObjectInfo:
        """Stream ``head() + chunks`` in parts of :meth:`_stream_part_size`: the first part is held
        back and sent last (its head is known only at the end), at most :data:`STREAM_IN_FLIGHT`
        others are being sent, one is being filled. A body that fits one part is one PUT."""
        extra = self._extra(metadata, acl)
        parts = _cut_parts(chunks, self._stream_part_size(size_hint))
        held = next(parts, bytearray())
        second = next(parts, None)
        if second is None:
            held[:0] = head() if head is not None else b""
            return self._put_single(key, memoryview(held), extra, progress)

        def numbered() -> Iterator[tuple[int, memoryview]]:
            yield 2, memoryview(second)
            for number, part in enumerate(parts, 3):
                yield number, memoryview(part)
            held[:0] = head() if head is not None else b""
            yield 1, memoryview(held)

        return self._multipart(key, extra, numbered(), progress, in_flight=min(self.settings.threads,
                                                                                 STREAM_IN_FLIGHT))

    def _stream_part_size(self, size_hint: int | None) -> int:
        """Parts of a streamed body: small (memory is a few parts), grown to stay under the part limit."""
        part = max(MIN_PART, min(self.settings.mpu_chunksize, STREAM_PART))
        most = None if size_hint is None else size_hint + size_hint // 100 + 2**20  # incompressible data grows
        while most is not None and -(-most // part) > self.settings.max_mpu_parts:
            part *= 2
        return part

    def _put_single(self, key: str, view: memoryview, extra: dict[str, Any],
                    progress: Progress | None = None) -> ObjectInfo:
        def send() -> Any:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=BufferReader(view),
                                          ContentLength=len(view), **extra)

        resp = self._call(send, key, "write", writes=True)
        if progress is not None:
            progress(len(view))
        return ObjectInfo(key=key, size=len(view), etag=resp["ETag"], metadata=extra["Metadata"])

    def _plan_parts(self, size: int) -> list[tuple[int, int]]:
        chunk = max(MIN_PART, self.settings.mpu_chunksize)
        while -(-size // chunk) > self.settings.max_mpu_parts:
            chunk *= 2
        return [(s, min(s + chunk, size)) for s in range(0, size, chunk)]

    def _multipart(self, key: str, extra: dict[str, Any], parts: Iterator[tuple[int, memoryview]],
                   progress: Progress | None = None, in_flight: int | None = None) -> ObjectInfo:
        """Upload numbered parts with at most ``in_flight`` (default ``threads``) being sent; abort
        the upload on any failure (also one raised by ``parts`` itself)."""
        in_flight = max(1, in_flight or self.settings.threads)
        upload_id = self._create_upload(key, extra, "write")
        done: dict[int, str] = {}
        size = 0

        def send(number: int, view: memoryview) -> None:
            def once() -> Any:
                return self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                               PartNumber=number, Body=BufferReader(view),
                                               ContentLength=len(view))

            done[number] = self._call(once, key, "write")["ETag"]
            if progress is not None:
                progress(len(view))

        try:
            with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="cc-put") as pool:
                pending: set[Future[None]] = set()
                for number, view in parts:
                    size += len(view)
                    pending.add(pool.submit(send, number, view))
                    del view  # the future holds the part until it is sent
                    if len(pending) >= in_flight:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            fut.result()
                for fut in pending:
                    fut.result()
            listing = [{"PartNumber": n, "ETag": done[n]} for n in sorted(done)]
            etag = self._complete(key, upload_id, listing)
        except BaseException as exc:
            self._abort(key, upload_id, exc)
            raise
        return ObjectInfo(key=key, size=size, etag=etag, metadata=extra["Metadata"])

    def _create_upload(self, key: str, extra: dict[str, Any], action: str) -> str:
        """``CreateMultipartUpload``; when an attempt's answer was lost, the server may have started
        an upload nobody knows the id of: find this writer's (same key, initiated since its first
        attempt) and abort them, so no invisible in-progress upload keeps its parts (and its bill)."""
        started = time.monotonic()
        lost = False

        def create() -> Any:
            nonlocal lost
            try:
                return self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
            except Exception as exc:
                lost = lost or may_have_taken_effect(exc)
                raise

        try:
            upload_id = str(self._call(create, key, action)["UploadId"])
        except BaseException as exc:
            if lost:
                self._abort_orphans(key, started, keep=None, failure=exc)
            raise
        if lost:
            self._abort_orphans(key, started, keep=upload_id, failure=None)
        return upload_id

    def _complete(self, key: str, upload_id: str, listing: list[dict[str, Any]]) -> str:
        """``CompleteMultipartUpload``; its ETag. If an attempt's answer was lost and the next finds
        the upload gone, the object is looked at: its multipart ETag says whether it was this one."""
        lost = False

        def complete() -> Any:
            nonlocal lost
            try:
                return self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                             MultipartUpload={"Parts": listing})
            except Exception as exc:
                lost = lost or may_have_taken_effect(exc)
                raise

        try:
            return str(self._call(complete, key, "write", writes=True)["ETag"])
        except FileNotFoundError:  # NoSuchUpload: completed by an attempt whose answer was lost?
            expected = multipart_etag(part["ETag"] for part in listing)
            if lost and self.head(key).etag.strip('"') == expected:
                return f'"{expected}"'
            raise

    def _abort(self, key: str, upload_id: str, failure: BaseException | None = None) -> None:
        """Abort an upload, retrying patiently (the endpoint has just failed); an abort that cannot be
        done is logged and noted on ``failure`` (the original error matters more)."""
        try:
            self._call(lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id),
                       key, "abort the upload of", retry=CLEANUP_RETRY)
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

    def copy(self, src: str, dst: str) -> None:
        """Server-side copy within this bucket."""
        self._copy(src, dst, None)

    def copy_from(self, source: ObjectStore, src: str, dst: str) -> None:
        """Server-side from any bucket of this endpoint; streamed through this process otherwise."""
        if isinstance(source, S3Store) and not self.same_bucket(source) and (
                source.settings.endpoint_url == self.settings.endpoint_url):
            self._copy(src, dst, source.bucket)
        else:
            super().copy_from(source, src, dst)

    def _copy(self, src: str, dst: str, source_bucket: str | None) -> None:
        """Server-side copy; ``source_bucket`` copies from another bucket of the same endpoint."""
        source = {"Bucket": source_bucket or self.bucket, "Key": src}
        info = self.head(src) if source_bucket in (None, self.bucket) else self._head_in(source_bucket, src)
        acl = {"ACL": self.settings.default_acl} if self.settings.default_acl else {}
        if info.size <= MAX_SINGLE_COPY:
            self._call(lambda: self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource=source,
                                                       MetadataDirective="COPY", **acl), dst, "copy to", writes=True)
            return
        extra = {"Metadata": dict(info.metadata or {}), **acl}
        upload_id = self._create_upload(dst, extra, "copy to")
        chunk = COPY_PART_SIZE
        ranges = [(s, min(s + chunk, info.size)) for s in range(0, info.size, chunk)]

        def part(number: int, start: int, end: int) -> dict[str, Any]:
            r = self._call(lambda: self.client.upload_part_copy(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, PartNumber=number, CopySource=source,
                CopySourceRange=http_range(start, end), CopySourceIfMatch=info.etag), dst, "copy to")
            return {"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]}

        try:
            with ThreadPoolExecutor(max_workers=self.settings.threads) as pool:
                parts = list(pool.map(lambda a: part(*a), [(i, s, e) for i, (s, e) in enumerate(ranges, 1)]))
            self._complete(dst, upload_id, parts)
        except BaseException as exc:
            self._abort(dst, upload_id, exc)
            raise

    def delete_many(self, keys: Iterable[str], *, cleanup: bool = False) -> None:
        """Delete ``keys`` in batches of 1,000; ``cleanup``: undoing a failed write, so retry as
        patiently as an abort (the endpoint has just failed)."""
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                self._delete_batch(batch, cleanup)
                batch = []
        if batch:
            self._delete_batch(batch, cleanup)

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
    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": 1000}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            if token:
                kwargs["ContinuationToken"] = token
            def list_page(kw: dict[str, Any] = kwargs) -> dict[str, Any]:
                return self.client.list_objects_v2(**kw)

            page = self._call(list_page, prefix, "list")
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    @staticmethod
    def _listed(entry: Mapping[str, Any]) -> ObjectInfo:
        owner = entry.get("Owner", {})
        return ObjectInfo(key=entry["Key"], size=int(entry["Size"]), etag=entry.get("ETag", ""),
                          last_modified=entry.get("LastModified"),
                          owner=owner.get("DisplayName") or owner.get("ID"))

    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        fast = self._signed_requests()
        level = fast.list_dir(prefix, delimiter) if fast is not None else None
        if level is not None:
            return Listing(prefixes=level[0], objects=level[1])
        listing = Listing()
        for page in self._pages(prefix, delimiter):
            listing.prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
            listing.objects.extend(self._listed(o) for o in page.get("Contents", []))
        return listing

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for page in self._pages(prefix, None):
            yield from (self._listed(o) for o in page.get("Contents", []))


def multipart_etag(part_etags: Iterable[str]) -> str:
    """The ETag S3 gives an object completed from parts with these ETags: the MD5 of their MD5s, "-N"."""
    digests = [bytes.fromhex(etag.strip('"')) for etag in part_etags]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _socket_readinto(body: Any, buffer: memoryview) -> int | None:
    """Let the socket fill ``buffer`` directly (no intermediate bytes, no copy): the body's
    http.client response reads into it in C. Returns the bytes read, or ``None`` when that path
    is not there (another botocore/urllib3 layout, a content encoding) and the caller must read
    the portable way. Saves about a tenth of the daemon's CPU on sequential reads."""
    stream: Any = getattr(body, "_raw_stream", None)
    raw = getattr(stream, "_fp", None)
    if raw is None or not hasattr(raw, "readinto") or getattr(stream, "_decoder", None) is not None \
            or stream.headers.get("content-encoding"):
        return None
    pos = 0
    while pos < len(buffer):
        n = raw.readinto(buffer[pos:])
        if not n:
            break
        pos += n
    if pos == len(buffer):
        stream.release_conn()  # urllib3 did not see these bytes: hand the connection back ourselves
    return pos


def _read_full(stream: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _cut_parts(chunks: Iterable[Buffer], size: int) -> Iterator[bytearray]:
    """Regroup ``chunks`` into parts of exactly ``size`` bytes (the last may be shorter, never empty
    unless the whole stream is). Each part is allocated once at its full size and filled in place."""
    part, filled = bytearray(size), 0
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        while view:
            take = min(size - filled, len(view))
            part[filled : filled + take] = view[:take]
            filled += take
            view = view[take:]
            if filled == size:
                yield part
                part, filled = bytearray(size), 0
        del view
    if filled:
        del part[filled:]
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
    return S3Account(settings).store(spec.bucket)


KIND = StoreKind(scheme="s3", open_bucket=_open, account=S3Account, from_spec=_from_spec)
