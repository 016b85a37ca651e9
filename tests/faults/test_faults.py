"""The library and the mount through the fault proxy: exact bytes or a clean error, never a changed
tree, and nothing half-written left behind (issue 11, items 4, 5 and 8).

Every test talks to the real local S3 through ``cottoncandy.testing.faultproxy`` and checks the
store itself (directly, not through the proxy) for what was left behind.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import cottoncandy as cc
import cottoncandy.arrays.raw as raw
import cottoncandy.interface as interface_module
from cottoncandy.cache.blocks import FAILED_FOR
from cottoncandy.config import Settings
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import MIN_PART
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse


def wrong_bytes(got: np.ndarray, expected: np.ndarray) -> int:
    """How many bytes of ``got`` differ from ``expected`` (all of them if the shapes differ)."""
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return max(got.nbytes, expected.nbytes)
    a = np.ascontiguousarray(got).view(np.uint8).reshape(-1)
    b = np.ascontiguousarray(expected).view(np.uint8).reshape(-1)
    return int(np.count_nonzero(a != b))


def sample(n: int, seed: int) -> np.ndarray:
    """Compressible but not trivial: a gzip/Zstd body of a few hundred KiB."""
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(size=n), 2)


def flaky_interface(proxy: FaultProxy):  # type: ignore[no-untyped-def]
    return cc.get_interface(BUCKET, endpoint_url=proxy.endpoint_url, verbose=False)


def in_progress_uploads(s3_server) -> list[dict]:  # type: ignore[no-untyped-def]
    """Multipart uploads the server still holds, asked directly (not through the proxy)."""
    client = S3Account(Settings(endpoint_url=s3_server.endpoint_url)).client
    return list(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def stored_keys(cci, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(info.key for info in cci.store.iter_objects(prefix))


# --- item 5: whole-body reads -------------------------------------------------------------------

def test_compressed_downloads_under_resets_are_exact(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    arrays = {"z/gz": (sample(200_000, 1), "gzip"), "z/zstd": (sample(200_000, 2), "Zstd")}
    for key, (array, codec) in arrays.items():
        cci.upload_raw_array(key, array, compression=codec)
    flaky = flaky_interface(fault_proxy)
    fault_proxy.set_rules([FaultRule("reset", methods=("GET",), fraction=0.2)])
    wrong = 0
    for _ in range(8):
        for key, (array, _) in arrays.items():
            wrong += wrong_bytes(flaky.download_raw_array(key), array)
    assert wrong == 0
    assert fault_proxy.count("reset", "GET") >= 3  # the faults did happen


def test_a_broken_gzip_body_resumes_where_it_broke(cci, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    array = sample(300_000, 3)
    cci.upload_raw_array("z/gz", array, compression="gzip")
    flaky = flaky_interface(fault_proxy)
    # the download's first request (metadata and first bytes, a ranged GET) is a HEAD here, so that
    # both faults hit the gzip stream; the first request's own retries: test_a_first_request_*
    monkeypatch.setattr(interface_module, "first_look",
                        lambda store, key: raw.FirstLook(*raw.read_array_spec(store, key), b""))
    fault_proxy.set_rules([FaultRule("reset", methods=("GET",), ranged=False, limit=1),
                           FaultRule("truncate", methods=("GET",), limit=1)])
    assert wrong_bytes(flaky.download_raw_array("z/gz"), array) == 0
    assert fault_proxy.count("reset") == 1 and fault_proxy.count("truncate") == 1
    assert fault_proxy.counts["GET"] == 3  # the whole GET, then two resumptions from where it broke


@pytest.mark.parametrize("mode", ["reset", "truncate", "error500"])
def test_a_first_request_broken_midway_is_asked_again(cci, fault_proxy: FaultProxy, mode: str) -> None:  # type: ignore[no-untyped-def]
    small, large = sample(20_000, 5), sample(400_000, 6)
    cci.upload_raw_array("z/small", small, compression="gzip")  # its body comes whole with the first request
    cci.upload_raw_array("z/large", large, compression=False)
    flaky = flaky_interface(fault_proxy)
    for fired, (key, array) in enumerate((("z/small", small), ("z/large", large)), 1):
        fault_proxy.set_rules([FaultRule(mode, methods=("GET",), limit=1)])  # the first GET: the first request
        assert wrong_bytes(flaky.download_raw_array(key), array) == 0, key
        assert fault_proxy.count(mode) == fired, key  # (counts add up over the test)


def test_a_download_that_cannot_finish_is_eio_naming_the_object(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("z/gz", sample(100_000, 4), compression="gzip")
    flaky = flaky_interface(fault_proxy)
    fault_proxy.set_rules([FaultRule("reset", methods=("GET",))])
    with pytest.raises(OSError) as caught:
        flaky.download_raw_array("z/gz")
    assert caught.value.errno == errno.EIO
    assert f"s3://{BUCKET}/z/gz" in str(caught.value)


MODES = [FaultRule("reset", methods=("GET",), limit=2), FaultRule("truncate", methods=("GET",), limit=2),
         FaultRule("slowdown", methods=("GET",), limit=2), FaultRule("error500", methods=("GET",), limit=2),
         FaultRule("stall", methods=("GET",), seconds=0.3, limit=2),
         FaultRule("delay", methods=("GET",), seconds=0.3, limit=2)]


def test_library_reads_are_exact_in_every_mode(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    arrays = {"m/plain": (np.arange(50_000, dtype="<i8"), False), "m/gz": (sample(50_000, 7), "gzip"),
              "m/zstd": (sample(50_000, 8), "Zstd")}
    for key, (array, codec) in arrays.items():
        cci.upload_raw_array(key, array, compression=codec)
    flaky = flaky_interface(fault_proxy)
    for rule in MODES:
        for key, (array, _) in arrays.items():
            fault_proxy.set_rules([FaultRule(**{**rule.__dict__, "fired": 0})])
            assert wrong_bytes(flaky.download_raw_array(key), array) == 0, (rule.mode, key)
            assert fault_proxy.count(rule.mode) > 0, (rule.mode, key)
            fault_proxy.reset_counts()


@pytest.mark.parametrize("mode", ["reset", "truncate"])
def test_a_first_block_probe_broken_midway_is_asked_again(cci, fault_proxy: FaultProxy, mode: str) -> None:  # type: ignore[no-untyped-def]
    """A mount's lookup is a ranged GET of the first block (``read_start``): a body that breaks
    midway is asked again like every read's, not turned into EIO (boto3's path; the signed path
    has its own retry)."""
    array = np.arange(200_000, dtype="<f8")
    cci.upload_raw_array("p/a", array, compression=False)
    store = S3Account(Settings(endpoint_url=fault_proxy.endpoint_url, fast_paths=False)).store(BUCKET)
    fault_proxy.set_rules([FaultRule(mode, methods=("GET",), limit=1)])
    buffer = memoryview(bytearray(2**20))
    info, n = store.read_start("p/a", buffer)
    assert (info.size, n) == (array.nbytes, 2**20)
    assert bytes(buffer) == array.tobytes()[: 2**20]
    assert fault_proxy.count(mode) == 1


# --- item 4: faults never change the tree -------------------------------------------------------

def test_head_failures_never_rename_or_hide_arrays(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("h/a", np.arange(10.0), compression=False)
    cci.upload_raw_array("h/b", np.arange(5), compression=False)
    cci.upload_object("h/notes.txt", b"plain")
    store = flaky_interface(fault_proxy).store
    namespace = Namespace(store, ttl=300.0, attr_ttl=300.0, folders_ahead=0)
    try:
        fault_proxy.set_rules([FaultRule("slowdown", methods=("HEAD",))])
        with pytest.raises(OSError) as listed:
            namespace.children("h")
        assert listed.value.errno == errno.EIO
        assert "h/a" in str(listed.value) or "h/b" in str(listed.value)
        with pytest.raises(OSError) as looked:
            namespace.lookup("h/a.npy")
        assert looked.value.errno == errno.EIO  # not ENOENT: the array is there, its metadata is not
        assert not isinstance(looked.value, FileNotFoundError)
        assert fault_proxy.count("slowdown", "HEAD") > 0
        fault_proxy.clear()
        node = namespace.lookup("h/a.npy")  # asked again at once: nothing negative was remembered
        assert node.is_array and node.key == "h/a"
        assert sorted(namespace.children("h")) == ["a.npy", "b.npy", "notes.txt"]
    finally:
        namespace.close()


def test_a_head_reset_or_500_is_retried_not_taken_as_an_answer(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("h/a", np.arange(10.0), compression=False)
    store = flaky_interface(fault_proxy).store
    namespace = Namespace(store, ttl=300.0, attr_ttl=300.0, folders_ahead=0)
    try:
        fault_proxy.set_rules([FaultRule("reset", methods=("HEAD",), limit=2),
                               FaultRule("error500", methods=("HEAD",), limit=2)])
        assert sorted(namespace.children("h")) == ["a.npy"]
        assert fault_proxy.count(method="HEAD") == 4
    finally:
        namespace.close()


@needs_fuse
@pytest.mark.fuse
def test_mount_under_a_head_storm_then_recovers(cci, fault_proxy: FaultProxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("h/a", np.arange(10.0), compression=False)
    cci.upload_raw_array("h/b", np.arange(5), compression=False)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, "--attr-ttl", "0.2",
                 expect_errors=True) as m:
        # a folder's metadata comes by HEADs, one file's by a GET of its first block (whose answer has
        # the same headers): both fail, the folder's LIST (a GET of the bucket) does not
        fault_proxy.set_rules([FaultRule("slowdown", methods=("HEAD", "GET"), key=f"/{BUCKET}/h/")])
        failed = 1  # the stat below
        try:
            names = sorted(os.listdir(m / "h"))
        except OSError as exc:
            assert exc.errno == errno.EIO
            failed += 1
        else:
            assert names == ["a.npy", "b.npy"]  # never the bare keys
        with pytest.raises(OSError) as caught:
            os.stat(m / "h" / "a.npy")
        assert caught.value.errno == errno.EIO
        fault_proxy.clear()
        assert os.stat(m / "h" / "a.npy").st_size == 128 + 80  # at once: no ENOENT remembered
        assert sorted(os.listdir(m / "h")) == ["a.npy", "b.npy"]
        assert np.array_equal(np.load(m / "h" / "a.npy"), np.arange(10.0))
    errors = mounted.last_errors  # type: ignore[attr-defined]
    assert len(errors) == failed and all("EIO" in line for line in errors)  # one line per failure
    assert all("h/a" in line or "h/b" in line for line in errors)  # each names the object


@pytest.mark.alone  # a clean-clone CI run (1 of ~10) saw its GETs find no answer for 12 s, three times
@needs_fuse         # over, beside two busy workers: the timeouts are what it would measure, not faults
@pytest.mark.fuse
def test_mount_reads_under_resets_and_slowdowns_are_exact(cci, fault_proxy: FaultProxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arrays = {"r/plain": (np.arange(2_000_000, dtype="<f8"), False), "r/gz": (sample(150_000, 5), "gzip"),
              "r/zstd": (sample(150_000, 6), "Zstd")}
    for key, (array, codec) in arrays.items():
        cci.upload_raw_array(key, array, compression=codec)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, "--block-size", "64K") as m:
        os.listdir(m / "r")
        fault_proxy.set_rules([FaultRule("reset", methods=("GET",), limit=2),  # the first two for sure
                               FaultRule("slowdown", methods=("GET",), limit=1),
                               FaultRule("reset", methods=("GET",), fraction=0.1),
                               FaultRule("slowdown", methods=("GET",), fraction=0.05)])
        wrong = sum(wrong_bytes(np.load(m / f"{key}.npy"), array) for key, (array, _) in arrays.items())
        faults = fault_proxy.count(method="GET")
        fault_proxy.clear()
        again = sum(wrong_bytes(np.load(m / f"{key}.npy"), array) for key, (array, _) in arrays.items())
    assert wrong == 0 and again == 0
    assert faults >= 3


@pytest.mark.alone  # CPU starvation by parallel workers made its HEADs time out (2 of 4 clean-clone runs)
@needs_fuse
@pytest.mark.fuse
def test_one_mount_through_every_mode_and_an_outage(cci, fault_proxy: FaultProxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arrays = {}
    # truncate is left out here: after a truncated answer through a mount, the proxy intermittently
    # stopped accepting connections (under investigation; the library test covers truncation)
    for i, rule in enumerate(r for r in MODES if r.mode != "truncate"):
        for codec in (False, "gzip"):
            key = f"c/{rule.mode}-{codec or 'raw'}"
            arrays[key] = (rule, sample(40_000, 10 + i) if codec else np.arange(40_000, dtype="<f8") + i, codec)
    arrays["c/outage"] = (None, np.arange(1000.0), False)
    for key, (_, array, codec) in arrays.items():
        cci.upload_raw_array(key, array, compression=codec)
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, expect_errors=True) as m:
        os.listdir(m / "c")  # metadata in: the faults below hit the reads
        wrong = 0
        for key, (rule, array, _) in arrays.items():
            if rule is None:
                continue
            fault_proxy.set_rules([FaultRule(**{**rule.__dict__, "fired": 0})])
            wrong += wrong_bytes(np.load(m / f"{key}.npy"), array)
            assert fault_proxy.count(rule.mode) > 0, key
        assert wrong == 0
        fault_proxy.outage(30)  # longer than the retries: the read fails cleanly
        with pytest.raises(OSError) as caught:
            np.load(m / "c/outage.npy")
        assert caught.value.errno == errno.EIO
        fault_proxy.clear()  # and the same mount serves it once the endpoint is back and the failed
        time.sleep(FAILED_FOR + 0.5)  # block is no longer answered failed (FAILED_FOR seconds)
        assert wrong_bytes(np.load(m / "c/outage.npy"), arrays["c/outage"][1]) == 0
    errors = mounted.last_errors  # type: ignore[attr-defined]
    outage = [line for line in errors if "c/outage" in line]
    # one operation failed: the READ (the kernel may have sent its read-ahead of the same file too: one
    # line each), or the open when it had to LIST the folder again (a burst of lookups older than
    # --attr-ttl re-LISTs it, and the LIST met the outage)
    assert 1 <= len(outage) <= 2 and all(re.search(r" ERROR ccfs: [a-z_]+ /c/outage\.npy failed \(EIO\): ", line)
                                         for line in outage), outage
    # Under CPU starvation (a loaded machine) a faulted answer can outlast the 10 s read timeout and
    # its retries, so one READ or GETATTR of a faulted file may fail while the reader's own retry got
    # exact bytes (asserted above). Such a line must still be one clean line: an operation of the
    # daemon on a path of this test failing with EIO, never another errno or a traceback.
    others = [line for line in errors if "c/outage" not in line]
    assert all(re.search(r" ERROR ccfs: [a-z_]+ /c/\S+ failed \(EIO\): ", line)
               for line in others), others


# --- item 5: writes -----------------------------------------------------------------------------

def small_part_store(proxy: FaultProxy):  # type: ignore[no-untyped-def]
    settings = Settings(endpoint_url=proxy.endpoint_url, mpu_threshold=MIN_PART, mpu_chunksize=MIN_PART)
    return S3Account(settings).store(BUCKET)


def test_a_lost_create_multipart_answer_leaves_no_orphan(s3, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    store = small_part_store(fault_proxy)
    body = np.arange(12 * 2**20 // 8, dtype="<f8")
    fault_proxy.set_rules([FaultRule("reset", methods=("POST",), after=0, limit=1)])  # the server made it
    store.put("mpu/x", body)
    assert fault_proxy.count("reset", "POST") == 1
    assert in_progress_uploads(s3) == []
    direct = S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET)
    got = np.empty_like(body)
    direct.download_into("mpu/x", memoryview(got).cast("B"))
    assert wrong_bytes(got, body) == 0


def test_resets_on_every_create_leave_no_empty_uploads(s3, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    store = small_part_store(fault_proxy)
    fault_proxy.set_rules([FaultRule("reset", methods=("POST",), after=0)])
    with pytest.raises(OSError) as caught:
        store.put("mpu/y", bytes(11 * 2**20))
    assert caught.value.errno == errno.EIO and f"s3://{BUCKET}/mpu/y" in str(caught.value)
    fault_proxy.clear()
    assert in_progress_uploads(s3) == []


def test_an_outage_during_a_multipart_upload_leaves_nothing(s3, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    store = small_part_store(fault_proxy)
    fault_proxy.set_rules([FaultRule("delay", methods=("PUT",), seconds=0.3)])
    failure: list[BaseException] = []

    def upload() -> None:
        try:
            store.put("mpu/z", bytes(16 * 2**20))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=upload)
    worker.start()
    for _ in range(500):  # the first part is on its way
        if fault_proxy.counts.get("PUT"):
            break
        time.sleep(0.01)
    fault_proxy.outage(4.0)  # longer than the upload's retries, shorter than its clean-up's
    worker.join(60)
    assert failure and isinstance(failure[0], OSError)
    assert fault_proxy.counts.get("refused", 0) > 0
    assert in_progress_uploads(s3) == []
    assert stored_keys(cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False), "mpu/") == []


def test_an_abort_is_retried(s3, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    store = small_part_store(fault_proxy)
    fault_proxy.set_rules([FaultRule("error500", methods=("PUT",)),  # every part fails
                           FaultRule("slowdown", methods=("DELETE",), limit=2)])  # and the abort, twice
    with pytest.raises(OSError):
        store.put("mpu/w", bytes(11 * 2**20))
    assert fault_proxy.count("slowdown", "DELETE") == 2
    assert in_progress_uploads(s3) == []


def test_an_error_after_the_server_may_have_stored_the_object_says_so(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    store = flaky_interface(fault_proxy).store
    fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), after=0)])  # every answer lost
    with pytest.raises(OSError) as caught:
        store.put("lost/x", b"payload")
    assert "may have stored" in str(caught.value)
    assert cci.download_object("lost/x") == b"payload"  # and it did
    fault_proxy.set_rules([FaultRule("slowdown", methods=("PUT",))])  # refused: nothing stored
    with pytest.raises(OSError) as refused:
        store.put("lost/y", b"payload")
    assert "may have stored" not in str(refused.value)


def test_a_failed_dask_upload_removes_its_parts_on_a_flaky_endpoint(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    flaky = flaky_interface(fault_proxy)
    array = np.ones((6, 5 * 2**20 // 8))  # one 5 MiB row per part (the smallest buffersize)
    fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), key="pt0003", after=0),  # stored, answer lost
                           FaultRule("slowdown", methods=("POST",), limit=2)])  # the clean-up's deletes
    with pytest.raises(OSError) as caught:
        flaky.upload_dask_array("d/arr", array, axis=0, buffersize=5 * 2**20)
    assert "pt0003" in str(caught.value)
    assert fault_proxy.count("slowdown", "POST") == 2
    fault_proxy.clear()
    assert stored_keys(cci, "d/") == []


def test_a_failed_sparse_upload_removes_its_parts_on_a_flaky_endpoint(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    flaky = flaky_interface(fault_proxy)
    matrix = scipy.sparse.random(50, 40, density=0.1, format="csr", random_state=0)
    fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), key="indices", after=0),
                           FaultRule("slowdown", methods=("POST",), limit=2)])
    with pytest.raises(OSError):
        flaky.upload_sparse_array("s/m", matrix)
    fault_proxy.clear()
    assert stored_keys(cci, "s/") == []


def test_a_failed_dict2cloud_removes_what_it_may_have_stored(cci, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("t/b", np.arange(3.0))  # there before, and not part of what fails: kept
    flaky = flaky_interface(fault_proxy)
    fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), key="t/a", after=0),
                           FaultRule("slowdown", methods=("POST",), limit=2)])
    with pytest.raises(OSError):
        flaky.dict2cloud("t", {"a": np.arange(4.0), "c": {"d": np.arange(2)}}, verbose=False)
    fault_proxy.clear()
    assert stored_keys(cci, "t/") == ["t/b"]


def test_a_patient_policy_outlasts_its_attempts() -> None:
    from cottoncandy.storage.retry import RetryPolicy

    def flaky_until(moment: float):  # type: ignore[no-untyped-def]
        def call() -> str:
            if time.monotonic() < moment:
                raise ConnectionResetError("endpoint down")
            return "done"
        return call

    hasty = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    with pytest.raises(ConnectionResetError):
        hasty.call(flaky_until(time.monotonic() + 0.3), "test")
    patient = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01, patience=5.0)
    assert patient.call(flaky_until(time.monotonic() + 0.3), "test") == "done"
    with pytest.raises(ValueError):  # not retryable: patience does not apply
        patient.call(lambda: (_ for _ in ()).throw(ValueError("bad")), "test")


@pytest.mark.parametrize("rule", [FaultRule("lost500", methods=("POST",), query="uploadId"),
                                  FaultRule("reset", methods=("POST",), query="uploadId", after=0)],
                         ids=["500", "answer-lost"])
def test_a_complete_that_fails_after_it_succeeded_is_done(s3, fault_proxy: FaultProxy, rule: FaultRule) -> None:  # type: ignore[no-untyped-def]
    """Every CompleteMultipartUpload reaches the server but its answer is a 500 or lost, retries
    included: the object is there with the upload's ETag and size, so the upload succeeded."""
    store = small_part_store(fault_proxy)
    body = np.arange(12 * 2**20 // 8, dtype="<f8")
    fault_proxy.set_rules([rule])
    info = store.put("mpu/done", body)
    assert fault_proxy.count(rule.mode, "POST") >= 2  # the first one completed it; the retries failed too
    direct = S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET)
    assert direct.head("mpu/done").etag == info.etag and info.size == body.nbytes
    got = np.empty_like(body)
    direct.download_into("mpu/done", memoryview(got).cast("B"))
    assert wrong_bytes(got, body) == 0 and in_progress_uploads(s3) == []


