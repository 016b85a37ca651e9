"""An open for reading right after the last ``close()`` of a staged file (its commit runs at the
RELEASE, which the kernel sends after ``close()`` returned) sees the version that RELEASE stores, or
its refusal, as ``stat`` and an open for writing do: it waits for the store under way, not ``ENOENT``
(a new file) or the old bytes (a rewrite)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, within

pytestmark = [needs_fuse, pytest.mark.fuse]


def staged_new_file(path: Path) -> None:
    """A new file written out of order (staged: stored by its last release), then closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.pwrite(fd, b"tail", 6)
        os.pwrite(fd, b"head-", 0)
    finally:
        os.close(fd)


def test_a_read_open_after_the_last_close_sees_the_stored_file(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url)) as m:
        fault_proxy.set_rules([FaultRule("hold", methods=("PUT",), key="new.bin", seconds=1.5)])
        staged_new_file(m / "new.bin")
        assert (m / "new.bin").read_bytes() == b"head-\0tail"
        fault_proxy.clear()
    assert cci.download_object("new.bin") == b"head-\0tail"


def test_a_read_open_after_the_last_close_hears_its_refusal(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("old.bin", b"old bytes")
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        assert (m / "old.bin").read_bytes() == b"old bytes"
        fault_proxy.set_rules([FaultRule("policy", methods=("PUT",), key="old.bin")])
        fd = os.open(m / "old.bin", os.O_RDWR)
        try:
            os.pwrite(fd, b"NEW", 0)
        finally:
            os.close(fd)
        with pytest.raises(OSError) as refused:
            (m / "old.bin").read_bytes()
        assert refused.value.errno == errno.EACCES
        fault_proxy.clear()
        assert (m / "old.bin").read_bytes() == b"old bytes"
    assert cci.download_object("old.bin") == b"old bytes"


def test_a_stat_waiting_for_a_last_release_gives_up_when_interrupted(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``stat`` waits for the store its last release has under way; a signal lets go of it (EINTR),
    and the store goes on."""
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url)) as m:
        fault_proxy.set_rules([FaultRule("hold", methods=("PUT",), key="slow.bin", seconds=6)])
        staged_new_file(m / "slow.bin")
        waiting = subprocess.Popen([sys.executable, "-c", f"import os; os.stat({str(m / 'slow.bin')!r})"],
                                   stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        assert waiting.poll() is None  # it waits for the store
        waiting.send_signal(signal.SIGINT)
        began = time.monotonic()
        try:
            waiting.wait(timeout=3)
        except subprocess.TimeoutExpired:
            waiting.kill()
            waiting.wait()
            pytest.fail(f"stat still waiting {time.monotonic() - began:.1f} s after SIGINT")
        assert within(20, lambda: cci.exists_object("slow.bin"))
        fault_proxy.clear()
        assert (m / "slow.bin").read_bytes() == b"head-\0tail"
