"""The cache folder's layout: shared blocks kept, each mount's spills removed (also a dead mount's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cottoncandy.cache.folder import CacheFolder


def test_a_named_folder_keeps_blocks_and_removes_only_its_own_and_dead_spills(tmp_path: Path) -> None:
    dead = tmp_path / "spill-999999999-abc"  # no such pid
    alive = tmp_path / f"spill-{os.getppid()}-abc"  # another mount still running
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "decoded-x").write_bytes(b"x")
    folder = CacheFolder(tmp_path)
    assert not dead.exists() and alive.exists()
    assert folder.spill_dir.parent == tmp_path and folder.spill_dir.name.startswith(f"spill-{os.getpid()}-")
    blocks = folder.open_blocks(2**20)
    assert blocks is not None and blocks.root == tmp_path / "blocks"
    folder.close()
    assert not folder.spill_dir.exists() and (tmp_path / "blocks" / "index.sqlite").exists() and alive.exists()


def test_without_a_folder_nothing_outlives_the_mount(tmp_path: Path) -> None:
    folder = CacheFolder(None)
    assert folder.open_blocks(2**20) is None  # no disk block tier: nothing would outlive the mount
    (folder.spill_dir / "decoded-x").write_bytes(b"x")
    folder.close()
    assert not folder.root.exists()


def test_an_unusable_folder_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError, match="cannot use the cache folder") as caught:
        CacheFolder(tmp_path / "file" / "cache")
    assert str(tmp_path / "file") in str(caught.value)
