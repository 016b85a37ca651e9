"""The persistent metadata shelf alone (``cache/metadata.py``): versions, bound, damage, processes."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cottoncandy.cache.metadata import FILENAME, MetadataStore, row_bytes
from cottoncandy.config import Settings
from cottoncandy.storage.base import ObjectInfo
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.storage.s3 import S3Store

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SCOPE = "s3 http://127.0.0.1:9 bucket"


def head(key: str, etag: str = '"e1"', size: int = 160, when: datetime | None = WHEN,
         metadata: dict[str, str] | None = None) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag=etag, last_modified=when,
                      metadata={"dtype": "float64", "shape": "4"} if metadata is None else metadata)


def listed(info: ObjectInfo, **changes: object) -> ObjectInfo:
    """The LIST entry of ``info`` (no metadata), with ``changes``."""
    fields = dict(key=info.key, size=info.size, etag=info.etag, last_modified=info.last_modified, metadata=None)
    fields.update(changes)
    return ObjectInfo(**fields)  # type: ignore[arg-type]


def test_only_the_listed_version_is_answered(tmp_path: Path) -> None:
    shelf = MetadataStore(tmp_path)
    a, b = head("d/a"), head("d/b", metadata={"x": "é"})
    shelf.remember(SCOPE, [a, b, listed(head("d/c"))])  # a LIST entry is no HEAD answer: not kept
    assert shelf.recall(SCOPE, [listed(a), listed(b)]) == {"d/a": a, "d/b": b}
    assert shelf.recall(SCOPE, [listed(head("d/c"))]) == {}
    # a LIST in milliseconds shows the same version as a HEAD in seconds
    assert shelf.recall(SCOPE, [listed(a, last_modified=WHEN + timedelta(milliseconds=250))]) == {"d/a": a}
    for other in (listed(a, etag='"e2"'), listed(a, size=8), listed(a, last_modified=WHEN + timedelta(seconds=1))):
        assert shelf.recall(SCOPE, [other]) == {}, other
    assert shelf.recall("s3 http://elsewhere bucket", [listed(a)]) == {}
    # a new version replaces the old one (one row per key)
    a2 = head("d/a", etag='"e2"', metadata={"shape": "8"})
    shelf.remember(SCOPE, [a2])
    assert shelf.recall(SCOPE, [listed(a)]) == {} and shelf.recall(SCOPE, [listed(a2)]) == {"d/a": a2}
    assert len(shelf) == 2
    assert shelf.usage == sum(row_bytes(i.key, i.etag, t) for i, t in
                              ((a2, '{"shape":"8"}'), (b, '{"x":"é"}')))


def test_rows_are_typed_columns_and_json(tmp_path: Path) -> None:
    shelf = MetadataStore(tmp_path)
    shelf.remember(SCOPE, [head("k")])
    shelf.close()
    db = sqlite3.connect(tmp_path / FILENAME)
    assert db.execute("SELECT typeof(etag), typeof(size), typeof(modified), metadata FROM heads").fetchall() == [
        ("text", "integer", "real", '{"dtype":"float64","shape":"4"}')]
    assert [name for (name,) in db.execute("SELECT name FROM scopes")] == [SCOPE]
    db.close()


def test_the_bound_holds_and_the_least_recently_used_go_first(tmp_path: Path) -> None:
    one = row_bytes("k0000", '"e1"', '{"dtype":"float64","shape":"4"}')
    shelf = MetadataStore(tmp_path, limit=50 * one)
    shelf.remember(SCOPE, [head("k0000")])
    for start in range(1, 200, 10):
        shelf.remember(SCOPE, [head(f"k{i:04d}") for i in range(start, start + 10)])
        assert shelf.usage <= 50 * one
    assert len(shelf) == 50 and shelf.evicted == 151
    kept = shelf.recall(SCOPE, [listed(head(f"k{i:04d}")) for i in range(201)])
    assert sorted(kept) == [f"k{i:04d}" for i in range(151, 201)]
    shelf.close()
    smaller = MetadataStore(tmp_path, limit=10 * one)  # a smaller limit than the last user's: shrinks at once
    assert len(smaller) == 10 and smaller.usage <= 10 * one


def test_an_unreadable_file_is_discarded_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / FILENAME).write_bytes(b"\x00garbage, not SQLite\x00" * 500)
    with caplog.at_level(logging.WARNING, logger="cottoncandy.cache.metadata"):
        shelf = MetadataStore(tmp_path)
    assert [r.getMessage() for r in caplog.records if "discarded unreadable" in r.getMessage()] != []
    assert len(caplog.records) == 1 and shelf.rebuilt == 1
    shelf.remember(SCOPE, [head("k")])
    assert shelf.recall(SCOPE, [listed(head("k"))]) == {"k": head("k")}


def test_a_bad_row_is_a_miss_and_is_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shelf = MetadataStore(tmp_path)
    shelf.remember(SCOPE, [head(f"k{i}") for i in range(4)])
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute("UPDATE heads SET metadata = 'not json' WHERE key = 'k0'")
    db.execute("UPDATE heads SET metadata = '[1, 2]' WHERE key = 'k1'")
    db.execute("UPDATE heads SET metadata = '{\"shape\": 4}' WHERE key = 'k2'")  # a number, not a string
    db.commit()
    db.close()
    with caplog.at_level(logging.WARNING, logger="cottoncandy.cache.metadata"):
        found = shelf.recall(SCOPE, [listed(head(f"k{i}")) for i in range(4)])
    assert list(found) == ["k3"] and shelf.discarded == 3
    assert len(caplog.records) == 1 and "3 unreadable rows" in caplog.records[0].getMessage()
    assert len(shelf) == 1
    assert shelf.usage == row_bytes("k3", '"e1"', '{"dtype":"float64","shape":"4"}')


WRITER = textwrap.dedent("""
    import sys
    from datetime import datetime, timezone
    from cottoncandy.cache.metadata import MetadataStore
    from cottoncandy.storage.base import ObjectInfo
    shelf = MetadataStore(sys.argv[1])
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for start in range(0, 400, 20):
        shelf.remember(sys.argv[2], [ObjectInfo(f"p/{i}", 160, '"e1"', when, {"shape": "4"})
                                     for i in range(start, start + 20)])
    shelf.close()
