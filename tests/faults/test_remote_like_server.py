"""The local S3 server made to answer like a remote one: first-byte latency and a per-connection cap.

Only lower bounds are asserted on elapsed time (a sleep guarantees them); overlap is checked with a
margin of several latencies, so a loaded machine does not make these fail.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config

from cottoncandy.testing.s3server import LocalS3Server


def client(server: LocalS3Server):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(max_pool_connections=16, retries={"max_attempts": 1},
                                      request_checksum_calculation="when_required"))


@pytest.fixture(scope="module")
def remote() -> LocalS3Server:  # type: ignore[misc]
    with LocalS3Server(latency_ms=400, mbps=8) as server:
        s3 = client(server)
        s3.create_bucket(Bucket="far")
        s3.put_object(Bucket="far", Key="small", Body=b"x" * 1000)
        yield server


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_every_response_waits_for_its_first_byte(remote: LocalS3Server) -> None:
    s3 = client(remote)
    _, head = timed(lambda: s3.head_object(Bucket="far", Key="small"))
    body, get = timed(lambda: s3.get_object(Bucket="far", Key="small", Range="bytes=10-19")["Body"].read())
    assert body == b"x" * 10
    assert head >= 0.4 and get >= 0.4


def test_concurrent_requests_overlap_as_on_a_network(remote: LocalS3Server) -> None:
    s3 = client(remote)
    s3.head_object(Bucket="far", Key="small")  # connections warm
    with ThreadPoolExecutor(8) as pool:
        _, elapsed = timed(lambda: list(pool.map(
            lambda i: s3.get_object(Bucket="far", Key="small", Range=f"bytes={i}-{i}")["Body"].read(), range(8))))
    assert 0.4 <= elapsed < 8 * 0.4 / 2, elapsed  # serialised, they would take 3.2 s


def test_bandwidth_is_capped_per_connection_both_ways(remote: LocalS3Server) -> None:
    s3 = client(remote)
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB: 0.52 s at 8 MB/s
    _, put = timed(lambda: s3.put_object(Bucket="far", Key="big", Body=payload))
    body, get = timed(lambda: s3.get_object(Bucket="far", Key="big")["Body"].read())
    assert body == payload
    assert put >= len(payload) / 8e6 and get >= 0.4 + len(payload) / 8e6 * 0.95


def test_the_request_log_still_counts_bytes(remote: LocalS3Server) -> None:
    remote.clear_log()
    client(remote).get_object(Bucket="far", Key="small", Range="bytes=0-99")["Body"].read()
    deadline = time.monotonic() + 10  # the server logs a response once its last byte is written: wait for it
    while not (gets := [r for r in remote.requests() if r.method == "GET" and r.path == "/far/small"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(r.bytes_sent, r.range) for r in gets] == [(100, "bytes=0-99")]


@pytest.mark.parametrize("kwargs", [{"latency_ms": -1}, {"mbps": 0}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="latency_ms must be"):
        LocalS3Server(**kwargs)  # type: ignore[arg-type]


def test_fill_creates_many_listed_objects_with_metadata(s3) -> None:  # type: ignore[no-untyped-def]
    import json
    import urllib.request

    s3c = client(s3)
    s3c.create_bucket(Bucket="bulk")
    spec = {"bucket": "bulk", "prefix": "huge/a", "count": 1500, "body": "\x00" * 128,
            "metadata": {"dtype": "<f8", "shape": "16"}, "access_key": "testing"}
    urllib.request.urlopen(urllib.request.Request(f"{s3.endpoint_url}/_local-s3/fill", method="POST",
                                                  data=json.dumps(spec).encode()), timeout=60).read()
    pages = s3c.get_paginator("list_objects_v2").paginate(Bucket="bulk", Prefix="huge/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys == [f"huge/a{i:06d}" for i in range(1500)]
    s3c.put_object(Bucket="bulk", Key="put", Body=b"\x00" * 128, Metadata={"dtype": "<f8", "shape": "16"})
    filled, put = (s3c.head_object(Bucket="bulk", Key=k) for k in ("huge/a001499", "put"))
    assert filled["ContentLength"] == 128 and filled["ETag"] == put["ETag"]
    assert {k.lower(): v for k, v in filled["Metadata"].items()} == {"dtype": "<f8", "shape": "16"}
    assert filled["Metadata"] == put["Metadata"]  # stored as a PUT stores it
