"""``cache.stretches``: one reader for both tables of stretches, our block index (``cache.inflated.BlockTable``)
and 0.4.0's seek points (``cache.segments.PointTable``). What each table does alone is in test_inflated,
test_inflated_crc and test_segments; here, what the one reader gives both. No server."""

from __future__ import annotations

import dataclasses
import gzip
import io
import threading

import numpy as np
import pytest

from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.inflated import BlockTable
from cottoncandy.cache.segments import PointTable
from cottoncandy.cache.stretches import StretchReader, StretchTable
from cottoncandy.formats import pgzip, zran
from tests.cache.test_inflated import BLOCK, body_of

SPAN = 2**17


def count_waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the reads that wait for a stretch another read is fetching (``waits.done`` in the reader)."""
    from cottoncandy.cache import stretches

    waited: list[int] = []
    real = stretches.waits.done

    def done(future):  # type: ignore[no-untyped-def]
        waited.append(1)
        return real(future)

    monkeypatch.setattr(stretches.waits, "done", done)
    return waited


def until(condition) -> None:  # type: ignore[no-untyped-def]
    """Wait (bounded) until ``condition()`` holds: the threads have reached the state a test needs."""
    for _ in range(1000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the readers never got there")


class Gated:
    """A body fetch that counts calls and bytes and holds every call until ``gate`` is set."""

    def __init__(self, body: bytes):
        self.body, self.calls, self.bytes = body, 0, 0
        self.lock, self.gate = threading.Lock(), threading.Event()

    def __call__(self, start: int, end: int) -> bytes:
        with self.lock:
            self.calls += 1
            self.bytes += end - start
        self.gate.wait(10)
        return self.body[start:end]


def both_tables() -> list[tuple[str, bytes, bytes, StretchTable]]:
    """(name, decoded bytes, body, table) for a body of ours and one of 0.4.0's."""
    raw = np.random.default_rng(9).integers(0, 20, 6 * BLOCK + 777, dtype=np.uint8).tobytes()
    body, index = body_of(raw)
    cases: list[tuple[str, bytes, bytes, StretchTable]] = [("blocks", raw, body, BlockTable(index, len(raw)))]
    if zran.available():
        noise = np.random.default_rng(5).standard_normal(2**18).tobytes()
        out = io.BytesIO()
        with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
            gz.write(noise)
        points = zran.gunzip_recording([out.getvalue()], memoryview(bytearray(len(noise))), span=SPAN)
        assert points is not None
        cases.append(("points", noise, out.getvalue(), PointTable(points, len(out.getvalue()), len(noise))))
    return cases


@pytest.mark.parametrize("case", both_tables(), ids=lambda case: case[0])
def test_concurrent_reads_of_one_stretch_fetch_and_inflate_it_once(case, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Reads wanting the same stretch at once share one GET and one inflation (blocks too: before, the
    block reader of each open fetched a block on its own)."""
    _, raw, body, table = case
    fetch = Gated(body)
    reader = StretchReader(table, fetch, lambda a, b: b"", lambda why: None, budget=MemoryBudget(2**30))
    out_start, out_end = table.bounds(2)[2:]
    spans = [(out_start, out_end), (out_start + 3, out_start + 90), (out_end - 50, out_end)]
    got: dict[int, bytes] = {}
    threads = [threading.Thread(target=lambda a, b: got.__setitem__(a, bytes(reader(a, b))), args=span)
               for span in spans]
    waited = count_waits(monkeypatch)
    for t in threads:
        t.start()
    until(lambda: fetch.calls == 1 and len(waited) == 2)  # one read fetches, the two others wait for it
    fetch.gate.set()
    for t in threads:
        t.join()
    assert all(got[a] == raw[a:b] for a, b in spans)
    assert fetch.calls == 1 and reader.inflated == 1


@pytest.mark.parametrize("case", both_tables(), ids=lambda case: case[0])
def test_a_whole_read_in_runs_fetches_each_compressed_byte_once(case) -> None:  # type: ignore[no-untyped-def]
    """Runs as the mount's reader sends them (whole stretches for an aligned table, runs cutting
    stretches for seek points): the array comes back whole, each compressed byte fetched once."""
    _, raw, body, table = case
    fetch = Gated(body)
    fetch.gate.set()
    budget = MemoryBudget(2**30)
    reader = StretchReader(table, fetch, lambda a, b: b"", lambda why: None, budget=budget)
    run = 2 * table.span if table.aligned else 3 * SPAN // 2 + 1000
    spans = [(a, min(len(raw), a + run)) for a in range(0, len(raw), run)]
    assert b"".join(bytes(reader(a, b)) for a, b in spans) == raw
    shared = sum(1 for i in range(1, len(table)) if table.bounds(i)[0] < table.bounds(i - 1)[1])  # a mid-byte point
    assert len(body) - table.bounds(0)[0] - pgzip.TRAILER * table.aligned <= fetch.bytes
    assert fetch.bytes <= len(body) - table.bounds(0)[0] + shared
    assert reader.kept_bytes == 0 and budget.used == 0


def test_a_block_failing_its_crc_fails_its_read_alone_and_its_run_is_served(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A run of three blocks, the middle one's CRC forged: the read of the run fails (EIO, naming the
    block), a read waiting on another block of that run gets its bytes from the same GET."""
    raw = np.random.default_rng(3).integers(0, 20, 5 * BLOCK, dtype=np.uint8).tobytes()
    body, index = body_of(raw)
    forged = pgzip.Index([dataclasses.replace(b, crc=(b.crc or 0) ^ 1) if i == 2 else b
                          for i, b in enumerate(index.blocks)], index.trailer_at)
    fetch, told = Gated(body), []  # type: ignore[var-annotated]
    reader = StretchReader(BlockTable(forged, len(raw), "s3://b/k"), fetch, lambda a, b: b"", told.append)
    errors: list[BaseException] = []
    got: list[bytes] = []

    def run() -> None:
        try:
            reader(BLOCK, 4 * BLOCK)
        except pgzip.BlockCrcError as exc:
            errors.append(exc)

    waited = count_waits(monkeypatch)
    first = threading.Thread(target=run)
    first.start()
    until(lambda: fetch.calls == 1)
    waiter = threading.Thread(target=lambda: got.append(bytes(reader(3 * BLOCK, 4 * BLOCK))))
    waiter.start()
    until(lambda: len(waited) == 1)  # the waiter found block 3 claimed by the run
    fetch.gate.set()
    first.join()
    waiter.join()
    assert len(errors) == 1 and "s3://b/k: gzip block 2" in str(errors[0])
    assert got == [raw[3 * BLOCK : 4 * BLOCK]] and fetch.calls == 1
    assert told == [] and not reader.broken


