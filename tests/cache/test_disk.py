"""The persistent block tier without a kernel: a counting fill stands in for the ranged GETs."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from cottoncandy.cache.disk import HEADER, DiskBackedFetch, DiskBlockStore, block_name

BLOCK = 4096
DATA = bytes(range(256)) * 160  # 40960 bytes: 10 blocks


class Source:
    """The object's bytes by version; records every fill (one per ranged GET)."""

    def __init__(self, data: bytes = DATA):
        self.data = data
        self.fills: list[tuple[int, int]] = []

    def fill(self, start: int, buffer: memoryview) -> None:
        self.fills.append((start, start + len(buffer)))
        buffer[:] = self.data[start : start + len(buffer)]


def fetcher(store: DiskBlockStore, source: Source, etag: str = "e1", origin: int = 0) -> DiskBackedFetch:
    return DiskBackedFetch(store, "s3://b/k", etag, source.fill, lambda n: memoryview(bytearray(n)), BLOCK, origin)


def block_files(root: Path) -> list[Path]:
    return [p for p in root.glob("??/*") if not p.name.startswith(".tmp-")]


def test_a_second_store_on_the_folder_answers_without_fetching(tmp_path: Path) -> None:
    first, source = DiskBlockStore(tmp_path, 2**20), Source()
    assert bytes(fetcher(first, source)(0, len(DATA))) == DATA
    assert source.fills == [(0, len(DATA))]  # one fill for the whole stretch
    first.close()
    again, source2 = DiskBlockStore(tmp_path, 2**20), Source()
    assert bytes(fetcher(again, source2)(0, len(DATA))) == DATA
    assert source2.fills == [] and again.hits == 10
    again.close()


def test_only_the_missing_stretches_are_fetched(tmp_path: Path) -> None:
    store, source = DiskBlockStore(tmp_path, 2**20), Source()
    fetch = fetcher(store, source)
    fetch(2 * BLOCK, 4 * BLOCK)
    fetch(6 * BLOCK, 7 * BLOCK)
    store.flush()
    source.fills.clear()
    assert bytes(fetch(0, len(DATA))) == DATA
    assert source.fills == [(0, 2 * BLOCK), (4 * BLOCK, 6 * BLOCK), (7 * BLOCK, len(DATA))]
    store.close()


def test_blocks_follow_the_readers_alignment_and_the_short_last_block(tmp_path: Path) -> None:
    store, source = DiskBlockStore(tmp_path, 2**20), Source(DATA[:-100])
    fetch = fetcher(store, source, origin=128)  # object byte 0 sits at file offset 128
    assert fetch.spans(0, BLOCK * 2) == [(0, BLOCK - 128), (BLOCK - 128, 2 * BLOCK - 128), (2 * BLOCK - 128, 2 * BLOCK)]
    size = len(source.data)
    assert bytes(fetch(BLOCK * 9 - 128, size)) == source.data[BLOCK * 9 - 128 :]
    store.flush()
    assert sorted(p.stat().st_size - HEADER.size for p in block_files(tmp_path)) == sorted([size - (BLOCK * 10 - 128),
                                                                                              BLOCK])
    store.close()


