"""The 0.4.0 API over the real S3 server and the local backend."""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from tests.conftest import BUCKET

DTYPES = ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", ">i4", "<i8", "<u8", "<f2", "<f4", "<f8", ">f8", "<c8", "<c16",
          "<U3", "|S4"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compression", [False, True, "LZ4", "Zstd"])
def test_raw_array_roundtrip_dtypes(any_cci, dtype: str, compression: object) -> None:  # type: ignore[no-untyped-def]
    arr = (np.arange(35).reshape(7, 5) % 3).astype(dtype)
    any_cci.upload_raw_array("arr/x", arr, compression=compression)
    back = any_cci.download_raw_array("arr/x")
    assert back.dtype == arr.dtype and back.shape == arr.shape
    assert np.array_equal(back, arr)


@pytest.mark.parametrize("compression", [False, "gzip", "Zlib", "BZ2", "lzma"])
@pytest.mark.parametrize("shape", [(), (0, 4), (1,), (3, 1, 4), (10_000,)])
def test_raw_array_shapes(cci, shape: tuple[int, ...], compression: object) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(0).random(shape)  # empty arrays too, with every codec (0.4.0 failed there)
    cci.upload_raw_array("s", arr, compression=compression)
    assert np.array_equal(cci.download_raw_array("s"), arr)


def test_uploads_carry_exactly_0_4_0_metadata(cci) -> None:  # type: ignore[no-untyped-def]
    a = np.arange(35.0).reshape(7, 5)
    cases = [({"compression": False}, "False"), ({"compression": None}, "False"), ({}, "gzip"),
             ({"compression": True}, "gzip"), ({"compression": "gzip"}, "gzip"), ({"gzip": True}, "gzip"),
             ({"compression": "LZ4"}, "LZ4"), ({"compression": "zstd"}, "zstd")]
    for kwargs, stored in cases:
        cci.upload_raw_array("m", a, **kwargs)
        assert cci.get_metadata("m") == {"dtype": "<f8", "shape": "7,5", "compression": stored, "order": "C"}
    cci.upload_raw_array("m", a, compression=False, subject="s01", run="3")
    assert cci.get_metadata("m") == {"dtype": "<f8", "shape": "7,5", "compression": "False", "order": "C",
                                     "subject": "s01", "run": "3"}
    assert cci.get_object_info("m").size == 280
    cci.upload_raw_array("z", np.array(3.5), compression=False)
    assert cci.get_metadata("z")["shape"] == ""
    with pytest.warns(UserWarning, match="not C-contiguous"):
        cci.upload_raw_array("f", np.asfortranarray(a), compression=False)
    assert cci.get_metadata("f")["order"] == "C"
    assert cci.download_object("f") == a.tobytes()


def test_other_objects_match_0_4_0_bytes(any_cci) -> None:  # type: ignore[no-untyped-def]
    any_cci.upload_json("obj/c.json", {"a": [1, 2], "b": None, "c": "é"})
    assert any_cci.download_object("obj/c.json") == b'{"a": [1, 2], "b": null, "c": "\\u00e9"}'
    assert any_cci.download_json("obj/c.json") == {"a": [1, 2], "b": None, "c": "é"}
    any_cci.upload_json("obj/e.json", [1, 2], meta1="x")
    assert any_cci.get_metadata("obj/e.json") == {"meta1": "x"}
    any_cci.upload_pickle("obj/d.pkl", {"t": (1, 2)})
    assert any_cci.download_object("obj/d.pkl") == pickle.dumps({"t": (1, 2)})
    assert any_cci.download_pickle("obj/d.pkl") == {"t": (1, 2)}
    arr = np.arange(6).reshape(2, 3)
    any_cci.upload_npy_array("obj/a.npy", arr)
    saved = io.BytesIO()
    np.save(saved, arr)
    assert any_cci.download_object("obj/a.npy") == saved.getvalue()
    assert np.array_equal(any_cci.download_npy_array("obj/a.npy"), arr)
    any_cci.upload_object("obj/f.bin", io.BytesIO(b"hello"))
    stream = any_cci.download_stream("obj/f.bin")
    assert stream.content.read() == b"hello" and stream.metadata == {}