@pytest.mark.skipif(not zran.available(), reason="libz cannot be loaded here")
def test_the_first_bytes_serve_the_first_stretch_of_either_table() -> None:
    for _, raw, body, table in both_tables():
        fetch = Gated(body)
        fetch.gate.set()
        head = table.bounds(0)[1]
        pooled = bytearray(body[: head + 10])
        reader = StretchReader(table, fetch, lambda a, b: b"", lambda why: None, first=pooled)
        pooled[:] = bytes(len(pooled))  # the lookup's buffer is reused: the reader kept a copy
        end = table.bounds(0)[3]
        assert bytes(reader(0, end)) == raw[:end] and fetch.calls == 0


def test_a_read_failing_on_one_block_still_serves_its_other_runs_to_their_waiters(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A read of blocks 1-4 whose block 2 fails its CRC and whose block 3 another read is fetching
    (so its claims are two runs, 1-2 and 4): a read waiting on block 4 gets its bytes, not block 2's
    error; the failing read names block 2."""
    raw = np.random.default_rng(6).integers(0, 20, 6 * BLOCK, dtype=np.uint8).tobytes()
    body, index = body_of(raw)
    forged = pgzip.Index([dataclasses.replace(b, crc=(b.crc or 0) ^ 1) if i == 2 else b
                          for i, b in enumerate(index.blocks)], index.trailer_at)
    fetch = Gated(body)
    reader = StretchReader(BlockTable(forged, len(raw), "s3://b/k"), fetch, lambda a, b: b"", lambda why: None)
    waited = count_waits(monkeypatch)
    outcome: dict[str, object] = {}

    def read(name: str, a: int, b: int) -> None:
        try:
            outcome[name] = bytes(reader(a, b))
        except OSError as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=read, args=("block 3", 3 * BLOCK, 4 * BLOCK))]
    threads[-1].start()
    until(lambda: fetch.calls == 1)
    threads.append(threading.Thread(target=read, args=("blocks 1-4", BLOCK, 5 * BLOCK)))
    threads[-1].start()
    until(lambda: fetch.calls == 2)  # its first run (1-2); block 4 is claimed by it too
    threads.append(threading.Thread(target=read, args=("block 4", 4 * BLOCK, 5 * BLOCK)))
    threads[-1].start()
    until(lambda: len(waited) == 1)
    fetch.gate.set()
    for t in threads:
        t.join()
    assert outcome["block 3"] == raw[3 * BLOCK : 4 * BLOCK] and outcome["block 4"] == raw[4 * BLOCK : 5 * BLOCK]
    assert isinstance(outcome["blocks 1-4"], pgzip.BlockCrcError) and "gzip block 2" in str(outcome["blocks 1-4"])
    assert fetch.calls == 3
