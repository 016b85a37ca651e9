"""A real mount whose endpoint refuses the fast path's requests (issue 25 item 3): the files are still
served (through boto3), ``ccfs info --mount`` shows the refusals by cause, and the daemon's log has
one warning for the run, not one per request."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET
from tests.mountutil import ccfs, mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def info_rows(mountpoint: Path) -> dict[str, str]:
    out = ccfs("info", "--mount", str(mountpoint)).stdout
    return {line[:10].strip(): line[10:].strip() for line in out.splitlines()}


def test_ccfs_info_mount_shows_the_refused_fast_requests(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    cci = cc.get_interface(BUCKET, endpoint_url=fault_proxy.endpoint_url, verbose=False)
    arrays = {f"d/a{i:02d}": np.arange(i + 1, dtype="<i4") for i in range(30)}
    for key, array in arrays.items():
        cci.upload_raw_array(key, array)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url) as clean:
        rows = info_rows(clean)
        assert rows["fast paths"] == "on" and rows["refused"] == "0" and rows["fallbacks"] == "0", rows
    fault_proxy.set_rules([FaultRule("denied", raw=True)])
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url) as mnt:
        log = tmp_path / f"{mnt.name}.log"
        sizes = {name: os.stat(mnt / "d" / name).st_size for name in os.listdir(mnt / "d")}
        assert len(sizes) == 30
        assert np.array_equal(np.load(mnt / "d" / "a07.npy"), arrays["d/a07"])
        rows = info_rows(mnt)
        assert rows["mount"] == str(mnt) and rows["fast paths"] == "on"
        total, _, causes = rows["refused"].partition(" ")
        assert int(total) >= 30 and "HTTP 403" in causes, rows
        assert fault_proxy.count("denied") >= int(total)
    warned = [line for line in log.read_text().splitlines() if "fast requests refused:" in line]
    assert len(warned) == 1 and " WARNING " in warned[0], warned
    ended = [line for line in log.read_text().splitlines() if "fast requests refused by the endpoint" in line]
    assert len(ended) == 1 and " INFO " in ended[0] and "HTTP 403" in ended[0], ended  # the counts at unmount


def test_ccfs_info_mount_of_a_folder_that_is_no_mount(tmp_path: Path) -> None:
    result = ccfs("info", "--mount", str(tmp_path), check=False)
    assert result.returncode == 1 and "is not a ccfs mount" in result.stderr
    result = ccfs("info", check=False)
    assert result.returncode == 2 and "give a URL or --mount MNT" in result.stderr
