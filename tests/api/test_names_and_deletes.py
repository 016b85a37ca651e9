"""A name that is a key means exactly that key, whatever characters it holds; ``a/`` means the folder only.

Every case runs against the local S3 server (library) or the installed ``ccfs`` command, and
checks both what went and what must have stayed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cliutil import CCFS, run
from tests.conftest import BUCKET, warns_about

# (a key holding wildcard characters, a key its pattern reading would hit)
TRICKY = [("x[1]", "x1"), ("star*", "starfish"), ("q?", "qa"), ("d[ab]c", "dac"), ("we]ird[", "we]ird[")]


def _put(cci, key: str, value: float) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array(key, np.full(3, value))


def _value(cci, key: str) -> float:  # type: ignore[no-untyped-def]
    return float(cci.download_raw_array(key)[0])


@pytest.fixture
def tricky(cci):  # type: ignore[no-untyped-def]
    for index, (name, survivor) in enumerate(TRICKY):
        _put(cci, name, index)
        if survivor != name:
            _put(cci, survivor, 100 + index)
    return cci


# --- library ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "survivor"), [t for t in TRICKY if t[0] != t[1]])
def test_rm_of_an_existing_key_removes_exactly_it(tricky, name: str, survivor: str) -> None:  # type: ignore[no-untyped-def]
    assert tricky.rm(name) == [name]
    assert not tricky.exists_object(name)
    assert tricky.exists_object(survivor)


def test_rm_takes_a_pattern_only_when_no_such_key_or_folder_exists(tricky) -> None:  # type: ignore[no-untyped-def]
    _put(tricky, "x2", 7)
    with warns_about("matches 2 objects.*recursive=True"):  # 0.4.0 removed a pattern's matches only with -r
        assert tricky.rm("x[12]") == []
    assert tricky.rm("x[12]", recursive=True) == ["x1", "x2"]  # no key 'x[12]': the pattern
    assert tricky.exists_object("x[1]")
    _put(tricky, "f[1]/a", 1)
    _put(tricky, "f1/a", 2)
    assert tricky.rm("f[1]", recursive=True) == ["f[1]/a"]  # a literal folder wins over the pattern
    assert tricky.exists_object("f1/a")


def test_ls_shows_what_rm_of_the_same_name_removes(tricky, s3) -> None:  # type: ignore[no-untyped-def]
    assert tricky.ls("x[1]") == ["x[1]"]
    assert run(s3, "ls", f"s3://{BUCKET}/x[1]").stdout.split() == [f"s3://{BUCKET}/x[1]"]
    _put(tricky, "f[1]/a", 1)
    _put(tricky, "f1/b", 2)
    assert tricky.ls("f[1]") == ["f[1]/a"]
    assert tricky.ls("x[0-9]") == ["x1"]  # no such key: the pattern


def test_cp_and_mv_of_keys_holding_wildcards(tricky) -> None:  # type: ignore[no-untyped-def]
    assert tricky.cp("x[1]", "copied") == ["copied"]
    assert _value(tricky, "copied") == 0.0
    assert tricky.mv("q?", "moved/") == ["moved/q?"]
    assert _value(tricky, "moved/q?") == 2.0 and not tricky.exists_object("q?") and tricky.exists_object("qa")
    with pytest.raises(FileNotFoundError, match="patterns are not copied"):
        tricky.cp("x[9]", "nowhere")


def test_download_directory_of_a_folder_named_like_a_pattern(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_json("run[1]/a.json", {"literal": True})
    cci.upload_json("run1/a.json", {"literal": False})
    written = cci.download_directory("run[1]", str(tmp_path / "out"))
    assert written == [str(tmp_path / "out" / "a.json")]
    assert b"true" in (tmp_path / "out" / "a.json").read_bytes()
    with pytest.raises(NotImplementedError, match="not a pattern"):
        cci.download_directory("run[2]", str(tmp_path / "out2"))
    written = cci.download_directory("run[1]/*", str(tmp_path / "out3"))  # 'p/*' means 'p' (0.4.0)
    assert written == [str(tmp_path / "out3" / "a.json")]
    with warns_about(r"no objects under s3://test-bucket/nothing/"):  # names the folder asked for
        assert cci.download_directory("nothing", str(tmp_path / "out4")) == []


def test_recursive_rm_of_a_folder_never_touches_a_sibling_sharing_its_start(cci) -> None:  # type: ignore[no-untyped-def]
    for key in ("f/x", "f/deep/y", "fb", "fb/z", "f.bak"):
        _put(cci, key, 1)
    assert sorted(cci.rm("f", recursive=True)) == ["f/deep/y", "f/x"]
    assert cci.glob("**") == ["f.bak", "fb", "fb/z"]


def test_trailing_slash_is_the_folder_never_the_object_beside_it(cci) -> None:  # type: ignore[no-untyped-def]
    _put(cci, "a", 1)
    _put(cci, "a/x", 2)
    assert cci.glob("a/") == ["a/x"]
    with warns_about("is a folder of 1 objects; pass recursive=True to remove them"):  # 0.4.0 went on too
        assert cci.rm("a/") == []
    assert cci.rm("a/", recursive=True) == ["a/x"]
    assert cci.exists_object("a")
    _put(cci, "a/x", 2)
    assert cci.rm("a", recursive=True) == ["a"]  # the key, exactly (0.4.0 did the same)
    assert cci.exists_object("a/x")


def test_a_pattern_ending_in_slash_names_folders_only(cci) -> None:  # type: ignore[no-untyped-def]
    for key in ("tmp1", "tmp1/a", "tmp2/b/c", "tmq/d"):
        _put(cci, key, 1)
    with warns_about("recursive=True"):
        assert cci.rm("tmp*/") == []
    assert cci.rm("tmp*/", recursive=True) == ["tmp1/a", "tmp2/b/c"]
    assert cci.glob("**") == ["tmp1", "tmq/d"]


def test_library_refuses_dot_components(cci) -> None:  # type: ignore[no-untyped-def]
    _put(cci, "x", 1)
    for name in ("../x", "a/../x", "./x", "a/./x"):
        with pytest.raises(ValueError, match=r"'\.' or '\.\.'"):
            cci.rm(name)
    assert cci.exists_object("x")


# --- command line -----------------------------------------------------------------------------


def test_ccfs_rm_cp_get_of_keys_holding_wildcards(s3, tricky, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "removed 1 object" in run(s3, "rm", f"s3://{BUCKET}/star*").stdout
    assert not tricky.exists_object("star*") and tricky.exists_object("starfish")
    run(s3, "cp", f"s3://{BUCKET}/x[1]", f"s3://{BUCKET}/c/")
    assert _value(tricky, "c/x[1]") == 0.0
    run(s3, "get", f"s3://{BUCKET}/d[ab]c", str(tmp_path / "d.npy"))
    assert np.load(tmp_path / "d.npy")[0] == 3.0
    result = run(s3, "get", f"s3://{BUCKET}/nothing[0-9]", str(tmp_path / "n.npy"), ok=False)
    assert "not a pattern" in result.stderr
    assert run(s3, "rm", f"s3://{BUCKET}/x[1]").stdout.strip() == "removed 1 object"
    assert tricky.exists_object("x1") and not tricky.exists_object("x[1]")


def test_ccfs_info_and_get_of_a_folder_name_never_take_the_object_beside_it(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _put(cci, "d", 5)
    cci.upload_dask_array("d", np.arange(6.0).reshape(2, 3))  # the dask folder d/ beside the object d
    assert cci.exists_object("d")
    assert "dask array" in run(s3, "info", f"s3://{BUCKET}/d/").stdout
    assert "raw array" in run(s3, "info", f"s3://{BUCKET}/d").stdout
    run(s3, "get", f"s3://{BUCKET}/d/", str(tmp_path / "folder.npy"))
    assert np.array_equal(np.load(tmp_path / "folder.npy"), np.arange(6.0).reshape(2, 3))
    run(s3, "get", f"s3://{BUCKET}/d", str(tmp_path / "object.npy"))
    assert np.array_equal(np.load(tmp_path / "object.npy"), np.full(3, 5.0))


def test_ccfs_rm_of_a_local_file_holding_wildcards(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import cottoncandy as cc

    local = cc.get_interface(str(tmp_path / "bucket"), backend="local", verbose=False)
    _put(local, "x[1]", 1)
    _put(local, "x1", 2)
    run(s3, "rm", str(tmp_path / "bucket" / "x[1]"))
    assert local.glob("*") == ["x1"]


def test_ccfs_rm_r_with_trailing_slash_keeps_the_object(s3, cci) -> None:  # type: ignore[no-untyped-def]
    _put(cci, "a", 1)
    _put(cci, "a/x", 2)
    _put(cci, "a/y/z", 3)
    assert "removed 2 objects" in run(s3, "rm", "-r", f"s3://{BUCKET}/a/").stdout
    assert cci.glob("**") == ["a"]


@pytest.mark.parametrize("name", ["../x", "a/../x", "./x", "a/./x", "a/.."])
def test_ccfs_refuses_dot_components(s3, cci, name: str) -> None:  # type: ignore[no-untyped-def]
    _put(cci, "x", 1)
    _put(cci, "a/x", 1)
    for args in (("rm", f"s3://{BUCKET}/{name}"), ("rm", "-r", f"s3://{BUCKET}/{name}"),
                 ("ls", f"s3://{BUCKET}/{name}")):
        assert "'.' or '..' component" in run(s3, *args, ok=False).stderr
    assert cci.glob("**") == ["a/x", "x"]


def test_ccfs_mount_refuses_dot_components_in_the_prefix(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    result = subprocess.run([*CCFS, "mount", f"s3://{BUCKET}/a/../x", str(tmp_path / "mnt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'.' or '..' component" in result.stderr and not os.path.ismount(tmp_path / "mnt")


CONTROL_KEYS = ["evil\x1b[2J\x1b[31mred", "cr\rfake\x07", "c1\x9bz", "bidi\u202ez", "it's \\ ok"]


def _raw(s3, *args: str) -> bytes:  # type: ignore[no-untyped-def]
    """stdout+stderr as bytes (text mode would turn a raw CR into a newline and hide it)."""
    result = subprocess.run([*CCFS, *args], capture_output=True, timeout=120,
                            env={**os.environ, "AWS_ENDPOINT_URL": s3.endpoint_url})
    return result.stdout + result.stderr


def test_control_characters_in_keys_are_escaped(s3, cci) -> None:  # type: ignore[no-untyped-def]
    for key in CONTROL_KEYS:
        cci.upload_raw_array(f"ctl/{key}", np.ones(2))
    outputs = [_raw(s3, "ls", f"s3://{BUCKET}/ctl/"), _raw(s3, "ls", "-l", f"s3://{BUCKET}/ctl/"),
               _raw(s3, "glob", f"s3://{BUCKET}/ctl/*"), _raw(s3, "info", f"s3://{BUCKET}/ctl/{CONTROL_KEYS[0]}"),
               _raw(s3, "rm", f"s3://{BUCKET}/ctl/{CONTROL_KEYS[1]}/"), _raw(s3, "rm", f"s3://{BUCKET}/ctl/")]
    for text in outputs:
        assert text and not any(c.encode() in text for c in "\x1b\r\x07\x9b\u202e"), text
    lines = _raw(s3, "ls", f"s3://{BUCKET}/ctl/").decode().split("\n")[:-1]
    assert len(lines) == len(CONTROL_KEYS)
    # every line names its key unambiguously: bash reads a quoted form back to the exact URL
    shown = set()
    for line in lines:
        if line.startswith("$'"):
            line = subprocess.run(["bash", "-c", f"printf %s {line}"], capture_output=True,
                                  env={"LC_ALL": "C.UTF-8"}, check=True).stdout.decode()
        shown.add(line)
    assert shown == {f"s3://{BUCKET}/ctl/{key}" for key in CONTROL_KEYS}


def test_library_listings_print_control_characters_escaped(cci, capfd) -> None:  # type: ignore[no-untyped-def]
    for key in CONTROL_KEYS:
        cci.upload_raw_array(f"ctl/{key}", np.ones(2))
    cci.search("ctl/*")
    cci.ls("ctl/", verbose=True)
    cci.show_objects()
    printed = capfd.readouterr().out
    assert "Found 5 objects" in printed and "$'ctl/evil\\E[2J\\E[31mred'" in printed
    assert not any(c in printed for c in "\x1b\r\x07\x9b\u202e"), repr(printed)
