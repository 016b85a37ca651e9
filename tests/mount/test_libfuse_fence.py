"""The fence around the mount's mfusepy overrides (``ccfs/libfuse.py``): a missing or reshaped
mfusepy internal, or the switch, gives mfusepy's stock ``FUSE`` (one warning, counted), and a real
mount on the stock class serves the same files and bytes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

fuse = pytest.importorskip("mfusepy", reason="mfusepy needs libfuse (apt-get install fuse3)")

from ccfs import libfuse  # noqa: E402
from cottoncandy import fastpaths  # noqa: E402
from tests.conftest import BUCKET  # noqa: E402
from tests.fastpathutil import fresh_counts, warnings_logged  # noqa: E402, F401 - fresh_counts: an autouse fixture
from tests.mountutil import ccfs, force_unmount, mounted, needs_fuse  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]



def test_the_fast_class_when_mfusepy_has_what_it_overrides() -> None:
    assert libfuse.fuse_class() is libfuse.Fuse
    check = libfuse.interrupted_check()
    assert callable(check)  # (only callable on a thread serving a FUSE request)
    assert fastpaths.fallbacks() == {}


def reshaped_read(self: Any, path: Any, buffer: Any, size: int, offset: int, fip: Any) -> int:
    """mfusepy's ``read`` with a renamed parameter, as a release might reshape it."""
    return 0


@pytest.mark.parametrize("change", ["no c_stat", "no set_st_attrs", "no FUSE._wrapper", "no FUSE.readdir_fuse_3",
                                    "FUSE.read reshaped"])
def test_a_missing_or_reshaped_internal_gives_the_stock_class(change: str, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    if change == "FUSE.read reshaped":
        monkeypatch.setattr(fuse.FUSE, "read", reshaped_read)
    else:
        owner, _, name = change.removeprefix("no ").rpartition(".")
        monkeypatch.delattr(fuse.FUSE if owner else fuse, name)
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    assert libfuse.fuse_class() is fuse.FUSE
    assert libfuse.fuse_class() is fuse.FUSE
    assert fastpaths.fallbacks() == {"mfusepy": 2}
    warned = warnings_logged(caplog)
    assert len(warned) == 1 and "mfusepy's stock FUSE" in warned[0]
    assert ("buffer" in warned[0]) if change == "FUSE.read reshaped" else (change.rpartition(".")[2]
                                                                             .removeprefix("no ") in warned[0])


def test_no_libfuse_handle_means_no_interrupt_check(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delattr(fuse, "_libfuse")
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    assert libfuse.interrupted_check() is None
    assert libfuse.interrupted_check() is None
    assert libfuse.fuse_class() is libfuse.Fuse  # the overrides do not need it
    assert fastpaths.fallbacks() == {"libfuse": 2} and len(warnings_logged(caplog)) == 1


def test_switched_off_gives_the_stock_class_without_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    monkeypatch.setenv(fastpaths.ENV, "0")
    assert libfuse.fuse_class() is fuse.FUSE and libfuse.interrupted_check() is None
    assert fastpaths.fallbacks() == {} and warnings_logged(caplog) == []


# --- real mounts on mfusepy's stock FUSE --------------------------------------------------------
def put_arrays(cci) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    arrays = {"f/a": np.arange(60.0).reshape(12, 5), "f/sub/b": np.arange(10, dtype="<i4"),
              "f/c": np.random.default_rng(0).random((300, 200))}
    for key, arr in arrays.items():
        cci.upload_raw_array(key, arr, compression=False)
    return arrays


def check_tree(mountpoint: Path, arrays: dict[str, np.ndarray]) -> None:
    assert sorted(os.listdir(mountpoint / "f")) == ["a.npy", "c.npy", "sub"]
    for key, arr in arrays.items():
        path = mountpoint / f"{key}.npy"
        assert np.array_equal(np.load(path), arr), key
        assert np.array_equal(np.load(path, mmap_mode="r")[7], arr[7]), key
        with open(path, "rb") as fh:  # a second open of the same version: the same bytes
            assert np.array_equal(np.load(fh), arr), key
    sizes = {entry.name: entry.stat().st_size for entry in os.scandir(mountpoint / "f") if entry.is_file()}
    assert sizes == {"a.npy": 128 + 60 * 8, "c.npy": 128 + 300 * 200 * 8}


@needs_fuse
@pytest.mark.fuse
def test_mount_with_no_fast_paths_serves_the_same_files(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arrays = put_arrays(cci)
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, "--no-fast-paths") as m:
        check_tree(m, arrays)
    log = (tmp_path / f"{m.name}.log").read_text()
    assert "fast paths off: plain boto3 calls and mfusepy's stock FUSE" in log
    assert " WARNING " not in log


DAEMON = textwrap.dedent("""
    import builtins, sys

    import boto3  # noqa: F401  (botocore's own modules hold their references, as after a rename)
    import botocore.auth
    import mfusepy

    builtins._host_from_url = botocore.auth._host_from_url  # botocore's signer still finds it
    del botocore.auth._host_from_url
    del mfusepy._libfuse
    stock_read = mfusepy.FUSE.read

    def read(self, path, buffer, size, offset, fip):  # reshaped, as a release might
        return stock_read(self, path, buffer, size, offset, fip)

    mfusepy.FUSE.read = read
    from ccfs.cli import main

    sys.argv = ["ccfs", *sys.argv[1:]]
    main()
""")


@contextmanager
def mounted_by_patched_daemon(tmp_path: Path, *args: str) -> Iterator[tuple[Path, Path]]:
    mountpoint, log = tmp_path / "mnt", tmp_path / "daemon.log"
    mountpoint.mkdir()
    result = subprocess.run([sys.executable, "-c", DAEMON, "mount", *args, str(mountpoint), "--log-file", str(log)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield mountpoint, log
    finally:
        ccfs("umount", str(mountpoint), check=False)
        force_unmount(mountpoint)


@needs_fuse
@pytest.mark.fuse
def test_a_daemon_missing_every_private_name_falls_back_and_serves(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arrays = put_arrays(cci)
    with mounted_by_patched_daemon(tmp_path, BUCKET, "--endpoint-url", cci.settings.endpoint_url) as (m, log):
        check_tree(m, arrays)
        check_tree(m, arrays)  # again, from the caches
    lines = log.read_text().splitlines()
    warned = [line for line in lines if " WARNING cottoncandy.fastpaths: " in line]
    kinds = sorted(line.split("fast path ", 1)[1].split(" ", 1)[0] for line in warned)
    assert kinds == ["botocore", "libfuse", "mfusepy"], json.dumps(warned)
    assert not [line for line in lines if " ERROR " in line]
