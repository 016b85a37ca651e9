"""Issue 24 item 1, the recursive listings: what the library *keeps* of ``iter_objects`` (a glob's
matches, a folder's objects, a dask array's parts, the arrays ``refs`` describes) is bounded by
``storage.collect`` (``COTTONCANDY_LISTING_MEMORY``). Before, an endpoint answering a new
continuation token forever grew each of these without end; a repeated token ended them all."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cottoncandy as cc
from cottoncandy.files.transfers import total_size
from cottoncandy.refs import build_refs
from cottoncandy.storage.answers import BadAnswer, ListingTooLarge
from cottoncandy.storage.collect import LIMIT_VARIABLE, limit, objects_under
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET
from tests.faults.test_misbehaving import BOUND, bounded

#: 2 MB of kept entries: about 11 pages of 500 objects of the endless mode
SMALL = 2_000_000


@pytest.fixture
def loop(s3_store) -> None:  # type: ignore[no-untyped-def]
    for key in ["loop/a.txt", "loop/sub/b.txt", "other/c.txt"]:
        s3_store.put(key, b"12345678")


def interface(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, fast_paths: bool) -> Any:
    """The library through ``proxy``; ``fast_paths=False``: every LIST through boto3."""
    monkeypatch.setenv("CCFS_FAST_PATHS", "1" if fast_paths else "0")
    return cc.get_interface(BUCKET, endpoint_url=proxy.endpoint_url, verbose=False)


def library_calls(cci: Any) -> dict[str, Callable[[], Any]]:
    return {
        "glob **": lambda: cci.glob("loop/**"),
        "rm -r": lambda: cci.rm("loop/", recursive=True),
        "get_objects": lambda: cci.get_objects(filter={"Prefix": "loop/"}),
        "download_dask_array": lambda: cci.download_dask_array("loop"),
        "build_refs": lambda: build_refs(cci.store, "loop"),
        "total_size (get_size)": lambda: total_size(cci.store, "loop/"),  # keeps nothing, but would never end
    }


@pytest.mark.parametrize("fast_paths", [True, False], ids=["signed", "boto3"])
def test_an_endless_listing_kept_by_the_library_ends_at_its_limit(loop, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 fast_paths: bool) -> None:
    monkeypatch.setenv(LIMIT_VARIABLE, str(SMALL))
    cci = interface(fault_proxy, monkeypatch, fast_paths)
    fault_proxy.set_rules([FaultRule("new_token", query="prefix=loop", count=500)])
    for name, call in library_calls(cci).items():
        with pytest.raises(ListingTooLarge) as caught:
            bounded(call)
        message = str(caught.value)
        assert caught.value.errno == errno.EFBIG, (name, message)
        assert "s3://test-bucket/loop/" in message and fault_proxy.endpoint_url in message, (name, message)
        assert "more than 2 MiB of listing" in message and LIMIT_VARIABLE in message, (name, message)
        assert "list a subfolder or a longer prefix" in message, (name, message)
    assert fault_proxy.count("new_token") < 20 * len(library_calls(cci))


@pytest.mark.parametrize("fast_paths", [True, False], ids=["signed", "boto3"])
def test_a_repeated_token_ends_every_kept_listing(loop, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch, fast_paths: bool) -> None:
    cci = interface(fault_proxy, monkeypatch, fast_paths)
    fault_proxy.set_rules([FaultRule("loop_token", query="prefix=loop")])
    for name, call in library_calls(cci).items():
        with pytest.raises(BadAnswer, match="continuation token 'cc-loop-token' already followed") as caught:
            bounded(call)
        assert fault_proxy.endpoint_url in str(caught.value), name
    fault_proxy.clear()
    assert cci.glob("loop/**") == ["loop/a.txt", "loop/sub/b.txt"]


def test_ccfs_glob_and_rm_end_at_the_limit_in_one_line(loop, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule("new_token", query="prefix=loop", count=500)])
    env = {**os.environ, "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, LIMIT_VARIABLE: str(SMALL)}
    for args in (["glob", f"s3://{BUCKET}/loop/**"], ["rm", "-r", f"s3://{BUCKET}/loop/"]):
        try:
            result = subprocess.run([sys.executable, "-m", "ccfs", *args], capture_output=True, text=True, env=env,
                                    timeout=BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ccfs {' '.join(args)} still running after {BOUND:.0f} s")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (args, result.stderr)
        assert "more than 2 MiB of listing" in lines[0] and fault_proxy.endpoint_url in lines[0], lines[0]


def test_the_limit_counts_what_is_kept() -> None:
    store = MemoryStore()
    for i in range(100):
        store.put(f"p/{i:03d}", b"x")
    assert len(list(objects_under(store, "p/", None))) == 100
    with pytest.raises(ListingTooLarge, match=r"LIST of s3://.*/p/: more than 5000 bytes of listing \(15 objects"):
        list(objects_under(store, "p/", 5000))


def test_the_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIMIT_VARIABLE, raising=False)
    assert limit() == 2**30
    monkeypatch.setenv(LIMIT_VARIABLE, "0")
    assert limit() is None
    for bad in ("1e9", "\u0661\u0662", "-5", "12M"):
        monkeypatch.setenv(LIMIT_VARIABLE, bad)
        with pytest.raises(ValueError, match=LIMIT_VARIABLE):
            limit()


def test_nothing_above_storage_keeps_iter_objects_unbounded() -> None:
    """The invariant of ``storage.collect``: a comprehension, ``list``/``tuple``/``set``/``sorted`` of
    ``iter_objects`` outside ``storage`` would be a collector without a limit."""
    root = Path(__file__).resolve().parents[2]
    keeping = re.compile(r"(\b(list|tuple|set|sorted|dict)\(|[\[{]).*\bin\b.*\.iter_objects\(|"
                         r"\b(list|tuple|set|sorted|dict)\([^)]*\.iter_objects\(")
    paths = [path for folder in ("cottoncandy", "ccfs") for path in (root / folder).rglob("*.py")
             if not {"storage", "testing"} & set(path.relative_to(root).parts)]
    found = [f"{path.relative_to(root)}:{n}" for path in paths
             for n, line in enumerate(path.read_text().splitlines(), 1) if keeping.search(line)]
    assert found == [] or all("demo.py" in f for f in found), found


def test_boto3_reads_an_overflowing_page_no_further_than_a_page(loop, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A 60 MB "page" of 10^6 prefixes: refused from its Content-Length, before its body is read
    (botocore read it whole into memory first), by our listings and by a user's boto3 paginator on
    the client of 0.4.0's ``get_bucket()`` alike (the misbehaving modes answer ListObjectsV2 only)."""
    cci = interface(fault_proxy, monkeypatch, fast_paths=False)
    fault_proxy.set_rules([FaultRule("overflow", query="prefix=loop")])
    client = cci.get_bucket().meta.client  # a user's own boto3 calls, as 0.4.0 handed them out
    paginated = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="loop/")
    for call in (lambda: cci.lsdir("loop"), lambda: cci.glob("loop/**"), lambda: list(paginated)):
        with pytest.raises(BadAnswer, match=r"bytes \(Content-Length\), where a page takes at most") as caught:
            bounded(call, 15)
        assert fault_proxy.endpoint_url in str(caught.value)
    assert fault_proxy.count("overflow") == 3  # not retried


