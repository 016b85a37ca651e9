"""The 0.4.0 compatibility fixes, checked in-process (the differential harness in tests/compat/ runs
the same calls through 0.4.0 itself): the exception family, 0.4.0's keywords, calls that complete
with a warning, and the 0.4.0 bugs we do not copy."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.config import Settings, config_path, legacy_config_path, load_settings
from cottoncandy.errors import NotAnArray, NotARawArray, ObjectExists, ObjectNotFound, ReservedMetadataKey
from tests.conftest import BUCKET, warns_about


@pytest.mark.parametrize("call", ["download_raw_array", "download_npy_array", "download_json", "download_pickle",
                                  "download_dask_array", "download_sparse_array", "download_object"])
def test_missing_object_is_also_040s_runtime_error(any_cci, call: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ObjectNotFound) as info:
        getattr(any_cci, call)("no/such/object")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, RuntimeError)
    assert "no/such/object" in str(info.value)


def test_exists_object_raise_err_and_copy_errors(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        cci.exists_object("nope", raise_err=True)
    with pytest.raises(AssertionError):
        cci.download_to_file("nope", str(tmp_path / "x"))
    with pytest.raises(AssertionError):
        cci.upload_from_file(str(tmp_path / "nope"), "x")
    with pytest.raises(AssertionError):
        cci.cp("nope", "x")
    cci.upload_json("a", {})
    cci.upload_json("b", {})
    with pytest.raises(ObjectExists) as info:
        cci.mv("a", "b")
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, AssertionError)
    assert cci.exists_object("a")  # nothing moved


def test_array_argument_and_metadata_errors(cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AttributeError) as info:
        cci.upload_raw_array("r", [1, 2, 3])
    assert isinstance(info.value, NotAnArray) and isinstance(info.value, TypeError)
    for key in ("dtype", "shape", "order"):
        with pytest.raises(AssertionError) as err:
            cci.upload_raw_array("r", np.zeros(3), **{key: "x"})
        assert isinstance(err.value, ReservedMetadataKey) and isinstance(err.value, ValueError)
    with pytest.raises(AssertionError):
        cci.upload_dask_array("d", np.zeros((4, 4)), buffersize=2**20)
    cci.upload_json("j", {"a": 1})
    with pytest.raises(KeyError) as missing:
        cci.download_raw_array("j")
    assert isinstance(missing.value, NotARawArray) and "is not a raw array" in str(missing.value)
    assert not str(missing.value).startswith("'")  # not KeyError's quoted message


def test_040_keywords_are_accepted(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = np.arange(12.0).reshape(3, 4)
    cci.upload_raw_array("r", a, "Zlib", None, 2, run=5, subject=3)
    assert np.array_equal(cci.download_raw_array("r", buffersize=2**10, threads=3), a)
    assert cci.get_metadata("r")["run"] == "5"
    cci.upload_npy_array("n", a, threads=2)
    assert np.array_equal(cci.download_npy_array("n", threads=2), a)
    cci.upload_json("j", [1], None, 2, n=4)
    assert cci.download_json("j", threads=2) == [1]
    cci.upload_pickle("p", {1}, threads=2)
    assert cci.download_pickle("p", threads=2) == {1}
    cci.upload_object("o", io.BytesIO(b"abc"), threads=2)
    assert cci.download_object("o", threads=2) == b"abc"
    assert cci.download_stream("o", threads=2).content.read() == b"abc"
    path = tmp_path / "f"
    path.write_bytes(b"xyz")
    cci.upload_from_file(str(path), "f", threads=2)
    cci.download_to_file("f", str(tmp_path / "g"), threads=2)
    assert (tmp_path / "g").read_bytes() == b"xyz"


def test_get_interface_takes_a_botocore_config(s3) -> None:  # type: ignore[no-untyped-def]
    from botocore.client import Config

    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False,
                           config=Config(read_timeout=123, connect_timeout=7))
    assert cci.store.client.meta.config.read_timeout == 123
    assert cci.store.client.meta.config.connect_timeout == 7
    assert cci.exists_object("nope") is False


def test_calls_040_completed_complete_with_a_warning(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for key in ("t/a", "t/b", "u"):
        cci.upload_json(key, {})
    with warns_about("nothing removed"):
        assert cci.rm("nothing/here") == []
    with warns_about("recursive=True"):
        assert cci.rm("t") == []
    assert cci.exists_object("t/a")
    with warns_about("nothing downloaded"):
        assert cci.download_directory("empty", str(tmp_path / "d")) == []
    assert sorted(cci.lsdir("t/*")) == ["t/a", "t/b"]


def test_browser_shows_dashes_as_underscores(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("p/ses-1.grp/run-01", np.arange(3))
    group = cci.cloud2dataset("p").ses_1_DOT_grp
    assert group.keys() == ["run_01"]
    assert np.array_equal(group.load("run_01"), group.load("run-01"))
    assert np.array_equal(group.run_01.load(), np.arange(3))


@pytest.mark.parametrize("codec", ["LZ4", "Zlib", "Zstd", "BZ2"])
def test_empty_arrays_round_trip_with_numcodecs(any_cci, codec: str) -> None:  # type: ignore[no-untyped-def]
    any_cci.upload_raw_array("e", np.zeros((0, 3), dtype="<f4"), compression=codec)
    out = any_cci.download_raw_array("e")
    assert out.shape == (0, 3) and out.dtype == np.dtype("<f4")


def test_structured_dtypes_keep_their_fields(cci) -> None:  # type: ignore[no-untyped-def]
    dt = np.dtype([("i", "<i4"), ("f", "<f8"), ("s", "S3", (2,))])
    s = np.zeros(4, dtype=dt)
    s["i"], s["f"] = [1, 2, 3, 4], [0.5, 1.5, 2.5, 3.5]
    cci.upload_raw_array("s", s)
    out = cci.download_raw_array("s")
    assert out.dtype == dt and np.array_equal(out, s)
    meta = cci.get_metadata("s")
    assert meta["dtype"] == dt.str  # '|V..': what 0.4.0 wrote and reads back as plain records
    assert "dtype-descr" in meta
    # what 0.4.0 sees: void records with the same bytes
    raw = np.frombuffer(s.tobytes(), dtype=meta["dtype"])
    assert out.view(raw.dtype).tobytes() == raw.tobytes()


def test_legacy_F_order_numcodecs_body_reads_in_F_order(cci) -> None:  # type: ignore[no-untyped-def]
    a = np.arange(12, dtype="<f4").reshape(3, 4)
    body = numcodecs.Zstd().encode(np.asfortranarray(a).tobytes(order="F"))
    cci.upload_object("f", io.BytesIO(body), dtype="<f4", shape="3,4", order="F", compression="Zstd")
    assert np.array_equal(cci.download_raw_array("f"), a)


def test_pickled_dask_graph_computes_with_explicit_keys(s3, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The graph carries a token, not the keys; unpickled in this process it finds the interface's keys."""
    import cloudpickle

    from cottoncandy.storage import registry

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.passwd-s3fs either
    cci = cc.get_interface(BUCKET, ACCESS_KEY="explicit-access", SECRET_KEY="explicit-secret-xyz",
                           endpoint_url=s3.endpoint_url, verbose=False)
    a = np.arange(20.0).reshape(4, 5)
    cci.upload_dask_array("d", a)
    blob = cloudpickle.dumps(cci.download_dask_array("d"))
    assert b"explicit-secret-xyz" not in blob and b"explicit-access" not in blob
    registry._cached_store.cache_clear()  # as in a fresh worker: stores are rebuilt from their spec
    graph = cloudpickle.loads(blob)
    assert np.array_equal(graph.compute(scheduler="sync"), a)


