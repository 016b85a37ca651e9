"""Real mounts against the signature-checking rig, in every endpoint mode, fast paths on and off: the
daemon (a child process) gets its keys, session token and CA bundle from the environment, as a user's
would, and lists, stats, memory-maps and reads arrays and a file under awkward names.

One worker runs these, one after another, with the package's other real mounts (``SERIAL_GROUPS``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.interface import CloudInterface
from cottoncandy.storage import S3Account
from tests.conftest import BUCKET, SERIAL_GROUPS
from tests.endpoint_modes.conftest import Endpoint
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.xdist_group(SERIAL_GROUPS["mount"])]

ODD_FOLDER = "d(1)+é&=~!'"  # no space: a listed prefix with a space is test_listing_a_prefix_with_a_space
ARRAYS = {
    "f/plain": np.arange(60.0).reshape(12, 5),
    "f/with space ü+(1)": np.random.default_rng(0).random((300, 200)),
    f"{ODD_FOLDER}/x#y?z%25 ": np.arange(10, dtype="<i4"),
}
TEXT = ("f/notes #1?.txt", b"hello, mount\n" * 1000)


@pytest.mark.usefixtures("localnames_env")
def test_mount_lists_maps_and_reads(endpoint: Endpoint, fast: bool, tmp_path: Path) -> None:
    settings = endpoint.settings(fast_paths=fast)
    cci = CloudInterface(BUCKET, S3Account(settings), settings, verbose=False)
    for key, arr in ARRAYS.items():
        cci.upload_raw_array(key, arr, compression=False)
    cci.upload_object(TEXT[0], TEXT[1])
    extra = ["--endpoint-url", endpoint.url, *([] if fast else ["--no-fast-paths"])]
    if endpoint.addressing_style == "virtual":
        extra += ["--addressing-style", "virtual"]
    endpoint.server.clear_log()
    with mounted(BUCKET, tmp_path, *extra) as mountpoint:
        assert sorted(os.listdir(mountpoint)) == [ODD_FOLDER, "f"]
        assert sorted(os.listdir(mountpoint / "f")) == ["notes #1?.txt", "plain.npy", "with space ü+(1).npy"]
        for key, arr in ARRAYS.items():
            path = mountpoint / f"{key}.npy"
            assert path.stat().st_size == 128 + arr.nbytes, key
            assert np.array_equal(np.load(path), arr), key
            assert np.array_equal(np.load(path, mmap_mode="r")[7], arr[7]), key
        assert (mountpoint / TEXT[0]).read_bytes() == TEXT[1]
    sent = endpoint.server.requests()
    assert sent, "the mount sent nothing to the rig"
    if endpoint.addressing_style == "virtual":  # the bucket went in the Host header, never in a path
        assert [e["path"] for e in sent if e["path"].startswith(f"/{BUCKET}")] == []
