"""Cross reads: cottoncandy 0.4.0 downloads what ours uploaded, and ours downloads what 0.4.0 uploaded.

The differential cases compare each library against itself; these read *the other library's*
objects, which is what matters when the stored bytes differ: our default (gzip) body is one gzip
member of parallel, full-flushed deflate blocks with a block index in its header, not 0.4.0's
level-9 ``GzipFile`` stream, and 0.4.0's reader (one ``zlib.decompressobj``) must still read all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.formats import pgzip

from .conftest import NEW_BUCKET, OLD_BUCKET
from .harness import reset_bucket

BLOCK = 64 * 2**10
rng = np.random.default_rng(11)
ARRAYS = {
    "empty": np.zeros((0, 4), dtype="<i4"),
    "scalar": np.array(2.25),
    "tiny": np.arange(3, dtype="<u2"),
    "exactly_one_block": rng.integers(0, 7, BLOCK, dtype=np.uint8),
    "many_blocks": np.cumsum(rng.standard_normal((250, 300)), axis=1).astype("<f4"),
    "big_endian_many": np.arange(70_000, dtype=">i8").reshape(700, 100),
    "fortran": np.asfortranarray(rng.random((120, 90))),
    "noncontiguous": rng.random((200, 300))[::2, ::3],
    "strings": np.array(["x", "yz", "abc"] * 5000),
}


@pytest.fixture
def ours(s3_server: Any, s3_client: Any) -> Any:
    reset_bucket(s3_client, NEW_BUCKET)
    return cc.get_interface(NEW_BUCKET, endpoint_url=s3_server.endpoint_url, verbose=False)


@pytest.mark.filterwarnings("ignore:.*not C-contiguous:UserWarning")
def test_040_reads_our_default_uploads(runners: Any, ours: Any, s3_server: Any, s3_client: Any,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)  # several blocks without large arrays
    for name, arr in ARRAYS.items():
        ours.upload_raw_array(name, arr)
        meta = {k.lower(): v for k, v in s3_client.head_object(Bucket=NEW_BUCKET, Key=name)["Metadata"].items()}
        assert meta["compression"] == "gzip" and pgzip.INDEX_KEY in meta, name
        block = int(meta[pgzip.INDEX_KEY].split(":")[1])
        row = arr.nbytes // arr.shape[0] if arr.ndim and arr.nbytes else 0
        assert row == 0 or row > BLOCK or block % row == 0, f"{name}: blocks of {block} B cut {row}-byte rows"
    old, _ = runners
    problems = []
    for name, arr in ARRAYS.items():
        answer = old.run(backend="s3", bucket=NEW_BUCKET, endpoint=s3_server.endpoint_url, tmp=str(tmp_path),
                         code="", expr=f"cci.download_raw_array({name!r})")
        if "exc" in answer:
            problems.append(f"{name}: 0.4.0 raised {answer['exc']['mro'][0]}: {answer['exc']['msg']}")
            continue
        back = np.load(answer["value"]["path"])
        if back.dtype != arr.dtype or back.shape != arr.shape or not np.array_equal(back, arr):
            problems.append(f"{name}: 0.4.0 read {back.dtype}{back.shape}, wrote {arr.dtype}{arr.shape}")
    assert not problems, "\n".join(problems)


def test_ours_reads_040_default_uploads(runners: Any, s3_server: Any, s3_client: Any, tmp_path: Path) -> None:
    reset_bucket(s3_client, OLD_BUCKET)
    old, _ = runners
    script = ("a = np.cumsum(np.arange(200000, dtype='<f8')).reshape(400, 500)\n"
              "cci.upload_raw_array('d', a)\ncci.upload_raw_array('e', np.zeros((0, 2)))\n")
    answer = old.run(backend="s3", bucket=OLD_BUCKET, endpoint=s3_server.endpoint_url, tmp=str(tmp_path),
                     code=script, expr="None")
    assert "exc" not in answer, answer
    mine = cc.get_interface(OLD_BUCKET, endpoint_url=s3_server.endpoint_url, verbose=False)
    expected = np.cumsum(np.arange(200000, dtype="<f8")).reshape(400, 500)
    assert np.array_equal(mine.download_raw_array("d"), expected)
    assert mine.download_raw_array("e").shape == (0, 2)
    meta = {k.lower(): v for k, v in s3_client.head_object(Bucket=OLD_BUCKET, Key="d")["Metadata"].items()}
    assert meta["compression"] == "gzip" and pgzip.INDEX_KEY not in meta  # 0.4.0's own single stream


# --- every codec, both ways -------------------------------------------------------------------

CODECS = ["gzip", "LZ4", "Zlib", "Zstd", "BZ2", "lzma"]
CODEC_ARRAY = np.cumsum(np.random.default_rng(12).standard_normal((300, 257)), axis=1).astype("<f4")


@pytest.mark.filterwarnings("ignore:.*not C-contiguous:UserWarning")
def test_every_codec_round_trips_through_both_libraries(runners: Any, ours: Any, s3_server: Any, s3_client: Any,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ours writes every codec and 0.4.0 reads it; 0.4.0 writes every codec and ours reads it.

    The 2 GB switch to ``large_array`` (Zstd) is lowered for our side (``formats.raw.GZIP_LIMIT``),
    so the default compression of a "large" array is exercised without writing 2 GB.
    """
    from cottoncandy.formats import raw as raw_format

    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)
    old, _ = runners
    arrays = {f"ours-{codec}": (codec, CODEC_ARRAY) for codec in CODECS}
    arrays["ours-noncontiguous-Zstd"] = ("Zstd", CODEC_ARRAY[:, ::3])
    for name, (codec, arr) in arrays.items():
        ours.upload_raw_array(name, arr, compression=codec)
    monkeypatch.setattr(raw_format, "GZIP_LIMIT", CODEC_ARRAY.nbytes - 1)
    ours.upload_raw_array("ours-large-default", CODEC_ARRAY)  # above the (lowered) limit: Zstd
    monkeypatch.undo()
    head = s3_client.head_object(Bucket=NEW_BUCKET, Key="ours-large-default")
    assert {k.lower(): v for k, v in head["Metadata"].items()}["compression"] == "Zstd"
    arrays["ours-large-default"] = ("Zstd", CODEC_ARRAY)
    problems = []
    for name, (_, arr) in arrays.items():
        answer = old.run(backend="s3", bucket=NEW_BUCKET, endpoint=s3_server.endpoint_url, tmp=str(tmp_path),
                         code="", expr=f"cci.download_raw_array({name!r})")
        if "exc" in answer:
            problems.append(f"0.4.0 reading our {name}: {answer['exc']['mro'][0]}: {answer['exc']['msg']}")
        elif not np.array_equal(np.load(answer["value"]["path"]), arr):
            problems.append(f"0.4.0 read our {name} wrong")
    reset_bucket(s3_client, OLD_BUCKET)
    script = "a = np.cumsum(np.random.default_rng(12).standard_normal((300, 257)), axis=1).astype('<f4')\n"
    script += "".join(f"cci.upload_raw_array('old-{codec}', a, compression={codec!r})\n" for codec in CODECS)
    answer = old.run(backend="s3", bucket=OLD_BUCKET, endpoint=s3_server.endpoint_url, tmp=str(tmp_path),
                     code=script, expr="None")
    assert "exc" not in answer, answer
    mine = cc.get_interface(OLD_BUCKET, endpoint_url=s3_server.endpoint_url, verbose=False)
    for codec in CODECS:
        back = mine.download_raw_array(f"old-{codec}")
        if not np.array_equal(back, CODEC_ARRAY):
            problems.append(f"ours read 0.4.0's {codec} wrong")
    assert not problems, "\n".join(problems)