""")


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), SCOPE])
    shelf = MetadataStore(tmp_path)
    for start in range(0, 400, 20):
        shelf.remember(SCOPE, [head(f"q/{i}", metadata={"shape": "4"}) for i in range(start, start + 20)])
    assert child.wait(timeout=120) == 0
    keys = [f"p/{i}" for i in range(400)] + [f"q/{i}" for i in range(400)]
    assert len(shelf.recall(SCOPE, [listed(head(k)) for k in keys])) == 800
    assert shelf.usage == sum(row_bytes(k, '"e1"', '{"shape":"4"}') for k in keys)


def test_scopes_carry_no_secret_and_memory_stores_none() -> None:
    store = S3Store("bkt", Settings(endpoint_url="http://user:hunter2@example.test:9000/base?x=y"), client=object())
    assert store.cache_scope() == "s3 http://example.test:9000/base bkt"
    assert S3Store("bkt", Settings(), client=object()).cache_scope() == "s3 aws bkt"
    assert MemoryStore().cache_scope() is None


def test_answers_sqlite_cannot_hold_are_left_out_one_by_one(tmp_path: Path) -> None:
    """A size or a metadata value from the bucket that SQLite refuses (beyond 64 bits, a lone
    surrogate) must not raise into a listing nor cost the good answers of the same batch."""
    shelf = MetadataStore(tmp_path / "meta")
    shelf.remember("s3 e b", [ObjectInfo(key="huge", size=2**64, etag='"e"', metadata={}),
                              ObjectInfo(key="odd", size=5, etag='"e"', metadata={"a": "\udc80"}),
                              ObjectInfo(key="fine", size=5, etag='"e"', metadata={"a": "b"})])
    assert shelf.written == 1
    listed = [ObjectInfo(key=k, size=s, etag='"e"') for k, s in (("huge", 2**64), ("odd", 5), ("fine", 5))]
    assert set(shelf.recall("s3 e b", listed)) == {"fine"}


def test_the_shelf_is_private_to_its_user(tmp_path: Path) -> None:
    shelf = MetadataStore(tmp_path / "meta")
    assert (tmp_path / "meta").stat().st_mode & 0o777 == 0o700
    assert shelf.path.stat().st_mode & 0o777 == 0o600