def test_a_new_etag_never_serves_the_old_blocks(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    fetcher(store, Source())(0, len(DATA))
    store.flush()
    new = Source(bytes(reversed(DATA)))
    assert bytes(fetcher(store, new, etag="e2")(0, len(DATA))) == new.data
    assert new.fills == [(0, len(DATA))]
    store.close()


def test_the_folder_stays_within_its_limit_evicting_the_least_recently_used(tmp_path: Path) -> None:
    limit = 20 * (BLOCK + HEADER.size)
    store = DiskBlockStore(tmp_path, limit)
    sources = [Source(bytes([i]) * len(DATA)) for i in range(8)]
    fetcher(store, sources[0], etag="keep")(0, BLOCK)  # the block read again and again below
    for i, source in enumerate(sources[1:]):
        fetcher(store, source, etag=str(i))(0, len(DATA))
        store.flush()
        fetcher(store, sources[0], etag="keep")(0, BLOCK)
        store.flush()
        assert sum(p.stat().st_size for p in block_files(tmp_path)) <= limit
        assert store.usage <= limit
    assert store.evicted > 0
    sources[0].fills.clear()
    fetcher(store, sources[0], etag="keep")(0, BLOCK)
    assert sources[0].fills == []  # the hot block survived every eviction
    assert store.usage == sum(p.stat().st_size for p in block_files(tmp_path))
    store.close()


def test_two_stores_sharing_the_folder_keep_one_bound(tmp_path: Path) -> None:
    limit = 15 * (BLOCK + HEADER.size)
    a, b = DiskBlockStore(tmp_path, limit), DiskBlockStore(tmp_path, limit)
    fetcher(a, Source(), etag="a")(0, len(DATA))
    a.flush()
    from_b = Source()
    assert bytes(fetcher(b, from_b, etag="a")(0, len(DATA))) == DATA and from_b.fills == []
    fetcher(b, Source(), etag="b")(0, len(DATA))  # b's writes evict a's files
    b.flush()
    assert sum(p.stat().st_size for p in block_files(tmp_path)) <= limit
    assert a.usage == b.usage <= limit
    again = Source()
    assert bytes(fetcher(a, again, etag="a")(0, len(DATA))) == DATA  # evicted under a: fetched, not broken
    a.close()
    b.close()


def test_a_file_unlinked_while_open_still_reads(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    fetcher(store, Source())(0, BLOCK)
    store.flush()
    (path,) = block_files(tmp_path)
    fd = os.open(path, os.O_RDONLY)
    try:
        path.unlink()  # another mount evicts it
        buffer = memoryview(bytearray(BLOCK))
        assert DiskBlockStore._read_checked(fd, buffer) is None and bytes(buffer) == DATA[:BLOCK]
    finally:
        os.close(fd)
    store.close()


@pytest.mark.parametrize("damage", ["truncate", "extend", "flip", "header"])
def test_a_corrupt_file_is_discarded_and_fetched_again(tmp_path: Path, damage: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    fetcher(store, Source())(0, 2 * BLOCK)
    store.flush()
    path = store.path(block_name("s3://b/k", "e1", BLOCK, 2 * BLOCK))
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[:-10]
    elif damage == "extend":
        raw += b"x"
    elif damage == "flip":
        raw[HEADER.size + 1000] ^= 0x01
    else:
        raw[:4] = b"XXXX"
    path.write_bytes(raw)
    source = Source()
    with caplog.at_level(logging.WARNING, logger="cottoncandy.cache.disk"):
        assert bytes(fetcher(store, source)(0, 2 * BLOCK)) == DATA[: 2 * BLOCK]
    assert source.fills == [(BLOCK, 2 * BLOCK)]  # only the damaged block
    assert len([r for r in caplog.records if "corrupt" in r.getMessage()]) == 1
    store.flush()
    assert path.stat().st_size == HEADER.size + BLOCK  # written again, whole
    again = Source()
    assert bytes(fetcher(store, again)(0, 2 * BLOCK)) == DATA[: 2 * BLOCK] and again.fills == []
    store.close()


def test_a_smaller_limit_shrinks_the_folder_at_start(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    fetcher(store, Source())(0, len(DATA))
    store.close()
    small = DiskBlockStore(tmp_path, 3 * (BLOCK + HEADER.size))
    assert small.usage <= 3 * (BLOCK + HEADER.size)
    assert len(block_files(tmp_path)) == 3
    small.close()


def test_a_failing_fill_leaves_nothing_on_disk(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)

    def fail(start: int, buffer: memoryview) -> None:
        raise OSError(5, "network down")

    with pytest.raises(OSError, match="network down"):
        DiskBackedFetch(store, "s3://b/k", "e1", fail, lambda n: memoryview(bytearray(n)), BLOCK)(0, BLOCK)
    store.flush()
    assert block_files(tmp_path) == [] and store.usage == 0
    store.close()


@pytest.mark.parametrize("wait", [0.0, 0.2])
def test_a_reader_waits_for_a_stuck_disk_at_most_its_bound_then_drops_blocks(tmp_path: Path, wait: float) -> None:
    import threading

    store = DiskBlockStore(tmp_path, 2**20, queue_bytes=2 * BLOCK, wait_for_room=wait)
    names = [block_name("s3://b/k", "e1", i * BLOCK, (i + 1) * BLOCK) for i in range(10)]
    with store._db_lock:  # the writer is stuck on the index, as behind a disk that stopped
        results: list[bool] = []
        writer = threading.Thread(target=lambda: results.extend(store.write(n, DATA[:BLOCK]) for n in names))
        writer.start()
        writer.join(30)  # a bound for a broken build only: each write gives up after ``wait``
        assert not writer.is_alive(), "a write waited past its bound"
    assert results == [True, True] + [False] * 8 and store.dropped == 8
    assert store.waited == (1 if wait else 0)  # one wait, then the stalled writer drops at once
    store.flush()
    assert store.write(names[2], DATA[:BLOCK]) is True  # a batch went through: writes queue again
    store.flush()
    assert len(block_files(tmp_path)) == 3  # the queued ones were written
    store.close()


def test_a_disk_slower_than_the_fetches_still_gets_every_block(tmp_path: Path) -> None:
    """The writer falls behind (here: its index held 50 ms per batch, as a loaded machine or a slow
    disk does); the fetches wait for room instead of dropping, so a remount finds every block."""
    import threading

    store = DiskBlockStore(tmp_path, 2**20, queue_bytes=2 * BLOCK, wait_for_room=5.0)
    names = [block_name("s3://b/k", "e1", i * BLOCK, (i + 1) * BLOCK) for i in range(20)]
    done = threading.Event()

    def slow_disk() -> None:
        while not done.is_set():
            with store._db_lock:
                time.sleep(0.05)
            time.sleep(0.001)

    slower = threading.Thread(target=slow_disk)
    slower.start()
    try:
        results = [store.write(name, DATA[:BLOCK]) for name in names]
    finally:
        done.set()
        slower.join()
    store.flush()
    assert all(results) and store.dropped == 0 and store.waited > 0
    assert len(block_files(tmp_path)) == 20
    store.close()


def test_close_writes_what_is_queued_within_its_bound(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    with store._db_lock:
        assert store.write(block_name("s3://b/k", "e1", 0, BLOCK), DATA[:BLOCK])
        assert store.close(timeout=0.05) is False  # the writer is stuck: close gives up, not hangs
    store._writer.join(30)
    assert not store._writer.is_alive() and len(block_files(tmp_path)) == 1  # it finished once free
    again = DiskBlockStore(tmp_path, 2**20)
    assert again.write(block_name("s3://b/k", "e1", BLOCK, 2 * BLOCK), DATA[:BLOCK])
    assert again.close(timeout=30) is True and len(block_files(tmp_path)) == 2
