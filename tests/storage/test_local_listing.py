"""The local server's ListObjectsV2 index answers exactly what moto's own listing answers.

``cottoncandy.testing.s3listing`` replaces moto's walk-and-sort of every key per page with a sorted
name index (the 100,000-array benchmarks measured moto's O(N) pages, not the client). It is only
worth having if no answer changes: every page here is compared entry for entry, token for token,
with moto's own function on the same backend, and a listing over HTTP sees puts and deletes at once.
"""

from __future__ import annotations

import random
from typing import Any

import boto3
import pytest

from cottoncandy.testing import s3listing
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET

NAMES = ["q/it's \"quoted\" & <tagged>", "q/+plus=eq?x#y", "q/sp ace/",
         "a", "a/", "a/b", "a/b/c", "a/b/d", "a/bc", "a.b", "a0", "a//x", "b", "b/ü", "b/ø/x", "b/z",
         "c/d/e/f", "c/d/e/g", "c/dd", "c/d", "e/😀", "e/~", "e/x/", "f/" + "x" * 300]


@pytest.fixture
def s3(in_process_s3_server: LocalS3Server) -> LocalS3Server:
    """This module looks inside moto's backend, so its server runs in this process (no test here
    reads through a mount: ``cottoncandy.testing.children`` says why that matters)."""
    in_process_s3_server.reset()
    boto3.client("s3", endpoint_url=in_process_s3_server.endpoint_url).create_bucket(Bucket=BUCKET)
    return in_process_s3_server


def _backend_and_bucket() -> tuple[Any, Any]:
    from moto.s3.models import s3_backends

    for per_partition in s3_backends.values():
        for backend in per_partition.values():
            bucket = backend.buckets.get(BUCKET)
            if bucket is not None:
                return backend, bucket
    raise AssertionError("no test bucket in moto")


def _names(entries: list[Any]) -> list[str]:
    return [entry if isinstance(entry, str) else entry.name for entry in entries]


def _walk(listing: Any, backend: Any, bucket: Any, prefix: str | None, delimiter: str | None, max_keys: int,
          start_after: str | None) -> list[tuple[list[str], bool]]:
    """Every page of one listing, following the continuation tokens it hands out."""
    pages, token = [], None
    for _ in range(1000):
        entries, truncated, token = listing(backend, bucket, prefix, delimiter, token, start_after, max_keys)
        pages.append((_names(entries), truncated))
        if not truncated:
            return pages
    raise AssertionError("the listing never ended")


def test_every_page_is_moto_s_page(s3: LocalS3Server) -> None:
    client = boto3.client("s3", endpoint_url=s3.endpoint_url)
    extra = [f"many/{i:03d}" for i in range(150)] + [f"many/sub{i % 7}/{i}" for i in range(60)]
    for name in NAMES + extra:
        client.put_object(Bucket=BUCKET, Key=name, Body=b"x")
    client.delete_object(Bucket=BUCKET, Key="a/bc")
    backend, bucket = _backend_and_bucket()
    moto = s3listing.moto_list_objects_v2
    assert moto is not None  # the server patched moto
    rng = random.Random(7)
    prefixes = [None, "", "a", "a/", "a/b", "b/", "c/d", "c/d/", "e/", "many/", "many/sub", "zz", "many/0"]
    starts = [None, "a", "a/b", "a/b/", "b/ø", "c/d/e/f", "many/050", "many/sub3/", "zzz"]
    compared = 0
    for prefix in prefixes:
        for delimiter in (None, "/", "b", "d/"):
            for max_keys in (1, 2, 7, 1000):
                start_after = rng.choice(starts)
                ours = _walk(s3listing.list_page, backend, bucket, prefix, delimiter, max_keys, start_after)
                theirs = _walk(moto, backend, bucket, prefix, delimiter, max_keys, start_after)
                assert ours == theirs, (prefix, delimiter, max_keys, start_after)
                compared += len(ours)
    assert compared > 500
    entries, truncated, token = s3listing.list_page(backend, bucket, "", "/", None, None, 0)
    assert (entries, truncated, token) == ([], False, None)


