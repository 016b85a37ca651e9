"""Issue 26 Targets, faults through a real ``--rw`` mount (the rig's fault proxy in front of the local
S3 server).

Streamed files (``np.save``): a part reset before it reaches the server and an outage before or in
the middle of an upload each make the write fail with EIO, leave no object and, once the endpoint is
back, no in-progress multipart upload. (A 500 on CompleteMultipartUpload and a reset of every
UploadPart's answer are in ``test_writes_stream.py``.)

Staged files (``np.load(mmap_mode='r+')`` rows changed, then ``memmap.flush()``: the fsync commit
point): a refused CompleteMultipartUpload (500: EIO; 403 AccessDenied: EACCES), a reset mid-UploadPart
and an outage during the commit each make ``flush()`` fail with that errno, log one line naming the
key, keep the stored version intact and leave no upload."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.config import Settings
from cottoncandy.storage.s3 import S3Account
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


# --- staged files: the fsync commit point ------------------------------------------------------

ROWS = np.arange(2 * MiB, dtype="<f8").reshape(-1, 1024)  # 16 MiB: a commit of sent and copied parts


def etag(endpoint_url: str, key: str) -> str | None:
    return S3Account(Settings(endpoint_url=endpoint_url)).store(BUCKET).head(key).etag


def staged_rw(endpoint_url: str, tmp_path: Path) -> list[str]:
    return [*rw(endpoint_url), "--cache-dir", str(tmp_path / "cache")]


def refused_fsync(cci, fault_proxy, tmp_path: Path, rules: list[FaultRule], outage: float = 0.0) -> int:  # type: ignore[no-untyped-def]
    """Change rows of the stored array ``f`` through an ``r+`` memmap and ``flush()`` it with ``rules``
    set (and an outage of ``outage`` seconds from then): the errno ``flush()`` failed with.
    The rules stay until the file's last release, whose retry is refused too (logged); then the stored
    version must be the one from before, and no upload left."""
    cci.upload_raw_array("f", ROWS, compression=False)
    before = etag(cci.settings.endpoint_url, "f")
    with mounted(BUCKET, tmp_path, *staged_rw(fault_proxy.endpoint_url, tmp_path), expect_errors=True) as m:
        array = np.load(m / "f.npy", mmap_mode="r+")
        array[10] = -1.0
        array[1500:1510] = -2.0
        fault_proxy.set_rules(rules)
        back = time.monotonic() + outage
        if outage:
            fault_proxy.outage(outage)
        try:
            array.flush()
        except OSError as exc:
            code = exc.errno or 0
        else:
            code = 0
        del array  # the last release tries again, and is refused again (logged)
        time.sleep(max(1.0, back - time.monotonic()))  # the release's retry, refused while the rules hold
        fault_proxy.clear()
    np.testing.assert_array_equal(cci.download_raw_array("f"), ROWS)  # the old version, intact
    assert etag(cci.settings.endpoint_url, "f") == before
    assert no_uploads_left(cci.settings.endpoint_url) == []
    assert any("s3://test-bucket/f" in line for line in mounted.last_errors), mounted.last_errors  # type: ignore[attr-defined]
    assert not list((tmp_path / "cache" / "writes").glob("staged-*"))  # given up, nothing left staged
    return code


@pytest.mark.parametrize(("mode", "code"), [("error500", errno.EIO), ("policy", errno.EACCES)],
                         ids=["500", "403-AccessDenied"])
def test_a_refused_complete_fails_a_staged_fsync(cci, fault_proxy, tmp_path: Path, mode: str, code: int) -> None:  # type: ignore[no-untyped-def]
    rules = [FaultRule(mode, methods=("POST",), query="uploadId")]
    assert refused_fsync(cci, fault_proxy, tmp_path, rules) == code


def test_a_reset_mid_part_fails_a_staged_fsync(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every sent part's connection is reset after 1 MiB of its body (UploadPartCopy carries none)."""
    rules = [FaultRule("reset", methods=("PUT",), query="partNumber", after=MiB, forward=False)]
    assert refused_fsync(cci, fault_proxy, tmp_path, rules) == errno.EIO


def test_an_outage_during_a_staged_commit_fails_its_fsync(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The endpoint goes away for 12 s once the changed rows are in the page cache: the flush's pages
    reach the daemon (local: the rows' stretches were fetched when they were read), and the commit that
    follows, all of it during the outage, finds no endpoint. (An outage asked for once the proxy had
    delayed the commit's first part took effect only after the commit ended, in a trial: no test.)"""
    assert refused_fsync(cci, fault_proxy, tmp_path, [], outage=12.0) == errno.EIO
