"""Issue 24 item 4: every ``ccfs mount`` option has a typed parser with a range, and the helper of
mount(8) takes the same options by the same names (one declaration: ``ccfs mount``'s own). Each value
here was accepted before, and mounted (files owned by uid 0 or 12, a NaN TTL, a cache larger than the
machine) or failed inside libfuse (``mount failed: 3``, ``Fuse() got multiple values for keyword
argument 'fsname'``). Refused before anything is mounted: no FUSE needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cliutil import CCFS

HELPER = Path(sys.executable).parent / "mount.fuse.ccfs"
USAGE = "usage: mount.fuse.ccfs SOURCE MOUNTPOINT [-o OPTION[=VALUE],...]"


@pytest.mark.parametrize(("args", "said"), [
    (["--uid", "4294967296"], "'--uid': '4294967296' is not between 0 and 4294967294"),
    (["--uid", "18446744073709551616"], "'--uid': '18446744073709551616' is not between 0 and 4294967294"),
    (["--gid", "4294967295"], "'--gid': '4294967295' is not between 0 and 4294967294"),
    (["--uid", "\u0661\u0662"], "'--uid': '\u0661\u0662' is not a number in ASCII digits 0-9"),
    (["--metadata-ttl", "nan"], "'--metadata-ttl': 'nan' is not a number of seconds"),
    (["--attr-ttl", "inf"], "'--attr-ttl': 'inf' is not a number of seconds"),
    (["--attr-ttl", "1e400"], "'--attr-ttl': '1e400' is not a number of seconds"),
    (["--metadata-ttl", "-1"], "'--metadata-ttl': must be 0 or more seconds"),
    (["--cache-size", "1e23"], "'--cache-size': '1e23' is not a size"),
    (["--cache-size", "100000000000000000000000"], "is more than this machine's memory"),
    (["--cache-dir-size", "99999999T"], "'--cache-dir-size': '99999999T' is more than 1048576T"),
    (["--read-ahead", "0"], "'--read-ahead': '0' is less than 4K"),
    (["--cache-size", "\u0665\u0661\u0662M"], "is not a size"),
    (["-o", "fsname=mine"], "-o: fsname=mine: ccfs sets it"),
    (["-o", "subtype=x"], "-o: subtype=x: ccfs sets it"),
    (["-o", "allow_other,ro"], "-o: ro: ccfs mounts are read-only unless given --rw"),
    (["-o", "max_read=12x"], "-o: max_read=12x: not a READ size in bytes from 4096 to 1048576"),
    (["-o", "max_read=1"], "-o: max_read=1: not a READ size in bytes from 4096 to 1048576"),
    (["-o", "uid=0"], "-o: uid=0: use --uid"),
    (["-o", "no_such_fuse_option"], "-o: no_such_fuse_option: not a FUSE option ccfs knows"),
])
def test_bad_mount_values_are_refused_by_name(tmp_path: Path, args: list[str], said: str) -> None:
    result = subprocess.run([*CCFS, "mount", "bkt", str(tmp_path), *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert said in last and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(("options", "said"), [
    ("uid=18446744073709551616", "-o uid=18446744073709551616: '18446744073709551616' is not between 0 and"),
    ("gid=4294967296", "-o gid=4294967296: '4294967296' is not between 0 and 4294967294"),
    ("uid=\u0661\u0662", "-o uid=\u0661\u0662: no such user"),
    ("metadata_ttl=nan", "-o metadata_ttl=nan: 'nan' is not a number of seconds"),
    ("cache_size=1e23", "-o cache_size=1e23: '1e23' is not a size"),
    ("read-ahead=0", "-o read-ahead=0: '0' is less than 4K"),
    ("fsname=mine", "-o fsname=mine: ccfs sets it"),
    ("allow_other,bogus", "-o bogus: not a FUSE option ccfs knows"),
])
def test_the_helper_refuses_the_same_values_naming_the_o_item(tmp_path: Path, options: str, said: str) -> None:
    result = subprocess.run([str(HELPER), "bkt", str(tmp_path), "-o", options], capture_output=True, text=True,
                            timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mount.fuse.ccfs: {said}") and lines[0].endswith(f"; {USAGE}"), lines[0]


def test_the_helper_takes_exactly_ccfs_mounts_options() -> None:
    """One declaration: the helper's ``-o`` names are ``ccfs mount``'s options (its click parameters)."""
    import click

    from ccfs.cli import mount_command
    from ccfs.fstab import FLAGS, NOT_FROM_HELPER, VALUED

    names = {p.name for p in mount_command.params if isinstance(p, click.Option) and p.name} - NOT_FROM_HELPER
    assert names == VALUED | FLAGS and not VALUED & FLAGS


def test_relative_paths_are_the_callers() -> None:
    """``--cache-dir`` and ``--log-file`` are resolved where ccfs was run, before the daemon changes to /."""
    import os

    from ccfs.cli import mount_command

    cache_dir = next(p for p in mount_command.params if p.name == "cache_dir")
    ctx = mount_command.make_context("mount", ["bkt", "/mnt", "--cache-dir", "rel/cache"], resilient_parsing=True)
    assert cache_dir.type.convert("rel/cache", cache_dir, ctx) == os.path.join(os.getcwd(), "rel/cache")


def test_each_option_sets_the_mount_options_field_its_row_names() -> None:
    """One declaration: each row of ``mountoptions.TABLE`` names the ``MountOptions`` field it sets
    (``None``: the request's), every such field exists, every click option of ``ccfs mount`` is a row,
    and ``mount_options`` sets each field from its option (``--rw`` sets ``rw``, a flag with ``invert``
    its opposite)."""
    import dataclasses

    import click

    from ccfs.cli import mount_command, mount_options
    from ccfs.filesystem import MountOptions
    from ccfs.mountoptions import TABLE

    fields = {f.name for f in dataclasses.fields(MountOptions)}
    rows = {row.name: row for row in TABLE}
    options = {p.name for p in mount_command.params if isinstance(p, click.Option) and p.name}
    assert options <= set(rows)
    assert {row.field for row in TABLE if row.field is not None} <= fields
    ctx = mount_command.make_context("mount", ["bkt", "/mnt", "--uid", "7", "--attr-ttl", "2.5", "--read-ahead", "8K",
                                               "--no-metadata-cache", "--cache-dir", "/c", "--rw"])
    made = mount_options(ctx.params)
    assert (made.uid, made.attr_ttl, made.read_ahead, made.metadata_cache, made.cache_dir, made.rw) == (
        7, 2.5, 8192, False, "/c", True)
    for name in options:
        row = rows[name]
        if row.field is not None:
            want = (not ctx.params[name]) if row.invert else ctx.params[name]
            assert getattr(made, row.field) == want, name
