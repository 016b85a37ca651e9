"""The local server (keep-alive, fast HEAD answers) and the client's signed HEAD.

Both exist for folders of thousands of arrays (one HEAD each). Neither may change an answer: the
server's fast path must send exactly the headers moto's own handler sends, and the client's signed
HEAD must build the request boto3 builds -- same URL, same signature -- and give the same
``ObjectInfo``.
"""

from __future__ import annotations

import datetime
import errno
import http.client
import urllib.parse
from typing import Any

import boto3
import botocore.auth
import numpy as np
import pytest
from botocore.config import Config

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.storage.s3.signed import SignedRequests
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET

KEYS = ["plain", "dir/a b+c%d~e", "ümlaut/ø=1&x", "k?x#y", "a//b", "trailing/", "big"]
VOLATILE = {"date", "x-amzn-requestid", "server"}


def _put_all(s3: LocalS3Server) -> Any:
    client = boto3.client("s3", endpoint_url=s3.endpoint_url)
    for key in KEYS:
        client.put_object(Bucket=BUCKET, Key=key, Body=b"x" * (7 if key != "big" else 70_000),
                          Metadata={"dtype": "<f8", "shape": "3,4", "Mixed-Case": "V"},
                          ContentType="application/x-thing")
    return client


AUTH = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
                         "SignedRequestsers=host, Signature=0"}


