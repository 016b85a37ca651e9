"""The fault rig itself: every mode does what it says, to a real client, in front of the real local S3."""

from __future__ import annotations

import functools
import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from cottoncandy.config import Settings
from cottoncandy.storage.s3 import make_client
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET

BODY = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def client(fault_proxy: FaultProxy):  # type: ignore[no-untyped-def]
    """A boto3 client through the proxy, one attempt per request (each fault is seen as it is)."""
    return make_client(Settings(endpoint_url=fault_proxy.endpoint_url, max_attempts=1))


@pytest.fixture
def stored(client) -> str:  # type: ignore[no-untyped-def]
    client.put_object(Bucket=BUCKET, Key="obj", Body=BODY)
    return "obj"


@functools.lru_cache(maxsize=4)
def _client_for(endpoint_url: str):  # type: ignore[no-untyped-def]
    return make_client(Settings(endpoint_url=endpoint_url, max_attempts=1))  # ~0.5 s to build: once per proxy


def presigned(proxy: FaultProxy, key: str, method: str = "get_object") -> str:
    """The path and query of a presigned request through the proxy (moto refuses anonymous ones)."""
    client = _client_for(proxy.endpoint_url)
    url = urllib.parse.urlsplit(client.generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": key}))
    return f"{url.path}?{url.query}"


def raw_get(proxy: FaultProxy, key: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> bytes:
    """A GET with http.client: exactly what the socket gives."""
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
    try:
        conn.request("GET", presigned(proxy, key), headers=headers or {})
        return conn.getresponse().read()
    finally:
        conn.close()


def test_forwards_everything_unchanged_without_rules(fault_proxy: FaultProxy, client, stored: str) -> None:  # type: ignore[no-untyped-def]
    assert client.get_object(Bucket=BUCKET, Key=stored)["Body"].read() == BODY
    ranged = client.get_object(Bucket=BUCKET, Key=stored, Range="bytes=10-19")["Body"].read()
    assert ranged == BODY[10:20]
    assert client.head_object(Bucket=BUCKET, Key=stored)["ContentLength"] == len(BODY)
    client.put_object(Bucket=BUCKET, Key="empty", Body=b"")  # Expect: 100-continue with no body
    assert client.get_object(Bucket=BUCKET, Key="empty")["Body"].read() == b""
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["empty", "obj"]
    counts = fault_proxy.counts
    assert counts["GET"] == 4 and counts["PUT"] == 2 and counts["HEAD"] == 1
    assert fault_proxy.count() == 0


def test_chunked_request_bodies_are_forwarded(fault_proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection(fault_proxy.host, fault_proxy.port, timeout=10)
    conn.request("PUT", presigned(fault_proxy, "chunked", "put_object"), body=iter([b"abc", b"defg"]),
                 encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 200
    conn.close()
    assert raw_get(fault_proxy, "chunked") == b"abcdefg"


def test_reset_mid_body_and_recovery(fault_proxy: FaultProxy, stored: str) -> None:
    fault_proxy.set_rules([FaultRule("reset", methods=("GET",), after=1000)])
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        raw_get(fault_proxy, stored)
    assert fault_proxy.count("reset", "GET") == 1
    fault_proxy.clear()
    assert raw_get(fault_proxy, stored) == BODY


def test_truncate_sends_fewer_bytes_than_announced(fault_proxy: FaultProxy, stored: str) -> None:
    fault_proxy.set_rules([FaultRule("truncate", methods=("GET",))])
    with pytest.raises(http.client.IncompleteRead) as caught:
        raw_get(fault_proxy, stored)
    assert len(caught.value.partial) == len(BODY) // 2
    assert fault_proxy.count("truncate") == 1


def test_reset_of_a_head_comes_before_any_answer(fault_proxy: FaultProxy, client, stored: str) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("reset", methods=("HEAD",))])
    with pytest.raises(Exception) as caught:
        client.head_object(Bucket=BUCKET, Key=stored)
    assert not isinstance(caught.value, ClientError)  # a transport failure, not an S3 answer
    assert fault_proxy.count("reset", "HEAD") == 1


def test_slowdown_and_internal_error_answers(fault_proxy: FaultProxy, client, stored: str) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("slowdown", methods=("GET",), limit=1),
                           FaultRule("error500", methods=("GET",), limit=1)])
    for code, status in (("SlowDown", 503), ("InternalError", 500)):
        with pytest.raises(ClientError) as caught:
            client.get_object(Bucket=BUCKET, Key=stored)
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert client.get_object(Bucket=BUCKET, Key=stored)["Body"].read() == BODY  # limits reached: forwarded
    assert fault_proxy.count("slowdown", "GET") == 1 and fault_proxy.count("error500", "GET") == 1


def test_an_error_answer_to_a_put_stores_nothing(fault_proxy: FaultProxy, client, s3) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("slowdown", methods=("PUT",))])
    with pytest.raises(ClientError):
        client.put_object(Bucket=BUCKET, Key="never", Body=b"x" * 100_000)
    fault_proxy.clear()
    assert "Contents" not in client.list_objects_v2(Bucket=BUCKET)
    assert not [r for r in s3.requests() if r.method == "PUT" and r.path.endswith("/never")]


