"""Progress ends where it says: every transfer's count reaches its announced total exactly, never more.

Issue 23: the total of an array transfer was the array's bytes while the count was the compressed
bytes the store moved, so a gzip upload of 80 MiB of zeros ended at 0.1% (a red widget in Jupyter)
and LZ4 noise went past 100%. Now every path counts array bytes (``progress.BodyMap`` maps the
store's counts onto the array's), which these tests check per transfer kind, per codec, on
compressible and incompressible data, against the real S3 server; the bar itself on a real pty
here, and as a widget in a real kernel in tests/notebook/test_kernel.py.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cottoncandy.arrays.npy_files import save_npy_file, upload_npy_file
from cottoncandy.config import Settings
from cottoncandy.formats import pgzip
from cottoncandy.formats.codecs import encode
from cottoncandy.interface import CloudInterface
from cottoncandy.progress import BodyMap, Progress
from cottoncandy.storage import S3Account
from tests.conftest import BUCKET

MiB = 2**20
ROOT = Path(__file__).resolve().parents[2]


class Checked:
    """A callback of either convention that fails the transfer the moment a count goes past its
    total or backwards, or (fsspec's convention) comes before the total."""

    def __init__(self) -> None:
        self.size: int | None = None
        self.value = 0
        self.calls: list[tuple[int, int | None]] = []
        self.lock = threading.Lock()

    # fsspec's Callback
    def set_size(self, size: int) -> None:
        self.size = size

    def relative_update(self, inc: int = 1) -> None:
        with self.lock:
            assert inc > 0 and self.size is not None, (inc, self.size)
            self.value += inc
            assert self.value <= self.size, (self.value, self.size)

    # fn(done, total)
    def plain(self, done: int, total: int | None) -> None:
        with self.lock:
            assert not self.calls or done >= self.calls[-1][0], (done, self.calls[-1])
            assert total is None or done <= total, (done, total)
            self.calls.append((done, total))

    def check(self, total: int) -> None:
        """Both conventions ended at ``total``."""
        assert (self.size, self.value) == (total, total)
        assert self.calls and self.calls[-1] == (total, total), self.calls[-3:]


def run_both(call: Callable[[Any], Any], total: int) -> None:
    """``call(callback)`` once with an fsspec-style callback and once with a plain function."""
    checked = Checked()
    call(checked)
    call(checked.plain)
    checked.check(total)


@pytest.fixture
def small_parts_cci(s3: Any, monkeypatch: pytest.MonkeyPatch) -> CloudInterface:
    """An interface whose transfers take several parts at these sizes: multipart uploads of 5 MiB
    parts from 6 MiB, 1 MiB ranged GETs, 1 MiB gzip blocks (so a streamed gzip upload of a few MiB
    has several blocks and parts, the first part sent last)."""
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", MiB)
    settings = Settings(endpoint_url=s3.endpoint_url, mpu_threshold=6 * MiB, mpu_chunksize=5 * MiB,
                        download_part_size=MiB, threads=3)
    return CloudInterface(BUCKET, S3Account(settings), settings, verbose=False)


def data(kind: str, nbytes: int) -> np.ndarray:
    if kind == "zeros":
        return np.zeros(nbytes // 8, dtype="<i8")
    return np.random.default_rng(7).integers(0, 256, nbytes, dtype=np.uint8).view("<i8")  # incompressible


#: bzip2 and lzma compress a few MiB of noise in seconds: they go the same whole-body path with 1 MiB
SIZES = {"BZ2": MiB, "lzma": MiB}
CODECS = [False, "gzip", "LZ4", "Zstd", "Zlib", "BZ2", "lzma"]


# --- the translation itself ---------------------------------------------------------------------


def test_body_map_reaches_the_array_total_exactly_with_the_last_stored_byte() -> None:
    told: list[int] = []
    meter = BodyMap(told.append)
    meter.segment(20, 0)  # a header and trailer: no array bytes
    meter.segment(10, 4000)
    meter(25)  # header and half the block
    assert sum(told) == 2000
    meter.segment(1000, 100)  # an incompressible block, declared later
    meter(505)
    assert sum(told) == 4050
    meter(500)
    assert sum(told) == 4100 and all(t > 0 for t in told)
    meter(7)  # a store that counts more than the body (a retried read): the count stays at the total
    assert sum(told) == 4100


def test_body_map_is_the_report_itself_when_stored_and_array_bytes_are_the_same() -> None:
    told: list[int] = []
    assert BodyMap.of(told.append, 10, 10) == told.append
    assert BodyMap.of(None, 10, 3) is None
    meter = BodyMap.of(told.append, 3, 10)
    assert meter is not None
    meter(1)
    meter(2)
    assert told == [3, 7]


def test_a_total_announced_later_reaches_the_callbacks_and_opens_the_bar() -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    checked, tty = Checked(), Tty()
    with Progress(None, "get x", callback=checked, stream=tty, bar="line", threshold=True) as progress:
        assert tty.getvalue() == ""  # no total yet: no bar
        progress.set_total(100 * MiB)
        progress.update(100 * MiB)
    assert (checked.size, checked.value) == (100 * MiB, 100 * MiB)
    assert "get x: 100.0% 100.0 MiB / 100.0 MiB" in tty.getvalue()
    small = Tty()
    with Progress(None, "get y", stream=small, bar="line", threshold=True) as progress:
        progress.set_total(10)
        progress.update(10)
    assert small.getvalue() == ""  # under MIN_BYTES


# --- raw arrays, every codec ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zeros", "noise"])
@pytest.mark.parametrize("codec", CODECS)
def test_raw_array_transfers_end_at_the_array_bytes(small_parts_cci: CloudInterface, codec: object,
                                                    kind: str) -> None:
    arr = data(kind, SIZES.get(str(codec), 7 * MiB))
    run_both(lambda cb: small_parts_cci.upload_raw_array("r", arr, compression=codec, callback=cb), arr.nbytes)
    run_both(lambda cb: small_parts_cci.download_raw_array("r", callback=cb), arr.nbytes)
    assert np.array_equal(small_parts_cci.download_raw_array("r"), arr)


@pytest.mark.parametrize("kind", ["zeros", "noise"])
def test_gzip_bodies_without_a_block_index_end_at_the_array_bytes(small_parts_cci: CloudInterface,
                                                                  kind: str) -> None:
    """0.4.0's gzip bodies (one member, no index) are read serially, as a stream."""
    arr = data(kind, 3 * MiB)
    body = encode(memoryview(arr).cast("B"), "gzip")
    small_parts_cci.store.put("old", body, {"dtype": "<f8", "shape": f"[{arr.size}]", "order": "C",
                                            "compression": "gzip"})
    run_both(lambda cb: small_parts_cci.download_raw_array("old", callback=cb), arr.nbytes)


def test_numpy_dask_uploads_end_at_the_array_bytes(small_parts_cci: CloudInterface) -> None:
    """Parts of a numpy array, strided slabs here, streamed through gzip a block at a time."""
    arr = np.concatenate([data("zeros", 6 * MiB), data("noise", 6 * MiB)]).reshape(2, -1).T
    run_both(lambda cb: small_parts_cci.upload_dask_array("d", arr, axis=0, buffersize=5 * MiB, callback=cb),
             arr.nbytes)


def test_dask_uploads_count_each_part_as_it_finishes(small_parts_cci: CloudInterface) -> None:
    da = pytest.importorskip("dask.array")
    arr = da.from_array(np.concatenate([data("zeros", 6 * MiB), data("noise", 6 * MiB)]), chunks=MiB // 8)
    run_both(lambda cb: small_parts_cci.upload_dask_array("d", arr, axis=0, buffersize=5 * MiB, callback=cb),
             arr.nbytes)
    checked = Checked()
    small_parts_cci.upload_dask_array("d", arr, axis=0, buffersize=5 * MiB, callback=checked.plain)
    assert len(checked.calls) > 2, checked.calls  # as parts finish, not once at the end


# --- the other transfer kinds ---------------------------------------------------------------------


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


def test_npy_transfers_end_at_the_object_bytes(small_parts_cci: CloudInterface) -> None:
    arr = data("noise", 7 * MiB)
    run_both(lambda cb: small_parts_cci.upload_npy_array("n", arr, callback=cb), len(_npy_bytes(arr)))
    run_both(lambda cb: small_parts_cci.download_npy_array("n", callback=cb), len(_npy_bytes(arr)))


def test_npy_objects_with_trailing_bytes_count_only_the_array(small_parts_cci: CloudInterface) -> None:
    """Bytes after the array (which np.load ignores) came with the header; they are not counted."""
    arr = np.arange(10.0)
    small_parts_cci.upload_object("t", _npy_bytes(arr) + b"junk" * 100)
    run_both(lambda cb: small_parts_cci.download_npy_array("t", callback=cb), len(_npy_bytes(arr)))


@pytest.mark.parametrize("kind", ["zeros", "noise"])
def test_sparse_transfers_end_at_the_parts_array_bytes(small_parts_cci: CloudInterface, kind: str) -> None:
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    values = np.zeros(300_000) if kind == "zeros" else rng.random(300_000)
    matrix = sparse.csr_matrix((values, (rng.integers(0, 5000, 300_000), rng.integers(0, 5000, 300_000))),
                               shape=(5000, 5000))
    total = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    run_both(lambda cb: small_parts_cci.upload_sparse_array("sp", matrix, callback=cb), total)
    run_both(lambda cb: small_parts_cci.download_sparse_array("sp", callback=cb), total)
    assert (small_parts_cci.download_sparse_array("sp") != matrix).nnz == 0


def test_dict2cloud_ends_at_the_leaves_array_bytes(small_parts_cci: CloudInterface) -> None:
    tree = {"a": data("zeros", 3 * MiB), "sub": {"b": data("noise", 3 * MiB), "c": [1, 2, 3]}}
    total = 6 * MiB + np.asarray([1, 2, 3]).nbytes
    run_both(lambda cb: small_parts_cci.dict2cloud("tree", tree, verbose=False, callback=cb), total)
    assert np.array_equal(small_parts_cci.cloud2dict("tree", verbose=False)["sub"]["b"], tree["sub"]["b"])


def test_object_and_file_transfers_end_at_their_bytes(small_parts_cci: CloudInterface, tmp_path: Path) -> None:
    body = np.random.default_rng(5).integers(0, 256, 13 * MiB, dtype=np.uint8).tobytes()
    src = tmp_path / "in.bin"
    src.write_bytes(body)
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a").write_bytes(body[: 7 * MiB])
    (folder / "b").write_bytes(b"b" * 123)
    cci = small_parts_cci
    run_both(lambda cb: cci.upload_object("o", body, callback=cb), len(body))
    run_both(lambda cb: cci.download_object("o", callback=cb), len(body))
    run_both(lambda cb: cci.upload_from_file(str(src), "f", callback=cb), len(body))
    run_both(lambda cb: cci.download_to_file("f", str(tmp_path / "out.bin"), callback=cb), len(body))
    run_both(lambda cb: cci.upload_from_directory(str(folder), "tree", callback=cb), 7 * MiB + 123)
    run_both(lambda cb: cci.download_directory("tree", str(tmp_path / "back"), callback=cb), 7 * MiB + 123)


@pytest.mark.parametrize("codec", ["gzip", False, "Zstd"])
def test_ccfs_put_and_get_count_the_array_bytes_they_announce(small_parts_cci: CloudInterface, tmp_path: Path,
                                                              codec: object) -> None:
    """What ``ccfs put``/``get`` do: the total is announced once known (a file's array, a stored spec)."""
    arr = np.concatenate([data("zeros", 3 * MiB), data("noise", 4 * MiB)])
    np.save(tmp_path / "a.npy", arr)
    store = small_parts_cci.store
    for transfer in (lambda p: upload_npy_file(store, str(tmp_path / "a.npy"), "p", codec, p.update, p.set_total),
                     lambda p: save_npy_file(store, "p", str(tmp_path / "b.npy"), p.update, total=p.set_total)):
        checked = Checked()
        with Progress(None, "t", enabled=False, callback=checked) as progress:
            transfer(progress)
        assert (checked.size, checked.value) == (arr.nbytes, arr.nbytes)
    assert np.array_equal(np.load(tmp_path / "b.npy"), arr)
    store.put("plain.npy", (tmp_path / "a.npy").read_bytes())  # an .npy object: copied as it is
    checked = Checked()
    with Progress(None, "t", enabled=False, callback=checked) as progress:
        save_npy_file(store, "plain.npy", str(tmp_path / "c.npy"), progress.update, total=progress.set_total)
    size = (tmp_path / "a.npy").stat().st_size
    assert (checked.size, checked.value) == (size, size)


# --- what a person sees on a terminal -------------------------------------------------------------

CHILD = """
import numpy as np, cottoncandy as cc, cottoncandy.progress as progress
progress.MIN_BYTES = 4 * 2**20  # a bar for these arrays, none for the small one
cci = cc.get_interface({bucket!r}, endpoint_url={endpoint!r}, verbose=True)
zeros, noise = np.zeros(2**20), np.random.default_rng(0).integers(0, 256, 8 * 2**20, dtype=np.uint8)
cci.upload_raw_array('pty/zeros', zeros)                          # gzip: stored in ~8 KiB
cci.upload_raw_array('pty/noise', noise, compression='LZ4')       # stored in more than the array
cci.download_raw_array('pty/zeros')                               # a small body, an 8 MiB array: a bar
cci.upload_raw_array('pty/small', np.zeros(10))                   # no bar
progress._tqdm_class = lambda: None                               # our own line, as without tqdm
cci.download_raw_array('pty/noise')
"""


def _run_on_a_pty(code: str, env: dict[str, str]) -> str:
    """Run ``python -c code`` with stderr (and stdout) on a pseudo-terminal; everything it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a new pty is 0 x 0
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=follower,
                             stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                raise AssertionError(f"the child wrote nothing for 120 s: {bytes(out)!r}")
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        assert child.wait(timeout=120) == 0, bytes(out).decode(errors="replace")
    return out.decode(errors="replace")


def last_bar(output: str, label: str) -> str:
    """The last state a bar labelled ``label`` was drawn in (bars redraw after a carriage return)."""
    states = [s for s in re.split(r"[\r\n]", output) if s.startswith(label + ":")]
    assert states, output
    return states[-1]


def test_bars_on_a_terminal_end_at_100_percent(s3: Any) -> None:
    env = {**os.environ, "TERM": "xterm"}
    output = _run_on_a_pty(CHILD.format(bucket=BUCKET, endpoint=s3.endpoint_url), env)
    assert re.match(r"upload pty/zeros: 100%\|.*\| 8\.00M/8\.00M", last_bar(output, "upload pty/zeros")), output
    assert re.match(r"upload pty/noise: 100%\|.*\| 8\.00M/8\.00M", last_bar(output, "upload pty/noise")), output
    assert re.match(r"download pty/zeros: 100%\|.*\| 8\.00M/8\.00M", last_bar(output, "download pty/zeros")), output
    assert last_bar(output, "download pty/noise").startswith("download pty/noise: 100.0% 8.0 MiB / 8.0 MiB")
    assert "pty/small" not in output
