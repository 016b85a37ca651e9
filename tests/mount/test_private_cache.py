"""A real ``ccfs mount --cache-dir`` refuses a folder another local user could change (issue 24, item 2)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import ccfs, force_unmount, mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse,
              pytest.mark.skipif(os.geteuid() != 0, reason="playing another user needs root (chown)")]



@pytest.fixture
def umask_022() -> Iterator[None]:
    """umask 022 for one test, then the worker's own again (it is per process: later tests inherit it)."""
    old = os.umask(0o022)
    yield
    os.umask(old)

def test_a_cache_folder_another_user_made_is_refused_in_one_line(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    squatted = tmp_path / "cache"
    squatted.mkdir()
    os.chown(squatted, 12345, 12345)
    os.chmod(squatted, 0o777)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    try:
        result = ccfs("mount", BUCKET, str(mountpoint), "--endpoint-url", cci.settings.endpoint_url,
                      "--cache-dir", str(squatted), check=False)
    finally:
        force_unmount(mountpoint)
    assert result.returncode != 0 and not os.path.ismount(mountpoint)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(squatted) in lines[0] and "uid 12345" in lines[0] and "choose another folder" in lines[0]
    assert list(squatted.iterdir()) == []


def test_what_a_mount_caches_is_private(cci, tmp_path: Path, umask_022: None) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("pc/a", np.arange(50_000.0), compression=False)
    cache = tmp_path / "made-by-ccfs"
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "pc" / "a.npy"), np.arange(50_000.0))
    entries = [cache, *cache.rglob("*")]
    files = [p for p in entries if p.is_file()]
    assert any(p.parent.parent.name == "blocks" for p in files)  # block files were written
    loose = {str(p): oct(stat.S_IMODE(p.lstat().st_mode)) for p in entries
             if stat.S_IMODE(p.lstat().st_mode) & 0o077}
    assert loose == {}
