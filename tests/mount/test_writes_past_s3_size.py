"""A file S3 cannot store, through a ``--rw`` mount: a write or truncate past S3's largest object (5 TiB)
is ``EFBIG`` at once, naming the file, before anything is taken or sent (a sparse staged file holds such
a hole for nothing, and its commit would send terabytes of zeros in parts hundreds of MiB each, four at
once, to be refused by S3 at the end). Up to the limit a hole is taken as before."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]

TiB = 2**40


def test_a_write_or_truncate_past_5_tib_is_efbig(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("old.bin", b"old bytes")
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        # a commit that did start (without the fix) is refused at once, not sent for hours
        fault_proxy.set_rules([FaultRule("policy", methods=("POST", "PUT"))])
        fd = os.open(m / "new.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, b"start")
            for call, args in ((os.pwrite, (b"x", 5 * TiB)), (os.ftruncate, (5 * TiB + 1,))):
                with pytest.raises(OSError) as err:
                    call(fd, *args)  # type: ignore[operator]
                assert err.value.errno == errno.EFBIG, call
            assert os.fstat(fd).st_size == 5
        finally:
            with pytest.raises(OSError):  # its 5 bytes, refused by the store (kept from a commit)
                os.close(fd)
        fd = os.open(m / "old.bin", os.O_RDWR)
        try:
            with pytest.raises(OSError) as err:
                os.pwrite(fd, b"x", 8 * TiB)
            assert err.value.errno == errno.EFBIG
        finally:
            os.close(fd)  # nothing changed: nothing to store
        fault_proxy.clear()
        assert (m / "old.bin").read_bytes() == b"old bytes"
    lines = mounted.last_errors  # type: ignore[attr-defined]
    assert sum("EFBIG" in line and "5 TiB" in line for line in lines) == 3, lines
    assert cci.download_object("old.bin") == b"old bytes"
    assert not cci.exists_object("new.bin")
