"""A CompleteMultipartUpload whose answer was lost while the server was still joining the parts
(moto joins 1 GiB for longer than the client's 10 s read timeout): the retries find the upload gone,
the object appears only later. The writer waits for it (``S3Store._complete``, ``COMPLETING_WAIT``)
instead of failing a write that is stored. Against the local S3 server; the server's slowness is
played by ``before-send`` hooks of the writer's own client (the upload is completed, late, on a
thread through a client of its own)."""

from __future__ import annotations

import errno
import os
import re
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import MIN_PART, S3Store
from tests.conftest import BUCKET

NO_SUCH_UPLOAD = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code>'
                  b'<Message>The specified upload does not exist.</Message></Error>')


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data

    def read(self, *_: Any) -> bytes:
        return self.data


def store_via(endpoint_url: str) -> S3Store:
    return S3Account(Settings(endpoint_url=endpoint_url, mpu_threshold=MIN_PART, mpu_chunksize=MIN_PART)).store(BUCKET)


def _parts(body: bytes) -> list[dict[str, Any]]:
    numbers = re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)
    etags = re.findall(rb"<ETag>([^<]+)</ETag>", body)
    return [{"PartNumber": int(n), "ETag": e.decode().replace("&quot;", '"')} for n, e in zip(numbers, etags)]


def _late_server(store: S3Store, endpoint_url: str, delay: float, complete_at_all: bool = True) -> list[str]:
    """Hooks: the first Complete is carried out ``delay`` s later (if ``complete_at_all``) and its answer
    is a 500; every retry is a 500; ListParts says NoSuchUpload (the server dropped the upload when it
    began joining it)."""
    seen: list[str] = []
    direct = store_via(endpoint_url).client

    def complete(request: Any, **_: Any) -> AWSResponse:
        seen.append("complete")
        if seen.count("complete") == 1 and complete_at_all:
            upload_id = re.search(r"uploadId=([^&]+)", request.url).group(1)  # type: ignore[union-attr]
            parts = _parts(bytes(request.body))
            threading.Timer(delay, lambda: direct.complete_multipart_upload(
                Bucket=BUCKET, Key="c/late", UploadId=upload_id, MultipartUpload={"Parts": parts})).start()
        return AWSResponse(request.url, 500, {}, _Body(b"<Error><Code>InternalError</Code></Error>"))

    def list_parts(request: Any, **_: Any) -> AWSResponse:
        seen.append("list_parts")
        return AWSResponse(request.url, 404, {"Content-Type": "application/xml"}, _Body(NO_SUCH_UPLOAD))

    store.client.meta.events.register("before-send.s3.CompleteMultipartUpload", complete)
    store.client.meta.events.register("before-send.s3.ListParts", list_parts)
    return seen


def test_a_complete_still_under_way_when_its_answer_was_lost_is_waited_for(s3) -> None:  # type: ignore[no-untyped-def]
    store = store_via(s3.endpoint_url)
    seen = _late_server(store, s3.endpoint_url, delay=2.0)
    body = os.urandom(2 * MIN_PART + 17)
    info = store.put("c/late", body)  # before the wait: EIO ("the server may have stored it")
    assert "list_parts" in seen
    direct = store_via(s3.endpoint_url)
    assert direct.get("c/late") == body and direct.head("c/late").etag == info.etag


def test_an_upload_gone_without_its_object_is_still_an_error(s3, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cottoncandy.storage.s3 import store as s3_store

    monkeypatch.setattr(s3_store, "COMPLETING_WAIT", 1.0)
    store = store_via(s3.endpoint_url)
    _late_server(store, s3.endpoint_url, delay=0.0, complete_at_all=False)
    with pytest.raises(OSError) as caught:
        store.put("c/late", os.urandom(2 * MIN_PART + 17))
    assert caught.value.errno == errno.EIO
    with pytest.raises(FileNotFoundError):
        store_via(s3.endpoint_url).head("c/late")


def test_the_wait_for_a_late_complete_gives_up_when_the_request_is_interrupted(s3, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The wait polls HEAD for up to ``COMPLETING_WAIT``; a FUSE request whose reader was signalled
    (``cottoncandy.waits``' check says EINTR) stops waiting at the next poll instead of at its end."""
    from cottoncandy import waits
    from cottoncandy.storage.s3 import store as s3_store

    monkeypatch.setattr(s3_store, "COMPLETING_WAIT", 30.0)
    store = store_via(s3.endpoint_url)
    seen = _late_server(store, s3.endpoint_url, delay=0.0, complete_at_all=False)
    with waits.giving_up(lambda: errno.EINTR if "list_parts" in seen else None), pytest.raises(OSError) as caught:
        store.put("c/late", os.urandom(2 * MIN_PART + 17))
    assert caught.value.errno == errno.EINTR and isinstance(caught.value, waits.GaveUp)
