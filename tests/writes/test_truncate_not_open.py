"""``truncate(2)`` of a path no descriptor holds (``os.truncate``; ``truncate -s`` opens the file and
works) is refused with ``EOPNOTSUPP`` and one warning naming the object by its bucket URL, with nothing
changed. ``CcFilesystem`` driven as ``ccfs/operations.py`` drives it (the kernel's paths start with /)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from cottoncandy.storage.base import ObjectStore
from tests.writes.test_staged_compression import writable


def test_a_path_not_open_is_refused_naming_its_object(store: ObjectStore, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    store.put("d/f.bin", b"0123456789")
    fs = writable(store, tmp_path)
    caplog.set_level(logging.WARNING, logger="cottoncandy.writes")
    with pytest.raises(OSError) as caught:
        fs.truncate("/d/f.bin", 4)
    assert caught.value.errno == errno.EOPNOTSUPP
    (line,) = [r.getMessage() for r in caplog.records if "truncating" in r.getMessage()]
    assert line.startswith(store.describe("d/f.bin") + ": truncating"), line
    assert store.get("d/f.bin") == b"0123456789"
