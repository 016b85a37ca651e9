"""The FUSE adapter's readdirplus, driven without a kernel: entries carry their stat and their
offsets, a full reply resumes where it stopped, and one listing serves a whole pass."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import pytest

fuse = pytest.importorskip("mfusepy", reason="mfusepy needs libfuse (apt-get install fuse3)")

from ccfs.libfuse import FILL_DIR_PLUS, READDIR_PLUS, Fuse  # noqa: E402


class Listing:
    def __init__(self, n: int):
        self.calls = 0
        self.n = n

    def readdir(self, path: str, fh: int) -> list[Any]:
        self.calls += 1
        return [".", ".."] + [(f"a{i}.npy", {"st_mode": 0o100444, "st_size": 1000 + i, "st_mtime": 5 * 10**9},
                               0) for i in range(self.n)]


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