def test_040_options_cfg_is_read_from_its_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    legacy = legacy_config_path()
    assert legacy == tmp_path / "data" / "cottoncandy" / "options.cfg"
    legacy.parent.mkdir(parents=True)
    # what 0.4.0 writes on first import (its defaults), with the user's own bucket and endpoint
    legacy.write_text("[login]\naccess_key = False\nendpoint_url = http://legacy.example:9000\n"
                      "[basic]\ndefault_acl = authenticated-read\ndefault_bucket = mybucket\nthreads = 4\n")
    settings = load_settings()
    assert settings.default_bucket == "mybucket"
    assert settings.endpoint_url == "http://legacy.example:9000"
    assert settings.default_acl is None  # 0.4.0's default, not a user choice
    mine = tmp_path / "config" / "cottoncandy" / "options.cfg"
    mine.parent.mkdir(parents=True)
    mine.write_text("[basic]\ndefault_bucket = other\n")
    assert load_settings().default_bucket == "other"  # ours overrides 0.4.0's


def test_040_default_options_cfg_leaves_our_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0.4.0 writes its whole defaults.cfg on first import; none of it is a user choice, so none of
    it may replace our defaults (``config.DEFAULTS_0_4_0`` must hold exactly what 0.4.0 writes)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    legacy = legacy_config_path()
    legacy.parent.mkdir(parents=True)
    legacy.write_text(DEFAULTS_CFG_0_4_0)
    assert load_settings() == Settings()
    legacy.write_text(DEFAULTS_CFG_0_4_0.replace("threads = 4", "threads = 6"))
    assert load_settings() == replace(Settings(), threads=6)  # a value the user changed is taken


