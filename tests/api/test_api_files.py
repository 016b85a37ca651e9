"""Filesystem calls: lsdir/ls/glob/search, cp/mv/rm, directory transfers, sizes, objects, owners."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.files.transfers import SkippedObject
from cottoncandy.namespace.patterns import level_matcher, levels_regex, split_levels
from tests.conftest import BUCKET, warns_about

KEYS = ["path/to/my/file01a.grp/image_data", "path/to/my/file01b.grp/image_data",
        "path/to/your/file01a.grp/image_data", "path/to/my/file02a.grp/image_data",
        "path/to/my/file02a.grp/text_data", "path/to/my/file02a.grp/deep/x", "path/top", "path/topper/y",
        "other/z"]


@pytest.fixture
def tree(any_cci):  # type: ignore[no-untyped-def]
    for key in KEYS:
        any_cci.upload_object(key, key.encode())
    return any_cci


# --- patterns (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "name", "hit"), [
    ("file0*", "file01a.grp", True), ("file0?a.grp", "file01a.grp", True), ("file0?a.grp", "file011a.grp", False),
    ("*", "a/b", False), ("[ab]x", "bx", True), ("[!ab]x", "bx", False), ("[!ab]x", "cx", True),
    ("a[", "a[", True), ("*.grp", ".grp", True), ("x*", "X1", False),
])
def test_level_matching(level: str, name: str, hit: bool) -> None:
    assert level_matcher(level)(name) is hit


def test_double_star_spans_levels() -> None:
    regex = levels_regex(split_levels("**/image_data"))
    assert regex.fullmatch("image_data") and regex.fullmatch("a/b/image_data")
    assert not regex.fullmatch("a/b/image_data2")
    assert levels_regex(["a", "**"]).fullmatch("a/x/y") and not levels_regex(["a", "**"]).fullmatch("a")


# --- glob / ls / lsdir ------------------------------------------------------------------------


def test_glob_is_shell_like_per_level(tree) -> None:  # type: ignore[no-untyped-def]
    assert tree.glob("path/to/*/file01*.grp/image_data") == [
        "path/to/my/file01a.grp/image_data", "path/to/my/file01b.grp/image_data",
        "path/to/your/file01a.grp/image_data"]
    # '*' stays in its level: the folder 'deep' is not an object, so it is not listed (0.4.0 also gave deep/x)
    assert tree.glob("path/to/my/file02*.grp/*") == [
        "path/to/my/file02a.grp/image_data", "path/to/my/file02a.grp/text_data"]
    assert tree.glob("path/to/my/*.grp") == []
    assert tree.glob("path/top") == ["path/top"]  # exact: 0.4.0 also returned path/topper/y
    assert tree.glob("path/t?p") == ["path/top"]
    assert tree.glob("/path/**/image_data") == sorted(k for k in KEYS if k.endswith("image_data"))
    assert tree.glob("path/to/my/file02a.grp/**") == [
        "path/to/my/file02a.grp/deep/x", "path/to/my/file02a.grp/image_data", "path/to/my/file02a.grp/text_data"]
    assert tree.glob("**") == sorted(KEYS)
    assert tree.glob("*/z") == ["other/z"]
    assert tree.glob("path/to/[!y]*/file01[ab].grp/image_data") == [
        "path/to/my/file01a.grp/image_data", "path/to/my/file01b.grp/image_data"]
    assert tree.glob("nothing/*") == []


def test_glob_lists_level_by_level_not_the_whole_bucket(cci, s3) -> None:  # type: ignore[no-untyped-def]
    for i in range(30):
        cci.upload_object(f"big/unrelated/{i}", b"x")
    for key in KEYS:
        cci.upload_object(key, b"x")
    s3.clear_log()
    assert len(cci.glob("path/to/*/file01*.grp/image_data")) == 3
    time.sleep(0.3)
    lists = [r for r in s3.requests() if r.method == "GET" and "list-type=2" in r.query]
    assert lists and all("delimiter=%2F" in r.query for r in lists)
    assert not any("prefix=big" in r.query or "prefix=&" in r.query or r.query.endswith("prefix=") for r in lists)


def test_ls_and_lsdir(tree) -> None:  # type: ignore[no-untyped-def]
    assert tree.lsdir("path") == ["path/to", "path/topper", "path/top"]
    assert tree.lsdir("path/") == tree.lsdir("/path") == tree.ls("path") == tree.ls("path/*")
    assert tree.lsdir("") == tree.lsdir("/") == ["other", "path"]
    assert tree.lsdir("path/top") == [] and tree.lsdir("nothing") == []
    with pytest.raises(ValueError, match="Use ``ls"):
        tree.lsdir("path/t*")
    assert tree.ls("path/to/*/file01*.grp") == [
        "path/to/my/file01a.grp", "path/to/my/file01b.grp", "path/to/your/file01a.grp"]
    assert tree.ls("path/to/my/*.grp/image_data") == [
        "path/to/my/file01a.grp/image_data", "path/to/my/file01b.grp/image_data", "path/to/my/file02a.grp/image_data"]
    assert tree.ls("path/t*") == ["path/to", "path/top", "path/topper"]
    assert tree.ls("*") == ["other", "path"]
    assert tree.ls("") == ["other", "path"]  # 0.4.0 gave [] here


def test_lsdir_reads_every_page(cci) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: cci.upload_object(f"many/{i:04d}", b""), range(1005)))
    assert len(cci.lsdir("many")) == 1005  # 0.4.0 stopped at one page of 1,000
    assert len(cci.lsdir("many", limit=10)) == 10


def test_search_prints_like_0_4_0(tree, capsys) -> None:  # type: ignore[no-untyped-def]
    assert tree.search("path/to/my/file02*/*") is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == 'Found 2 objects matching "path/to/my/file02*/*"'
    assert lines[0].startswith("path/to/my/file02a.grp/image_data") and lines[0].endswith(" 0.0M")


def test_glob_unquote_option(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_object("pct/a%20b", b"x")
    assert cci.glob("pct/*") == ["pct/a%20b"]
    assert cci.glob("pct/*", do_unquote=True) == ["pct/a b"]


# --- cp / mv / rm -----------------------------------------------------------------------------


def test_cp_and_mv_objects_and_folders(tree) -> None:  # type: ignore[no-untyped-def]
    tree.upload_raw_array("arr", np.arange(4), subject="s1")
    assert tree.cp("arr", "copies/") == ["copies/arr"]
    assert tree.get_metadata("copies/arr")["subject"] == "s1"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tree.cp("arr", "copies/arr")
    tree.cp("arr", "copies/arr", overwrite=True)
    with pytest.raises(IsADirectoryError, match="recursive=True"):
        tree.cp("path/to/my", "backup")
    written = tree.cp("path/to/my", "backup", recursive=True)
    assert len(written) == 5 and "backup/file02a.grp/deep/x" in written
    assert tree.download_object("backup/file02a.grp/deep/x") == b"path/to/my/file02a.grp/deep/x"
    tree.mv("backup", "moved", recursive=True)
    assert tree.glob("backup/**") == [] and len(tree.glob("moved/**")) == 5
    tree.mv("arr", "arr2")
    assert not tree.exists_object("arr") and np.array_equal(tree.download_raw_array("arr2"), np.arange(4))
    with pytest.raises(FileNotFoundError, match="nothing to copy"):
        tree.cp("absent", "x")


def test_cp_between_buckets(cci, s3) -> None:  # type: ignore[no-untyped-def]
    cci.create_bucket("other-bucket")
    cci.upload_raw_array("a", np.ones(3))
    cci.cp("a", "b", dest_bucket="other-bucket")
    cci.set_bucket("other-bucket")
    assert np.array_equal(cci.download_raw_array("b"), np.ones(3))


def test_rm_objects_folders_patterns(tree) -> None:  # type: ignore[no-untyped-def]
    with warns_about("recursive=True"):  # 0.4.0 printed this and went on
        assert tree.rm("path/to/my") == []
    assert tree.exists_object("path/to/my/file01a.grp/image_data")
    assert tree.rm("path/top") == ["path/top"]  # never touches path/topper (0.4.0's prefix match did)
    assert tree.exists_object("path/topper/y")
    assert len(tree.rm("path/to/my", recursive=True)) == 5
    assert tree.glob("path/to/my/**") == [] and tree.glob("path/to/your/**")
    with warns_about("pass recursive=True to remove them"):  # 0.4.0 removed matches only with it
        assert tree.rm("path/*/y") == []
    assert tree.rm("path/*/y", recursive=True) == ["path/topper/y"]
    with warns_about("no objects match"):
        assert tree.rm("nothing/*") == []
    with warns_about("neither an object nor a folder"):
        assert tree.rm("nothing") == []


# --- directories ------------------------------------------------------------------------------


def test_directory_roundtrip(any_cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "b.bin").write_bytes(os.urandom(1000))
    (src / "sub" / "deeper" / "c").write_bytes(b"c")
    flat = any_cci.upload_from_directory(str(src), "up/flat")
    assert [i.key for i in flat] == ["up/flat/a.txt"]
    any_cci.upload_from_directory(str(src), "up/all", recursive=True)
    assert any_cci.glob("up/all/**") == ["up/all/a.txt", "up/all/sub/b.bin", "up/all/sub/deeper/c"]
    out = tmp_path / "out"
    written = any_cci.download_directory("up/all", str(out))
    assert len(written) == 3
    for rel in ("a.txt", "sub/b.bin", "sub/deeper/c"):
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
    with warns_about("nothing downloaded"):
        assert any_cci.download_directory("up/none", str(tmp_path / "none")) == []


def test_download_directory_never_writes_outside(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import boto3

    client = boto3.client("s3", endpoint_url=cci.settings.endpoint_url)
    for key in ("d/ok", "d/../escape", "d/a/../../escape2", "d//abs", "d/./dot", "d/link/x"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"evil" if key != "d/ok" else b"ok")
    target = tmp_path / "target"
    target.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "link").symlink_to(outside)
    with pytest.warns(UserWarning) as warned:
        written = cci.download_directory("d", str(target))
    assert written == [str(target / "ok")]
    skipped = [w.message for w in warned if isinstance(w.message, SkippedObject)]
    assert {m.key for m in skipped} == {"d//abs", "d/../escape", "d/./dot", "d/a/../../escape2", "d/link/x"}
    assert "would leave" in next(m.reason for m in skipped if m.key == "d/link/x")
    assert len(warned) == 6  # and one summary, naming them
    assert "downloaded 1 of 6 objects" in str(warned[-1].message) and "d/link/x" in str(warned[-1].message)
    assert not any(outside.iterdir()) and not (tmp_path / "escape").exists() and not (tmp_path / "escape2").exists()


# --- sizes, objects, owners -------------------------------------------------------------------


def test_sizes_objects_and_owner(any_cci, capsys) -> None:  # type: ignore[no-untyped-def]
    any_cci.upload_object("s/a", b"12345")
    any_cci.upload_object("s/b", b"123")
    assert any_cci.get_size() == 8
    with pytest.warns(DeprecationWarning):
        assert any_cci.get_bucket_size() == 8
    objects = any_cci.get_objects(filter={"Prefix": "s/"})
    assert [(o.key, o.size) for o in objects] == [("s/a", 5), ("s/b", 3)]
    assert len(any_cci.get_objects(limit=1)) == 1
    with pytest.warns(DeprecationWarning):
        assert len(any_cci.get_bucket_objects()) == 2
    any_cci.show_objects()
    assert "s/a" in capsys.readouterr().out
    owner = any_cci.get_object_owner("s/a")
    assert owner.get("ID") and str(owner) in capsys.readouterr().out
