"""A real mount of a bucket of s3rver (npm), a second S3 implementation (issue 25 item 4): folders,
arrays of each encoding and ``ccfs info --mount`` as against moto, with no fast request refused.
Skipped, with what is missing, where node or the npm package is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.testing import s3rver
from tests.mountutil import ccfs, mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse,
              pytest.mark.skipif(s3rver.missing() is not None, reason=f"s3rver cannot run: {s3rver.missing()}")]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[s3rver.S3rver]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3rver.ACCESS_KEY)  # the mount's daemon takes them too
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3rver.SECRET_KEY)
    with s3rver.S3rver() as running:
        yield running


def test_a_mount_of_s3rver_serves_every_encoding(server: s3rver.S3rver, tmp_path: Path) -> None:
    cci = cc.get_interface("mounted", endpoint_url=server.endpoint_url, verbose=False, force_bucket_creation=True)
    array = np.arange(60_000, dtype="<f8").reshape(200, 300)
    cci.upload_raw_array("d/raw", array, compression=False)
    cci.upload_raw_array("d/gzip", array[:20], compression="gzip")
    cci.upload_npy_array("d/plain.npy", array[:5])
    cci.upload_raw_array("d/sub/deeper", array[:1])
    with mounted("mounted", tmp_path, "--endpoint-url", server.endpoint_url) as mnt:
        assert sorted(os.listdir(mnt / "d")) == ["gzip.npy", "plain.npy", "raw.npy", "sub"]
        assert np.array_equal(np.load(mnt / "d" / "raw.npy"), array)
        assert np.array_equal(np.load(mnt / "d" / "raw.npy", mmap_mode="r")[123], array[123])
        assert np.array_equal(np.load(mnt / "d" / "gzip.npy"), array[:20])
        assert np.array_equal(np.load(mnt / "d" / "plain.npy"), array[:5])
        assert np.array_equal(np.load(mnt / "d" / "sub" / "deeper.npy"), array[:1])
        info = ccfs("info", "--mount", str(mnt)).stdout
        assert "fast paths  on" in info and "refused     0" in info, info
