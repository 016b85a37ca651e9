"""S3-specific behaviour over real HTTP: multipart, pagination, abort on failure, errors, retries."""

from __future__ import annotations

import errno
import io

import numpy as np
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.errors import translate
from cottoncandy.storage.retry import RetryPolicy
from tests.conftest import BUCKET

MiB = 2**20


def small_parts(s3_settings: Settings) -> Settings:
    return Settings(endpoint_url=s3_settings.endpoint_url, mpu_threshold=6 * MiB, mpu_chunksize=5 * MiB, threads=3)


def test_multipart_upload_from_buffer(s3_settings: Settings) -> None:
    store = S3Account(small_parts(s3_settings)).store(BUCKET)
    arr = np.random.default_rng(1).random(int(13 * MiB / 8))
    info = store.put("mpu", memoryview(arr), {"dtype": "<f8"})
    assert info.etag.endswith('-3"')  # 5 + 5 + 3 MiB
    head = store.head("mpu")
    assert head.size == arr.nbytes and head.metadata == {"dtype": "<f8"}
    out = np.empty_like(arr)
    store.download_into("mpu", memoryview(out).cast("B"))
    assert np.array_equal(out, arr)


def test_multipart_upload_from_stream(s3_settings: Settings) -> None:
    store = S3Account(small_parts(s3_settings)).store(BUCKET)
    data = np.random.default_rng(2).integers(0, 255, 12 * MiB + 17, dtype=np.uint8).tobytes()
    info = store.put("stream", io.BytesIO(data))
    assert info.size == len(data)
    assert store.get("stream") == data


class FailingStream(io.RawIOBase):
    def __init__(self, fail_after: int):
        self.sent = 0
        self.fail_after = fail_after

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.sent >= self.fail_after:
            raise OSError(errno.EIO, "disk went away")
        n = min(n, self.fail_after - self.sent) if n > 0 else self.fail_after - self.sent
        self.sent += n
        return b"z" * n


def test_failed_multipart_is_aborted(s3_settings: Settings) -> None:
    account = S3Account(small_parts(s3_settings))
    store = account.store(BUCKET)
    with pytest.raises(OSError, match="disk went away"):
        store.put("broken", FailingStream(16 * MiB))
    assert not store.exists("broken")
    uploads = account.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert uploads == []


def test_listing_paginates(s3_store) -> None:  # type: ignore[no-untyped-def]
    for i in range(1003):
        s3_store.put(f"many/k{i:05d}", b"")
    s3_store.put("many/sub/x", b"")
    listing = s3_store.list_dir("many/")
    assert len(listing.objects) == 1003 and listing.prefixes == ["many/sub/"]
    assert sum(1 for _ in s3_store.iter_objects("many/")) == 1004


def test_missing_bucket_and_wrong_endpoint(s3_settings: Settings) -> None:
    account = S3Account(s3_settings)
    assert not account.bucket_exists("no-such-bucket")
    with pytest.raises(FileNotFoundError, match="no-such-bucket"):
        account.store("no-such-bucket").head("k")
    dead = S3Account(Settings(endpoint_url="http://127.0.0.1:9", threads=1, max_attempts=2))
    with pytest.raises(OSError) as err:
        dead.store("dead-bucket").head("k")
    assert err.value.errno == errno.EIO and "s3://dead-bucket/k" in str(err.value)


def test_secrets_never_in_repr_or_errors(s3_settings: Settings) -> None:
    settings = Settings(endpoint_url=s3_settings.endpoint_url, access_key="AKIAEXAMPLE", secret_key="s3cr3t-value")
    store = S3Account(settings).store(BUCKET)
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in repr(store)
    with pytest.raises(FileNotFoundError) as err:
        store.head("missing")
    assert "s3cr3t" not in str(err.value)
    # a password written into the endpoint's URL is never shown either
    with_userinfo = s3_settings.endpoint_url.replace("://", "://user:pa55word@")  # type: ignore[union-attr]
    shown = Settings(endpoint_url=with_userinfo)
    assert "pa55word" not in repr(shown) and "endpoint_url='http://127.0.0.1" in repr(shown)
    assert "pa55word" not in repr(S3Account(shown).store(BUCKET))


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.mark.parametrize(
    ("code", "kind", "eno"),
    [("NoSuchKey", FileNotFoundError, errno.ENOENT), ("AccessDenied", PermissionError, errno.EACCES),
     ("PreconditionFailed", OSError, errno.ESTALE), ("InternalError", OSError, errno.EIO)],
)
def test_error_table(code: str, kind: type, eno: int) -> None:
    exc = translate(client_error(code), "bkt", "some/key")
    assert isinstance(exc, kind) and exc.errno == eno and "s3://bkt/some/key" in str(exc)


def test_retry_policy_retries_only_transient_errors() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=0)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise client_error("SlowDown", 503)
        return "ok"

    assert policy.call(flaky, "x") == "ok" and len(calls) == 3

    def denied() -> None:
        calls.append(1)
        raise client_error("AccessDenied", 403)

    calls.clear()
    with pytest.raises(ClientError):
        policy.call(denied, "x")
    assert len(calls) == 1

    def down() -> None:
        calls.append(1)
        raise EndpointConnectionError(endpoint_url="http://x")

    calls.clear()
    with pytest.raises(EndpointConnectionError):
        policy.call(down, "x")
    assert len(calls) == 4
    assert all(policy.delay(a) <= policy.max_delay for a in range(20))


# --- regrouping a streamed body into parts ----------------------------------------------------


@pytest.mark.parametrize("expected", [None, 1, 7, 100, 10**6])
def test_cut_parts_regroups_exactly_whatever_the_hint(expected: int | None) -> None:
    from cottoncandy.storage.s3.store import _cut_parts

    data = bytes(range(256)) * 3
    chunks = [data[i : i + 37] for i in range(0, len(data), 37)]
    parts = list(_cut_parts(chunks, 100, expected))
    assert b"".join(parts) == data
    assert [len(p) for p in parts] == [100] * 7 + [68]
    assert list(_cut_parts([], 100, expected)) == []


def test_a_small_streamed_body_is_not_given_a_whole_part_of_memory() -> None:
    """A 3-byte gzip body once zero-filled an 8 MiB part (most of a tiny array's upload time)."""
    import tracemalloc

    from cottoncandy.storage.s3.store import _cut_parts

    tracemalloc.start()
    try:
        (part,) = _cut_parts([b"abc"], 8 * 2**20, 1100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert part == b"abc" and peak < 64 * 2**10
