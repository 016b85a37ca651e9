"""``rm`` through a ``--rw --allow-delete`` mount deletes the version the mount showed, not another
writer's newer one stored since (``If-Match`` on the delete, as a rename's delete of its old name):
``ESTALE``, their version kept; ``--last-writer-wins`` deletes whatever is there."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cottoncandy.storage.s3 import S3Account
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw

pytestmark = [needs_fuse, pytest.mark.fuse]


def elsewhere(cci, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    """A PUT by a writer on another machine (plain boto3: no change notice reaches this machine's mounts)."""
    client = S3Account(cci.settings).client
    try:
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    finally:
        client.close()


def test_rm_keeps_another_writers_newer_version(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("r/a.txt", b"shown")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--allow-delete", "--attr-ttl", "60"),
                 expect_errors=True) as m:
        assert (m / "r/a.txt").read_bytes() == b"shown"
        elsewhere(cci, "r/a.txt", b"their newer version")  # another writer, after the mount showed it
        with pytest.raises(OSError) as refused:
            os.unlink(m / "r/a.txt")
        assert refused.value.errno == errno.ESTALE
    assert cci.download_object("r/a.txt") == b"their newer version"
    assert any("r/a.txt" in line and "replaced" in line for line in mounted.last_errors), \
        mounted.last_errors  # type: ignore[attr-defined]


def test_rm_of_the_version_shown_and_last_writer_wins(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("r/b.txt", b"shown")
    cci.store.put("r/c.txt", b"shown")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--allow-delete", "--attr-ttl", "60")) as m:
        assert (m / "r/b.txt").read_bytes() == b"shown"
        os.unlink(m / "r/b.txt")
        assert os.listdir(m / "r") == ["c.txt"]
    assert not cci.exists_object("r/b.txt")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--allow-delete", "--attr-ttl", "60",
                                       "--last-writer-wins")) as m:
        assert (m / "r/c.txt").read_bytes() == b"shown"
        elsewhere(cci, "r/c.txt", b"their newer version")
        os.unlink(m / "r/c.txt")
    assert not cci.exists_object("r/c.txt")
