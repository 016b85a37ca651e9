"""A conditional write whose answer was lost is retried, and the retry is refused for its condition
because the lost attempt stored it (issue 26 item 5): that is the writer's own object, not a race.
The store looks (one HEAD) and takes the write as done when the object is the one it sent (a PUT:
ETag = MD5 of the body, and its size; a Complete: the multipart ETag of its parts, and the size);
a genuine race stays EEXIST/ESTALE. Through the fault proxy in front of the local S3 server."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.conditions import CREATE, overwrite
from cottoncandy.storage.s3 import MIN_PART, S3Store
from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET

#: an answer whose body was lost after the server stored the PUT (a reset), and a 500 in its place
LOST_PUT_ANSWERS = [FaultRule("reset", methods=("PUT",), after=0, limit=1),
                    FaultRule("lost500", methods=("PUT",), limit=1)]


def store_via(endpoint_url: str) -> S3Store:
    settings = Settings(endpoint_url=endpoint_url, mpu_threshold=MIN_PART, mpu_chunksize=MIN_PART)
    return S3Account(settings).store(BUCKET)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def in_progress_uploads(endpoint_url: str) -> list[dict[str, Any]]:
    client = S3Account(Settings(endpoint_url=endpoint_url)).client
    return list(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


@pytest.mark.parametrize("rule", LOST_PUT_ANSWERS, ids=["reset", "lost500"])
def test_a_create_whose_answer_was_lost_is_done(s3, fault_proxy, rule: FaultRule) -> None:  # type: ignore[no-untyped-def]
    """If-None-Match: * stored by the first attempt; the retry gets 412 (the key exists now)."""
    store = store_via(fault_proxy.endpoint_url)
    body = os.urandom(1000)
    fault_proxy.set_rules([rule])
    info = store.put("c/new", body, condition=CREATE)
    assert fault_proxy.count(rule.mode, "PUT") == 1  # the answer was lost once, and the retry refused
    direct = store_via(s3.endpoint_url)
    assert direct.get("c/new") == body and info.etag.strip('"') == md5(body) == direct.head("c/new").etag.strip('"')


@pytest.mark.parametrize("rule", LOST_PUT_ANSWERS, ids=["reset", "lost500"])
def test_an_overwrite_whose_answer_was_lost_is_done(s3, fault_proxy, rule: FaultRule) -> None:  # type: ignore[no-untyped-def]
    """If-Match of the version seen, stored by the first attempt; the retry's If-Match no longer holds."""
    store = store_via(fault_proxy.endpoint_url)
    seen = store.put("c/old", b"version 1")
    body = b"version 2, longer"
    fault_proxy.set_rules([rule])
    info = store.put("c/old", body, condition=overwrite(seen.etag))
    assert fault_proxy.count(rule.mode, "PUT") == 1
    assert store_via(s3.endpoint_url).get("c/old") == body and info.etag.strip('"') == md5(body)


def test_a_real_race_is_still_lost(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    """Another writer's object is there (other bytes): the retry's 412 stays the loser's error."""
    store = store_via(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("error500", methods=("PUT",), limit=1)])  # the first attempt never arrives
    store_via(s3.endpoint_url).put("c/race", b"theirs")
    with pytest.raises(OSError) as caught:
        store.put("c/race", b"mine", condition=CREATE)
    assert caught.value.errno == errno.EEXIST
    seen = store.head("c/race")
    store_via(s3.endpoint_url).put("c/race", b"theirs again")
    fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), after=0, limit=1)])  # stored, answer lost...
    with pytest.raises(OSError) as caught:  # ... but the If-Match fails at the first attempt already
        store.put("c/race", b"mine", condition=overwrite(seen.etag))
    assert caught.value.errno == errno.ESTALE and store_via(s3.endpoint_url).get("c/race") == b"theirs again"


class _Body:
    """What ``AWSResponse`` reads an answer's body from."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


PRECONDITION_FAILED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>'
                       b'<Message>At least one of the pre-conditions you specified did not hold</Message>'
                       b'<Condition>If-None-Match</Condition></Error>')


def test_a_complete_whose_answer_was_lost_is_done(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    """The server completes the upload, its answer is a 500 (the proxy's lost500), botocore retries.
    moto answers a repeated Complete of the same upload 200 (idempotent); S3 may refuse it for its
    If-None-Match, since the key exists now: that answer is given here, in front of the request."""
    store = store_via(fault_proxy.endpoint_url)
    body = os.urandom(2 * MIN_PART + 17)
    fault_proxy.set_rules([FaultRule("lost500", methods=("POST",), query="uploadId", limit=1)])
    completes: list[int] = []

    def refuse_the_retry(request: Any, **_: Any) -> AWSResponse | None:
        completes.append(1)
        if len(completes) < 2:
            return None  # the first attempt goes to the server
        return AWSResponse(request.url, 412, {"Content-Type": "application/xml"}, _Body(PRECONDITION_FAILED))

    store.client.meta.events.register("before-send.s3.CompleteMultipartUpload", refuse_the_retry)
    info = store.put("c/big", body, condition=CREATE)
    assert len(completes) == 2 and fault_proxy.count("lost500", "POST") == 1
    direct = store_via(s3.endpoint_url)
    assert direct.get("c/big") == body and direct.head("c/big").etag == info.etag
    assert in_progress_uploads(s3.endpoint_url) == []


def test_a_complete_refused_for_a_real_race_is_still_lost(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    """Another writer's object is under the key: the HEAD finds another ETag, so EEXIST stands and
    the upload is aborted."""
    store = store_via(fault_proxy.endpoint_url)
    completes: list[int] = []

    def theirs_then_refuse(request: Any, **_: Any) -> AWSResponse | None:
        completes.append(1)
        if len(completes) < 2:
            store_via(s3.endpoint_url).put("c/raced", b"theirs")  # they win before our Complete lands
            return AWSResponse(request.url, 500, {}, _Body(b"<Error><Code>InternalError</Code></Error>"))
        return AWSResponse(request.url, 412, {"Content-Type": "application/xml"}, _Body(PRECONDITION_FAILED))

    store.client.meta.events.register("before-send.s3.CompleteMultipartUpload", theirs_then_refuse)
    with pytest.raises(OSError) as caught:
        store.put("c/raced", os.urandom(2 * MIN_PART + 17), condition=CREATE)
    assert caught.value.errno == errno.EEXIST
    assert store_via(s3.endpoint_url).get("c/raced") == b"theirs"
    assert in_progress_uploads(s3.endpoint_url) == []