def test_a_complete_that_failed_is_still_an_error(s3, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    """The check looks at the object: a 500 the server meant (nothing completed) stays an error."""
    store = small_part_store(fault_proxy)
    fault_proxy.set_rules([FaultRule("error500", methods=("POST",), query="uploadId")])
    with pytest.raises(OSError) as caught:
        store.put("mpu/failed", bytes(11 * 2**20))
    assert caught.value.errno == errno.EIO and "mpu/failed" in str(caught.value)
    fault_proxy.clear()
    assert stored_keys(cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False), "mpu/") == []


@needs_fuse
@pytest.mark.fuse
def test_a_big_folder_is_read_while_its_later_pages_are_still_being_listed(s3, cci, fault_proxy: FaultProxy,  # type: ignore[no-untyped-def]
                                                                           tmp_path: Path) -> None:
    """2,500 arrays (3 LIST pages) through a real mount, every page after the first held back 4 s
    by the proxy: a reader of the folder gets its first names while page 2 is held (they were
    published as page 1 and its HEADs came in, once the visit's hold is over: 5 x --attr-ttl,
    2 s here), and in the end every name exactly once, each with the size of its array. (Before, the
    first name came after the last page and every HEAD.)"""
    import json
    import urllib.request

    spec = {"bucket": BUCKET, "prefix": "big/a", "count": 2500, "body": "\x00" * 16,
            "metadata": {"dtype": "float32", "shape": "(4,)", "order": "C", "compression": "False"},
            "access_key": "testing"}
    urllib.request.urlopen(urllib.request.Request(f"{s3.endpoint_url}/_local-s3/fill", method="POST",
                                                  data=json.dumps(spec).encode()), timeout=60).read()
    with mounted(BUCKET, tmp_path, "--endpoint-url", fault_proxy.endpoint_url, "--attr-ttl", "0.4") as m:
        fault_proxy.set_rules([FaultRule("delay", methods=("GET",), query="continuation-token", seconds=4.0)])
        began = time.monotonic()
        first_at = None
        sizes = {}
        with os.scandir(m / "big") as entries:
            for entry in entries:
                if first_at is None:
                    first_at = time.monotonic() - began
                sizes[entry.name] = entry.stat().st_size
        took = time.monotonic() - began
        assert fault_proxy.count("delay") == 2  # pages 2 and 3, each held 4 s
        assert first_at is not None and took - first_at >= 5.0, (first_at, took)  # first names before page 2
        assert sizes == {f"a{i:06d}.npy": 128 + 16 for i in range(2500)}
