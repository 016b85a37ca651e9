"""Two writers of one key through real ``--rw`` mounts, staged files (issue 26 item 5): a staged
overwrite commits with ``If-Match`` of the version seen at open and a staged new name with
``If-None-Match: *``, so the loser's ``fsync`` (``memmap.flush()``) gets ``ESTALE`` (``EEXIST``) and the
winner's object is kept: nothing is lost silently. ``--last-writer-wins`` turns that off.

The files here are one PUT each: moto 5.2.6 honours both conditions on PutObject, but ignores
``If-Match`` on CompleteMultipartUpload and ``CopySourceIfMatch`` on UploadPartCopy (the mount says so
at mount time), so a staged overwrite of 5 MiB or more is last-writer-wins against moto; the store
still sends them (tests/storage/test_conditions_sent.py)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]


def test_two_mounts_change_one_file_in_place(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Both open the stored file O_RDWR (staged), both append; the first fsync wins, the second is
    ESTALE (and so is its last close, logged); the object is the first writer's."""
    cci.upload_object("log.txt", b"line 1\n")
    options = rw(cci.settings.endpoint_url)
    with mounted(BUCKET, tmp_path, *options) as one, mounted(BUCKET, tmp_path, *options, expect_errors=True) as two:
        first = open(one / "log.txt", "r+b")  # noqa: SIM115 - both open before either commits
        second = open(two / "log.txt", "r+b")  # noqa: SIM115
        first.seek(0, os.SEEK_END)
        second.seek(0, os.SEEK_END)
        first.write(b"one\n")
        second.write(b"two\n")
        first.flush()
        second.flush()
        os.fsync(first.fileno())
        with pytest.raises(OSError) as caught:
            os.fsync(second.fileno())
        assert caught.value.errno == errno.ESTALE
        first.close()
        second.close()  # its last release is refused again (logged): nothing of it is stored
        assert (one / "log.txt").read_bytes() == b"line 1\none\n"
    assert cci.download_object("log.txt") == b"line 1\none\n"


def test_a_memmap_row_update_after_the_library_replaced_the_array(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``np.load(mmap_mode='r+')``, a row changed, the library uploads another version before
    ``flush()``: ``flush()`` is ESTALE and the library's version is kept."""
    array = np.arange(64 * 64, dtype="<f8").reshape(64, 64)
    theirs = np.full((64, 64), 7.0)
    cci.upload_raw_array("a", array, compression=None)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url), expect_errors=True) as m:
        mapped = np.load(m / "a.npy", mmap_mode="r+")
        mapped[3] = -1.0
        cci.upload_raw_array("a", theirs, compression=None)
        with pytest.raises(OSError) as caught:
            mapped.flush()
        assert caught.value.errno == errno.ESTALE
        del mapped
    np.testing.assert_array_equal(cci.download_raw_array("a"), theirs)


def test_two_mounts_create_one_name_out_of_order(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A new name written out of order is staged on both mounts; the first fsync creates it, the
    second is EEXIST: If-None-Match on the staged commit."""
    options = rw(cci.settings.endpoint_url)
    with mounted(BUCKET, tmp_path, *options) as one, mounted(BUCKET, tmp_path, *options, expect_errors=True) as two:
        fds = [os.open(where / "new.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for where in (one, two)]
        for fd, text in zip(fds, (b"first", b"second")):
            os.pwrite(fd, b"tail", 100)  # out of order: the file is staged
            os.pwrite(fd, text, 0)
        os.fsync(fds[0])
        with pytest.raises(OSError) as caught:
            os.fsync(fds[1])
        assert caught.value.errno == errno.EEXIST
        os.close(fds[0])
        os.close(fds[1])
    stored = cci.download_object("new.bin")
    assert stored[:5] == b"first" and stored[100:] == b"tail" and len(stored) == 104


def test_last_writer_wins_lets_the_second_overwrite(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Without conditions the commit overwrites another writer's version. (Bytes of the version seen
    that were never read are still fetched pinned to it: a file built on a version that is gone is
    ESTALE even so, never stored with another version's bytes.)"""
    cci.upload_object("log.txt", b"line 1\n")
    options = rw(cci.settings.endpoint_url, "--last-writer-wins")
    with mounted(BUCKET, tmp_path, *options) as m, open(m / "log.txt", "r+b") as out:
        assert out.read() == b"line 1\n"  # read: what it builds on is held here (not fetched again)
        out.write(b"mine\n")
        out.flush()
        cci.upload_object("log.txt", b"theirs\n")
        os.fsync(out.fileno())  # no condition: stored over theirs
    assert cci.download_object("log.txt") == b"line 1\nmine\n"
