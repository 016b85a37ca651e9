"""The namespace over a real S3 server with the persistent shelf: what a visit costs in HEADs.

A LIST entry showing the version of a known HEAD confirms it, so the stats after a listing send
no HEAD even when the listing took longer than ``attr_ttl`` (a burst of stale lookups re-LISTs the
folder instead); a second process (another ``Namespace`` on the same shelf file) lists an
unchanged folder with no HEAD; a rewritten object is HEADed again and shown as it is now.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.cache.metadata import MetadataStore
from cottoncandy.namespace import attributes, resolver
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode
from tests.conftest import BUCKET

real_monotonic = time.monotonic


class Clock:
    """``time.monotonic`` for the namespace, moved by the test (no sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in (attributes, resolver):
        monkeypatch.setattr(module.time, "monotonic", clock.monotonic)
    return clock


def heads(s3) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in s3.requests() if r.method == "HEAD")


def lists(s3) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in s3.requests() if r.method == "GET" and r.path.rstrip("/") == f"/{BUCKET}")


def logged(count: Callable[[], int], at_least: int) -> int:
    """``count()`` once it reaches ``at_least`` (or after 10 s): the server logs a request once its
    answer is written, which may be just after the client has read it."""
    deadline = real_monotonic() + 10
    while (found := count()) < at_least and real_monotonic() < deadline:
        time.sleep(0.02)
    return found


def fill(store, count: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        write_raw_array(store, f"f/a{i:02d}", np.arange(4, dtype="<f8") + i, compression=None)


def test_stats_after_a_slow_listing_send_no_head_per_entry(s3, s3_store, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    fill(s3_store, 20)
    ns = Namespace(s3_store, attr_ttl=1.0, folders_ahead=0)
    try:
        shown = ns.children("f")
        assert len(shown) == 20
        clock.now += 5  # the listing (and its HEADs) took longer than attr_ttl
        write_raw_array(s3_store, "f/a05", np.zeros((3, 3), dtype="<f4"), compression=None)  # a new version
        s3.clear_log()
        nodes = {name: ns.lookup(f"f/{name}") for name in sorted(shown)}  # what ls -l stats
        assert heads(s3) <= resolver.RELIST_AFTER  # the stale ones before the burst, then the new version
        assert logged(lambda: lists(s3), 1) == 1  # one LIST confirmed every unchanged entry
        assert isinstance(nodes["a05.npy"], FileNode) and nodes["a05.npy"].spec is not None
        assert nodes["a05.npy"].spec.shape == (3, 3)  # never shown stale
        s3.clear_log()
        assert ns.lookup("f/a05.npy").spec.shape == (3, 3)  # type: ignore[union-attr]
        assert heads(s3) == 0 and lists(s3) == 0
    finally:
        ns.close()


def test_stats_after_a_listing_too_slow_to_repeat_confirm_a_page_at_a_time(s3, s3_store, clock: Clock,  # type: ignore[no-untyped-def]
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(30):
        write_raw_array(s3_store, f"f/a{i:02d}", np.arange(4, dtype="<f8") + i, compression=None)
    monkeypatch.setattr(resolver, "LIST_PAGE", 10)  # pages of 10 keys stand for S3's 1,000
    whole_list = s3_store.list_dir_pages

    def slow_list(prefix: str, delimiter: str = "/"):  # type: ignore[no-untyped-def]
        clock.now += 2  # the folder's LIST takes longer than attr_ttl: listing it again would not help
        return whole_list(prefix, delimiter)

    monkeypatch.setattr(s3_store, "list_dir_pages", slow_list)
    ns = Namespace(s3_store, attr_ttl=1.0, folders_ahead=0)
    try:
        shown = ns.children("f")
        clock.now += 5  # every entry is stale now
        write_raw_array(s3_store, "f/a15", np.zeros((3, 3), dtype="<f4"), compression=None)  # a new version
        s3.clear_log()
        nodes = {name: ns.lookup(f"f/{name}") for name in sorted(shown)}  # what ls -l stats, in name order
        pages = [r for r in s3.requests(at_least=resolver.RELIST_AFTER + 3) if r.method == "GET"]
        # 7 stale entries HEADed before the burst; then a page from a07 (a07-a16: a15 is not confirmed,
        # it changed), one from a15 (a16-a24; a15 itself is HEADed: its new version) and one from a25
        assert heads(s3) == resolver.RELIST_AFTER, [r.path for r in s3.requests() if r.method == "HEAD"]
        assert len(pages) == 3 and ns.resolver.page_lists == 3, pages
        assert [q for r in pages for q in r.query.split("&") if q.startswith("start-after=")] == [
            "start-after=f%2Fa06", "start-after=f%2Fa14", "start-after=f%2Fa24"]
        assert nodes["a15.npy"].spec.shape == (3, 3)  # type: ignore[union-attr]  # never shown stale
        assert [nodes[f"a{i:02d}.npy"].size for i in range(30) if i != 15] == [128 + 32] * 29
        s3.clear_log()
        assert ns.lookup("f/a20.npy").size == 128 + 32 and heads(s3) == 0  # confirmed by its page
    finally:
        ns.close()


def test_another_process_lists_an_unchanged_folder_with_no_head(s3, s3_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fill(s3_store, 12)
    first = MetadataStore(tmp_path)
    ns = Namespace(s3_store, folders_ahead=0, shelf=first.scoped(s3_store))
    try:
        before = {name: node.size for name, node in ns.children("f").items()}
    finally:
        ns.close()
        first.close()
    assert heads(s3) == 12
    write_raw_array(s3_store, "f/a03", np.zeros(7, dtype="<i2"), compression=None)
    s3.clear_log()
    second = MetadataStore(tmp_path)  # as a remount opens it
    ns = Namespace(s3_store, folders_ahead=0, shelf=second.scoped(s3_store))
    try:
        after = {name: node.size for name, node in ns.children("f").items()}
    finally:
        ns.close()
        second.close()
    assert [r.path for r in s3.requests() if r.method == "HEAD"] == [f"/{BUCKET}/f/a03"]  # only the new ETag
    assert after == {**before, "a03.npy": 128 + 7 * 2}
    assert ns.attributes.shelf_hits == 11


def test_a_folder_whose_list_outlasts_attr_ttl_is_not_listed_again(s3, s3_store, clock: Clock,  # type: ignore[no-untyped-def]
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fill(s3_store, 12)
    plain_list = s3_store.list_dir_pages

    def slow_list(prefix: str, delimiter: str = "/"):  # type: ignore[no-untyped-def]
        clock.now += 3  # a LIST that takes longer than attr_ttl: relisting would never catch up
        return plain_list(prefix, delimiter)

    monkeypatch.setattr(s3_store, "list_dir_pages", slow_list)
    ns = Namespace(s3_store, attr_ttl=1.0, folders_ahead=0)
    try:
        shown = ns.children("f")
        clock.now += 5
        s3.clear_log()
        for name in shown:
            ns.lookup(f"f/{name}")
        # the stale entries before the burst are HEADed; then one LIST page from the stale entry on
        # (never the whole folder again) confirms the rest
        assert logged(lambda: heads(s3), resolver.RELIST_AFTER - 1) == resolver.RELIST_AFTER - 1
        pages = [r for r in s3.requests() if r.method == "GET" and r.path.rstrip("/") == f"/{BUCKET}"]
        assert len(pages) == 1 and "start-after=f%2Fa06" in pages[0].query.split("&"), pages
    finally:
        ns.close()
