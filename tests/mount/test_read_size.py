"""The kernel READ size the daemon sees: ``--read-ahead`` (default 128 KiB) is set before ``ccfs mount``
returns, so the first read of a fresh mount is asked in READs of that size (the daemon logs the largest
READ it served at unmount). Needs root to raise the knob above the kernel's default."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def largest_read_kib(log: Path) -> int:
    (line,) = [line for line in log.read_text().splitlines() if "READs served" in line]
    found = re.search(r"the largest (\d+) KiB", line)
    assert found is not None, line
    return int(found.group(1))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may set a mount's read-ahead")
@pytest.mark.parametrize(("options", "kib"), [((), 128), (("--read-ahead", "1M"), 1024)], ids=["default", "1M"])
def test_a_fresh_mounts_first_read_uses_the_read_ahead(cci, tmp_path: Path, options: tuple[str, ...],  # type: ignore[no-untyped-def]
                                                       kib: int) -> None:
    data = np.arange(2**20, dtype=np.float32)  # 4 MiB: many READs of either size
    cci.upload_raw_array("rs/a", data, compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, *options) as m:
        with open(m / "rs/a.npy", "rb") as fh:
            while fh.read(8 * 2**20):
                pass
        mountpoint = m
    assert largest_read_kib(tmp_path / f"{mountpoint.name}.log") == kib


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may set a mount's read-ahead")
def test_max_read_caps_the_read_size_and_the_mount_serves(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``-o max_read=N`` reaches the kernel and the daemon's ``init`` alike: libfuse 3 refused to serve
    (the daemon exited at once) when only the kernel was told."""
    data = np.arange(2**20, dtype=np.float32)
    cci.upload_raw_array("rs/m", data, compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, "--read-ahead", "1M",
                 "-o", "max_read=65536") as m:
        assert np.array_equal(np.load(m / "rs/m.npy"), data)
        mountpoint = m
    assert largest_read_kib(tmp_path / f"{mountpoint.name}.log") == 64