def test_object_names_are_cleaned(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_json("/lead/slash", 1)
    cci.upload_json("dbl//slash", 2)
    cci.upload_json("///x", 3)
    assert cci.exists_object("lead/slash") and cci.exists_object("dbl/slash") and cci.exists_object("x")
    assert cci.download_json("//dbl/slash") == 2
    assert not cci.exists_object("lead")  # a prefix is not an object


def test_files_roundtrip_and_downloads_are_atomic(any_cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(100_000))
    any_cci.upload_from_file(str(src), "files/in.bin")
    dst = tmp_path / "out" / "copy.bin"
    any_cci.download_to_file("files/in.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError):
        any_cci.download_to_file("files/missing", str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["copy.bin"]


def test_bad_input_errors(cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError) as err:
        cci.download_raw_array("no/such/array")
    assert BUCKET in str(err.value) and "no/such/array" in str(err.value)
    assert isinstance(err.value, RuntimeError)  # 0.4.0's type
    cci.upload_json("plain.json", {"a": 1})
    with pytest.raises((ValueError, KeyError), match="plain.json is not a raw array: its metadata lacks dtype, shape"):
        cci.download_raw_array("plain.json")
    with pytest.raises(ValueError, match="Unknown compression scheme.*supported"):
        cci.upload_raw_array("x", np.zeros(3), compression="snappy9")
    assert not cci.exists_object("x")
    with pytest.raises(TypeError, match="array must be a numpy.ndarray"):
        cci.upload_raw_array("x", [1, 2, 3])
    with pytest.raises(TypeError, match="object_name must be a str"):
        cci.upload_raw_array(3, np.zeros(3))
    with pytest.raises(ValueError, match="object_name"):
        cci.upload_raw_array("a/../b", np.zeros(3))
    with pytest.raises(ValueError, match="reserved"):
        cci.upload_raw_array("x", np.zeros(3), dtype="<f4")
    with pytest.raises(TypeError, match="Python objects"):
        cci.upload_raw_array("x", np.array([1, None]))
    with pytest.raises(TypeError, match="unexpected keyword"):
        cc.get_interface(BUCKET, endpoint_url="http://127.0.0.1:1", verbose=False, colour="red")
    with pytest.raises(ValueError, match="backend"):
        cc.get_interface(BUCKET, backend="ftp", verbose=False)


def test_truncated_or_corrupt_bodies_never_give_a_wrong_array(cci) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(5).random(5000)
    for compression in (False, "gzip", "Zstd", "LZ4"):
        info = cci.upload_raw_array("c", arr, compression=compression)
        body = cci.download_object("c")
        meta = cci.get_metadata("c")
        cci.store.put("c", body[: len(body) - 100], meta)
        with pytest.raises(ValueError, match="c"):
            cci.download_raw_array("c")
        assert info.size == len(body)
    cci.store.put("wrongshape", arr.tobytes(), {"dtype": "<f8", "shape": "6000", "compression": "False"})
    with pytest.raises(ValueError, match="body is 40000 bytes but"):
        cci.download_raw_array("wrongshape")


def test_legacy_objects_read(cci) -> None:  # type: ignore[no-untyped-def]
    import gzip as gz

    arr = np.arange(6, dtype="<i4").reshape(2, 3)
    cci.store.put("old", gz.compress(arr.tobytes()), {"dtype": "<i4", "shape": "2,3", "gzip": "True"})
    assert np.array_equal(cci.download_raw_array("old"), arr)
    f = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    cci.store.put("forder", f.tobytes(order="F"), {"dtype": "<f8", "shape": "3,4", "compression": "False",
                                                   "order": "F"})
    back = cci.download_raw_array("forder")
    assert np.array_equal(back, f) and back.flags.f_contiguous


def test_buckets_and_verbose_output(s3, capsys) -> None:  # type: ignore[no-untyped-def]
    s3.clear_log()
    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url)
    out = capsys.readouterr().out
    assert "Available buckets:" not in out and out == f"Current bucket: {BUCKET}\n"
    assert not [r for r in s3.requests() if r.method == "GET" and r.path == "/"]  # no ListBuckets
    cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, show_buckets=True)  # 0.4.0's listing, when asked
    assert capsys.readouterr().out == f"Available buckets:\n{BUCKET}\nCurrent bucket: {BUCKET}\n"
    assert repr(cci) == f"cottoncandy.backend_interface <bucket:{BUCKET} on {s3.endpoint_url}>"
    assert cci.exists_bucket(BUCKET) and not cci.exists_bucket("other-bucket")
    cci.create_bucket("other-bucket")
    cci.set_bucket("other-bucket")
    assert cci.bucket_name == "other-bucket"
    cci.upload_json("k", 1)
    with pytest.raises(OSError):
        cci.rm_bucket("other-bucket")  # not empty
    cci.store.delete("k")
    cci.rm_bucket("other-bucket")
    assert not cci.exists_bucket("other-bucket")
    with pytest.raises(FileNotFoundError, match="force_bucket_creation"):
        cc.get_interface("absent-bucket", endpoint_url=s3.endpoint_url, verbose=False)
    made = cc.get_interface("made-bucket", endpoint_url=s3.endpoint_url, verbose=False, force_bucket_creation=True)
    assert made.exists_bucket("made-bucket")
    assert cci.get_object("k").key == "k"


def test_config_file_and_acl(s3, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "cottoncandy" / "options.cfg"
    cfg.parent.mkdir()
    cfg.write_text(f"[login]\nendpoint_url = {s3.endpoint_url}\n[basic]\ndefault_acl = public-read\n"
                   "[compression]\nsmall_array = Zstd\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cci = cc.get_interface(BUCKET, verbose=False)
    assert cci.settings.endpoint_url == s3.endpoint_url and cci.settings.default_acl == "public-read"
    cci.upload_raw_array("cfg", np.zeros(4))
    assert cci.get_metadata("cfg")["compression"] == "Zstd"
    grants = cci.account.client.get_object_acl(Bucket=BUCKET, Key="cfg")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)


def test_no_acl_sent_by_default(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("noacl", np.zeros(4))
    grants = cci.account.client.get_object_acl(Bucket=BUCKET, Key="noacl")["Grants"]
    assert not any("AllUsers" in g["Grantee"].get("URI", "") or "AuthenticatedUsers" in g["Grantee"].get("URI", "")
                   for g in grants)


def test_local_backend_repr_and_sidecars(cci_local, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci_local.upload_raw_array("a/b/arr", np.arange(6.0).reshape(2, 3), compression=False)
    root = Path(cci_local.bucket_name)
    assert repr(cci_local) == f"cottoncandy.backend_interface on local machine ({root})"
    assert json.loads((root / "a/b/arr.meta.json").read_text())["shape"] == "2,3"
