"""A folder rename with files open inside does its server-side copies without the writer's lock
(``StoreWriter.rename``: decided and registered under the lock, copied with only the moved files'
locks held, published under the lock again): while its copies are under way, another file of the
same mount is created, written, flushed and closed. ``CcFilesystem`` over a memory store whose
``copy`` is held until the test lets it go (the store is the one layer played here; the writer, the
tree changes and the face's calls are the real ones)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.storage.memory import MemoryStore

CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
#: a bound on each wait, so that a regression hangs no run (never reached when the code is right)
BOUND = 60.0


class HeldCopies(MemoryStore):
    """A memory store whose server-side copies wait for ``go`` (``copying`` says one is waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.copying = threading.Event()
        self.go = threading.Event()

    def copy(self, src: str, dst: str, **kwargs: Any) -> None:
        self.copying.set()
        assert self.go.wait(BOUND), "the test never let the copy go"
        super().copy(src, dst, **kwargs)


def in_thread(call: Any) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, failures


def test_another_file_is_written_and_closed_while_a_folder_rename_copies(tmp_path: Path) -> None:
    store = HeldCopies()
    for n in range(3):
        store.put(f"d/stored{n}.txt", b"stored %d" % n)
    fs = CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache")))
    inside = fs.create("/d/open.txt", CREATE)  # open under the folder: the rename must carry it
    fs.write(inside, b"before\n", 0)
    fs.flush(inside)
    other = fs.create("/other.txt", CREATE)  # open elsewhere on the mount
    fs.write(other, b"one\n", 0)

    renaming, rename_failed = in_thread(lambda: fs.rename("/d", "/e"))
    assert store.copying.wait(BOUND)  # the rename is in its copies, held there

    def elsewhere() -> None:
        fs.write(other, b"two\n", 4)
        fs.flush(other)
        fs.release(other)
        fresh = fs.create("/fresh.txt", CREATE)
        fs.write(fresh, b"fresh\n", 0)
        fs.release(fresh)

    working, work_failed = in_thread(elsewhere)
    working.join(BOUND)
    done_meanwhile = not working.is_alive()
    still_copying = renaming.is_alive()
    store.go.set()
    renaming.join(BOUND)
    working.join(BOUND)
    assert done_meanwhile and still_copying  # the other files did not wait for the folder's copies
    assert rename_failed == [] and work_failed == []
    assert store.get("other.txt") == b"one\ntwo\n" and store.get("fresh.txt") == b"fresh\n"

    fs.write(inside, b"after\n", 7)  # the open file followed its folder
    fs.release(inside)
    assert store.get("e/open.txt") == b"before\nafter\n"
    assert sorted(info.key for info in store.iter_objects()) == [
        "e/open.txt", "e/stored0.txt", "e/stored1.txt", "e/stored2.txt", "fresh.txt", "other.txt"]
