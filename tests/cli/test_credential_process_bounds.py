"""Issue 24 item 4: a profile's ``credential_process`` is bounded. One that never exits made ``ccfs ls``
and ``ccfs mount`` hang forever, each mount attempt leaving a daemon behind; one that printed garbage
was reported as ``Expecting value: line 1 column 1``. Now: a time limit (``COTTONCANDY_CREDENTIAL_TIMEOUT``,
30 s by default) and one line naming the profile, never the helper's output; no daemon survives a
failed or timed-out mount."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cliutil import CCFS
from tests.mountutil import force_unmount, needs_fuse

SECRET = "SECRET-abc123"
#: how long the hanging helper's own child sleeps: a number no other process here sleeps for
SLEEP = f"1000.{os.getpid()}"
HELPERS = {
    "hang": f"#!/bin/sh\nsleep {SLEEP} &\nwait\n",  # a helper that waits on a child of its own
    "garbage": f"#!/bin/sh\necho '{SECRET} is not json'\n",
    "fails": "#!/bin/sh\necho 'token expired: run login' >&2\nexit 3\n",
}


def profiles(tmp_path: Path) -> dict[str, str]:
    """An AWS config of one profile per helper, and the environment that uses it (no other keys)."""
    lines = []
    for name, script in HELPERS.items():
        helper = tmp_path / f"helper-{name}.sh"
        helper.write_text(script)
        helper.chmod(0o755)
        lines += [f"[profile {name}]", f"credential_process = {helper}"]
    config = tmp_path / "config"
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1", "COTTONCANDY_CREDENTIAL_TIMEOUT": "2"}


def processes_naming(marker: str) -> list[str]:
    """Command lines of running processes that contain ``marker``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(f"{pid}: {cmdline}")
    return found


def gone(marker: str, within: float = 10.0) -> list[str]:
    deadline = time.monotonic() + within
    while (left := processes_naming(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize(("profile", "said"), [
    ("hang", "credential_process of profile 'hang' gave no credentials within 2s and was stopped "
             "(set COTTONCANDY_CREDENTIAL_TIMEOUT to wait longer)"),
    ("garbage", "credential_process of profile 'garbage' printed something that is not JSON credentials"),
    ("fails", "credential_process of profile 'fails' failed with status 3: token expired: run login"),
])
def test_ls_ends_with_one_line_naming_the_profile(tmp_path: Path, profile: str, said: str) -> None:
    started = time.monotonic()
    result = subprocess.run([*CCFS, "ls", "--profile", profile, "s3://bkt/"], capture_output=True, text=True,
                            env=profiles(tmp_path), timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert said in lines[0] and SECRET not in result.stderr and SECRET not in result.stdout, lines[0]
    assert time.monotonic() - started < 30
    assert not gone(str(tmp_path / "helper-")) and not gone(SLEEP), "the helper was left running"


@needs_fuse
@pytest.mark.parametrize("profile", ["hang", "garbage"])
def test_a_mount_without_credentials_fails_and_leaves_no_daemon(tmp_path: Path, profile: str) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    try:
        result = subprocess.run([*CCFS, "mount", "bkt", str(mountpoint), "--profile", profile],
                                capture_output=True, text=True, env=profiles(tmp_path), timeout=100)
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert f"credential_process of profile '{profile}'" in lines[0] and SECRET not in lines[0], lines[0]
        assert not gone(str(mountpoint)), "a mount daemon was left behind"
        assert not gone(str(tmp_path / "helper-")) and not gone(SLEEP), "the helper was left running"
    finally:
        force_unmount(mountpoint)


MOUNT_WITH_A_SHORT_WAIT = """
import sys
from ccfs.mount import MountError, MountRequest, mount
from ccfs.target import parse_target
try:
    mount(MountRequest(target=parse_target("bkt"), mountpoint=sys.argv[1], profile="hang"), timeout=3)
except MountError as exc:
    print(exc)
    sys.exit(1)
"""


@needs_fuse
def test_a_mount_that_times_out_leaves_no_daemon(tmp_path: Path) -> None:
    """The mount gives up (its own 60 s, 3 s here) before the helper's limit: the daemon, still waiting
    on the helper, was left running; now it and the helper are killed."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    env = {**profiles(tmp_path), "COTTONCANDY_CREDENTIAL_TIMEOUT": "300"}
    try:
        result = subprocess.run([sys.executable, "-c", MOUNT_WITH_A_SHORT_WAIT, str(mountpoint)],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 1 and "timed out after 3s" in result.stdout, (result.stdout, result.stderr)
        assert not gone(str(mountpoint)), "a mount daemon was left behind"
        assert not gone(str(tmp_path / "helper-")) and not gone(SLEEP), "the helper was left running"
    finally:
        force_unmount(mountpoint)
