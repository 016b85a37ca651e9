"""``ccfs ls|glob|info|put|get|rm|cp`` as a user runs them: the installed command, against the S3 server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cliutil import CCFS, run
from tests.conftest import BUCKET
from tests.datautil import distinct_int64


@pytest.fixture
def bucket(cci):  # type: ignore[no-untyped-def]
    cci.upload_raw_array("proj/sub01.grp/x", np.arange(12.0).reshape(3, 4), compression=False, subject="s1")
    cci.upload_raw_array("proj/sub02.grp/x", np.ones(3), compression="gzip")
    cci.upload_json("proj/notes.json", {"a": 1})
    return cci


def test_put_info_get_roundtrip(s3, bucket, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.asfortranarray(np.random.default_rng(0).random((50, 7)).astype("<f4"))
    src = tmp_path / "a.npy"
    np.save(src, arr)
    run(s3, "put", str(src), f"s3://{BUCKET}/up/a", "--compression", "Zstd")
    assert bucket.get_metadata("up/a")["compression"] == "Zstd"
    assert np.array_equal(bucket.download_raw_array("up/a"), arr)
    info = run(s3, "info", f"s3://{BUCKET}/proj/sub01.grp/x").stdout
    assert "raw array" in info and "<f8" in info and "3,4" in info and re.search(r"compression +none", info)
    assert bucket.get_object_info("proj/sub01.grp/x").etag.strip('"') in info and '"subject": "s1"' in info
    for key, want in (("proj/sub01.grp/x", np.arange(12.0).reshape(3, 4)), ("proj/sub02.grp/x", np.ones(3)),
                      ("up/a", arr)):
        out = tmp_path / "out.npy"
        run(s3, "get", f"s3://{BUCKET}/{key}", str(out))
        assert np.array_equal(np.load(out), want)
    dask_arr = distinct_int64(2_000_000).reshape(2, -1)  # 16 MB: four parts (gzip level 9, cheap on these bytes)
    bucket.upload_dask_array("dask/d", dask_arr, buffersize=5 * 2**20)
    assert "dask array" in run(s3, "info", f"s3://{BUCKET}/dask/d").stdout
    run(s3, "get", f"s3://{BUCKET}/dask/d", str(tmp_path / "d.npy"))
    assert np.array_equal(np.load(tmp_path / "d.npy", mmap_mode="r"), dask_arr)


def test_info_shows_only_user_metadata(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    """Keys the library keeps for itself (the gzip block index, the fields of a structured dtype) are
    not user metadata: ``info`` shows what they mean (the dtype's fields), not the keys."""
    bucket.upload_raw_array("proj/big", np.arange(100_000.0), subject="s1")  # default gzip: a block index
    assert "cc-gzip-blocks" in bucket.store.head("proj/big").metadata
    info = run(s3, "info", f"s3://{BUCKET}/proj/big").stdout
    assert "cc-gzip-blocks" not in info and re.search(r'metadata +\{"subject": "s1"\}\n', info), info
    records = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])
    bucket.upload_raw_array("proj/rec", records, compression=False)
    info = run(s3, "info", f"s3://{BUCKET}/proj/rec").stdout
    assert "dtype-descr" not in info and "metadata" not in info, info
    assert re.search(r"dtype +\[\('a', '<i4'\), \('b', '<f8'\)\]\n", info), info