def test_040_defaults_at_the_path_040_really_uses_leave_our_defaults(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.4.0's bundled appdirs puts its file at ~/.config/cottoncandy/options.cfg on Linux: our path.
    # Read as the user's choices, its defaults sent an ACL with every upload (refused by buckets
    # without ACLs) and uploaded in 4 threads of 100 MB parts, a single PUT below 200 MB.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    ours = config_path()
    assert ours == tmp_path / "config" / "cottoncandy" / "options.cfg"
    ours.parent.mkdir(parents=True)
    ours.write_text(DEFAULTS_CFG_0_4_0)
    assert load_settings() == Settings()
    ours.write_text(DEFAULTS_CFG_0_4_0.replace("threads = 4", "threads = 6").replace("mpu_chunksize = 100",
                                                                                    "mpu_chunksize = 32"))
    assert load_settings() == replace(Settings(), threads=6, mpu_chunksize=32 * 2**20)  # the user's changes


#: cottoncandy 0.4.0's defaults.cfg, verbatim
DEFAULTS_CFG_0_4_0 = """[login]
access_key = False
secret_key = False
endpoint_url = https://s3.amazonaws.com/
verbose_boto = False

[basic]
# default ACL (permissions) for objects and buckets
default_acl = authenticated-read
default_bucket =
mandatory_bucket_prefix =
force_bucket_creation = False
path_separator = /
signature_version =
threads = 4

[upload_settings]
# in MB, except max_mpu_size_TB, and max_mpu_parts
mpu_use_threshold = 200
mpu_chunksize = 100
dask_chunksize = 100
min_mpu_size = 5
max_put_size = 5000
max_mpu_size_TB = 5
max_mpu_parts = 10000

[download_settings]
# in MB
mpd_use_threshold = 100
mpd_chunksize = 100

[extensions]
ccgroup = grp, ccg
ccdataset = arr, dar, rarr, ccd

[gdrive]
secrets = client_secrets.json
credentials = credentials.txt

[compression]
do_compression = True
# < 2 GB arrays
small_array = gzip
# >= 2 GB arrays
large_array = Zstd
"""


def test_040_options_cfg_location_on_macos() -> None:
    assert legacy_config_path("darwin") == (Path.home() / "Library" / "Application Support" / "cottoncandy"
                                            / "options.cfg")


def test_version_tells_the_libraries_apart() -> None:
    assert cc.__version__ != "0.4.0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cc.__version__.startswith("0.5")


def _compute_in_child(blob: bytes, queue: Any) -> None:
    import cloudpickle

    try:
        queue.put(("ok", cloudpickle.loads(blob).compute(scheduler="sync").tolist()))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def test_pickled_dask_graph_computes_in_a_forked_worker(s3, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A forked worker inherits this process's settings registry, so explicit keys reach it too."""
    import multiprocessing

    import cloudpickle

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("HOME", "/nonexistent")
    cci = cc.get_interface(BUCKET, ACCESS_KEY="explicit-access", SECRET_KEY="explicit-secret-xyz",
                           endpoint_url=s3.endpoint_url, verbose=False)
    a = np.arange(6.0).reshape(2, 3)
    cci.upload_dask_array("d", a)
    blob = cloudpickle.dumps(cci.download_dask_array("d"))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_compute_in_child, args=(blob, queue))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a multi-threaded process
        child.start()
    status, value = queue.get(timeout=120)
    child.join(timeout=30)
    assert status == "ok", value
    assert value == a.tolist()


def test_a_settings_token_is_random_and_recalled_only_for_the_same_endpoint() -> None:
    from cottoncandy.config import Settings, recall, remember

    settings = Settings(endpoint_url="http://127.0.0.1:1")
    token = remember(settings)
    assert remember(settings) == token and len(token) == 32  # one token per settings, no id()/pid in it
    assert recall(token, "http://127.0.0.1:1", None, None) is settings
    assert recall(token, "http://elsewhere:1", None, None) is None  # another endpoint: the worker's own chain
    assert recall("0-1", "http://127.0.0.1:1", None, None) is None
