"""One open file description written by several commands through a real ``--rw`` mount (issue 26): each
``close()`` of any copy of the descriptor sends FLUSH, which stores a streamed file, and the writes
that follow must still succeed and be stored. Each test checks the object through the library and the
file through the mount, and that no multipart upload is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, uploads

pytestmark = [needs_fuse, pytest.mark.fuse]


def bash(script: str) -> None:
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=120)


def test_shell_patterns_sharing_one_descriptor(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``{ a; b; } > f`` with external commands (each exit is a FLUSH), ``exec 3>f`` with builtins
    writing to it (each ``>&3`` closes a dup), and ``tee`` fed by two commands."""
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        bash(f"{{ /bin/echo a; /bin/echo b; /bin/echo c; }} > {m / 'group.txt'}")
        bash(f"exec 3>{m / 'exec.txt'}; echo x >&3; echo y >&3; printf z >&3; exec 3>&-")
        bash(f"{{ /bin/echo one; /bin/echo two; }} | tee {m / 'tee.txt'} > /dev/null")
        bash(f"for i in 1 2 3 4 5 6 7 8; do /bin/echo line $i; done > {m / 'loop.txt'}")
        bash(f"{{ /bin/echo a; /bin/echo b; }} >> {m / 'append.txt'}")  # O_APPEND on a new name: streamed too
        assert (m / "group.txt").read_bytes() == b"a\nb\nc\n"
        assert (m / "exec.txt").read_bytes() == b"x\ny\nz"
        assert (m / "tee.txt").read_bytes() == b"one\ntwo\n"
        assert os.stat(m / "loop.txt").st_size == 8 * len(b"line 1\n")
        assert (m / "append.txt").read_bytes() == b"a\nb\n"
    assert cci.download_object("group.txt") == b"a\nb\nc\n"
    assert cci.download_object("exec.txt") == b"x\ny\nz"
    assert cci.download_object("tee.txt") == b"one\ntwo\n"
    assert cci.download_object("append.txt") == b"a\nb\n"
    assert cci.download_object("loop.txt") == b"".join(b"line %d\n" % i for i in range(1, 9))
    assert uploads(cci.settings.endpoint_url) == []


def test_a_child_writes_after_its_parent_closed(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The parent writes, hands the descriptor to a child, closes its own copy (FLUSH: stored), and
    only then lets the child write; the child's bytes follow the parent's in one object. A file of
    several parts is continued too: its stored part is copied by the server, the new bytes sent."""
    big = os.urandom(12 * 2**20 + 11)
    child = ("import os, sys; fd = int(sys.argv[1]); sys.stdin.read(); "
             "os.write(fd, b'child\\n'); os.close(fd)")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        for name, first in (("small.txt", b"parent\n"), ("big.bin", big)):
            fd = os.open(m / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.write(fd, first)
            proc = subprocess.Popen([sys.executable, "-c", child, str(fd)], pass_fds=(fd,), stdin=subprocess.PIPE)
            os.close(fd)  # FLUSH: the file is stored as the parent wrote it
            assert cci.download_object(name) == first
            proc.communicate(b"", timeout=60)  # now the child writes on and exits
            assert proc.returncode == 0
            assert (m / name).read_bytes() == first + b"child\n"
    assert cci.download_object("small.txt") == b"parent\nchild\n"
    assert cci.download_object("big.bin") == big + b"child\n"
    assert uploads(cci.settings.endpoint_url) == []


def test_fsync_then_more_writes_and_closing_a_dup(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A program that makes its bytes durable (fsync, or numpy's close of a dup) and writes on: every
    byte is stored, and the last ``close()`` reports the last commit."""
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        with open(m / "durable.txt", "wb") as out:
            out.write(b"first\n")
            out.flush()
            os.fsync(out.fileno())
            assert cci.download_object("durable.txt") == b"first\n"
            out.write(b"second\n")
            out.flush()
            os.close(os.dup(out.fileno()))  # a FLUSH of the same description
            assert cci.download_object("durable.txt") == b"first\nsecond\n"
            out.write(b"third\n")
        assert (m / "durable.txt").read_bytes() == b"first\nsecond\nthird\n"
    assert cci.download_object("durable.txt") == b"first\nsecond\nthird\n"
