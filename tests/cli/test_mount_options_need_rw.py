"""Options that mean something only on a ``--rw`` mount are refused without it, by name, in one line,
in either face: ``ccfs mount --allow-delete`` says ``--allow-delete needs --rw``; mount(8)'s helper
given ``-o allow_delete`` without ``read_write`` says ``-o allow_delete needs -o read_write``. The fact
is each row's ``needs`` in ``ccfs.mountoptions.TABLE`` (declared once). No mount is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ccfs.cli import main as ccfs
from ccfs.fstab import main as helper
from ccfs.mountoptions import BY_NAME, TABLE, MountOptions, NeedsOption, check

#: the options of writes through the mount: each needs --rw
WRITE_OPTIONS = {"allow_delete": None, "last_writer_wins": None, "rename_folder_limit": "1000",
                 "write_compression": "none", "write_cache_size": "2G"}


def test_the_write_options_are_the_rows_that_need_rw() -> None:
    assert {o.name: o.needs for o in TABLE if o.needs is not None} == dict.fromkeys(WRITE_OPTIONS, "read_write")
    assert all(BY_NAME[o.needs].is_flag for o in TABLE if o.needs is not None)


@pytest.mark.parametrize("name", sorted(WRITE_OPTIONS))
def test_ccfs_mount_refuses_a_write_option_without_rw(name: str, tmp_path: Path) -> None:
    """Even with the default value (given counts, not the value); nothing is mounted."""
    value = WRITE_OPTIONS[name]
    flag = BY_NAME[name].flags[0]
    args = [flag] if value is None else [flag, value]
    result = CliRunner().invoke(ccfs, ["mount", "bkt", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {flag} needs --rw"], result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(WRITE_OPTIONS))
@pytest.mark.parametrize("spelling", ["underscores", "dashes"])
def test_the_helper_refuses_a_write_option_without_read_write(name: str, spelling: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """mount(8) passes ``rw`` to every helper: that is not ``read_write``."""
    value = WRITE_OPTIONS[name]
    item = name if spelling == "underscores" else name.replace("_", "-")
    with pytest.raises(SystemExit) as ended:
        helper(["bkt", str(tmp_path), "-o", f"rw,{item}" + ("" if value is None else f"={value}") + ",_netdev"])
    assert ended.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mount.fuse.ccfs: -o {name} needs -o read_write"), lines


def test_with_rw_the_write_options_pass_the_check() -> None:
    given = set(WRITE_OPTIONS)
    check(MountOptions(rw=True, allow_delete=True, last_writer_wins=True), given | {"read_write"})
    with pytest.raises(NeedsOption) as caught:
        check(MountOptions(allow_delete=True), given)
    assert caught.value.name == "allow_delete" and caught.value.needed == "read_write"
    assert str(caught.value) == "--allow-delete needs --rw"
    check(MountOptions(), {"cache_size", "uid"})  # options that need nothing
