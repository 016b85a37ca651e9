"""The library and the command line against an endpoint whose answers are well-formed HTTP but wrong
(issue 24, items 1, 3 and 9): LISTs that loop or overflow, HTML or cut-off XML with 200, a GET that
ignores If-Match, a HEAD that disagrees with the GET (``cottoncandy.testing.misbehave``, modes of the
fault proxy). Each answer is a clear error naming the endpoint, within a few seconds, never a loop,
a wrong folder or mixed bytes.

Every call that could loop runs under ``bounded``: before the fixes they never returned.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.answers import (
    EMPTY_PAGES,
    BadAnswer,
    ListingGuard,
    ListingTooLarge,
    ListPage,
    check_etag,
    parse_list_page,
)
from cottoncandy.storage.base import ObjectInfo
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET

#: seconds a call against a misbehaving endpoint may take before the test calls it a hang
BOUND = 30.0
LIST_MODES = ["loop_token", "new_token", "overflow", "html", "cut_xml"]


def bounded(call: Callable[[], Any], seconds: float = BOUND) -> Any:
    """``call()``'s result or exception, or a test failure if it is still running after ``seconds``
    (on a daemon thread, so a call that never ends does not hold the suite)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def store_through(proxy: FaultProxy, fast_paths: bool = True, listing_memory: int | None = None):  # type: ignore[no-untyped-def]
    store = S3Account(Settings(endpoint_url=proxy.endpoint_url, fast_paths=fast_paths)).store(BUCKET)
    if listing_memory is not None:
        store.listing_memory = listing_memory
    return store


@pytest.fixture
def folder(s3_store) -> list[str]:  # type: ignore[no-untyped-def]
    keys = [f"loop/x{i}.txt" for i in range(5)] + ["loop/sub/y.txt", "other/z.txt"]
    for key in keys:
        s3_store.put(key, b"12345678")
    return keys


def misbehaving(proxy: FaultProxy, mode: str) -> None:
    """``mode`` for the listings of ``loop/`` (new_token pages of 500 entries)."""
    proxy.set_rules([FaultRule(mode, query="prefix=loop", count=500 if mode == "new_token" else None)])


# --- listings -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fast_paths", [True, False], ids=["signed", "boto3"])
@pytest.mark.parametrize("mode", LIST_MODES)
def test_a_misbehaving_listing_is_a_clear_error(folder, fault_proxy: FaultProxy, mode: str,  # type: ignore[no-untyped-def]
                                                fast_paths: bool) -> None:
    store = store_through(fault_proxy, fast_paths, listing_memory=2 * 2**20)
    misbehaving(fault_proxy, mode)
    began = time.monotonic()
    with pytest.raises(OSError) as caught:
        bounded(lambda: store.list_dir("loop/"))
    message = str(caught.value)
    assert fault_proxy.endpoint_url in message and "s3://test-bucket/loop/" in message, message
    expected = {"loop_token": "continuation token 'cc-loop-token' already followed",
                "new_token": "more than 2 MiB of listing", "overflow": "where a page takes at most",
                "html": "not a ListBucketResult but an HTML page", "cut_xml": "cut off or is not XML"}[mode]
    assert expected in message, message
    assert caught.value.errno == (errno.EFBIG if mode == "new_token" else errno.EIO)
    assert isinstance(caught.value, ListingTooLarge if mode == "new_token" else BadAnswer)
    assert time.monotonic() - began < 20
    assert fault_proxy.count(mode) <= (15 if mode == "new_token" else 2)  # no retries of a wrong answer
    fault_proxy.clear()  # the same store lists the folder once the endpoint behaves
    assert len(store.list_dir("loop/").objects) == 5


