"""mount(8)'s calling convention translated to ``ccfs mount`` (no mount here: tests/mount has those)."""

from __future__ import annotations

import os
import pwd

import pytest

from ccfs.fstab import UsageError, main, parse_argv, translate_options


def test_mount_8_arguments_are_parsed() -> None:
    assert parse_argv(["bkt/p", "/mnt/x", "-o", "rw,endpoint_url=http://h:9", "-n", "-t", "fuse.ccfs"]) == (
        "bkt/p", "/mnt/x", "rw,endpoint_url=http://h:9", False)
    assert parse_argv(["-sv", "bkt", "/mnt", "-oa=1", "-o", "b"])[2:] == ("a=1,b", False)
    assert parse_argv(["bkt", "/mnt", "-f"])[3] is True  # mount -f: fake


@pytest.mark.parametrize("argv", [["bkt"], ["bkt", "/mnt", "extra"], ["bkt", "/mnt", "-o"], ["bkt", "/mnt", "-z"]])
def test_arguments_mount_8_would_not_give_are_refused(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_argv(argv)


def test_generic_options_are_dropped_and_ours_mapped() -> None:
    args = translate_options("rw,defaults,noauto,_netdev,nofail,user,x-systemd.automount,x-systemd.idle-timeout=60,"
                             "comment=x,endpoint_url=http://h:9/,cache-size=1G,metadata_ttl=60,no_fast_paths,"
                             "umask=027,allow_other,max_read=131072")
    assert args == ["--endpoint-url", "http://h:9/", "--cache-size", "1G", "--metadata-ttl", "60",
                    "--no-fast-paths", "--umask", "027", "-o", "allow_other,max_read=131072"]
    assert translate_options("") == []


def test_owners_by_name_or_number() -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    assert translate_options(f"uid={me},gid=7") == ["--uid", str(os.getuid()), "--gid", "7"]
    with pytest.raises(UsageError, match="no such user"):
        translate_options("uid=no-such-user-here")


@pytest.mark.parametrize(("options", "message"), [("cache_size", "needs a value"), ("endpoint_url=", "needs a value"),
                                                  ("no_fast_paths=1", "takes no value")])
def test_bad_options_are_named(options: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        translate_options(options)


def test_the_helper_reports_a_bad_option_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bkt", "/mnt", "-o", "uid"])
    assert exit_.value.code == 1 and capsys.readouterr().err == "mount.fuse.ccfs: option uid needs a value (uid=...)\n"


def test_every_ccfs_mount_option_is_known_to_the_helper() -> None:
    """``-o`` takes every ``ccfs mount`` option (README): an option added to the command and not here
    would be passed to libfuse, which refuses it and fails the mount."""
    import click

    from ccfs.cli import mount_command
    from ccfs.fstab import FLAGS, VALUED

    # --foreground: the helper decides (mount(8) waits for it); -o: FUSE's own options pass through
    left_to_the_helper = {"foreground"}
    for param in mount_command.params:
        names = [opt[2:].replace("-", "_") for opt in getattr(param, "opts", []) if opt.startswith("--")]
        if not isinstance(param, click.Option) or not names or names[0] in left_to_the_helper:
            continue
        assert names[0] in (FLAGS if param.is_flag else VALUED), names[0]
    assert translate_options("no_metadata_cache,metadata_cache_size=64M") == [
        "--no-metadata-cache", "--metadata-cache-size", "64M"]
