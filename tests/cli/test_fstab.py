"""mount(8)'s calling convention translated to ``ccfs mount`` (no mount here: tests/mount has those)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from ccfs.fstab import UsageError, main, parse_argv, translate_options
from tests.mountutil import needs_fuse

#: the console script of this environment, which /sbin/mount.fuse.ccfs links to
HELPER = Path(sys.executable).parent / "mount.fuse.ccfs"


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


USAGE = "usage: mount.fuse.ccfs SOURCE MOUNTPOINT [-o OPTION[=VALUE],...]"


def test_the_helper_reports_a_bad_option_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bkt", "/mnt", "-o", "uid"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"mount.fuse.ccfs: -o uid needs a value (-o uid=...); {USAGE}\n"


@pytest.mark.parametrize(("options", "said"), [
    ("umask=99", "-o umask=99: '99' is not an octal mode such as 022 or 027"),
    ("cache_size=lots", "-o cache_size=lots: 'lots' is not a size (examples: 4096, 64M, 1G)"),
    ("block-size=1K", "-o block-size=1K: must be between 4K and 64M"),
    ("cache-size=1M,block_size=512K", "-o cache-size=1M: must hold at least 4 blocks"),
    ("metadata_ttl=-1", "-o metadata_ttl=-1: must be 0 or more seconds"),
    ("uid=-3", "-o uid=-3: no such user"),
    ("log_level=LOUD", "-o log_level=LOUD: 'LOUD' is not one of"),
])
def test_bad_option_values_name_the_o_option_and_the_helpers_usage(tmp_path: Path, options: str, said: str) -> None:
    """What mount(8) shows of the helper: one line naming the ``-o`` item as written and the helper's own
    usage, never click's usage of ``ccfs mount`` (``Try 'mount.fuse.ccfs mount -h'``, a command the
    helper does not have) or its ``--flag`` names. The installed console script, as mount(8) runs it."""
    result = subprocess.run([str(HELPER), "bkt", str(tmp_path), "-o", options], capture_output=True, text=True,
                            timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mount.fuse.ccfs: {said}") and lines[0].endswith(f"; {USAGE}"), lines[0]
    assert "--" not in lines[0] and "mount -h" not in lines[0] and "Try " not in lines[0], lines[0]


@needs_fuse
def test_a_failed_mount_through_the_helper_names_o_options(tmp_path: Path) -> None:
    """A mount that fails (not a usage error) is one line without the usage; advice names the ``-o``
    option (``-o endpoint_url=URL``), not ``ccfs mount``'s ``--endpoint-url``."""
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
           "AWS_MAX_ATTEMPTS": "1"}  # no endpoint given, and AWS unreachable from here
    env.pop("AWS_ENDPOINT_URL", None)
    for source, said in (("my-bucket", "pass -o endpoint_url=URL or set AWS_ENDPOINT_URL"),
                         ("ab", "invalid bucket name 'ab'")):
        result = subprocess.run([str(HELPER), source, str(tmp_path)], capture_output=True, text=True, env=env,
                                timeout=60)
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("mount.fuse.ccfs: "), result.stderr
        assert said in lines[0] and "usage" not in lines[0] and "--" not in lines[0], lines[0]


def test_every_ccfs_mount_option_is_known_to_the_helper() -> None:
    """``-o`` takes every ``ccfs mount`` option (README): an option added to the command and not here
    would be passed to libfuse, which refuses it and fails the mount."""
    import click

    from ccfs.cli import mount_command
    from ccfs.fstab import FLAGS, VALUED

    # --foreground: the helper decides (mount(8) waits for it); -o: FUSE's own options pass through
    left_to_the_helper = {"foreground"}
    for param in mount_command.params:
        # the row's name (``--rw`` is the row ``read_write``: ``-o rw`` is mount(8)'s own)
        names = [param.name] if any(opt.startswith("--") for opt in getattr(param, "opts", [])) else []
        if not isinstance(param, click.Option) or not names or names[0] in left_to_the_helper:
            continue
        assert names[0] in (FLAGS if param.is_flag else VALUED), names[0]
    assert translate_options("no_metadata_cache,metadata_cache_size=64M") == [
        "--no-metadata-cache", "--metadata-cache-size", "64M"]
