"""Issue 24 item 4: ``ccfs.mountoptions.TABLE`` is the one declaration of ``ccfs mount``'s options.
Each option given to ``ccfs mount`` and as mount(8)'s ``-o`` item makes the same ``MountOptions``
and the same request values; a bad value is one line naming the option in either face; an option
neither knows is refused by name. No mount is made (no FUSE needed)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click
import pytest

from ccfs.cli import mount_command
from ccfs.fstab import FLAGS, NOT_FROM_HELPER, VALUED, translate_options
from ccfs.fstab import main as helper
from ccfs.mountoptions import BY_NAME, TABLE, MountOptions, OptionError, Text, check, mount_options

USAGE = "usage: mount.fuse.ccfs SOURCE MOUNTPOINT [-o OPTION[=VALUE],...]"

#: a good value of each option that takes one, and what it is once parsed (only options of the table
#: are kept: a row without a sample fails the first test)
_GOOD: dict[str, tuple[str, Any]] = {
    "endpoint_url": ("http://h:9/", "http://h:9/"), "profile": ("p1", "p1"), "region": ("eu-west-3", "eu-west-3"),
    "addressing_style": ("Virtual", "virtual"), "cache_size": ("1G", 2**30), "block_size": ("1M", 2**20),
    "read_ahead": ("64K", 2**16), "metadata_ttl": ("60", 60.0), "attr_ttl": ("0.5", 0.5),
    "cache_dir": ("/tmp/ccfs-table-cache", os.path.realpath("/tmp/ccfs-table-cache")),
    "cache_dir_size": ("2G", 2 * 2**30), "metadata_cache_size": ("64M", 64 * 2**20),
    "log_file": ("/tmp/ccfs.log", "/tmp/ccfs.log"), "log_level": ("debug", "DEBUG"), "uid": ("7", 7),
    "gid": ("4294967294", 4294967294), "umask": ("027", 0o27),
    "rename_folder_limit": ("20", 20),  # issue 26 item 6: objects a folder rename copies before EXDEV
    "write_cache_size": ("2G", 2 * 2**30),  # issue 26 item 3: disk for staged files
    "write_compression": ("GZIP", "gzip"),  # issue 26: the codec of arrays written through a --rw mount
}
#: a value each option that can refuse one refuses, and the words of its message
_BAD: dict[str, tuple[str, str]] = {
    "addressing_style": ("vhost", "'vhost' is not one of 'auto', 'path', 'virtual'"),
    "cache_size": ("1e23", "'1e23' is not a size"), "block_size": ("1K", "must be between 4K and 64M"),
    "read_ahead": ("128M", "'128M' is more than 64M"), "metadata_ttl": ("nan", "'nan' is not a number of seconds"),
    "attr_ttl": ("-1", "must be 0 or more seconds"), "cache_dir_size": ("2000000T", "is more than 1048576T"),
    "metadata_cache_size": ("lots", "'lots' is not a size"),
    "log_level": ("LOUD", "'LOUD' is not one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
    "uid": ("4294967295", "'4294967295' is not between 0 and 4294967294"),
    "gid": ("18446744073709551616", "is not between 0 and 4294967294"),
    "umask": ("99", "'99' is not an octal mode"),
    "rename_folder_limit": ("1e3", "'1e3' is not a whole number"),
    "write_cache_size": ("1K", "'1K' is less than 1M"),
    "write_compression": ("zstd", "'zstd' is not one of 'none', 'gzip'"),  # issue 26: streamed codecs only
}
GOOD = {name: sample for name, sample in _GOOD.items() if name in BY_NAME}
BAD = {name: sample for name, sample in _BAD.items() if name in BY_NAME}


def parsed(args: list[str]) -> dict[str, Any]:
    return mount_command.make_context("mount", ["bkt", "/mnt", *args]).params


def test_every_option_has_a_sample_and_the_helper_names_follow_the_table() -> None:
    valued = {o.name for o in TABLE if not o.is_flag and o.fstab}
    assert valued == VALUED == set(GOOD)
    assert {o.name for o in TABLE if o.is_flag and o.fstab} == FLAGS
    assert {"foreground", "fuse_options"} == NOT_FROM_HELPER
    refusing = {o.name for o in TABLE if o.parse is not None and not isinstance(o.parse, Text)}
    assert refusing == set(BAD)
    fields = {f.name for f in dataclasses.fields(MountOptions)}
    assert all(o.field in fields for o in TABLE if o.field is not None)
    options = {p.name for p in mount_command.params if isinstance(p, click.Option)}
    assert options == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(GOOD))
@pytest.mark.parametrize("spelling", ["underscores", "dashes"])
def test_an_option_makes_the_same_mount_through_either_face(name: str, spelling: str) -> None:
    text, value = GOOD[name]
    option = BY_NAME[name]
    by_click = parsed([option.flags[0], text])
    item = name if spelling == "underscores" else name.replace("_", "-")
    by_fstab = parsed(translate_options(f"rw,{item}={text},_netdev"))
    assert by_click[name] == by_fstab[name] == value
    assert mount_options(by_click) == mount_options(by_fstab)
    if option.field is not None:
        assert getattr(mount_options(by_fstab), option.field) == value


@pytest.mark.parametrize("name", sorted(o.name for o in TABLE if o.is_flag and o.fstab))
def test_a_flag_makes_the_same_mount_through_either_face(name: str) -> None:
    option = BY_NAME[name]
    by_click = parsed([option.flags[0]])
    by_fstab = parsed(translate_options(name))
    assert by_click[name] is by_fstab[name] is True
    assert mount_options(by_click) == mount_options(by_fstab)
    if option.field is not None:
        assert getattr(mount_options(by_click), option.field) is (not option.invert)


def test_the_defaults_are_the_fields_defaults() -> None:
    """A default is written once: an option of a field defaults to the field's default."""
    assert mount_options(parsed([])) == MountOptions()
    assert parsed([])["log_level"] == "INFO" and parsed([])["uid"] is None


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_one_line_naming_the_option_in_either_face(name: str, capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Any) -> None:
    text, words = BAD[name]
    flag = BY_NAME[name].flags[0]
    with pytest.raises(click.BadParameter) as caught:
        parsed([flag, text])
    said = caught.value.format_message()
    assert f"'{flag}'" in said and words in said and "\n" not in said, said
    with pytest.raises(SystemExit):
        helper(["bkt", str(tmp_path), "-o", f"{name}={text}"])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mount.fuse.ccfs: -o {name}={text}: "), lines
    assert words in lines[0] and lines[0].endswith(USAGE), lines[0]


def test_checks_across_options_name_one_option() -> None:
    with pytest.raises(OptionError) as caught:
        check(MountOptions(cache_size=2**20, block_size=2**19))
    assert caught.value.name == "cache_size" and str(caught.value) == "must hold at least 4 blocks"
    check(MountOptions())


def test_unknown_options_are_refused_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    with pytest.raises(click.NoSuchOption, match="--cache-sise"):
        parsed(["--cache-sise", "1G"])
    with pytest.raises(SystemExit):
        helper(["bkt", str(tmp_path), "-o", "cache_sise=1G"])
    line = capsys.readouterr().err.strip()
    assert line.startswith("mount.fuse.ccfs: -o cache_sise=1G: not a FUSE option ccfs knows"), line
