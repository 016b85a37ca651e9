"""``Namespace.refresh``: what ``ccfs refresh`` and SIGHUP drop, against a real (memory) store."""

from __future__ import annotations

import numpy as np
import pytest

from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage import MemoryStore


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore("bkt")
    write_raw_array(store, "d/a", np.arange(3.0))
    write_raw_array(store, "e/x", np.arange(2.0))
    return store


def names(ns: Namespace, path: str) -> list[str]:
    return sorted(ns.children(path, ahead=False))


def test_a_refresh_of_a_folder_shows_its_new_objects(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "d") == ["a.npy"] and names(ns, "e") == ["x.npy"]
    write_raw_array(store, "d/b", np.arange(4.0))
    write_raw_array(store, "e/y", np.arange(4.0))
    assert names(ns, "d") == ["a.npy"]  # trusted for the TTL
    ns.refresh("/d/")
    assert names(ns, "d") == ["a.npy", "b.npy"] and ns.lookup("d/b.npy").size > 0


def test_a_refresh_of_a_missing_name_drops_the_miss(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    with pytest.raises(FileNotFoundError):
        ns.lookup("d/b.npy")
    write_raw_array(store, "d/b", np.arange(4.0))
    with pytest.raises(FileNotFoundError):
        ns.lookup("d/b.npy")  # the miss is remembered
    ns.refresh("d/b.npy")  # a file's path: its folder is refreshed
    assert ns.lookup("d/b.npy").size > 0


def test_a_refresh_of_everything(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "") == ["d", "e"]
    write_raw_array(store, "f/z", np.arange(1.0))
    ns.refresh()
    assert names(ns, "") == ["d", "e", "f"]
