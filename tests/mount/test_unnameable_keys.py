"""Keys no directory entry can be (issue 24, item 7): a NUL (the kernel's names end there, so the
key showed as its prefix, another object's name) and the parts ``.`` and ``..``. The mount leaves
them out with one warning each, escaped, and shows every other name as it is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def test_nul_and_dot_keys_are_left_out_with_one_warning_each(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = cci.store
    store.put("n/ab\x00cd", b"the NUL key")
    store.put("n/zz\x00/inside", b"a folder with a NUL")
    store.put("n/ab", b"its prefix")
    store.put("n/.", b"a dot")
    store.put("n/../up", b"a dot-dot folder")
    store.put("n/ok", b"plain")
    log = tmp_path / "mnt0.log"
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, "--log-level", "INFO") as m:
        for _ in range(2):  # a second visit warns no more
            assert sorted(os.listdir(m / "n")) == ["ab", "ok"]
            assert (m / "n" / "ab").read_bytes() == b"its prefix"
            assert (m / "n" / "ok").read_bytes() == b"plain"
        assert not (m / "n" / "zz").exists()
    text = log.read_text()
    for shown, why in ((f"s3://{BUCKET}/n/ab\\x00cd", "NUL"), (f"s3://{BUCKET}/n/zz\\x00/", "NUL"),
                       (f"s3://{BUCKET}/n/.", "'.' names a folder itself"),
                       (f"s3://{BUCKET}/n/../", "'..' names a folder itself")):
        lines = [line for line in text.splitlines() if f"left out {shown}:" in line]
        assert len(lines) == 1 and " WARNING " in lines[0] and why in lines[0], (shown, lines)
    assert "\x00" not in text
