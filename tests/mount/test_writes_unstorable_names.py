"""Names a path can hold but an S3 key cannot, through a ``--rw`` mount: a name that is not UTF-8 (the
kernel passes bytes; S3 keys are UTF-8) and a path whose key would pass S3's 1,024 bytes. Looking one
up is ``ENOENT`` (no object can have that name), making one (create, mkdir, rename onto it) is refused
at once with the errno that says why (``EILSEQ``, ``ENAMETOOLONG``) and one log line naming the path,
before any byte is taken; nothing is stored and the mount serves on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]


def refused(call, *args) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(OSError) as err:
        call(*args)
    return err.value.errno or 0


def test_a_name_that_is_not_utf8_is_refused_cleanly(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("ok.txt", b"plain")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url), expect_errors=True) as m:
        bad = bytes(m) + b"/bad\xff.bin"
        assert refused(os.stat, bad) == errno.ENOENT
        assert refused(os.open, bad, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == errno.EILSEQ
        assert refused(os.mkdir, bytes(m) + b"/dir\xfe") == errno.EILSEQ
        assert refused(os.rename, bytes(m) + b"/ok.txt", bad) == errno.EILSEQ
        assert os.listdir(m) == ["ok.txt"]
    lines = mounted.last_errors  # type: ignore[attr-defined]
    assert len(lines) == 3 and all("EILSEQ" in line and ("\\xff" in line or "\\xfe" in line) for line in lines), lines
    assert [info.key for info in cci.store.iter_objects("")] == ["ok.txt"]


def test_a_path_whose_key_passes_1024_bytes_is_refused(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("ok.txt", b"plain")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url), expect_errors=True) as m:
        deep = m / ("a" * 250) / ("b" * 250) / ("c" * 250)  # 752 bytes of key
        os.makedirs(deep)
        (deep / ("d" * 250)).write_bytes(b"fits: 1003 bytes")
        assert refused(os.mkdir, deep / ("e" * 280)) == errno.ENAMETOOLONG
        assert refused(os.open, deep / ("f" * 280), os.O_WRONLY | os.O_CREAT) == errno.ENAMETOOLONG
        assert refused(os.rename, m / "ok.txt", deep / ("g" * 280)) == errno.ENAMETOOLONG
        assert (m / "ok.txt").read_bytes() == b"plain"
    lines = mounted.last_errors  # type: ignore[attr-defined]
    assert len(lines) == 3 and all("ENAMETOOLONG" in line and "1024" in line for line in lines), lines
    keys = sorted(info.key for info in cci.store.iter_objects(""))
    assert keys == ["/".join(["a" * 250, "b" * 250, "c" * 250, "d" * 250]), "ok.txt"]