def _raw_head(s3: LocalS3Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection(s3.host, s3.port, timeout=10)
    try:
        conn.request("HEAD", path, headers={**AUTH, **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders() if k.lower() not in VOLATILE}
    finally:
        conn.close()


def test_server_fast_head_sends_what_moto_sends(s3: LocalS3Server) -> None:
    _put_all(s3)
    for key in KEYS:
        path = f"/{BUCKET}/{urllib.parse.quote(key)}"
        fast = _raw_head(s3, path)
        # a query string moto ignores sends the same request down moto's own path
        stock = _raw_head(s3, path + "?x-id=HeadObject")
        assert fast == stock, key
        assert fast[0] == 200 and fast[1]["x-amz-meta-dtype"] == "<f8"
        assert fast[1]["content-length"] == ("70000" if key == "big" else "7")
    # conditions, missing keys and missing buckets are moto's answers
    etag = _raw_head(s3, f"/{BUCKET}/plain")[1]["etag"]
    assert _raw_head(s3, f"/{BUCKET}/plain", {"If-None-Match": etag})[0] == 304
    assert _raw_head(s3, f"/{BUCKET}/plain", {"If-Match": '"other"'})[0] == 412
    assert _raw_head(s3, f"/{BUCKET}/missing")[0] == 404
    assert _raw_head(s3, "/no-such-bucket/plain")[0] == 404


def test_server_keeps_connections_alive(s3: LocalS3Server) -> None:
    _put_all(s3)
    conn = http.client.HTTPConnection(s3.host, s3.port, timeout=10)
    try:
        for _ in range(5):  # five requests on one connection: werkzeug closed it after each
            conn.request("GET", f"/{BUCKET}/plain", headers={**AUTH, "Range": "bytes=1-3"})
            response = conn.getresponse()
            assert response.status == 206 and response.read() == b"xxx"
            assert response.getheader("Connection", "").lower() != "close"
    finally:
        conn.close()


def test_signed_head_matches_boto3(s3: LocalS3Server, s3_settings: Settings) -> None:
    _put_all(s3)
    store = S3Account(s3_settings).store(BUCKET)
    fast = store._signed_requests()
    assert fast is not None
    s3.clear_log()
    for key in KEYS:
        info = fast.head(key)
        assert info is not None, key
        expected = store._info(key, store.client.head_object(Bucket=BUCKET, Key=key))
        assert info == expected, key
        assert info.metadata == {"dtype": "<f8", "shape": "3,4", "mixed-case": "V"}
    assert [r.method for r in s3.requests()] == ["HEAD"] * (2 * len(KEYS))  # nothing else was asked
    # store.head takes the signed path; a miss falls back to boto3 and its wording
    assert store.head("plain").size == 7
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/missing"):
        store.head("missing")


@pytest.mark.parametrize("style,endpoint,region", [
    ("path", None, "eu-west-1"), ("virtual", None, "us-west-2"), ("path", "https://objects.example.org", "auto"),
])
def test_signed_head_request_is_boto3s_request(monkeypatch: pytest.MonkeyPatch, style: str,
                                               endpoint: str | None, region: str) -> None:
    """Same URL and byte-identical Authorization as boto3's own HEAD (clock fixed), no network."""
    fixed = datetime.datetime(2026, 1, 2, 3, 4, 5)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    client = boto3.client("s3", region_name=region, endpoint_url=endpoint, aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret", config=Config(s3={"addressing_style": style}))
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        sent.append(request)

        class Empty:
            def stream(self, **_: Any) -> Any:
                return iter(())
        return AWSResponse(request.url, 200, {}, Empty())

    signed = SignedRequests.for_client(client, "my-bucket")
    assert signed is not None
    client.meta.events.register_first("before-send.s3.HeadObject", capture)
    for key in ["plain", "dir/a b+c%d~e", "ümlaut/ø=1&x", "k?x#y"]:
        client.head_object(Bucket="my-bucket", Key=key)
        ours = signed.signed_request(key)
        assert ours.url == sent[-1].url
        theirs = sent[-1].headers["Authorization"]
        theirs = theirs.decode() if isinstance(theirs, bytes) else theirs
        assert ours.headers["Authorization"] == theirs


def test_signed_head_steps_aside_for_other_signers() -> None:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b",
                          config=Config(signature_version="s3"))
    assert SignedRequests.for_client(client, "my-bucket") is None
    unsigned = boto3.client("s3", region_name="us-east-1", config=Config(signature_version=botocore.UNSIGNED))
    assert SignedRequests.for_client(unsigned, "my-bucket") is None


def test_server_answers_an_empty_put_with_expect_continue(s3: LocalS3Server) -> None:
    """botocore sends ``Expect: 100-continue`` with an empty body; that must not hang the request."""
    client = boto3.client("s3", endpoint_url=s3.endpoint_url, config=Config(read_timeout=5, connect_timeout=5,
                                                                            retries={"total_max_attempts": 1}))
    client.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    assert client.head_object(Bucket=BUCKET, Key="empty")["ContentLength"] == 0


def test_signed_head_gives_way_on_a_broken_connection(s3: LocalS3Server, s3_settings: Settings) -> None:
    """A connection that fails is dropped and the answer left to boto3 (its retries and errors)."""
    from cottoncandy.testing.s3server import free_port

    _put_all(s3)
    store = S3Account(s3_settings).store(BUCKET)
    fast = store._signed_requests()
    assert fast is not None and fast.head("plain") is not None
    fast._local.conn.sock.close()  # the kept-alive connection breaks under it
    assert fast.head("plain") is None
    assert fast.head("plain") is not None  # a fresh connection next time
    dead = SignedRequests(f"http://127.0.0.1:{free_port()}/{BUCKET}/", "us-east-1", fast._credentials, fast._http,
                      timeouts=(2.0, 2.0))
    assert dead.head("plain") is None


def test_head_many_matches_boto3_and_leaves_misses_to_it(s3: LocalS3Server, s3_settings: Settings) -> None:
    _put_all(s3)
    store = S3Account(s3_settings).store(BUCKET)
    keys = KEYS * 3 + ["missing"]  # more keys than connections: each socket carries several requests
    s3.clear_log()
    answered = store.head_many(keys)
    assert answered is not None and set(answered) == set(keys)
    assert answered["missing"] is None  # a 404 is boto3's to word
    for key in KEYS:
        assert answered[key] == store._info(key, store.client.head_object(Bucket=BUCKET, Key=key)), key
    assert [r.method for r in s3.requests()] == ["HEAD"] * (len(set(keys)) + len(KEYS))
    fast = store._signed_requests()
    assert fast is not None and fast._idle  # kept alive for the next folder
    assert store.head_many(["plain", "big"]) == {"plain": answered["plain"], "big": answered["big"]}


class _OneAnswerPerConnection:
    """A bare HTTP server that answers one HEAD per connection and then closes it, like a server
    dropping idle keep-alive connections; counts connections."""

    def __init__(self) -> None:
        import socket
        import threading

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nETag: \"e\"\r\n"
                             b"x-amz-meta-dtype: <f4\r\n\r\n")

    def close(self) -> None:
        self.listener.close()


def test_head_many_retries_once_on_a_kept_alive_connection_the_server_closed(s3_settings: Settings) -> None:
    server = _OneAnswerPerConnection()
    try:
        store = S3Account(s3_settings).store(BUCKET)
        real = store._signed_requests()
        assert real is not None
        fast = SignedRequests(f"http://127.0.0.1:{server.port}/{BUCKET}/", "us-east-1", real._credentials,
                          real._http, timeouts=(2.0, 2.0))
        first = fast.head_many(["a"])["a"]
        assert first is not None and first.size == 12 and first.metadata == {"dtype": "<f4"}
        again = fast.head_many(["a", "b", "c"], connections=1)  # the kept socket is dead: a new one, not a miss
        assert all(info == first.__class__(key=k, size=12, etag='"e"', metadata={"dtype": "<f4"})
                   for k, info in again.items())
        assert server.connections == 4
    finally:
        server.close()


def test_head_many_gives_keys_back_when_nobody_answers(s3_settings: Settings) -> None:
    from cottoncandy.testing.s3server import free_port

    store = S3Account(s3_settings).store(BUCKET)
    real = store._signed_requests()
    assert real is not None
    dead = SignedRequests(f"http://127.0.0.1:{free_port()}/{BUCKET}/", "us-east-1", real._credentials, real._http,
                      timeouts=(2.0, 2.0))
    assert dead.head_many(["a", "b", "c"]) == {"a": None, "b": None, "c": None}


def test_signed_get_fills_the_buffer_or_leaves_the_answer_to_boto3(s3: LocalS3Server, s3_settings: Settings) -> None:
    client = boto3.client("s3", endpoint_url=s3.endpoint_url)
    body = bytes(range(256)) * 1000
    for key in ("dir/a b+c%d~e", "ümlaut/ø=1&x"):
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    store = S3Account(s3_settings).store(BUCKET)
    fast = store._signed_requests()
    assert fast is not None
    etag = store.head("dir/a b+c%d~e").etag
    for key in ("dir/a b+c%d~e", "ümlaut/ø=1&x"):
        for start, n in ((0, len(body)), (1000, 70_000), (len(body) - 5, 5)):
            out = memoryview(np.zeros(n, dtype=np.uint8))
            assert fast.get_into(key, start, out, if_match=etag if key.startswith("dir") else None)
            assert bytes(out) == body[start : start + n]
    out = memoryview(np.zeros(10, dtype=np.uint8))
    assert not fast.get_into("dir/a b+c%d~e", 0, out, if_match='"not-the-etag"')  # a 412: boto3's to word
    assert not fast.get_into("missing", 0, out)
    assert not fast.get_into("dir/a b+c%d~e", len(body) - 5, out)  # past the end: a short answer
    assert fast.get_into("dir/a b+c%d~e", 3, out) and bytes(out) == body[3:13]  # the connection recovered
    # the store takes it, and still says ESTALE / not found in its own words
    store.readinto("dir/a b+c%d~e", 7, out, if_match=etag)
    assert bytes(out) == body[7:17]
    client.put_object(Bucket=BUCKET, Key="dir/a b+c%d~e", Body=b"replaced" * 10)
    with pytest.raises(OSError) as err:
        store.readinto("dir/a b+c%d~e", 0, out, if_match=etag)
    assert err.value.errno == errno.ESTALE


def test_signed_get_and_head_many_work_past_1024_descriptors(s3: LocalS3Server, s3_settings: Settings) -> None:
    """A daemon with many cache files and connections has descriptors above FD_SETSIZE (1,024):
    select() refused to wait on them (ValueError), so every signed GET quietly fell back to boto3."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"the hard limit on open files ({hard}) is below the 1,400 this test holds")
    if soft != resource.RLIM_INFINITY and soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096 if hard == resource.RLIM_INFINITY else min(hard, 4096), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        client = boto3.client("s3", endpoint_url=s3.endpoint_url)
        body = bytes(range(256)) * 400
        for i in range(3):
            client.put_object(Bucket=BUCKET, Key=f"fds/{i}", Body=body)
        fast = S3Account(s3_settings).store(BUCKET)._signed_requests()
        assert fast is not None
        out = memoryview(np.zeros(len(body), dtype=np.uint8))
        assert fast.get_into("fds/0", 0, out) and bytes(out) == body
        assert fast.get_into("fds/1", 100, out[:1000]) and bytes(out[:1000]) == body[100:1100]
        assert fast.abandoned == 0
        heads = fast.head_many([f"fds/{i}" for i in range(3)])
        assert all(info is not None and info.size == len(body) for info in heads.values())
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_signed_listing_is_boto3s_listing(s3: LocalS3Server, s3_settings: Settings) -> None:
    _put_all(s3)
    client = boto3.client("s3", endpoint_url=s3.endpoint_url)
    for key in ("dir/sub one/x", "dir/sub+two/y", "dir/ü/z", "dir/a&b<c>.npy", "dir/tab\tkey"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"12345")
    store = S3Account(s3_settings).store(BUCKET)
    fast = store._signed_requests()
    assert fast is not None
    slow = S3Account(Settings(endpoint_url=s3.endpoint_url, fast_paths=False)).store(BUCKET)
    for prefix in ("", "dir/", "dir/a b", "ümlaut/", "nothing/"):
        expected_prefixes: list[str] = []
        expected_objects = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix, Delimiter="/"):
            expected_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]  # botocore's own parse
            expected_objects += [S3Store._listed(o) for o in page.get("Contents", [])]
        for page_size in (1000, 2):  # one page, and many pages with continuation tokens
            level = fast.list_dir(prefix, "/", page_size=page_size)
            assert level is not None, prefix
            assert level[0] == expected_prefixes, prefix
            assert level[1] == expected_objects, prefix
        boto_path = slow.list_dir(prefix)  # botocore's answer, read by ``answers`` before botocore parses it
        assert (boto_path.prefixes, boto_path.objects) == (expected_prefixes, expected_objects), prefix
    listing = store.list_dir("dir/")  # the store takes it
    assert "dir/sub one/" in listing.prefixes and "dir/a b+c%d~e" in [o.key for o in listing.objects]
    gone = SignedRequests(f"http://127.0.0.1:{s3.port}/no-such-bucket/", "us-east-1", fast._credentials,
                          fast._http)
    assert gone.list_dir("") is None  # a 404: boto3 words it


def test_concurrent_head_many_calls_share_one_socket_budget(s3: LocalS3Server, s3_settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A mount loads many folders at once: their ``head_many`` calls together stay within the
    process's HEAD socket budget (each call may always keep one), and all answer every key."""
    import threading

    from cottoncandy.storage.s3 import signed as s3_signed

    _put_all(s3)
    budget = s3_signed._SocketBudget(3)
    monkeypatch.setattr(s3_signed, "HEAD_SOCKETS", budget)
    store = S3Account(s3_settings).store(BUCKET)
    peak = 0
    real_take = budget.take

    def take(held: int) -> bool:
        nonlocal peak
        granted = real_take(held)
        peak = max(peak, budget.used)
        return granted

    monkeypatch.setattr(budget, "take", take)
    answers: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: answers.append(store.head_many(KEYS * 4))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 4 and all(set(a) == set(KEYS) and all(a.values()) for a in answers)
    assert peak <= 3 + 4  # the budget, plus at most one per call that held none
    assert budget.used == 0