@pytest.mark.parametrize("mode", ["loop_token", "new_token", "html"])
def test_every_listing_call_of_the_library_ends(folder, fault_proxy: FaultProxy, mode: str) -> None:  # type: ignore[no-untyped-def]
    """lsdir, ls, glob and the recursive listings: the same errors (a recursive listing keeps nothing,
    so an endless one is ended by its order and token checks, not by its size)."""
    cci = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    cci.store.listing_memory = 2 * 2**20
    misbehaving(fault_proxy, mode)
    calls: dict[str, Callable[[], Any]] = {
        "lsdir": lambda: cci.lsdir("loop"), "ls": lambda: cci.ls("loop/"), "glob": lambda: cci.glob("loop/*"),
        "iter_objects": lambda: list(cci.store.iter_objects("loop/"))}
    for name, call in calls.items():
        if mode == "new_token" and name == "iter_objects":
            continue  # endless and bounded by nothing: a generator holds nothing (see the next test)
        with pytest.raises(OSError, match="s3://test-bucket/loop"):
            bounded(call)


def test_an_endless_recursive_listing_goes_on_as_long_as_it_is_read(folder, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    """A generator over new pages forever holds one page: the reader decides when to stop."""
    store = store_through(fault_proxy)
    misbehaving(fault_proxy, "new_token")
    seen = bounded(lambda: sum(1 for _, _ in zip(range(2000), store.iter_objects("loop/"))))
    assert seen == 2000


@pytest.mark.parametrize("mode", ["loop_token", "overflow", "html", "cut_xml"])
def test_ccfs_ls_and_glob_end_with_one_line(folder, fault_proxy: FaultProxy, mode: str) -> None:  # type: ignore[no-untyped-def]
    misbehaving(fault_proxy, mode)
    env = {**os.environ, "AWS_ENDPOINT_URL": fault_proxy.endpoint_url}
    for args in (["ls", f"s3://{BUCKET}/loop/"], ["ls", "-l", f"s3://{BUCKET}/loop/"],
                 ["glob", f"s3://{BUCKET}/loop/*"]):
        began = time.monotonic()
        try:
            result = subprocess.run([sys.executable, "-m", "ccfs", *args], capture_output=True, text=True, env=env,
                                    timeout=BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ccfs {' '.join(args)} still running after {BOUND:.0f} s")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert fault_proxy.endpoint_url in lines[0] and "loop/" in lines[0], lines[0]
        assert time.monotonic() - began < 20


# --- the validator, shape by shape --------------------------------------------------------------

def _page(*names: str, token: str | None = None) -> ListPage:
    return ListPage(prefixes=[n for n in names if n.endswith("/")],
                    objects=[ObjectInfo(key=n, size=1, etag='"e"') for n in names if not n.endswith("/")],
                    truncated=token is not None, next_token=token)


def test_the_guard_follows_tokens_and_order() -> None:
    guard = ListingGuard("LIST of s3://b/p/ at http://h")
    guard.sent(None)
    page = guard.page(_page("p/a", "p/b/", token="t1"))
    assert guard.next_token(page) == "t1"
    page = guard.page(_page("p/b/", "p/c", token="t2"))  # the last entry again: dropped, not an error
    assert page.names() == ["p/c"] and guard.next_token(page) == "t2"
    with pytest.raises(BadAnswer, match="already followed"):
        guard.page(_page("p/d", token="t1"))
    with pytest.raises(BadAnswer, match="before the 'p/c' of the page before"):  # a new token, the same entries
        ListingGuard("x").page(_page("p/c", token="u")) and None or _restart()
    empty = ListingGuard("x")
    with pytest.raises(BadAnswer, match="pages in a row without an entry"):
        for n in range(EMPTY_PAGES + 1):
            empty.next_token(empty.page(_page(token=f"e{n}")))
    with pytest.raises(BadAnswer, match="gives no continuation token"):
        ListingGuard("x").page(ListPage(truncated=True))


def _restart() -> None:
    guard = ListingGuard("x")
    guard.next_token(guard.page(_page("p/a", "p/c", token="u1")))
    guard.page(_page("p/a", "p/c", token="u2"))


def test_the_guard_bounds_a_folders_memory() -> None:
    guard = ListingGuard("LIST of s3://b/p/ at http://h", limit_bytes=100_000)
    with pytest.raises(ListingTooLarge, match="more than 0 MiB of listing") as caught:
        for n in range(100):
            guard.next_token(guard.page(_page(*(f"p/{n:03d}-{i:03d}" for i in range(100)), token=f"t{n}")))
    assert caught.value.errno == errno.EFBIG and guard.pages < 10


@pytest.mark.parametrize("body, words", [
    (b"", "cut off or is not XML"),
    (b"<?xml version='1.0'?><Error><Code>X</Code></Error>", "not a ListBucketResult but a body"),
    (b"<ListBucketResult><Contents><Key>q/x</Key><Size>1</Size></Contents></ListBucketResult>", "outside the prefix"),
    (b"<ListBucketResult><Contents><Key>p/x</Key><Size>-1</Size></Contents></ListBucketResult>", "with the size"),
    (b"<ListBucketResult><Contents><Key>p/x</Key><Size>1</Size><LastModified>soon</LastModified></Contents>"
     b"</ListBucketResult>", "a listed date 'soon'"),
    (b"<ListBucketResult>" + b"<CommonPrefixes><Prefix>p/a/</Prefix></CommonPrefixes>" * 3 + b"</ListBucketResult>",
     "a page of 3 entries where 2 were asked for"),
    (b"<s3:ListBucketResult xmlns:s3='http://s3.amazonaws.com/doc/2006-03-01/'>"
     + b"<s3:CommonPrefixes><s3:Prefix>p/a/</s3:Prefix></s3:CommonPrefixes>" * 3 + b"</s3:ListBucketResult>",
     "a page of 3 entries where 2 were asked for"),
])
def test_bodies_that_are_not_pages(body: bytes, words: str) -> None:
    with pytest.raises(BadAnswer, match=words):
        parse_list_page(body, max_keys=2, prefix="p/", where="LIST of s3://b/p/ at http://h")


def test_a_page_is_read_as_s3_writes_it() -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>"
            b"<CommonPrefixes><Prefix>p/a+b%2F/</Prefix></CommonPrefixes><Contents><Key>p/%C3%BC</Key><Size>12</Size>"
            b'<ETag>"e1"</ETag><LastModified>2026-01-02T03:04:05.000Z</LastModified><Owner><ID>me</ID></Owner></Contents>'
            b"</ListBucketResult>")
    page = parse_list_page(body, max_keys=1000, prefix="p/", where="w")
    assert page.prefixes == ["p/a b//"] and [o.key for o in page.objects] == ["p/ü"]
    assert page.objects[0].size == 12 and page.objects[0].owner == "me" and page.next_token == "tok"


@pytest.mark.parametrize("namespace", ['xmlns="http://doc.s3.amazonaws.com/2006-03-01/"', ""])
def test_a_page_in_another_namespace_is_read_as_botocore_reads_it(namespace: str) -> None:
    """s3rver names another namespace than S3's (botocore reads any): refused as 'not a ListBucketResult'."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult {namespace}><IsTruncated>false</IsTruncated>'
            f"<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes><Contents><Key>p/k</Key><Size>3</Size>"
            f'<ETag>"e"</ETag><Owner><DisplayName>S3rver</DisplayName></Owner></Contents></ListBucketResult>').encode()
    page = parse_list_page(body, max_keys=1000, prefix="p/", where="w")
    assert page.prefixes == ["p/d/"] and [(o.key, o.size, o.owner) for o in page.objects] == [("p/k", 3, "S3rver")]


# --- GETs pinned to a version -----------------------------------------------------------------

def test_check_etag() -> None:
    check_etag('"abc"', '"abc"', "s3://b/k")
    check_etag('"abc"', "abc", "s3://b/k")
    check_etag(None, None, "s3://b/k")
    for answered in ('"abd"', None, ""):
        with pytest.raises(OSError, match=r"s3://b/k changed since it was opened: asked for version \"abc\"") as caught:
            check_etag('"abc"', answered, "s3://b/k")
        assert caught.value.errno == errno.ESTALE


@pytest.fixture
def replaced(s3_store):  # type: ignore[no-untyped-def]
    """An object whose version ``old`` was replaced by ``new`` (same size, other bytes)."""
    old = s3_store.put("v/obj", b"A" * 300_000)
    new = s3_store.put("v/obj", b"B" * 300_000)
    assert old.etag != new.etag
    return old, new


@pytest.mark.parametrize("fast_paths", [True, False], ids=["signed", "boto3"])
def test_reads_pinned_to_a_version_refuse_another(replaced, fault_proxy: FaultProxy, fast_paths: bool) -> None:  # type: ignore[no-untyped-def]
    """An endpoint that ignores If-Match serves the new version's bytes: every read pinned to the old
    one is ESTALE (it was the new bytes, silently)."""
    old, _ = replaced
    store = store_through(fault_proxy, fast_paths)
    fault_proxy.set_rules([FaultRule("ignore_if_match")])
    reads: dict[str, Callable[[], Any]] = {
        "get_range": lambda: store.get_range("v/obj", 0, 1000, if_match=old.etag),
        "readinto": lambda: store.readinto("v/obj", 100, memoryview(bytearray(4096)), if_match=old.etag),
        "download_into": lambda: store.download_into("v/obj", memoryview(bytearray(300_000)), if_match=old.etag),
        "open_read": lambda: store.open_read("v/obj", if_match=old.etag).read(),
    }
    for name, read in reads.items():
        with pytest.raises(OSError, match="changed since it was opened") as caught:
            bounded(read)
        assert caught.value.errno == errno.ESTALE, name
        assert old.etag in str(caught.value), name
    assert fault_proxy.count("ignore_if_match") >= len(reads)


def test_a_download_whose_object_is_replaced_midway_never_mixes(s3_store, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    """The library's array download: its metadata and first bytes come from one GET, the rest is
    pinned to that version; replaced in between (and If-Match ignored), ESTALE, not a mixed array."""
    cci = cc.get_interface(BUCKET, endpoint_url=s3_store.settings.endpoint_url, verbose=False)
    cci.upload_raw_array("v/arr", np.arange(2_000_000, dtype=np.int64), compression=False)
    flaky = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    import cottoncandy.interface as interface

    real = interface.first_look

    def first_look_then_replace(store, key):  # type: ignore[no-untyped-def]
        look = real(store, key)
        cci.upload_raw_array("v/arr", np.arange(2_000_000, dtype=np.int64)[::-1].copy(), compression=False)
        return look

    fault_proxy.set_rules([FaultRule("ignore_if_match")])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(interface, "first_look", first_look_then_replace)
        with pytest.raises(OSError, match="changed since it was opened") as caught:
            bounded(lambda: flaky.download_raw_array("v/arr"))
    assert caught.value.errno == errno.ESTALE


def test_ccfs_get_never_writes_one_versions_header_with_anothers_bytes(s3_store, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path) -> None:
    """A gateway that caches HEADs (``head_stale``) and ignores If-Match: the object was replaced by
    one of another shape and the same size. ``ccfs get`` wrote v1's header with v2's bytes and
    exited 0; now it fails in one line and writes no file."""
    cci = cc.get_interface(BUCKET, endpoint_url=s3_store.settings.endpoint_url, verbose=False)
    cci.upload_raw_array("v/arr", np.arange(60_000, dtype=np.float64).reshape(300, 200), compression=False)
    fault_proxy.set_rules([FaultRule("head_stale"), FaultRule("ignore_if_match")])
    store_through(fault_proxy).head("v/arr")  # the gateway keeps this answer
    cci.upload_raw_array("v/arr", np.arange(60_000, dtype=np.int64).reshape(200, 300), compression=False)
    out = tmp_path / "got.npy"
    env = {**os.environ, "AWS_ENDPOINT_URL": fault_proxy.endpoint_url}
    result = subprocess.run([sys.executable, "-m", "ccfs", "get", f"s3://{BUCKET}/v/arr", str(out)],
                            capture_output=True, text=True, env=env, timeout=BOUND)
    assert fault_proxy.count("head_stale") >= 2 and fault_proxy.count("ignore_if_match") >= 1
    assert result.returncode == 1, (result.stdout, result.stderr, out.exists() and np.load(out).shape)
    assert "changed since it was opened" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("mode", ["head_etag", "head_size"])
def test_a_head_that_disagrees_with_the_get_fails_the_get_cleanly(s3_store, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path, mode: str) -> None:
    cci = cc.get_interface(BUCKET, endpoint_url=s3_store.settings.endpoint_url, verbose=False)
    cci.upload_raw_array("v/arr", np.arange(1000, dtype=np.float32), compression=False)
    fault_proxy.set_rules([FaultRule(mode)])
    out = tmp_path / "got.npy"
    env = {**os.environ, "AWS_ENDPOINT_URL": fault_proxy.endpoint_url}
    result = subprocess.run([sys.executable, "-m", "ccfs", "get", f"s3://{BUCKET}/v/arr", str(out)],
                            capture_output=True, text=True, env=env, timeout=BOUND)
    assert fault_proxy.count(mode) >= 1
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "s3://test-bucket/v/arr" in result.stderr, result.stderr
    assert not out.exists()
    # the library reads metadata and bytes from one GET: the lying HEAD does not reach it
    flaky = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    assert np.array_equal(flaky.download_raw_array("v/arr"), np.arange(1000, dtype=np.float32))


@pytest.mark.parametrize("fast_paths", [True, False], ids=["signed", "boto3"])
def test_an_html_answer_is_never_an_objects_metadata_or_bytes(s3_store, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                              fast_paths: bool) -> None:
    """A portal's page sent with 200 to a HEAD or a GET names no version: BadAnswer (it was a
    KeyError('ETag') for a HEAD or an array download, and the page itself for a plain get)."""
    cci = cc.get_interface(BUCKET, endpoint_url=s3_store.settings.endpoint_url, verbose=False)
    cci.upload_raw_array("v/arr", np.arange(100), compression=False)
    store = store_through(fault_proxy, fast_paths)
    flaky = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    fault_proxy.set_rules([FaultRule("html", key="v/arr")])
    calls: dict[str, Callable[[], Any]] = {
        "head": lambda: store.head("v/arr"), "read_start": lambda: store.read_start("v/arr", memoryview(bytearray(64))),
        "get": lambda: store.get("v/arr"), "download_raw_array": lambda: flaky.download_raw_array("v/arr")}
    for name, call in calls.items():
        with pytest.raises(BadAnswer, match="names no version") as caught:
            bounded(call)
        assert fault_proxy.endpoint_url in str(caught.value) and "text/html" in str(caught.value), name


@pytest.mark.parametrize("fast_paths", [True, False], ids=["signed", "boto3"])
def test_an_html_answer_to_a_pinned_get_is_not_the_objects_bytes(replaced, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                  fast_paths: bool) -> None:
    old, _ = replaced
    store = store_through(fault_proxy, fast_paths)
    fault_proxy.set_rules([FaultRule("html", methods=("GET",), key="v/obj")])
    with pytest.raises(OSError) as caught:
        bounded(lambda: store.readinto("v/obj", 0, memoryview(bytearray(216)), if_match=old.etag))
    assert caught.value.errno in (errno.ESTALE, errno.EIO), caught.value


def test_a_bad_answer_counts_as_no_answer() -> None:
    """What a cache holds may stand in for an answer not of S3's shape (a portal page), never for a
    folder that is too big (that is the folder's own answer)."""
    from cottoncandy.storage.errors import unreachable

    assert unreachable(BadAnswer("LIST of s3://b/p/ at http://h: not a ListBucketResult"))
    assert not unreachable(ListingTooLarge("LIST of s3://b/p/ at http://h: more than 1 MiB"))
