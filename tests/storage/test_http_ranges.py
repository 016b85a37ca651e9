"""The one HTTP ``Range`` builder: half-open ``[start, end)`` in, inclusive ``bytes=a-b`` out.

The unit tests pin the conversion; the others send it to the local S3 server through every
request that carries a range (a ranged GET, a resumed body, the signed GET, a part copy), at the
edges where an off-by-one shows: the first byte, the last byte, and parts that must tile an object.
"""

from __future__ import annotations

import boto3
import numpy as np
import pytest

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.http_ranges import content_range_prefix, http_range
from cottoncandy.storage.s3 import store as s3_module
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET

MiB = 2**20


def test_http_range_converts_half_open_to_inclusive() -> None:
    assert http_range(0, 1) == "bytes=0-0"  # one byte
    assert http_range(10, 20) == "bytes=10-19"
    assert http_range(7) == "bytes=7-"  # to the end
    assert http_range(0) == "bytes=0-"


@pytest.mark.parametrize("start, end", [(5, 5), (5, 4), (-1, 3), (-1, None)])
def test_http_range_refuses_ranges_http_cannot_say(start: int, end: int | None) -> None:
    with pytest.raises(ValueError, match=f"no HTTP range for \\[{start}, "):
        http_range(start, end)
    with pytest.raises(ValueError):
        content_range_prefix(start, end)


def test_content_range_prefix_matches_the_answer_to_http_range() -> None:
    assert content_range_prefix(0, 1) == "bytes 0-0/"
    assert content_range_prefix(10, 20) == "bytes 10-19/"
    assert content_range_prefix(7) == "bytes 7-"


def test_ranged_reads_get_exactly_the_bytes_asked_for(s3: LocalS3Server, s3_settings: Settings) -> None:
    body = bytes(range(256)) * 40
    boto3.client("s3", endpoint_url=s3.endpoint_url).put_object(Bucket=BUCKET, Key="k", Body=body)
    store = S3Account(s3_settings).store(BUCKET)
    fast = store._signed_requests()
    assert fast is not None
    for start, end in ((0, 1), (len(body) - 1, len(body)), (3, 4), (100, 356), (0, len(body))):
        assert store.get_range("k", start, end) == body[start:end]  # boto3's GET
        out = memoryview(bytearray(end - start))
        assert fast.get_into("k", start, out) and bytes(out) == body[start:end]  # the signed GET


def test_a_copy_in_parts_tiles_the_object(s3_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of ``COPY_PART_SIZE`` with inclusive ends one too far would overlap (and the copy grow)."""
    monkeypatch.setattr(s3_module, "MAX_SINGLE_COPY", 0)
    monkeypatch.setattr(s3_module, "COPY_PART_SIZE", 5 * MiB)
    store = S3Account(s3_settings).store(BUCKET)
    body = np.random.default_rng(3).integers(0, 256, 11 * MiB + 3, dtype=np.uint8).tobytes()
    store.put("src", body, {"k": "v"})
    store.copy("src", "dst")
    info = store.head("dst")
    assert info.size == len(body) and info.etag.endswith('-3"')  # 5 + 5 + 1 MiB and 3 bytes, as parts
    assert info.metadata == {"k": "v"}
    assert store.get_range("dst", 0, len(body)) == body
