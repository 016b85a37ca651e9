"""Compressed arrays decoded whole (Zstd, LZ4, a small gzip body without blocks or seek points) kept in
``--cache-dir`` across mounts (``cache.disk.KeptDecoded``): after a remount a row costs no GET; a kept
block file another hand damaged fails only itself and the array is decoded again from the store; an
array larger than the folder's limit is not kept. GETs are counted in the local server's log."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mount.test_decoded_blocks_on_disk import object_gets, row
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]
SHAPE = (512, 1024)  # 4 MiB of float64: 16 blocks of the mount's 256 KiB
KEPT = "kept the decoded"


def upload(cci, kind: str) -> tuple[str, np.ndarray]:  # type: ignore[no-untyped-def]
    array = np.random.default_rng(5).integers(0, 50, SHAPE).astype("<f8")
    key = f"kd/{kind}"
    if kind == "gzip":  # as 0.4.0 stores it: one gzip stream, no index; too small for seek points
        cci.store.put(key, gzip.compress(array.tobytes(), 6),
                      {"dtype": "<f8", "shape": ",".join(map(str, SHAPE)), "compression": "gzip", "order": "C"})
    else:
        cci.upload_raw_array(key, array, compression=kind)
    return key, array


def args(cci, cache: Path, *more: str) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url, "--cache-dir", str(cache), *more]


def logged(tmp_path: Path, mountpoint: Path, text: str, timeout: float = 30.0) -> None:
    """Wait for ``text`` in the mount's log: the array's blocks are written through in the background,
    and an unmount stops that writer, so the test waits for its evidence before unmounting."""
    log = tmp_path / f"{mountpoint.name}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not logged in {timeout:.0f} s")


def log_text(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in tmp_path.glob("mnt*.log"))


@pytest.mark.parametrize("kind", ["Zstd", "LZ4", "gzip"])
def test_a_row_after_a_remount_costs_no_get(cci, s3, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    key, array = upload(cci, kind)
    cache = tmp_path / "cache"
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        values, cold_s = row(m, key, 300)
        assert np.array_equal(values, array[300])
        logged(tmp_path, m, KEPT)
    cold = object_gets(s3, key)
    assert cold[0] == 1 and cold[1] == cci.store.head(key).size  # the whole body, once
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        values, warm_s = row(m, key, 300)
        assert np.array_equal(values, array[300])
        assert np.array_equal(row(m, key, 7)[0], array[7])  # a row not read before: every block was kept
        warm = object_gets(s3, key)
        assert warm == (0, 0), warm
        assert np.array_equal(np.load(m / f"{key}.npy"), array)
    assert object_gets(s3, key) == (0, 0)
    print(f"\n{kind}: a row {cold[0]} GET {cold[1]} B {cold_s * 1e3:.0f} ms; after a remount "
          f"{warm[0]} GETs {warm_s * 1e3:.0f} ms")


def test_a_damaged_kept_file_fails_only_itself(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, array = upload(cci, "Zstd")
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(row(m, key, 0)[0], array[0])
        logged(tmp_path, m, KEPT)
    files = sorted(p for p in (cache / "blocks").glob("??/*") if not p.name.startswith(".tmp-"))
    assert len(files) == 17  # the array's decoded blocks, cut where the file's 256 KiB blocks are (past the
    data = bytearray(files[5].read_bytes())  # header, which comes from the metadata)
    data[-1] ^= 0xFF  # a flipped bit of the right length: only its digest tells
    files[5].write_bytes(bytes(data))
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(np.load(m / f"{key}.npy"), array)
    assert object_gets(s3, key)[0] == 1  # the damaged block's array decoded again: one GET of the body
    assert log_text(tmp_path).count("discarded corrupt block file") == 1


def test_an_array_larger_than_the_folder_is_not_kept(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, array = upload(cci, "LZ4")
    cache = tmp_path / "cache"
    for _ in range(2):
        s3.clear_log()
        with mounted(BUCKET, tmp_path, *args(cci, cache, "--cache-dir-size", "2M")) as m:
            assert np.array_equal(row(m, key, 3)[0], array[3])
            logged(tmp_path, m, "not kept across mounts")
        assert object_gets(s3, key)[0] == 1  # decoded from the store each time
    assert not [p for p in (cache / "blocks").glob("??/*")]
