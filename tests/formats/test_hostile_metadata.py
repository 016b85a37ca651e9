"""A hostile or broken bucket: forged objects written straight into the S3 server (boto3, crafted
metadata) or the local backend never run code, never allocate what they claim, and fail only
themselves - in the library, the CLI and a real mount."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import tracemalloc
import warnings
from pathlib import Path

import boto3
import numcodecs
import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.formats import codecs
from cottoncandy.formats.dask import MAX_MANIFEST_BYTES
from cottoncandy.formats.raw import spec_for_body, spec_from_metadata
from cottoncandy.storage.local import LocalStore
from tests.cliutil import run
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse


def forge(cci, key: str, body: bytes, metadata: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """An object written by someone else: straight to the server, bypassing cottoncandy."""
    client = boto3.client("s3", endpoint_url=cci.settings.endpoint_url)
    try:
        client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)
    finally:
        client.close()


RAW = {"compression": "False", "order": "C"}
PICKLED = bytes(numcodecs.Pickle().encode(np.array([1, None], dtype=object)))


# --- 1. no code from the bucket ---------------------------------------------------------------

@pytest.mark.parametrize("codec", ["pickle", "Pickle", "json2", "msgpack2", "vlen-utf8", "vlen-bytes",
                                   "vlen-array", "categorize", "blosc", "base64", "nope"])
def test_codecs_outside_the_allowlist_are_refused_on_read(cci, codec: str) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "evil/a", PICKLED, {"dtype": "<f8", "shape": "2", "compression": codec, "order": "C"})
    with pytest.raises(ValueError) as err:
        cci.download_raw_array("evil/a")
    assert "evil/a" in str(err.value) and "Unknown compression scheme" in str(err.value)


def test_pickle_codec_never_runs_even_with_an_object_dtype(cci, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ran = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: ran.append(a))  # what numcodecs.Pickle would call
    forge(cci, "evil/p", PICKLED, {"dtype": "|O", "shape": "2", "compression": "pickle", "order": "C"})
    with pytest.raises(ValueError, match="evil/p"):
        cci.download_raw_array("evil/p")
    assert ran == []


@pytest.mark.parametrize("codec", ["pickle", "json2", "msgpack2", "vlen-utf8", "blosc", "Blosc"])
def test_codecs_outside_the_allowlist_are_refused_on_write(cci, codec: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="Unknown compression scheme"):
        cci.upload_raw_array("w/a", np.arange(3.0), compression=codec)
    assert not cci.exists_object("w/a")


@pytest.mark.parametrize("codec", ["gzip", "LZ4", "lz4", "Zlib", "ZLIB", "Zstd", "zstd", "BZ2", "bz2", "lzma", "LZMA"])
def test_allowed_codecs_match_case_insensitively_and_keep_the_spelling(cci, codec: str) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(600.0).reshape(20, 30)
    cci.upload_raw_array("ok/a", arr, compression=codec)
    assert cci.get_object_info("ok/a").metadata["compression"] == codec  # as 0.4.0 stores it
    assert np.array_equal(cci.download_raw_array("ok/a"), arr)


def test_ccfs_put_refuses_a_pickle_codec(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "a.npy"
    np.save(src, np.arange(4.0))
    result = run(s3, "put", str(src), f"s3://{BUCKET}/up/a", "--compression", "pickle", ok=False)
    assert "Unknown compression scheme" in result.stderr and "pickle" in result.stderr
    assert not cci.exists_object("up/a")


# --- 3. metadata is untrusted input -----------------------------------------------------------

@pytest.mark.parametrize("dtype", ["i4,,f8", "(", "[" * 40, "O", "|O", "object", "i4,O", "(2,)f8", "S0", "U",
                                   "V0", "M8[999999999999999999999s]", "<" + "f" * 100, ""])
def test_hostile_dtype_is_a_value_error_naming_the_key(cci, dtype: str) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "bad/dt", b"\x00" * 16, {"dtype": dtype, "shape": "2", **RAW})
    with pytest.raises(ValueError) as err:
        cci.download_raw_array("bad/dt")
    assert "bad/dt" in str(err.value) and "dtype" in str(err.value)


@pytest.mark.parametrize("dtype", ["|O", "i4,O", "(2,)i4,(3,)O"])
def test_object_dtypes_never_come_out_of_a_read(cci, dtype: str) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "bad/obj", b"\x00" * 64, {"dtype": dtype, "shape": "2", **RAW})
    with pytest.raises(ValueError, match="Python objects"):
        cci.download_raw_array("bad/obj")


@pytest.mark.parametrize("shape", ["-1", "1e3", "2,x", "1," * 70, "9" * 2000, "99999999999999999999",
                                   "4294967296,4294967296,4294967296"])
def test_hostile_shape_is_a_value_error(cci, shape: str) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "bad/sh", b"\x00" * 16, {"dtype": "<f8", "shape": shape, **RAW})
    with pytest.raises(ValueError, match="bad/sh"):
        cci.download_raw_array("bad/sh")


@pytest.mark.parametrize("codec", ["False", "gzip", "LZ4", "Zstd", "Zlib", "BZ2", "lzma"])
def test_forged_shape_is_refused_before_allocating(cci, codec: str) -> None:  # type: ignore[no-untyped-def]
    small = np.zeros(10)
    body = small.tobytes() if codec == "False" else codecs.encode(memoryview(small).cast("B"), codec)
    forge(cci, "bad/huge", body, {"dtype": "<f8", "shape": str(10**12), "compression": codec, "order": "C"})
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="bad/huge") as err:
            cci.download_raw_array("bad/huge")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not isinstance(err.value, MemoryError)
    assert peak < 64 * 2**20, peak  # nothing near what the metadata claims (8 TB) was asked for


def test_a_body_that_lies_about_its_decoded_size_never_overflows(cci) -> None:  # type: ignore[no-untyped-def]
    # claims 80 bytes (fits its body's bound) but its LZ4 header and zstd frame say 2 GB
    arr = np.arange(10.0)
    lz4 = bytes(numcodecs.LZ4().encode(arr))
    forge(cci, "bad/lz4", (2**31 - 1).to_bytes(4, "little") + lz4[4:], {"dtype": "<f8", "shape": "10",
                                                                       "compression": "LZ4", "order": "C"})
    with pytest.raises(ValueError, match="declares 2147483647"):
        cci.download_raw_array("bad/lz4")
    bomb = codecs.encode(memoryview(np.zeros(2**24, np.uint8)), "BZ2")  # 16 MB of zeros
    forge(cci, "bad/bomb", bomb, {"dtype": "|u1", "shape": "1000", "compression": "BZ2", "order": "C"})
    with pytest.raises(ValueError, match="more than the 1000 bytes"):
        cci.download_raw_array("bad/bomb")


def test_spec_gate_checks_the_body_size() -> None:
    meta = {"dtype": "<f8", "shape": "7,5", "compression": "False"}
    assert spec_for_body(meta, 280, "k").shape == (7, 5)
    with pytest.raises(ValueError, match="body is 279 bytes"):
        spec_for_body(meta, 279, "k")
    assert spec_from_metadata(meta, "k").nbytes == 280  # the fields alone
    with pytest.raises(ValueError, match="decodes to at most"):
        spec_for_body({**meta, "shape": str(10**9), "compression": "gzip"}, 20, "k")
    # the bounds are the formats' own: real bodies of zeros stay under them
    for name in ("gzip", "Zlib", "LZ4", "Zstd", "BZ2", "lzma"):
        zeros = np.zeros(2**24, np.uint8)
        body = codecs.encode(memoryview(zeros), name)
        spec_for_body({"dtype": "|u1", "shape": str(zeros.size), "compression": name}, len(body), name)


def test_ccfs_get_refuses_a_truncated_body(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "bad/short", b"\x00" * 100, {"dtype": "<f8", "shape": "1000", **RAW})
    target = tmp_path / "out.npy"
    result = run(s3, "get", f"s3://{BUCKET}/bad/short", str(target), ok=False)
    assert "bad/short" in result.stderr and "body is 100 bytes" in result.stderr
    assert not target.exists() and not list(tmp_path.glob(".cc-get-*"))
    cci.upload_raw_array("good/a", np.arange(12.0).reshape(3, 4), compression="Zstd")
    run(s3, "get", f"s3://{BUCKET}/good/a", str(target))
    assert np.array_equal(np.load(target), np.arange(12.0).reshape(3, 4))


def manifest(cci, key: str, doc: object) -> None:  # type: ignore[no-untyped-def]
    forge(cci, f"{key}/metadata.json", json.dumps(doc).encode() if not isinstance(doc, bytes) else doc, {})
    forge(cci, f"{key}/pt0000", b"\x00" * 8, {"dtype": "<f8", "shape": "1", **RAW})


@pytest.mark.parametrize("doc", [
    {"shape": [3] * 30, "dtype": "<f8", "dask": [], "chunks": [[1, 1, 1]] * 30},  # 3**30 blocks in 2 KB
    {"shape": [10], "dtype": "i4,,f8", "dask": [[[0], "k/pt0000"]], "chunks": [[10]]},
    {"shape": [10], "dtype": "|O", "dask": [[[0], "k/pt0000"]], "chunks": [[10]]},
    {"shape": [True], "dtype": "<f8", "dask": [[[0], "k/pt0000"]], "chunks": [[1]]},
    {"shape": [1], "dtype": "<f8", "dask": [[[5], "k/pt0000"]], "chunks": [[1]]},
    {"shape": [1], "dtype": "<f8", "dask": [[[0], 7]], "chunks": [[1]]},
    {"shape": [10**15], "dtype": "<f8", "dask": [[[0], "k/pt0000"]], "chunks": [[10**15]]},
    [1, 2, 3],
])
def test_hostile_dask_manifests_are_refused_quickly(cci, doc: object) -> None:  # type: ignore[no-untyped-def]
    manifest(cci, "k", doc)
    with pytest.raises(ValueError, match="k"):
        cci.download_dask_array("k")


def test_deep_or_huge_manifests_are_refused(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest(cci, "deep", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        cci.download_dask_array("deep")
    store = LocalStore(tmp_path)
    store.put("big/metadata.json", b" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ValueError, match="more than a manifest can be"):
        cc.get_interface(str(tmp_path), backend="local", verbose=False).download_dask_array("big")


def test_ccfs_info_on_a_blowup_manifest_fails_fast(s3, cci) -> None:  # type: ignore[no-untyped-def]
    manifest(cci, "blow", {"shape": [3] * 30, "dtype": "<f8", "dask": [[[0] * 30, "blow/pt0000"]],
                           "chunks": [[1, 1, 1]] * 30})
    result = run(s3, "info", f"s3://{BUCKET}/blow", ok=False)
    assert "blow" in result.stderr and "parts for a grid" in result.stderr


@pytest.mark.parametrize("doc", [{"type": "csr", "attrs": "data", "shape": [1, 1]},
                                 {"type": ["csr"], "attrs": [], "shape": [1, 1]},
                                 {"type": "csr", "attrs": ["data", "indices", "indptr"], "shape": [1, -1]},
                                 {"type": "csr", "attrs": ["data", "indices", "indptr"], "shape": "1,1"}])
def test_hostile_sparse_manifests_are_value_errors(cci, doc: object) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "sp/metadata.json", json.dumps(doc).encode(), {})
    with pytest.raises(ValueError, match="sp"):
        cci.download_sparse_array("sp")


def test_a_dask_part_claiming_more_than_its_body_is_refused(cci) -> None:  # type: ignore[no-untyped-def]
    forge(cci, "dk/metadata.json", json.dumps({"shape": [10**9], "dtype": "<f8", "dask": [[[0], "dk/pt0000"]],
                                               "chunks": [[10**9]]}).encode(), {})
    forge(cci, "dk/pt0000", b"\x00" * 8, {"dtype": "<f8", "shape": str(10**9), "compression": "gzip"})
    with pytest.raises(ValueError, match="dk/pt0000"):
        cci.download_dask_array("dk")


# --- one bad object fails only itself ---------------------------------------------------------

def plant_bad_objects(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("mix/good", np.arange(5.0), compression=False)
    cci.upload_raw_array("mix/zgood", np.arange(6.0), compression="Zstd")
    forge(cci, "mix/codec", PICKLED, {"dtype": "<f8", "shape": "2", "compression": "pickle", "order": "C"})
    forge(cci, "mix/dtype", b"\x00" * 16, {"dtype": "i4,,f8", "shape": "2", **RAW})
    forge(cci, "mix/huge", codecs.encode(memoryview(np.zeros(8, np.uint8)), "gzip"),
          {"dtype": "<f8", "shape": str(10**12), "compression": "gzip", "order": "C"})


def test_cloud2dict_skips_a_bad_object_with_a_warning(cci) -> None:  # type: ignore[no-untyped-def]
    plant_bad_objects(cci)
    with warnings.catch_warnings(record=True) as caught:  # (not pytest.warns: it re-raises the
        warnings.simplefilter("always")                 # ResourceWarnings of unrelated garbage)
        result = cci.cloud2dict("mix", verbose=False)
    caught = [w for w in caught if issubclass(w.category, UserWarning)]
    assert np.array_equal(result["good"], np.arange(5.0)) and np.array_equal(result["zgood"], np.arange(6.0))
    assert result["codec"] is None and result["dtype"] is None and result["huge"] is None
    text = " ".join(str(w.message) for w in caught)
    assert "mix/codec" in text and "mix/dtype" in text and "mix/huge" in text


def test_browser_shows_a_folder_with_bad_objects(cci) -> None:  # type: ignore[no-untyped-def]
    plant_bad_objects(cci)
    folder = cci.get_browser().mix
    assert set(folder.keys()) >= {"good", "codec", "dtype", "huge"}
    assert "dataset" in repr(folder.dtype) and np.array_equal(folder.good.load(), np.arange(5.0))
    with pytest.raises(ValueError, match="mix/dtype"):
        folder.dtype.load()


def test_download_directory_copies_bad_objects_verbatim(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plant_bad_objects(cci)  # it copies bytes and parses no metadata: nothing to refuse, nothing fails
    written = cci.download_directory("mix", str(tmp_path / "out"))
    assert sorted(Path(p).name for p in written) == ["codec", "dtype", "good", "huge", "zgood"]
    assert (tmp_path / "out" / "codec").read_bytes() == PICKLED


def test_download_directory_never_follows_a_symlink_out_of_a_local_bucket(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    local = cc.get_interface(str(root), backend="local", verbose=False)
    local.upload_raw_array("d/good", np.arange(3.0), compression=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the bucket")
    os.symlink(secret, root / "d" / "leak")
    written = local.download_directory("d", str(tmp_path / "out"))
    assert [Path(p).name for p in written] == ["good"]
    assert not (tmp_path / "out" / "leak").exists()
    with pytest.raises(ValueError, match="symlink leading outside"):
        local.download_object("d/leak")


def test_local_sidecar_symlinked_outside_the_bucket_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    local = cc.get_interface(str(root), backend="local", verbose=False)
    local.upload_raw_array("a/x", np.arange(3.0), compression=False)
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"dtype": "<f8", "shape": "3", "compression": "False", "order": "C"}))
    sidecar = root / "a" / "x.meta.json"
    sidecar.unlink()
    os.symlink(outside, sidecar)
    with pytest.raises(ValueError, match="symlink leading outside"):
        local.download_raw_array("a/x")
    sidecar.unlink()
    os.symlink(root / "a" / "inside.json", sidecar)  # inside the root: followed
    (root / "a" / "inside.json").write_text(outside.read_text())
    assert np.array_equal(local.download_raw_array("a/x"), np.arange(3.0))
    for bad in (b"[1, 2]", b"{" * 5000, b"x" * (2**17)):
        sidecar.unlink()
        sidecar.write_bytes(bad)
        with pytest.raises(ValueError, match="sidecar"):
            local.download_raw_array("a/x")


@needs_fuse
@pytest.mark.fuse
def test_mount_lists_a_folder_with_bad_objects_and_fails_only_them(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plant_bad_objects(cci)
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, expect_errors=True) as m:
        names = sorted(os.listdir(m / "mix"))
        assert names == ["codec.npy", "dtype.npy", "good.npy", "huge.npy", "zgood.npy"]
        for name in ("codec.npy", "dtype.npy", "huge.npy"):
            with pytest.raises(OSError) as err, open(m / "mix" / name, "rb") as fh:
                fh.read(16)
            assert err.value.errno == errno.EIO, name
        assert np.array_equal(np.load(m / "mix/good.npy"), np.arange(5.0))
        assert np.array_equal(np.load(m / "mix/zgood.npy"), np.arange(6.0))
        assert os.stat(m / "mix/huge.npy").st_size < 1000  # the body's size, not the 8 TB it claims
    errors = mounted.last_errors  # type: ignore[attr-defined]
    for key in ("mix/codec", "mix/dtype", "mix/huge"):
        assert sum(key in line for line in errors) == 1, (key, errors)


def test_a_forged_npy_header_is_refused_before_np_load_allocates(cci) -> None:  # type: ignore[no-untyped-def]
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (10**12,)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    forge(cci, "npy/forged.npy", buffer.getvalue() + b"\x00" * 8, {})
    with pytest.raises(ValueError, match="npy/forged.npy: its .npy header describes 8000000000000 bytes"):
        cci.download_npy_array("npy/forged.npy")
    cci.upload_npy_array("npy/good.npy", np.arange(4.0))
    assert np.array_equal(cci.download_npy_array("npy/good.npy"), np.arange(4.0))


def test_cloud2dict_on_a_local_bucket_skips_a_bad_sidecar(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    local = cc.get_interface(str(root), backend="local", verbose=False)
    local.upload_raw_array("t/good", np.arange(3.0), compression=False)
    local.upload_raw_array("t/bad", np.arange(3.0), compression=False)
    (root / "t" / "bad.meta.json").write_text("[not, an, object")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = local.cloud2dict("t", verbose=False)
    assert np.array_equal(result["good"], np.arange(3.0)) and result["bad"] is None
    assert any("t/bad" in str(w.message) and "sidecar" in str(w.message) for w in caught)


def test_an_object_with_a_bad_local_sidecar_can_still_be_named_and_removed(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    local = cc.get_interface(str(root), backend="local", verbose=False)
    local.upload_raw_array("t/bad", np.arange(3.0), compression=False)
    local.upload_raw_array("t/good", np.arange(3.0), compression=False)
    (root / "t" / "bad.meta.json").write_text("[not, an, object")
    assert local.exists_object("t/bad")
    assert local.rm("t/bad") == ["t/bad"]  # the hostile object can be deleted; nothing else goes
    assert not (root / "t" / "bad").exists() and not (root / "t" / "bad.meta.json").exists()
    assert np.array_equal(local.download_raw_array("t/good"), np.arange(3.0))


@needs_fuse
@pytest.mark.fuse
def test_mount_of_a_local_bucket_lists_a_folder_with_a_bad_sidecar(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    local = cc.get_interface(str(root), backend="local", verbose=False)
    local.upload_raw_array("t/bad", np.arange(3.0), compression=False)
    local.upload_raw_array("t/good", np.arange(4.0), compression=False)
    (root / "t" / "bad.meta.json").write_text("[not, an, object")
    with mounted(str(root), tmp_path, expect_errors=True) as m:
        names = sorted(os.listdir(m / "t"))
        assert "good.npy" in names and any(n.startswith("bad") for n in names), names
        assert np.array_equal(np.load(m / "t/good.npy"), np.arange(4.0))


@pytest.mark.parametrize("descr", ['"(2,)<f8"', '"<c16"', '[["a", "<f8"], ["b", "<f8"], ["c", "|O"]]'])
def test_a_dtype_descr_that_is_not_a_record_type_is_refused(cci, descr: str) -> None:  # type: ignore[no-untyped-def]
    """``"(2,)<f8"`` is 16 bytes like ``|V16``, but a sub-array dtype would make a shape-2 array (2, 2)."""
    forge(cci, "evil/descr", np.arange(4, dtype="<f8").tobytes(),
          {"dtype": "|V16", "shape": "2", **RAW, "dtype-descr": descr})
    with pytest.raises(ValueError) as err:
        cci.download_raw_array("evil/descr")
    assert "evil/descr" in str(err.value) and "dtype-descr" in str(err.value)


def test_a_dtype_descr_with_sub_array_fields_still_reads(cci) -> None:  # type: ignore[no-untyped-def]
    arr = np.zeros(3, dtype=[("a", "<f8", (2,)), ("b", "<i4")])
    arr["a"] = [[1, 2], [3, 4], [5, 6]]
    cci.upload_raw_array("ok/descr", arr, compression=False)
    got = cci.download_raw_array("ok/descr")
    assert got.dtype == arr.dtype and got.shape == (3,) and got.tobytes() == arr.tobytes()