def test_a_listing_over_http_sees_every_change_at_once(s3: LocalS3Server) -> None:
    client = boto3.client("s3", endpoint_url=s3.endpoint_url)
    for i in range(30):
        client.put_object(Bucket=BUCKET, Key=f"d/{i:02d}", Body=b"x")

    def listed() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="d/",
                                                                  PaginationConfig={"PageSize": 7})
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    assert listed() == [f"d/{i:02d}" for i in range(30)]
    client.delete_object(Bucket=BUCKET, Key="d/05")
    client.put_object(Bucket=BUCKET, Key="d/055", Body=b"yy")
    client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "d/20"}, {"Key": "d/21"}]})
    expected = sorted({f"d/{i:02d}" for i in range(30)} - {"d/05", "d/20", "d/21"} | {"d/055"})
    assert listed() == expected
    sizes = {item["Key"]: item["Size"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix="d/05")["Contents"]}
    assert sizes == {"d/055": 2}


@pytest.mark.parametrize("count", [20_000])
def test_a_page_costs_its_own_entries_not_the_bucket_s(s3: LocalS3Server, count: int) -> None:
    """Pages of a big folder: the index is built once, then each page bisects to its start (moto's
    own walk sorts every key per page). Counted in key-store reads, not timed."""
    import json
    import urllib.request

    request = urllib.request.Request(
        s3.endpoint_url + "/_local-s3/fill", method="POST",
        data=json.dumps({"bucket": BUCKET, "prefix": "big/", "count": count, "body": "x",
                         "access_key": "testing"}).encode())
    urllib.request.urlopen(request, timeout=120).read()
    backend, bucket = _backend_and_bucket()
    reads = 0
    original_get = type(bucket.keys).get

    def counting_get(self: Any, key: str, default: Any = None) -> Any:
        nonlocal reads
        reads += 1
        return original_get(self, key, default)

    indexes = []
    original_page = s3listing.list_page

    def watched_page(*args: Any) -> Any:
        answer = original_page(*args)
        indexes.append(bucket.keys.cc_index[1])
        return answer

    type(bucket.keys).get = counting_get  # type: ignore[method-assign]
    try:
        pages = _walk(watched_page, backend, bucket, "big/", "/", 1000, None)
    finally:
        type(bucket.keys).get = original_get  # type: ignore[method-assign]
    assert all(index is indexes[0] for index in indexes)  # sorted once, not per page
    assert sum(len(names) for names, _ in pages) == count and len(pages) == count // 1000
    assert reads <= count + len(pages)  # an entry read per entry listed (and one to see a page is not the last)


def test_every_answer_is_moto_s_answer_byte_for_byte(s3: LocalS3Server) -> None:
    """The directly written ListObjectsV2 XML is moto's serializer's, byte for byte, and so are the headers a
    client reads (content type, x-amz-*). Other headers are moto's own business: a patch release of moto
    once added ``status``, which no S3 client reads, and the suite must not pin moto's extras."""
    import requests

    client = boto3.client("s3", endpoint_url=s3.endpoint_url)
    for name in NAMES:
        client.put_object(Bucket=BUCKET, Key=name, Body=b"x" * len(name))
    client.put_object(Bucket=BUCKET, Key="a/sum", Body=b"y", ChecksumAlgorithm="SHA256")

    def relied_on(header: str) -> bool:
        return header == "content-type" or (header.startswith("x-amz-") and header != "x-amz-request-id")

    def answer(query: str) -> tuple[int, dict[str, str], bytes]:
        got = requests.get(f"{s3.endpoint_url}/{BUCKET}?{query}", timeout=30)
        headers = {k.lower(): v for k, v in got.headers.items() if relied_on(k.lower())}
        assert "content-type" in headers, (query, got.headers)
        return got.status_code, headers, got.content

    queries = []
    for prefix in ("", "a%2F", "q%2F", "c%2Fd", "e%2F", "zz", "a"):
        for delimiter in ("", "&delimiter=%2F", "&delimiter=b"):
            for extra in ("", "&encoding-type=url", "&max-keys=2", "&max-keys=0", "&start-after=a%2Fb",
                          "&max-keys=1&encoding-type=url&start-after=a"):
                queries.append(f"list-type=2&prefix={prefix}{delimiter}{extra}")
    compared = 0
    for query in queries:
        s3listing.direct_xml = False
        try:
            theirs = answer(query)
        finally:
            s3listing.direct_xml = True
        ours = answer(query)
        assert ours == theirs, query
        compared += 1
        body = ours[2].decode()
        if "<NextContinuationToken>" in body:  # the next page, by the token either answer handed out
            token = body.split("<NextContinuationToken>")[1].split("<")[0]
            follow = f"{query}&continuation-token={token}"
            s3listing.direct_xml = False
            try:
                theirs = answer(follow)
            finally:
                s3listing.direct_xml = True
            assert answer(follow) == theirs, follow
            compared += 1
    assert compared > len(queries)
