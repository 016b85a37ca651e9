"""Dask arrays, sparse matrices, trees and the browser, over the real S3 server and the local backend."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cottoncandy.formats.dask import plan_split
from tests.conftest import BUCKET
from tests.corpusutil import c_order_sha, load_corpus_into
from tests.datautil import SPREAD, distinct_int64

MB = 2**20


def settled_requests(s3, method: str = "GET", settle: float = 0.3):  # type: ignore[no-untyped-def]
    """The server logs a request once its body is sent, which can trail the client a moment."""
    import time

    time.sleep(settle)
    return [r for r in s3.requests() if r.method == method]


# --- the split plan (pure) --------------------------------------------------------------------


def test_plan_split_matches_the_layouts_0_4_0_wrote() -> None:
    last = plan_split((8, 120, 1500), 8, -1, 5 * MB)
    assert last.chunks == ((8,), (120,), (683, 683, 134, 0))
    assert [p.coords for p in last.parts] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)]
    first = plan_split((8, 120, 1500), 8, 0, 5 * MB)
    assert first.chunks == ((4, 4, 0), (120,), (1500,))
    cubes = plan_split((8, 120, 1500), 8, None, 5 * MB)
    assert len(cubes.parts) == 114 and cubes.parts[0].shape == (8, 87, 87)


def test_plan_split_refuses_what_0_4_0_asserts() -> None:
    with pytest.raises(ValueError, match="at least"):
        plan_split((100,), 8, -1, MB)
    with pytest.raises(ValueError, match="10000 parts"):
        plan_split((10**11,), 8, -1, 5 * MB)
    with pytest.raises(ValueError, match="0-d"):
        plan_split((), 8, -1, 5 * MB)


# --- dask arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, 0, None])
def test_dask_array_roundtrip_in_0_4_0_layout(any_cci, axis) -> None:  # type: ignore[no-untyped-def]
    arr = distinct_int64(8 * 120 * 1500).reshape(8, 120, 1500)
    any_cci.upload_dask_array("dask/x", arr, axis=axis, buffersize=5 * MB, subject="s01")
    meta = any_cci.download_json("dask/x/metadata.json")
    assert list(meta) == ["shape", "dtype", "dask", "chunk_sizes", "chunks"]
    assert any_cci.get_metadata("dask/x/metadata.json") == {"subject": "s01"}
    assert any_cci.get_metadata("dask/x/pt0000")["compression"] == "gzip"
    lazy = any_cci.download_dask_array("dask/x")
    assert lazy.shape == arr.shape and lazy.dtype == arr.dtype
    assert np.array_equal(lazy.compute(), arr)
    assert np.array_equal(lazy[3:5, 7, 100:900].compute(), arr[3:5, 7, 100:900])


def test_dask_input_is_uploaded_part_by_part(cci) -> None:  # type: ignore[no-untyped-def]
    import dask.array as da

    source = (da.arange(6 * 400 * 700, dtype=np.int64, chunks=100_000) * SPREAD).reshape(6, 400, 700)
    cci.upload_dask_array("dask/from_dask", source, axis=1, buffersize=5 * MB)
    back = cci.download_dask_array("dask/from_dask")
    assert back.chunks[1][-1] == 0  # the trailing empty part 0.4.0 writes
    assert np.array_equal(back.compute(), source.compute())


def test_slicing_fetches_only_the_parts_it_touches(cci, s3) -> None:  # type: ignore[no-untyped-def]
    arr = distinct_int64(8 * 120 * 1500).reshape(8, 120, 1500)
    cci.upload_dask_array("dask/sliced", arr, axis=-1, buffersize=5 * MB)
    lazy = cci.download_dask_array("dask/sliced")
    s3.clear_log()
    assert np.array_equal(lazy[..., :10].compute(), arr[..., :10])
    part_gets = {r.path for r in settled_requests(s3) if "/pt" in r.path}
    assert part_gets == {f"/{BUCKET}/dask/sliced/pt0000"}


def test_a_part_is_fetched_without_a_head(cci, s3) -> None:  # type: ignore[no-untyped-def]
    """Computing a dask array sends no HEAD: each part's first GET brings its metadata (and the
    whole body of a part that fits in it)."""
    arr = distinct_int64(8 * 120 * 1500).reshape(8, 120, 1500)
    cci.upload_dask_array("dask/nohead", arr, axis=-1, buffersize=5 * MB)
    lazy = cci.download_dask_array("dask/nohead")
    parts = {f"/{BUCKET}/dask/nohead/pt{i:04d}" for i, width in enumerate(lazy.chunks[-1]) if width}
    s3.clear_log()
    assert np.array_equal(lazy.compute(), arr)
    assert {r.path for r in settled_requests(s3) if "/pt" in r.path} == parts  # (an empty part: no request)
    assert len(parts) >= 2 and settled_requests(s3, "HEAD", settle=0) == []


def test_two_dask_arrays_in_one_graph_do_not_collide(cci) -> None:  # type: ignore[no-untyped-def]
    a = np.ones((10, 700_000))
    cci.upload_dask_array("dask/a", a, buffersize=5 * MB)
    cci.upload_dask_array("dask/b", 2 * a, buffersize=5 * MB)
    total = (cci.download_dask_array("dask/a") + cci.download_dask_array("dask/b")).sum().compute()
    assert total == 3 * a.size


def test_dask_graph_is_small_and_picklable(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_dask_array("dask/p", np.zeros((4, 700_000)), buffersize=5 * MB)
    lazy = cci.download_dask_array("dask/p")
    blob = pickle.dumps(dict(lazy.__dask_graph__()))
    assert len(blob) < 10_000 and b"testing-secret" not in blob


def test_dask_array_computes_on_a_distributed_cluster_of_processes(cci) -> None:  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    arr = np.random.default_rng(1).random((6, 300_000))
    cci.upload_dask_array("dask/cluster", arr, axis=-1, buffersize=5 * MB)
    lazy = cci.download_dask_array("dask/cluster")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        total = client.compute(lazy.sum()).result()
        pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert np.isclose(total, arr.sum())
    assert len(pids) == 2 and __import__("os").getpid() not in pids


def test_missing_manifest_or_part_is_a_clear_error(cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="dask/none is not a dask array: nothing is stored"):
        cci.download_dask_array("dask/none")
    cci.upload_dask_array("dask/broken", np.zeros((4, 400_000)), buffersize=5 * MB)
    cci.rm("dask/broken/pt0001")
    with pytest.raises(FileNotFoundError, match=r"part dask/broken/pt0001 is missing"):
        cci.download_dask_array("dask/broken")
    cci.rm("dask/broken/metadata.json")
    with pytest.raises(FileNotFoundError, match="metadata.json is missing"):
        cci.download_dask_array("dask/broken")


def test_replaced_part_after_open_is_estale(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_dask_array("dask/stale", np.zeros((4, 400_000)), buffersize=5 * MB)
    lazy = cci.download_dask_array("dask/stale")
    cci.upload_raw_array("dask/stale/pt0000", np.ones(lazy.blocks[0].shape))
    with pytest.raises(OSError, match="replaced"):
        lazy.compute()


def test_failed_dask_upload_leaves_nothing_behind(cci, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import cottoncandy.arrays.chunked as chunked

    calls = {"n": 0}
    real = chunked.write_raw_array

    def flaky(store, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if key.endswith("pt0002"):
            raise OSError(5, "network down")
        return real(store, key, *args, **kwargs)

    monkeypatch.setattr(chunked, "write_raw_array", flaky)
    with pytest.raises(OSError, match="network down") as info:
        cci.upload_dask_array("dask/failed", np.zeros((4, 700_000)), buffersize=5 * MB)
    assert any("removed" in note for note in info.value.__notes__)
    assert cci.glob("dask/failed/**") == []


@pytest.mark.parametrize("version", [(3, 10, 14), (3, 11, 0)])
def test_cleanup_notes_work_on_every_supported_python(monkeypatch, version) -> None:  # type: ignore[no-untyped-def]
    """Python 3.10 has no ``BaseException.add_note``: the cleanup must still say what it removed
    (kept in ``__notes__``, where 3.11+ keeps notes) instead of raising AttributeError."""
    import types

    import cottoncandy.storage.base as base
    from cottoncandy.storage import MemoryStore

    monkeypatch.setattr(base, "sys", types.SimpleNamespace(version_info=version))
    store = MemoryStore()
    store.put("part0", b"x")
    failure = OSError(5, "network down")
    base.delete_after_failure(store, ["part0", "part1"], failure, "parts")
    assert failure.__notes__ == ["cottoncandy: removed the 2 parts this write stored or may have stored"]
    assert not store.exists("part0")


def test_reupload_with_fewer_parts_removes_stale_parts(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_dask_array("dask/re", np.zeros((4, 1_000_000)), buffersize=5 * MB)
    many = len(cci.glob("dask/re/pt*"))
    cci.upload_dask_array("dask/re", np.zeros((4, 10)), buffersize=5 * MB)
    assert len(cci.glob("dask/re/pt*")) == 2 < many
    assert np.array_equal(cci.download_dask_array("dask/re").compute(), np.zeros((4, 10)))


def test_moved_dask_array_still_reads(cci) -> None:  # type: ignore[no-untyped-def]
    arr = distinct_int64(2_000_000).reshape(2, -1)
    cci.upload_dask_array("dask/old", arr, buffersize=5 * MB)
    cci.mv("dask/old", "dask/new", recursive=True)
    assert np.array_equal(cci.download_dask_array("dask/new").compute(), arr)


# --- raw array as dask by byte ranges ---------------------------------------------------------


@pytest.mark.parametrize("chunks", [(7, 50, 13), (1, 200, 13), (40, 50, 1), "auto", -1])
def test_raw_array_as_dask_reads_ranges(any_cci, chunks) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(2).random((40, 200, 13)).astype(">f4")
    any_cci.upload_raw_array("raw/big", arr, compression=False)
    lazy = any_cci.download_raw_array_as_dask("raw/big", chunks=chunks)
    assert lazy.dtype == arr.dtype
    assert np.array_equal(lazy.compute(), arr)
    assert np.array_equal(lazy[5:9, ::3, 2].compute(), arr[5:9, ::3, 2])


def test_raw_array_as_dask_moves_only_the_bytes_asked(cci, s3) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(1000 * 4096, dtype=np.float32).reshape(1000, 4096)  # 16 KiB rows
    cci.upload_raw_array("raw/rows", arr, compression=False)
    lazy = cci.download_raw_array_as_dask("raw/rows", chunks=(10, 4096))
    s3.clear_log()
    assert np.array_equal(lazy[500:510].compute(), arr[500:510])
    sent = sum(r.bytes_sent for r in settled_requests(s3))
    assert sent == 10 * 4096 * 4


def test_raw_array_as_dask_refuses_compressed(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("raw/gz", np.zeros(10), compression="gzip")
    with pytest.raises(ValueError, match="gzip-compressed"):
        cci.download_raw_array_as_dask("raw/gz")


def test_raw_array_as_dask_of_fortran_order(cci) -> None:  # type: ignore[no-untyped-def]
    arr = np.asfortranarray(np.arange(60.0).reshape(6, 10))
    cci.store.put("raw/f", arr.tobytes(order="F"), {"dtype": "<f8", "shape": "6,10", "compression": "False",
                                                    "order": "F"})
    assert np.array_equal(cci.download_raw_array_as_dask("raw/f", chunks=(4, 3)).compute(), arr)


# --- sparse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"])
@pytest.mark.parametrize("flavour", ["matrix", "array"])
def test_sparse_roundtrip(any_cci, kind: str, flavour: str) -> None:  # type: ignore[no-untyped-def]
    sp = pytest.importorskip("scipy.sparse")
    dense = np.random.default_rng(3).random((12, 9)) * (np.random.default_rng(4).random((12, 9)) > 0.7)
    matrix = getattr(sp, f"{kind}_{flavour}")(dense)
    any_cci.upload_sparse_array("sparse/m", matrix)
    stored = "csr" if kind in ("lil", "dok") else kind
    meta = any_cci.download_json("sparse/m/metadata.json")
    assert meta["type"] == stored and meta["shape"] == [12, 9]
    back = any_cci.download_sparse_array("sparse/m")
    assert back.format == stored and isinstance(back, sp.spmatrix)
    assert np.array_equal(back.toarray(), dense)


def test_sparse_missing_part_names_it(cci) -> None:  # type: ignore[no-untyped-def]
    sp = pytest.importorskip("scipy.sparse")
    cci.upload_sparse_array("sparse/broken", sp.csr_matrix(np.eye(4)))
    cci.rm("sparse/broken/indptr")
    with pytest.raises(FileNotFoundError, match="sparse/broken: sparse array part 'indptr' is missing"):
        cci.download_sparse_array("sparse/broken")
    with pytest.raises(TypeError, match="scipy.sparse"):
        cci.upload_sparse_array("sparse/dense", np.eye(3))


# --- the 0.4.0 corpus -------------------------------------------------------------------------


def test_corpus_dask_sparse_and_tree_values_read_back(cci) -> None:  # type: ignore[no-untyped-def]
    expected = load_corpus_into(lambda k, b, m: cci.store.put(k, b, m))
    checked = 0
    for key, want in expected.items():
        if want["kind"] == "dask_array":
            lazy = cci.download_dask_array(key)
            value = lazy.compute()
            assert np.array_equal(lazy[2:5, 10:20, 600:700].compute(), value[2:5, 10:20, 600:700])
        elif want["kind"] == "sparse_array":
            value = cci.download_sparse_array(key).toarray()
        else:
            continue
        assert value.dtype == np.dtype(want["dtype"]) and list(value.shape) == want["shape"], key
        assert c_order_sha(value) == want["sha256_c_order"], key
        checked += 1
    assert checked == 9
    tree = cci.cloud2dict("proj/sub01_analysis.grp", verbose=False)
    assert set(tree) == {"model01", "sub"} and set(tree["sub"]) == {"labels", "weights"}
    assert c_order_sha(tree["sub"]["weights"]) == expected["proj/sub01_analysis.grp/sub/weights"]["sha256_c_order"]


# --- trees ------------------------------------------------------------------------------------


def test_dict2cloud_matches_0_4_0_and_cloud2dict_reads_it(any_cci, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = {"model01": np.arange(5.0), "sub": {"weights": np.eye(3), "labels": np.arange(4)}, "scalar": 3,
            "name": "hello", "lst": [1, 2]}
    any_cci.dict2cloud("proj/sub01_awesome_analysis.grp", tree)
    out = capsys.readouterr().out.splitlines()
    assert out == ['uploaded arrays in "proj/sub01_awesome_analysis.grp/sub"',
                   'uploaded arrays in "proj/sub01_awesome_analysis.grp"']
    assert any_cci.get_metadata("proj/sub01_awesome_analysis.grp/name") == {
        "dtype": "<U5", "shape": "", "compression": "gzip", "order": "C"}
    back = any_cci.cloud2dict("proj/sub01_awesome_analysis.grp", verbose=False)
    assert back["scalar"] == 3 and back["name"] == "hello" and list(back["lst"]) == [1, 2]
    assert np.array_equal(back["sub"]["weights"], np.eye(3))
    some = any_cci.cloud2dict("proj/sub01_awesome_analysis.grp", verbose=False, keys=["model01"])
    assert list(some) == ["model01"]
    with pytest.raises(KeyError, match="no key 'nope'"):
        any_cci.cloud2dict("proj/sub01_awesome_analysis.grp", keys="nope")


def test_dict2cloud_refuses_object_arrays_before_writing_anything(cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=r"bad\.grp/objs.*Python objects.*nothing was uploaded"):
        cci.dict2cloud("bad.grp", {"fine": np.ones(3), "objs": [1, None]}, verbose=False)
    with pytest.raises(ValueError, match=r"bad\.grp/ragged.*nothing was uploaded"):
        cci.dict2cloud("bad.grp", {"fine": np.ones(3), "ragged": [[1, 2], [3]]}, verbose=False)
    assert cci.glob("bad.grp/**") == []
    with pytest.raises(ValueError, match="'..'"):
        cci.dict2cloud("bad.grp", {"..": np.ones(3)}, verbose=False)
    with pytest.raises(ValueError, match=r"'\.' or '\.\.'"):
        cci.upload_raw_array("a/../b", np.ones(3))


def test_cloud2dict_marks_non_arrays_none(cci, capsys) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("t/a", np.ones(2))
    cci.upload_json("t/cfg.json", {"x": 1})
    back = cci.cloud2dict("t")
    assert back["cfg.json"] is None and np.array_equal(back["a"], np.ones(2))
    assert "Could not download" in capsys.readouterr().out
    assert cci.cloud2dict("nothing/here", verbose=False) is None


# --- browser ----------------------------------------------------------------------------------


def test_browser_names_reprs_and_loading(cci) -> None:  # type: ignore[no-untyped-def]
    import cottoncandy as cc

    cci.dict2cloud("proj/sub01_awesome_analysis.grp", {"model01": np.arange(10000.0), "model02": np.ones(3),
                                                       "sub": {"w": np.eye(2)}}, verbose=False,)
    cci.upload_json("obj/c.json", {"a": 1})
    cci.upload_raw_array("odd/9lives", np.ones(2))
    cci.upload_raw_array("odd/my-name", np.ones(2))
    cci.upload_raw_array("odd/x.y.z", np.ones(2))
    b = cc.get_browser(BUCKET, endpoint_url=cci.settings.endpoint_url)
    assert repr(b) == f"cottoncandy-path <bucket:{BUCKET}> "
    assert "proj" in dir(b) and repr(b.proj) == f"cottoncandy-path <bucket:{BUCKET}> proj"
    group = b.proj.sub01_awesome_analysis_DOT_grp
    assert repr(group) == f"<cottoncandy-group <bucket:{BUCKET}> (sub01_awesome_analysis.grp: 3 keys)>"
    assert group.keys() == ["model01", "model02", "sub"]
    assert {"keys", "load", "model01"} <= set(dir(group))
    size = cci.get_object_info("proj/sub01_awesome_analysis.grp/model01").size / 2**20
    assert repr(group.model01) == f"<cottoncandy-dataset <bucket:{BUCKET} [{size:.2f}MB:shape=(10000)]>"
    assert np.array_equal(group.model01(), np.arange(10000.0))
    assert np.array_equal(group.load("model02"), np.ones(3))
    assert np.array_equal(group.sub.w.load(), np.eye(2))
    assert repr(b.obj.c_DOT_json).startswith(f"cottoncandy-file <bucket:{BUCKET}> [0.0MB]")
    assert set(dir(b.odd)) == {"NUM_9lives", "my_name", "x.y_DOT_z"}
    assert np.array_equal(getattr(b.odd, "x.y.z")(), np.ones(2))
    assert not hasattr(b, "nothing_here")
    with pytest.raises(AssertionError):
        b.nothing_here  # noqa: B018 - 0.4.0 raised AssertionError here
    ds = cci.cloud2dataset("proj/sub01_awesome_analysis.grp")
    assert ds.keys() == ["model01", "model02", "sub"]


def test_browser_loads_dask_and_sparse_folders(cci) -> None:  # type: ignore[no-untyped-def]
    sp = pytest.importorskip("scipy.sparse")
    cci.upload_dask_array("data.grp/d", np.ones((2, 700_000)), buffersize=5 * MB)
    cci.upload_sparse_array("data.grp/s", sp.csr_matrix(np.eye(3)))
    group = cci.get_browser().data_DOT_grp
    assert group.d.load().sum().compute() == 1_400_000
    assert np.array_equal(group.s.load().toarray(), np.eye(3))


def test_progress_bar_only_on_a_terminal(cci, capsys) -> None:  # type: ignore[no-untyped-def]
    import io

    from cottoncandy.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        with Progress(100, "upload x", stream=stream, bar="line") as progress:
            progress.update(100)
    assert "upload x: 100.0% 100 B / 100 B" in tty.getvalue() and pipe.getvalue() == ""
    tqdm_tty, tqdm_pipe = Tty(), io.StringIO()  # tqdm (installed with the test extra) by the same rule
    for stream in (tqdm_tty, tqdm_pipe):
        with Progress(2048, "upload t", stream=stream) as progress:
            progress.update(2048)
    assert "upload t: 100%" in tqdm_tty.getvalue() and "2.00k/2.00k" in tqdm_tty.getvalue()
    assert tqdm_pipe.getvalue() == ""
    with Progress(100, "quiet", stream=tty, enabled=False) as progress:
        progress.update(50)
    assert "quiet" not in tty.getvalue()
    cci.upload_raw_array("p", np.zeros(10))  # not a terminal under pytest: nothing on stderr
    assert capsys.readouterr().err == ""



# --- structured dtypes through the chunked paths ----------------------------------------------

RECORD = np.dtype([("t", "<f8"), ("id", "<i4"), ("flag", "|b1"), ("code", "|S3")])


def records(n: int) -> np.ndarray:
    arr = np.zeros(n, dtype=RECORD)
    arr["t"] = np.linspace(0, 1, n)
    arr["id"] = np.arange(n)
    arr["flag"] = np.arange(n) % 3 == 0
    arr["code"] = [b"abc", b"de", b"f"] * (n // 3) + [b"x"] * (n % 3)
    return arr


def test_structured_dask_array_roundtrip_keeps_its_fields(cci) -> None:  # type: ignore[no-untyped-def]
    arr = records(700_000).reshape(1000, 700)  # 16-byte records, 11.2 MB: three parts of 5 MB
    cci.upload_dask_array("dask/rec", arr, axis=0, buffersize=5 * MB)
    meta = cci.download_json("dask/rec/metadata.json")
    assert list(meta)[:5] == ["shape", "dtype", "dask", "chunk_sizes", "chunks"]  # 0.4.0's keys first
    assert meta["dtype"] == "|V16"  # what 0.4.0 writes (and reads: it ignores the extra key)
    lazy = cci.download_dask_array("dask/rec")
    assert lazy.dtype == RECORD and lazy.dtype.names == RECORD.names
    back = lazy.compute()
    assert back.dtype == RECORD and back.tobytes() == arr.tobytes()
    assert np.array_equal(lazy[500:600, 3]["id"].compute(), arr[500:600, 3]["id"])
    graph = pickle.loads(pickle.dumps(dict(lazy.__dask_graph__())))  # descriptors carry the fields
    assert len(graph) == len(lazy.__dask_graph__())


def test_structured_raw_array_as_dask_keeps_its_fields(cci) -> None:  # type: ignore[no-untyped-def]
    arr = records(3000).reshape(30, 100)
    cci.upload_raw_array("raw/rec", arr, compression=False)
    lazy = cci.download_raw_array_as_dask("raw/rec", chunks=(7, 40))
    assert lazy.dtype == RECORD
    back = lazy.compute()
    assert back.dtype == RECORD and back.tobytes() == arr.tobytes()
    assert back[12, 55]["code"] == arr[12, 55]["code"]
    source = pickle.loads(pickle.dumps(lazy))  # RawArrayRanges travels with the full description
    assert source.compute().tobytes() == arr.tobytes()


def test_dask_manifest_dtype_descr_is_checked_like_metadata(cci) -> None:  # type: ignore[no-untyped-def]
    import json

    arr = records(30)
    cci.upload_dask_array("dask/forged", arr, buffersize=5 * MB)
    meta = cci.download_json("dask/forged/metadata.json")
    meta["dtype-descr"] = json.dumps("(2,)<f8")  # 16 bytes, but a sub-array: would change the shape
    cci.upload_json("dask/forged/metadata.json", meta)
    with pytest.raises(ValueError) as err:
        cci.download_dask_array("dask/forged")
    assert "dask/forged" in str(err.value) and "dtype-descr in metadata.json" in str(err.value)


def test_a_plain_void_dask_array_reads_parts_that_carry_fields(cci) -> None:  # type: ignore[no-untyped-def]
    """A manifest without dtype-descr (0.4.0 rewrote it, say) still reads our parts, as void records."""
    arr = records(30)
    cci.upload_dask_array("dask/void", arr, buffersize=5 * MB)
    meta = cci.download_json("dask/void/metadata.json")
    del meta["dtype-descr"]
    cci.upload_json("dask/void/metadata.json", meta)
    back = cci.download_dask_array("dask/void").compute()
    assert back.dtype == np.dtype("|V16") and back.tobytes() == arr.tobytes()
