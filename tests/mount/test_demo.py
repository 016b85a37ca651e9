"""``ccfs demo`` (README's main command, through scripts/demo.sh) says what it is doing at each step,
before the step: the endpoint's start, the uploads, the mount, the reads, the unmount, the stop."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.mountutil import needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]

#: what the demo announces, in order, each before it happens
STEPS = [
    "== starting a local S3 endpoint",
    "== writing sample arrays with cottoncandy",
    "== mounting demo-bucket at ",
    "== reading the mount with ls",
    "== np.load(path, mmap_mode='r') on the mount",
    "== unmounting: ccfs umount ",
    "== stopping the local S3 endpoint",
    "demo done",
]


def test_the_demo_narrates_every_step() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    result = subprocess.run([sys.executable, "-m", "ccfs", "demo"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    found = [next((i for i, line in enumerate(lines) if line.startswith(step)), -1) for step in STEPS]
    assert -1 not in found and found == sorted(found), (found, result.stdout)
    assert lines[found[0]] == lines[0] or not any(lines[:found[0]]), result.stdout  # the first thing it says
    assert lines[found[2] + 1].startswith("$ ccfs mount demo-bucket "), result.stdout  # the command it runs
    assert "mounted s3://demo-bucket on " in result.stdout and "Traceback" not in result.stderr
