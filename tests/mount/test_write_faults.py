"""Issue 26 Targets, faults through a real ``--rw`` mount (the rig's fault proxy in front of the local
S3 server): a part reset before it reaches the server and an outage before or in the middle of an
upload each make the write fail with EIO, leave no object and, once the endpoint is back, no
in-progress multipart upload. (A 500 on CompleteMultipartUpload and a reset of every UploadPart's
answer are in ``test_writes_stream.py``.)"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET
from tests.mount.test_writes_stream import npy_bytes, rw, uploads
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]

MiB = 2**20


def no_uploads_left(endpoint_url: str, within: float = 40.0) -> list[dict[str, object]]:
    """The in-progress uploads once the daemon's patient clean-up (30 s) has had its chance."""
    deadline = time.monotonic() + within
    while (left := uploads(endpoint_url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def test_a_part_reset_before_the_server_fails_np_save(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every UploadPart's connection is reset before the server sees it (the part is lost mid-send)."""
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), query="partNumber", forward=False)])
        with pytest.raises(OSError) as caught:
            np.save(m / "lost.npy", np.ones(40 * MiB // 8))
        fault_proxy.clear()
        assert caught.value.errno == errno.EIO
        assert "lost.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert no_uploads_left(cci.settings.endpoint_url) == []
    assert any("lost" in line for line in mounted.last_errors)  # type: ignore[attr-defined]


def test_an_outage_before_np_save_fails_it(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        os.listdir(m)  # the root is listed before the endpoint goes away
        fault_proxy.outage(20)
        with pytest.raises(OSError) as caught:
            np.save(m / "dark.npy", np.ones(40 * MiB // 8))
        assert caught.value.errno == errno.EIO
        fault_proxy.clear()
        assert "dark.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert no_uploads_left(cci.settings.endpoint_url) == []


def test_an_outage_mid_upload_fails_the_write_or_close(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Parts are out when the endpoint goes away for 12 s: a later write() or the close() fails with
    EIO (never success), the file never shows, and the daemon's abort (retried for 30 s) lands once
    the endpoint is back, so no upload is left."""
    data = npy_bytes(np.ones(80 * MiB // 8))
    errors: list[int] = []
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        fd = os.open(m / "cut.npy", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for start in range(0, len(data), MiB):
                if start == 40 * MiB:  # two parts sent or sending, the held first part buffered
                    time.sleep(1.0)
                    fault_proxy.outage(12)
                os.write(fd, data[start:start + MiB])
        except OSError as exc:
            errors.append(exc.errno or 0)
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                errors.append(exc.errno or 0)
        assert errors and set(errors) == {errno.EIO}, errors
        assert "cut.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert no_uploads_left(cci.settings.endpoint_url) == []