def test_a_body_without_a_length_is_read_no_further_than_a_page() -> None:
    from cottoncandy.storage.s3.list_bodies import send_capped

    class Raw:
        def __init__(self) -> None:
            self.sent = 0
            self.closed = False

        def read(self, amt: int) -> bytes:
            self.sent += amt
            return b"x" * amt  # endless

        def close(self) -> None:
            self.closed = True

    raw = Raw()

    class Session:
        def send(self, request: Any) -> Any:
            from botocore.awsrequest import AWSResponse
            return AWSResponse(request.url, 200, {}, raw)

    class Request:
        url = "http://h:9/bkt?list-type=2&prefix=p%2F&max-keys=10"
        stream_output = False

    with pytest.raises(BadAnswer, match=r"LIST of prefix 'p/' at http://h:9/bkt: an answer of more than 147456 bytes"):
        send_capped(Session().send, Request())
    assert raw.closed and raw.sent == 147457


@pytest.mark.parametrize("mode", ["reset", "truncate"])
def test_a_list_body_that_breaks_on_the_boto3_path_is_asked_again(loop, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                   monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The capped read says a broken body as botocore's session does, so botocore retries it."""
    cci = interface(fault_proxy, monkeypatch, fast_paths=False)
    fault_proxy.set_rules([FaultRule(mode, methods=("GET",), query="prefix=loop", after=40, limit=1)])
    assert bounded(lambda: cci.glob("loop/**")) == ["loop/a.txt", "loop/sub/b.txt"]
    assert fault_proxy.count(mode) == 1


def test_a_users_own_boto3_paginator_ends_on_a_repeated_token(loop, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """0.4.0's ``get_bucket()`` hands out boto3 itself: its paginator ends on the token the page was
    asked with coming back (botocore's check), its pages capped as ours (``list_bodies``)."""
    from botocore.exceptions import PaginationError

    cci = interface(fault_proxy, monkeypatch, fast_paths=False)
    fault_proxy.set_rules([FaultRule("loop_token", query="prefix=loop")])
    client = cci.get_bucket().meta.client
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="loop/")
    with pytest.raises(PaginationError, match="same next token"):
        bounded(lambda: list(pages))