def test_a_lost_answer_was_still_handled_by_the_server(fault_proxy: FaultProxy, client) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), after=0)])
    with pytest.raises(Exception):  # noqa: B017 - botocore words a reset in several ways
        client.put_object(Bucket=BUCKET, Key="stored-anyway", Body=b"x" * 1000)
    fault_proxy.clear()
    assert client.head_object(Bucket=BUCKET, Key="stored-anyway")["ContentLength"] == 1000


def test_stall_and_delay_hold_the_answer_back(fault_proxy: FaultProxy, stored: str) -> None:
    fault_proxy.set_rules([FaultRule("stall", methods=("GET",), seconds=2.0, limit=1)])
    with pytest.raises((TimeoutError, socket.timeout)):
        raw_get(fault_proxy, stored, timeout=0.3)
    fault_proxy.set_rules([FaultRule("delay", methods=("GET",), seconds=2.0, limit=1)])
    with pytest.raises((TimeoutError, socket.timeout)):
        raw_get(fault_proxy, stored, timeout=0.3)
    fault_proxy.set_rules([FaultRule("stall", methods=("GET",), seconds=0.2, limit=1)])
    assert raw_get(fault_proxy, stored) == BODY  # a stall within the client's patience: all bytes arrive
    assert fault_proxy.count("stall") == 2 and fault_proxy.count("delay") == 1


def test_fraction_ranged_and_key_matching(fault_proxy: FaultProxy, stored: str) -> None:
    fault_proxy.set_rules([FaultRule("error500", methods=("GET",), ranged=True, key="obj", fraction=0.5)])
    assert raw_get(fault_proxy, stored) == BODY  # a whole GET: not matched
    failures = 0
    path = presigned(fault_proxy, stored)
    for _ in range(60):
        conn = http.client.HTTPConnection(fault_proxy.host, fault_proxy.port, timeout=10)
        conn.request("GET", path, headers={"Range": "bytes=0-9"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if response.status == 500:
            failures += 1
        else:
            assert body == BODY[:10]
    assert 10 < failures < 50
    assert fault_proxy.count("error500", "GET") == failures


def test_query_matching_tells_multipart_calls_apart(fault_proxy: FaultProxy, client) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("error500", methods=("POST",), query="uploads")])  # Create, not Complete
    with pytest.raises(ClientError):
        client.create_multipart_upload(Bucket=BUCKET, Key="mpu")
    fault_proxy.set_rules([FaultRule("error500", methods=("POST",), query="uploadId")])
    upload = client.create_multipart_upload(Bucket=BUCKET, Key="mpu")["UploadId"]
    etag = client.upload_part(Bucket=BUCKET, Key="mpu", UploadId=upload, PartNumber=1, Body=b"x")["ETag"]
    with pytest.raises(ClientError):
        client.complete_multipart_upload(Bucket=BUCKET, Key="mpu", UploadId=upload,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert fault_proxy.count("error500", "POST") == 2
    client.abort_multipart_upload(Bucket=BUCKET, Key="mpu", UploadId=upload)


def test_outage_refuses_connections_until_it_ends(fault_proxy: FaultProxy, stored: str) -> None:
    kept = http.client.HTTPConnection(fault_proxy.host, fault_proxy.port, timeout=10)
    kept.request("GET", presigned(fault_proxy, stored))
    assert kept.getresponse().read() == BODY
    fault_proxy.outage(30)
    with pytest.raises((ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected)):
        kept.request("GET", presigned(fault_proxy, stored))  # an open connection breaks at its next request
        kept.getresponse().read()
    kept.close()
    for _ in range(50):  # the listener closes within one turn of the accept loop
        try:
            socket.create_connection((fault_proxy.host, fault_proxy.port), timeout=1).close()
        except ConnectionRefusedError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the proxy still accepts connections during an outage")
    fault_proxy.clear()
    for _ in range(100):
        try:
            assert raw_get(fault_proxy, stored) == BODY
            break
        except ConnectionRefusedError:
                time.sleep(0.02)
    else:
        pytest.fail("the proxy did not listen again after the outage ended")


def test_control_requests_from_another_process(fault_proxy: FaultProxy, stored: str) -> None:
    rules = [{"mode": "error500", "methods": ["GET"], "limit": 1}]
    request = urllib.request.Request(f"{fault_proxy.endpoint_url}/_fault-proxy/rules", method="POST",
                                     data=json.dumps(rules).encode())
    answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
    assert answer["rules"][0]["mode"] == "error500"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{fault_proxy.endpoint_url}{presigned(fault_proxy, stored)}", timeout=10)
    counts = json.loads(urllib.request.urlopen(f"{fault_proxy.endpoint_url}/_fault-proxy/counts", timeout=10).read())
    assert counts["error500:GET"] == 1
    bad = urllib.request.Request(f"{fault_proxy.endpoint_url}/_fault-proxy/rules", method="POST",
                                 data=b'[{"mode": "explode"}]')
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=10)
    assert caught.value.code == 400


def test_rule_parsing() -> None:
    rule = FaultRule.parse("mode=reset,methods=GET+HEAD,fraction=0.25,after=4096,ranged=false,key=a.grp,query=x")
    assert rule == FaultRule("reset", methods=("GET", "HEAD"), fraction=0.25, after=4096, ranged=False, key="a.grp",
                             query="x")
    with pytest.raises(ValueError, match="unknown fault mode"):
        FaultRule.parse("mode=explode")
    with pytest.raises(ValueError, match="unknown method"):
        FaultRule("reset", methods=("PATCH",))
    with pytest.raises(ValueError, match="fraction"):
        FaultRule("reset", fraction=2)
