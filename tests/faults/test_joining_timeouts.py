"""CompleteMultipartUpload and UploadPartCopy read their answers with a longer timeout of their own
(``store.JOINING_READ_TIMEOUT``, ``storage/s3/joining.py``): the server joins the parts or copies the
range before it sends a byte, which a server sending nothing meanwhile (moto joining 1 GiB under
load) makes longer than the ordinary read timeout. And AWS's ``200 OK`` with an ``<Error>`` body on
those calls is the error it is (botocore turns it into a retried 500).

Against the local S3 server behind the fault proxy: ``hold`` keeps a request from the server for a
while (a request its client abandons meanwhile never reaches the server), ``error200`` answers
``200 OK`` with S3's ``InternalError`` body. The ordinary read timeout is 1 s here."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest
from botocore.config import Config

from cottoncandy import waits
from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.base import CopiedRange
from cottoncandy.storage.s3 import MIN_PART, S3Store
from cottoncandy.storage.s3 import store as s3_store
from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET

#: the rules' matches: a Complete is a POST with ``uploadId``; an UploadPartCopy a PUT with ``uploadId``
#: and ``x-amz-copy-source`` (an UploadPart has no such header)
COMPLETE: dict[str, Any] = {"methods": ("POST",), "query": "uploadId"}
PART_COPY: dict[str, Any] = {"methods": ("PUT",), "query": "uploadId", "header": "x-amz-copy-source"}


def impatient_store(endpoint_url: str) -> S3Store:
    """Parts of 5 MiB, a 1 s ordinary read timeout, two attempts per request."""
    settings = Settings(endpoint_url=endpoint_url, mpu_threshold=MIN_PART, mpu_chunksize=MIN_PART,
                        boto_config=Config(read_timeout=1, retries={"max_attempts": 2, "mode": "standard"}))
    return S3Account(settings).store(BUCKET)


def direct(s3) -> S3Store:  # type: ignore[no-untyped-def]
    return S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET)


def uploads(s3) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return list(direct(s3).client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def test_a_complete_answering_after_the_read_timeout_still_succeeds(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    store = impatient_store(fault_proxy.endpoint_url)
    body = os.urandom(2 * MIN_PART + 17)
    fault_proxy.set_rules([FaultRule("hold", seconds=3.0, **COMPLETE)])  # every Complete: 3 s of silence
    info = store.put("j/late", body)
    assert fault_proxy.count("hold", "POST") == 1  # one Complete, not abandoned and sent again
    assert fault_proxy.counts.get("dropped:POST", 0) == 0
    assert direct(s3).get("j/late") == body and direct(s3).head("j/late").etag == info.etag


def test_a_part_copy_answering_after_the_read_timeout_still_succeeds(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    source = os.urandom(MIN_PART + 5)
    shown = direct(s3).put("j/src", source)
    store = impatient_store(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("hold", seconds=3.0, **PART_COPY)])
    head = os.urandom(MIN_PART)
    store.compose("j/joined", [head, CopiedRange("j/src", 0, len(source), shown.etag)])
    assert fault_proxy.count("hold", "PUT") == 1 and fault_proxy.counts.get("dropped:PUT", 0) == 0
    assert direct(s3).get("j/joined") == head + source


def test_a_complete_silent_past_its_own_bound_fails_and_leaves_nothing(s3, fault_proxy,  # type: ignore[no-untyped-def]
                                                                     monkeypatch) -> None:
    monkeypatch.setattr(s3_store, "JOINING_READ_TIMEOUT", 2.0)
    store = impatient_store(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("hold", seconds=120.0, **COMPLETE)])  # abandoned: never reaches the server
    with pytest.raises(OSError) as caught:
        store.put("j/never", os.urandom(2 * MIN_PART + 17))
    assert caught.value.errno == errno.EIO and f"s3://{BUCKET}/j/never" in str(caught.value)
    assert "ReadTimeout" in str(caught.value)  # says why: no answer within the bound
    counts = fault_proxy.counts
    assert counts["dropped:POST"] == counts["hold:POST"] >= 1  # each attempt abandoned by the client
    fault_proxy.clear()
    assert uploads(s3) == []  # aborted: no parts kept
    with pytest.raises(FileNotFoundError):
        direct(s3).head("j/never")


def test_a_long_complete_gives_up_when_the_request_is_interrupted(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    """A FUSE request whose reader was signalled stops waiting for a Complete still silent (EINTR),
    well within its bound; the upload is aborted."""
    store = impatient_store(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("hold", seconds=5.0, **COMPLETE)])

    def interrupted() -> int | None:
        return errno.EINTR if fault_proxy.count("hold", "POST") else None

    with waits.giving_up(interrupted), pytest.raises(OSError) as caught:
        store.put("j/interrupted", os.urandom(2 * MIN_PART + 17))
    assert caught.value.errno == errno.EINTR and isinstance(caught.value, waits.GaveUp)
    assert uploads(s3) == []


@pytest.mark.parametrize("rule", [COMPLETE, PART_COPY], ids=["complete", "part-copy"])
def test_a_200_carrying_an_error_is_retried(s3, fault_proxy, rule) -> None:  # type: ignore[no-untyped-def]
    source = os.urandom(MIN_PART + 5)
    shown = direct(s3).put("j/src", source)
    store = impatient_store(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("error200", limit=1, **rule)])
    head = os.urandom(MIN_PART)
    store.compose("j/joined", [head, CopiedRange("j/src", 0, len(source), shown.etag)])
    assert fault_proxy.count("error200") == 1
    assert direct(s3).get("j/joined") == head + source


@pytest.mark.parametrize("rule", [COMPLETE, PART_COPY], ids=["complete", "part-copy"])
def test_a_200_carrying_an_error_every_time_is_an_error(s3, fault_proxy, rule) -> None:  # type: ignore[no-untyped-def]
    source = os.urandom(MIN_PART + 5)
    shown = direct(s3).put("j/src", source)
    store = impatient_store(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("error200", **rule)])
    with pytest.raises(OSError) as caught:
        store.compose("j/joined", [os.urandom(MIN_PART), CopiedRange("j/src", 0, len(source), shown.etag)])
    assert caught.value.errno == errno.EIO and f"s3://{BUCKET}/j/joined" in str(caught.value)
    assert "InternalError" in str(caught.value)
    fault_proxy.clear()
    assert uploads(s3) == []
    with pytest.raises(FileNotFoundError):
        direct(s3).head("j/joined")


def test_a_long_part_copy_gives_up_when_the_request_is_interrupted(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    """The same for a staged commit's UploadPartCopy, sent from the upload's own threads: the request
    stops waiting for it (EINTR), the upload is aborted."""
    source = os.urandom(MIN_PART + 5)
    shown = direct(s3).put("j/src", source)
    store = impatient_store(fault_proxy.endpoint_url)
    fault_proxy.set_rules([FaultRule("hold", seconds=5.0, **PART_COPY)])

    def interrupted() -> int | None:
        return errno.EINTR if fault_proxy.count("hold", "PUT") else None

    with waits.giving_up(interrupted), pytest.raises(OSError) as caught:
        store.compose("j/joined", [os.urandom(MIN_PART), CopiedRange("j/src", 0, len(source), shown.etag)])
    assert caught.value.errno == errno.EINTR and isinstance(caught.value, waits.GaveUp)
    assert fault_proxy.counts["POST"] == 1  # let go while the copy was held: no Complete was sent
    assert uploads(s3) == []
