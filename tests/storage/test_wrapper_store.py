"""``WrapperStore`` (issue 24 item 9): a store wrapping another forwards every method of the
contract it does not change, those added to the contract later included; ``ProbingStore`` is one."""

from __future__ import annotations

import inspect
from typing import Any

from cottoncandy.cache.first_blocks import FirstBlocks, ProbingStore
from cottoncandy.storage.base import ObjectStore
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.storage.wrapper import WrapperStore


class Recording(MemoryStore):
    """A memory store that notes each public call made of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if not name.startswith("_") and name != "calls" and callable(value):
            object.__getattribute__(self, "calls").append(name)
        return value


def test_every_method_of_the_contract_goes_to_the_wrapped_store() -> None:
    public = sorted(n for n, v in vars(ObjectStore).items() if inspect.isfunction(v) and not n.startswith("_"))
    for name in public:
        assert getattr(WrapperStore, name) is not getattr(ObjectStore, name), name
    inner = Recording()
    inner.put("a/b", b"xy")
    store = WrapperStore(inner)
    inner.calls.clear()
    assert store.head("a/b").size == 2 and store.get("a/b") == b"xy" and store.exists("a/b")
    assert [o.key for o in store.iter_objects("a/")] == ["a/b"]
    assert store.describe("k") == inner.describe("k") and store.listing_where("a/") == inner.listing_where("a/")
    assert {"head", "get", "exists", "iter_objects", "describe", "listing_where"} <= set(inner.calls)
    assert store.bucket == inner.bucket and store.capabilities == inner.capabilities


def test_attributes_a_store_adds_are_the_wrapped_stores() -> None:
    inner = MemoryStore()
    inner.listing_memory = 123  # type: ignore[attr-defined]
    assert WrapperStore(inner).listing_memory == 123


def test_the_probing_store_changes_head_only() -> None:
    inner = Recording()
    inner.put("k", b"0123456789")
    probing = ProbingStore(inner, FirstBlocks(2**20), 4)
    assert isinstance(probing, WrapperStore)
    inner.calls.clear()
    assert probing.head("k").size == 10 and inner.calls[0] == "read_start"  # (which asks its own head)
    assert probing.get_range("k", 2, 4) == b"23" and "get_range" in inner.calls
