"""The first trust pass's leftovers (issue 24, item 7) as a user meets them on the command line:
``cp -r`` of keys no file can have, NUL keys in listings, bad local sidecars in ``ls -l``, a pattern
as a destination, keys with ``//``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from tests.cliutil import CCFS, run
from tests.conftest import BUCKET

LONG = "y" * 300  # a path part longer than the 255 bytes of NAME_MAX


def test_cp_r_copies_every_object_a_file_can_hold_and_names_the_others(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = {f"d/{LONG}": "300 bytes", f"d/{LONG}/f": "300 bytes", "d/.": "'.' part", "d/..": "'..' part",
           "d/a/./b": "'.' part", "d/e//f": "empty part"}
    good = ["d/a1", "d/sub/b2", "d/zz"]
    for key in [*bad, *good]:
        cci.store.put(key, key.encode())
    cci.store.put("d/marker/", b"")  # a folder marker: left out quietly, its folder is no failure
    (tmp_path / "out").mkdir()
    # it fails (objects were left out), naming each on its own line: not run(ok=False)'s one line
    proc = subprocess.run([*CCFS, "cp", "-r", f"s3://{BUCKET}/d", str(tmp_path / "out") + "/"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "AWS_ENDPOINT_URL": s3.endpoint_url})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    total = len(bad) + len(good) + 1  # the marker too
    assert lines[-1] == f"Error: {len(bad)} of {total} objects not copied (each named above with why)"
    named = lines[:-1]
    assert len(named) == len(bad)
    for key, why in bad.items():
        assert any(line.startswith(f"skipped s3://{BUCKET}/{key}: ") and why in line for line in named), (key, named)
    assert proc.stdout.strip() == f"copied {len(good)} objects"
    for key in good:
        assert (tmp_path / "out" / key).read_bytes() == key.encode()
    for path in tmp_path.rglob("*"):  # nothing outside the target
        assert (tmp_path / "out") in path.parents or path == tmp_path / "out"


def test_ls_and_glob_leave_out_nul_keys_naming_them(s3, cci) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("n/ab\x00cd", b"1")
    cci.store.put("n/ab", b"22")  # the NUL key's prefix: another object, which must stay itself
    cci.store.put("n/ok", b"3")
    for args in (["ls", f"s3://{BUCKET}/n/"], ["ls", "-l", f"s3://{BUCKET}/n/"], ["ls", f"s3://{BUCKET}/n/*"],
                 ["glob", f"s3://{BUCKET}/n/*"]):
        result = run(s3, *args)
        assert "\x00" not in result.stdout and "ab\\x00cd" not in result.stdout
        assert [line.split()[-1] for line in result.stdout.splitlines()] == [f"s3://{BUCKET}/n/ab",
                                                                             f"s3://{BUCKET}/n/ok"], args
        assert result.stderr.strip() == (f"left out s3://{BUCKET}/n/ab\\x00cd: a key holding a NUL character can be "
                                         "neither typed on a command line nor a file name"), args


def test_ls_l_of_a_local_bucket_shows_each_bad_sidecar_on_its_own_line(s3, cci_local) -> None:  # type: ignore[no-untyped-def]
    root = Path(cci_local.bucket_name)
    for name in ("a", "badjson", "huge", "types", "z"):
        cci_local.upload_raw_array(name, np.arange(3), compression=False)
    (root / "badjson.meta.json").write_text("{not json")
    (root / "huge.meta.json").write_text(json.dumps({"x": "a" * 70_000}))
    (root / "types.meta.json").write_text(json.dumps({"dtype": 5, "shape": [[1]], "compression": None}))
    for url in (str(root), str(root / "*")):
        lines = run(s3, "ls", "-l", url).stdout.splitlines()
        assert [line.split()[3] for line in lines] == [str(root / n) for n in ("a", "badjson", "huge", "types", "z")]
        assert all(line.split()[0] == "24" for line in lines), lines  # each its size (a 24-byte body)
        assert lines[0].endswith("int64 (3,)") and lines[-1].endswith("int64 (3,)")
        assert "badjson.meta.json: metadata sidecar is not a JSON object" in lines[1]
        assert "huge.meta.json: metadata sidecar is" in lines[2] and "(at most 65536)" in lines[2]
        assert "unreadable" in lines[3]


def test_a_pattern_is_no_destination(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "x.npy"
    np.save(src, np.arange(3))
    cci.upload_object("k", b"v")
    for args in (["cp", str(src), f"s3://{BUCKET}/*"], ["cp", f"s3://{BUCKET}/k", f"s3://{BUCKET}/a?/b"],
                 ["put", str(src), f"s3://{BUCKET}/x[1]"], ["cp", "-r", f"s3://{BUCKET}/k", f"s3://{BUCKET}/*/"]):
        error = run(s3, *args, ok=False).stderr
        assert "is a pattern (it holds * ? or [), not a destination" in error, args
    assert sorted(o.key for o in cci.store.iter_objects()) == ["k"]
    cci.store.put("x[1]", b"old")  # an existing key of that name is that key, as rm takes it
    run(s3, "cp", "--overwrite", f"s3://{BUCKET}/k", f"s3://{BUCKET}/x[1]")
    assert cci.download_object("x[1]") == b"v"


def test_keys_with_empty_parts_are_addressed_exactly(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.store.put("s//t", b"double")
    cci.store.put("s/t", b"single")
    cci.store.put("/lead", b"leading")
    assert run(s3, "ls", f"s3://{BUCKET}/s/").stdout.splitlines() == [f"s3://{BUCKET}/s//", f"s3://{BUCKET}/s/t"]
    assert "stored bytes   6" in run(s3, "info", f"s3://{BUCKET}/s//t").stdout
    run(s3, "cp", f"s3://{BUCKET}/s//t", str(tmp_path / "t"))
    assert (tmp_path / "t").read_bytes() == b"double"
    run(s3, "cp", f"s3://{BUCKET}//lead", f"s3://{BUCKET}/copied")
    assert cci.download_object("copied") == b"leading"
    run(s3, "rm", f"s3://{BUCKET}/s//t")
    assert sorted(o.key for o in cci.store.iter_objects()) == ["/lead", "copied", "s/t"]  # never 's/t'
    run(s3, "rm", f"s3://{BUCKET}/s//t")  # no such object now: the cleaned name, 's/t'
    assert sorted(o.key for o in cci.store.iter_objects()) == ["/lead", "copied"]
