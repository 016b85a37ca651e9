"""The local store: 0.4.0's directory layout and the guarantee that no key leaves the root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cottoncandy.storage import LocalStore


def test_layout_matches_0_4_0(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b/arr", b"\x00" * 48, {"dtype": "<f8", "shape": "2,3", "compression": "False", "order": "C"})
    store.put("a/c.json", b'{"x": 1}')
    assert (tmp_path / "a/b/arr").read_bytes() == b"\x00" * 48
    assert (tmp_path / "a/b/arr.meta.json").read_text() == (
        '{\n    "dtype": "<f8",\n    "shape": "2,3",\n    "compression": "False",\n    "order": "C"\n}')
    assert (tmp_path / "a/c.json.meta.json").read_text() == "{}"
    assert [o.key for o in store.iter_objects()] == ["a/b/arr", "a/c.json"]  # sidecars hidden


def test_reads_a_directory_written_by_0_4_0(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x/n.npy").write_bytes(b"abc")
    (tmp_path / "x/n.npy.meta.json").write_text(json.dumps({"Subject": "s1"}, indent=4))
    store = LocalStore(tmp_path)
    assert store.head("x/n.npy").metadata == {"subject": "s1"}


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "/etc/passwd", "a/./b", "x\x00y"])
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(ValueError, match="invalid object key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="invalid object key"):
        store.head(key)
    assert not (tmp_path / "escape").exists()


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link")
    store = LocalStore(root)
    with pytest.raises(ValueError, match="outside"):
        store.get("link/secret")
    with pytest.raises(ValueError, match="outside"):
        store.put("link/new", b"x")
    assert not (outside / "new").exists()


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("d/e/f", b"1")
    store.delete("d/e/f")
    assert not (tmp_path / "d").exists() and tmp_path.exists()


def test_sidecar_names_are_reserved(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="meta.json"):
        LocalStore(tmp_path).put("x.meta.json", b"{}")
