"""Pieces of the streaming writer without a mount: the header's length as bytes arrive, the reverse
naming rule, the namespace learning one key, and the write memory budget."""

from __future__ import annotations

import errno
import io
import threading
import warnings

import numpy as np
import pytest

from cottoncandy.namespace import tree
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage.base import ObjectInfo
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes.memory import WriteMemory
from cottoncandy.writes.streaming import npy_header_length


@pytest.mark.parametrize("array", [np.zeros(3), np.zeros((2, 3), dtype=[("a", "<i4"), ("b", "S3")]),
                                   np.zeros((1,) * 60),  # a long header, still format 1.0
                                   np.zeros(1, dtype=[(f"f{i:05d}", "<i4") for i in range(4000)])])  # 2.0
def test_the_header_length_is_known_as_soon_as_its_bytes_say_it(array: np.ndarray) -> None:
    out = io.BytesIO()
    with warnings.catch_warnings():  # numpy says when it must write format 2.0: that is the point here
        warnings.simplefilter("ignore", UserWarning)
        np.save(out, array)
    data = out.getvalue()
    total = len(data) - array.nbytes
    known = [npy_header_length(data[:n]) for n in range(0, 16)]
    assert all(length in (None, total) for length in known)
    assert npy_header_length(data[:12]) == total


def test_bytes_that_cannot_start_a_header_are_bytes_at_once() -> None:
    assert npy_header_length(b"a") == 0
    assert npy_header_length(b"\x93NUMPX") == 0
    assert npy_header_length(b"\x93NUMPY\x09\x00") == 0  # no such version


def test_the_reverse_naming_rule() -> None:
    assert tree.written("x.npy") == "x"
    assert tree.written("x.npy.npy") == "x.npy"
    assert tree.written(".npy") is None and tree.written("notes.txt") is None
    namespace = Namespace(MemoryStore(), "pre/")
    assert namespace.written("/d/x.npy") == ("pre/d/x.npy", "pre/d/x")
    assert namespace.written("n.txt") == ("pre/n.txt", None)


def test_the_namespace_learns_one_key_with_no_request() -> None:
    store = MemoryStore()
    store.put("d/old.txt", b"1")
    namespace = Namespace(store)
    assert sorted(namespace.children("d")) == ["old.txt"]
    store.requests.clear()
    namespace.stored("d/new.txt", ObjectInfo(key="d/new.txt", size=3, etag='"e"', metadata={}))
    assert sorted(namespace.children("d")) == ["new.txt", "old.txt"]
    assert namespace.lookup("d/new.txt").size == 3  # type: ignore[union-attr]
    namespace.removed("d/old.txt")
    assert sorted(namespace.children("d")) == ["new.txt"]
    assert store.requests == []


def test_write_memory_waits_then_refuses() -> None:
    memory = WriteMemory(10, wait=0.1)
    memory.take(100, "a")  # alone: let through
    with pytest.raises(OSError) as caught:
        memory.take(1, "b")
    assert caught.value.errno == errno.ENOMEM
    waiter = threading.Timer(0.05, memory.give, (100,))
    waiter.start()
    memory.wait = 5.0
    memory.take(5, "c")  # woken when the first file gives its memory back
    assert memory.used == 5 and memory.peak == 100
