"""The FUSE adapter's readdirplus, driven without a kernel: entries carry their stat and their
offsets, a full reply resumes where it stopped, and one listing serves a whole pass."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import pytest

fuse = pytest.importorskip("mfusepy", reason="mfusepy needs libfuse (apt-get install fuse3)")

from ccfs.libfuse import FILL_DIR_PLUS, READDIR_PLUS, Fuse  # noqa: E402


class Entries:
    """What ``Operations.readdir_entries`` gives: entries that may still be arriving."""

    def __init__(self, items: list[tuple[str, Any]], done: bool = True):
        self.items = items
        self.done = done
        self.error: BaseException | None = None
        self.arrived = threading.Condition()

    def add(self, more: list[tuple[str, Any]], done: bool = False, error: BaseException | None = None) -> None:
        with self.arrived:
            self.items += more
            self.done, self.error = done, error
            self.arrived.notify_all()

    def wait(self, index: int) -> bool:
        with self.arrived:
            while index >= len(self.items) and not self.done:
                self.arrived.wait()
            if index >= len(self.items) and self.error is not None:
                raise self.error
            return index < len(self.items)

    def ready(self, index: int) -> bool:
        return index < len(self.items)

    def __getitem__(self, index: int) -> tuple[str, Any]:
        return self.items[index]


def stat_of(i: int) -> dict[str, int]:
    return {"st_mode": 0o100444, "st_size": 1000 + i, "st_mtime": 5 * 10**9}


class Listing:
    def __init__(self, n: int):
        self.calls = 0
        self.n = n

    def readdir_entries(self, path: str, fh: int) -> Entries:
        self.calls += 1
        return Entries([(".", None), ("..", None)] + [(f"a{i}.npy", stat_of(i)) for i in range(self.n)])


def adapter(operations: Any) -> Fuse:
    made = Fuse.__new__(Fuse)  # no mount: only what readdir_fuse_3 uses
    made.operations, made.encoding, made.errors, made.use_ns = operations, "utf-8", "surrogateescape", True
    made._passes, made._passes_lock = {}, threading.Lock()
    return made


def test_readdirplus_gives_every_entry_its_stat_and_resumes_a_full_reply() -> None:
    ops = Listing(10)
    fs = adapter(ops)
    info = fuse.fuse_file_info()
    info.fh = 7
    seen: list[tuple[str, int | None, int, int]] = []
    room = [4]

    def filler(buf: Any, name: bytes, st: Any, offset: int, flags: int) -> int:
        if room[0] == 0:
            return 1
        room[0] -= 1
        size = st.contents.st_size if st else None  # ctypes hands a pointer (or None) to Python
        seen.append((name.decode(), size, offset, flags))
        return 0

    filler_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(fuse.c_stat),
                                ctypes.c_int64, ctypes.c_int)
    c_filler = filler_t(filler)
    offset = 0
    while True:
        before = len(seen)
        room[0] = 4
        assert fs.readdir_fuse_3(b"/d", None, c_filler, offset, ctypes.pointer(info), READDIR_PLUS) == 0
        if len(seen) == before:
            break
        offset = seen[-1][2]
    assert [s[0] for s in seen] == [".", ".."] + [f"a{i}.npy" for i in range(10)]
    assert [s[2] for s in seen] == list(range(1, 13))  # offsets: where the next reply starts
    assert all(flags == FILL_DIR_PLUS and size == 1000 + i for i, (_, size, _, flags) in enumerate(seen[2:]))
    assert seen[0][3] == 0  # '.' and '..' carry no attributes
    assert ops.calls == 1  # one listing for the whole pass
    assert fs._passes == {}  # forgotten once the pass is over


def test_a_pass_resumed_after_its_entries_were_dropped_continues_from_the_whole_listing() -> None:
    """A READDIR at an offset whose pass is no longer kept (more folders were open halfway than
    kept) reads the whole sorted listing once and serves the entries from that offset on."""
    from ccfs.filesystem import ListedEntries

    class Whole(Listing):
        def __init__(self, n: int):
            super().__init__(n)
            self.listed = 0

        def readdir_listed(self, path: str, fh: int) -> ListedEntries:
            self.listed += 1
            return ListedEntries([(f"a{i}.npy", stat_of(i)) for i in range(self.n)])

    ops = Whole(6)
    fs = adapter(ops)
    info = fuse.fuse_file_info()
    info.fh = 9
    seen: list[tuple[str, int | None, int]] = []

    def filler(buf: Any, name: bytes, st: Any, offset: int, flags: int) -> int:
        seen.append((name.decode(), st.contents.st_size if st else None, offset))
        return 0

    filler_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(fuse.c_stat),
                                ctypes.c_int64, ctypes.c_int)
    assert fs.readdir_fuse_3(b"/d", None, filler_t(filler), 5, ctypes.pointer(info), READDIR_PLUS) == 0
    assert [(name, size) for name, size, _ in seen] == [(f"a{i}.npy", 1000 + i) for i in range(3, 6)]
    assert [offset for *_, offset in seen] == [6, 7, 8]
    assert (ops.listed, ops.calls) == (1, 0)  # the whole listing, not a new streamed pass


def test_a_reply_waits_for_its_first_entry_only_and_a_failed_listing_fails_the_call() -> None:
    """Entries still being listed: a reply gives what has arrived (never waits to fill up), the
    next one waits for more; a listing that fails midway fails that READDIR with its errno."""
    entries = Entries([(".", None), ("..", None), ("a0.npy", stat_of(0))], done=False)

    class Growing:
        def readdir_entries(self, path: str, fh: int) -> Entries:
            return entries

    fs = adapter(Growing())
    info = fuse.fuse_file_info()
    info.fh = 3
    seen: list[str] = []

    def filler(buf: Any, name: bytes, st: Any, offset: int, flags: int) -> int:
        seen.append(name.decode())
        return 0

    filler_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(fuse.c_stat),
                                ctypes.c_int64, ctypes.c_int)
    c_filler = filler_t(filler)
    assert fs.readdir_fuse_3(b"/d", None, c_filler, 0, ctypes.pointer(info), READDIR_PLUS) == 0
    assert seen == [".", "..", "a0.npy"]  # what had arrived, at once
    later = threading.Timer(0.2, lambda: entries.add([("a1.npy", stat_of(1))]))
    later.start()
    assert fs.readdir_fuse_3(b"/d", None, c_filler, 3, ctypes.pointer(info), READDIR_PLUS) == 0
    assert seen[3:] == ["a1.npy"]  # this reply waited for its first entry
    entries.add([], done=True, error=OSError(5, "metadata of s3://b/d/a2 unavailable"))
    with pytest.raises(fuse.FuseOSError) as failed:
        fs.readdir_fuse_3(b"/d", None, c_filler, 4, ctypes.pointer(info), READDIR_PLUS)
    assert failed.value.errno == 5
    assert fs._passes == {}  # a failed pass is forgotten


class Pieces:
    def __init__(self, pieces: list[Any]):
        self.pieces = pieces
        self.asked: list[tuple[str, int, int, int]] = []

    def read_pieces(self, path: str, size: int, offset: int, fh: int) -> list[Any]:
        self.asked.append((path, size, offset, fh))
        if fh == 13:
            raise fuse.FuseOSError(9)  # EBADF, as Operations.read_pieces maps it
        return self.pieces


def test_read_copies_every_piece_into_the_reply_once() -> None:
    import functools

    import numpy as np

    block = memoryview(np.arange(64, dtype=np.uint8))  # a cached block: writable, lent by address
    frozen = memoryview(b"RO" * 8)  # a read-only view is copied out first
    ops = Pieces([b"HEAD", block[8:40], frozen, b""])
    fs = adapter(ops)
    fs._thread_state = threading.local()
    proto = dict((f[0], f[1]) for f in fuse.fuse_operations._fields_)["read"]
    callback = proto(functools.partial(fs._wrapper, fs.read))  # through ctypes, as libfuse calls it
    out = ctypes.create_string_buffer(100)
    info = fuse.fuse_file_info()
    info.fh = 7
    got = callback(b"/x.npy", ctypes.cast(out, ctypes.POINTER(ctypes.c_byte)), 100, 4096, ctypes.pointer(info))
    assert got == 4 + 32 + 16
    assert out.raw[:got] == b"HEAD" + bytes(range(8, 40)) + b"RO" * 8
    assert ops.asked == [("/x.npy", 100, 4096, 7)]
    info.fh = 13
    assert callback(b"/x.npy", ctypes.cast(out, ctypes.POINTER(ctypes.c_byte)), 100, 0, ctypes.pointer(info)) == -9
