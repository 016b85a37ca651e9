"""GET bodies sent ``Transfer-Encoding: chunked`` (valid HTTP/1.1, no ``Content-Length``; some proxies
and gateways answer so): issue 25, item 2. The fault proxy's ``chunked`` mode re-frames the local
server's GET answers. Before: ``download_raw_array`` raised ``KeyError: 'ContentLength'`` (boto3's
path) and the fast path refused every such answer, asking boto3 again.
"""

from __future__ import annotations

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.http_ranges import parse_content_range
from cottoncandy.storage.s3 import S3Store
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET


def _store(proxy: FaultProxy, fast: bool) -> S3Store:
    store = S3Account(Settings(endpoint_url=proxy.endpoint_url, fast_paths=fast)).store(BUCKET)
    assert isinstance(store, S3Store)
    return store


@pytest.mark.parametrize("fast", [False, True], ids=["boto3", "fast"])
def test_chunked_bodies_are_read_by_both_paths(fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch,
                                               fast: bool) -> None:
    monkeypatch.setenv("CCFS_FAST_PATHS", "1" if fast else "0")
    cci = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    small, large = np.arange(1000.0), np.arange(3 * 2**17, dtype=np.float32).reshape(3, -1)
    cci.upload_raw_array("small", small)
    cci.upload_raw_array("large", large, compression=False)
    cci.upload_dask_array("dasky", large, chunks=(1, 2**16))
    fault_proxy.set_rules([FaultRule("chunked", after=1000)])  # pieces of at most 1,000 bytes
    fault_proxy.reset_counts()
    np.testing.assert_array_equal(cci.download_raw_array("small"), small)
    np.testing.assert_array_equal(cci.download_raw_array("large"), large)
    np.testing.assert_array_equal(np.asarray(cci.download_dask_array("dasky")), large)
    assert fault_proxy.count("chunked", "GET") >= 3
    if fast:  # every GET was the fast path's: none asked again through boto3
        assert fault_proxy.counts["GET"] == fault_proxy.count("chunked", "GET")


@pytest.mark.parametrize("fast", [False, True], ids=["boto3", "fast"])
def test_chunked_ranges_fill_the_buffer_and_keep_the_connection(fault_proxy: FaultProxy, fast: bool) -> None:
    store = _store(fault_proxy, fast)
    data = bytes(range(256)) * 400
    store.put("obj", data)
    fault_proxy.set_rules([FaultRule("chunked", after=4096)])
    for start, end in [(0, 100), (5, 70_000), (102_300, 102_400), (0, len(data))]:
        buffer = bytearray(end - start)
        store.readinto("obj", start, memoryview(buffer))
        assert bytes(buffer) == data[start:end]
    info, n = store.read_start("obj", memoryview(bytearray(1000)))
    assert (info.size, n) == (len(data), 1000)
    info, n = store.read_start("obj", memoryview(bytearray(200_000)))  # the whole object, shorter than asked
    assert (info.size, n) == (len(data), len(data))
    if fast:
        fast_client = store._signed_requests()
        assert fast_client is not None
        assert fast_client.get_into("obj", 7, memoryview(bytearray(9)))  # taken, not refused
        listed = fast_client.list_dir("")  # a LIST page sent chunked too
        assert listed is not None and [o.key for o in listed[1]] == ["obj"]
    assert [o.key for o in store.list_dir("").objects] == ["obj"]
    assert fault_proxy.count("chunked", "GET") >= 6


def test_content_range_is_parsed_in_one_place() -> None:
    assert parse_content_range("bytes 0-9/100") == (0, 10, 100)
    assert parse_content_range("bytes 5-5/*") == (5, 6, None)
    for bad in ("bytes 9-0/100", "bytes 0-100/100", "items 0-9/100", "bytes 0-9", "bytes -9/10", "bytes ０-9/10"):
        assert parse_content_range(bad) is None, bad