def test_ls_glob_rm_cp(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    assert run(s3, "ls", f"s3://{BUCKET}/proj").stdout.split() == [
        f"s3://{BUCKET}/proj/sub01.grp/", f"s3://{BUCKET}/proj/sub02.grp/", f"s3://{BUCKET}/proj/notes.json"]
    long = run(s3, "ls", "-l", f"s3://{BUCKET}/proj/*.grp/x").stdout.splitlines()
    assert len(long) == 2 and long[0].split()[0] == "96"
    assert run(s3, "glob", f"s3://{BUCKET}/**/x").stdout.split() == [
        f"s3://{BUCKET}/proj/sub01.grp/x", f"s3://{BUCKET}/proj/sub02.grp/x"]
    run(s3, "cp", "-r", f"s3://{BUCKET}/proj", f"s3://{BUCKET}/copy")
    assert bucket.glob("copy/**") == ["copy/notes.json", "copy/sub01.grp/x", "copy/sub02.grp/x"]
    assert bucket.get_metadata("copy/sub01.grp/x")["subject"] == "s1"
    assert "removed 3 objects" in run(s3, "rm", "-r", f"s3://{BUCKET}/copy").stdout
    assert bucket.glob("copy/**") == []


def test_ls_marks_folders_with_a_slash(s3, bucket, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As ``aws s3 ls`` marks folders (``PRE name/``): a folder is printed with its ``/``, so a folder and
    an object of the same name are two lines that say which is which."""
    bucket.upload_json("proj/sub01.grp", {"an": "object named like the folder"})
    url = f"s3://{BUCKET}/proj"
    assert run(s3, "ls", f"s3://{BUCKET}/").stdout.split() == [f"{url}/"]
    assert run(s3, "ls", url).stdout.split() == [f"{url}/sub01.grp/", f"{url}/sub02.grp/", f"{url}/notes.json",
                                                 f"{url}/sub01.grp"]
    assert run(s3, "ls", f"{url}/sub0*").stdout.split() == [f"{url}/sub01.grp", f"{url}/sub01.grp/",
                                                            f"{url}/sub02.grp/"]
    assert run(s3, "ls", f"{url}/sub01.grp/").stdout.split() == [f"{url}/sub01.grp/x"]
    long = [line.split() for line in run(s3, "ls", "-l", url).stdout.splitlines()]
    assert [(line[0], line[-1]) for line in long if line[0] == "DIR"] == [("DIR", f"{url}/sub01.grp/"),
                                                                            ("DIR", f"{url}/sub02.grp/")]
    assert [line[3] for line in long if line[0] != "DIR"] == [f"{url}/notes.json", f"{url}/sub01.grp"]
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "f").write_bytes(b"x")
    assert run(s3, "ls", str(tmp_path / "d")).stdout.split() == [f"{tmp_path}/d/sub/", f"{tmp_path}/d/f"]


def test_local_backend_paths(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import cottoncandy as cc

    root = tmp_path / "bucketdir"
    local = cc.get_interface(str(root), backend="local", verbose=False)
    local.upload_raw_array("a/b/arr", np.arange(6.0), compression=False)
    assert run(s3, "ls", str(root / "a" / "b")).stdout.split() == [str(root / "a" / "b" / "arr")]
    assert "raw array" in run(s3, "info", str(root / "a" / "b" / "arr")).stdout
    src = tmp_path / "n.npy"
    np.save(src, np.eye(3))
    run(s3, "put", str(src), str(root / "a" / "eye"))
    assert np.array_equal(local.download_raw_array("a/eye"), np.eye(3))
    run(s3, "cp", str(root / "a" / "eye"), f"s3://{BUCKET}/from-local/eye")
    assert np.array_equal(cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False)
                          .download_raw_array("from-local/eye"), np.eye(3))


@pytest.mark.parametrize(("args", "message"), [
    (("info", f"s3://{BUCKET}/nope"), "is not a dask or sparse array: nothing is stored under it"),
    (("glob", f"s3://{BUCKET}/nothing/*"), "no objects match"),
    (("ls", f"s3://{BUCKET}/nothing/"), "nothing found"),
    (("rm", f"s3://{BUCKET}/proj"), "is a folder of 3 objects; pass -r to remove them"),
    (("get", f"s3://{BUCKET}/proj/notes.json", "/tmp/x.npy"), "neither a raw array nor .npy"),
    (("ls", "s3://no-such-bucket/"), "no-such-bucket"),
    (("ls", "gs://bucket/x"), "only s3:// URLs"),
    (("cp", f"s3://{BUCKET}/proj/sub01.grp/x", f"s3://{BUCKET}/proj/sub02.grp/x"), "; pass --overwrite to replace"),
    (("cp", f"s3://{BUCKET}/proj", f"s3://{BUCKET}/copy"), "is a folder of 3 objects; pass -r to copy it"),
])
def test_errors_are_one_line(s3, bucket, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run(s3, *args, ok=False)
    assert message in result.stderr and "testing-secret" not in result.stderr
    assert "=True" not in result.stderr  # the command line names its flags, never the library's keywords


def test_bad_npy_file_is_one_line(s3, bucket, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    assert "not a readable .npy file" in run(s3, "put", str(bad), f"s3://{BUCKET}/x", ok=False).stderr


def test_shell_completion_of_remote_keys(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    def complete(word: str) -> list[str]:
        env = {"_CCFS_COMPLETE": "bash_complete", "COMP_WORDS": f"ccfs ls {word}", "COMP_CWORD": "2"}
        script = os.path.join(os.path.dirname(sys.executable), "ccfs")  # completion keys on the program name
        lines = run(s3, env=env, command=[script]).stdout.splitlines()
        return [line.split(",", 1)[1] for line in lines if "," in line]

    assert f"s3://{BUCKET}/" in complete("s3://test")
    assert complete(f"s3://{BUCKET}/proj/s") == [f"s3://{BUCKET}/proj/sub01.grp/", f"s3://{BUCKET}/proj/sub02.grp/"]
    assert complete(f"s3://{BUCKET}/proj/sub01.grp/") == [f"s3://{BUCKET}/proj/sub01.grp/x"]


def test_mount_without_fuse_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Machines without /dev/fuse (containers, macOS): the one line says what to install."""
    from ccfs import mount as mounting

    real_exists = os.path.exists
    monkeypatch.setattr(mounting.os.path, "exists", lambda p: False if p == "/dev/fuse" else real_exists(p))
    with pytest.raises(mounting.MountError, match="FUSE is not available: /dev/fuse is missing"):
        mounting.check_fuse()
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(mounting.MountError, match="is not a directory"):
        mounting.check_mountpoint(str(a_file))


def test_mount_refuses_negative_ttls(tmp_path: Path) -> None:
    for option in ("--attr-ttl", "--metadata-ttl"):
        result = subprocess.run([*CCFS, "mount", "b", str(tmp_path), option, "-1"], capture_output=True, text=True)
        assert result.returncode == 2 and f"Invalid value for '{option}': must be 0 or more seconds" in result.stderr


def test_ls_long_shows_arrays_and_shares_the_metadata_cache(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    def heads() -> int:
        return sum(1 for r in s3.requests() if r.method == "HEAD")

    url = f"s3://{BUCKET}/proj/sub01.grp"
    bucket.upload_raw_array("proj/sub01.grp/y", np.zeros((2, 5), dtype="<i4"), compression=False)
    bucket.upload_json("proj/sub01.grp/meta.json", {"a": 1})
    s3.clear_log()
    lines = run(s3, "ls", "-l", url).stdout.splitlines()
    assert [line.split("  ")[-1] for line in lines] == [f"{url}/meta.json", "float64 (3, 4)", "int32 (2, 5)"]
    assert heads() == 2  # the arrays only (a .json name needs none)
    s3.clear_log()
    assert run(s3, "ls", "-l", url).stdout.splitlines() == lines
    assert heads() == 0  # the second process found them in the metadata cache
    bucket.upload_raw_array("proj/sub01.grp/y", np.zeros(3, dtype="<u1"), compression=False)  # a new ETag
    s3.clear_log()
    assert run(s3, "ls", "-l", url).stdout.splitlines()[2].endswith("uint8 (3,)")
    assert heads() == 1
    s3.clear_log()
    run(s3, "ls", "-l", url, env={"CCFS_METADATA_CACHE": "0"})
    assert heads() == 2
