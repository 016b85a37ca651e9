"""A ``.npy`` header that promises more than the file will hold, streamed through a ``--rw`` mount: the
promise sizes nothing the daemon holds before the bytes arrive. The header's size is only a hint for
the upload's part size (so that a real array stays within S3's 10,000 parts); a header claiming 4 TiB
made parts of 512 MiB, each allocated (and zero-filled) whole as soon as the upload began, outside the
mount's write memory. A header promising more than S3 can store (5 TiB) is refused at once."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from ccfs.mount import daemon_pid
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]

MiB = 2**20


def header(shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}".encode()
    return b"\x93NUMPY\x01\x00" + (117).to_bytes(2, "little") + text.ljust(117) + b"\n"


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))


def test_a_forged_shape_sizes_no_memory(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        pid = daemon_pid(str(m), timeout=10)
        assert pid is not None
        np.save(m / "warm.npy", np.zeros(40 * MiB // 8))  # the mount's own parts, in use once
        before = peak_rss(pid)
        with open(m / "forged.npy", "wb") as fh:  # 4 TiB promised, 40 MiB written
            fh.write(header((2**39,)))
            for _ in range(40):
                fh.write(bytes(MiB))
        grown = peak_rss(pid) - before
        assert grown < 128 * MiB, f"the daemon's peak grew {grown / MiB:.0f} MiB"
    assert not cci.exists_object("forged")


def test_a_header_promising_more_than_s3_stores_is_efbig(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url), expect_errors=True) as m:
        fd = os.open(m / "huge.npy", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        refused = []
        for call, args in ((os.write, (header((2**40,)) + bytes(MiB),)), (os.write, (bytes(MiB),)), (os.close, ())):
            with pytest.raises(OSError) as err:  # 8 TiB promised: the file fails, and says so to the end
                call(fd, *args)  # type: ignore[operator]
            refused.append(err.value.errno)
        assert refused == [errno.EFBIG] * 3
        assert "huge.npy" not in os.listdir(m)
    lines = mounted.last_errors  # type: ignore[attr-defined]
    assert len(lines) == 1 and "EFBIG" in lines[0] and "huge" in lines[0] and "5 TiB" in lines[0], lines
    assert not cci.exists_object("huge") and not cci.exists_object("huge.npy")
