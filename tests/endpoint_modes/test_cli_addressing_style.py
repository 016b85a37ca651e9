"""``ccfs ls|put|get|cp|glob|info|rm --addressing-style``: every command that opens a store takes the store
options ``ccfs mount`` takes (one declaration: ``mountoptions.STORE_OPTIONS``), run as a user runs them --
a child ``ccfs`` whose ``*.localhost`` names resolve to loopback (``localnames_env``) -- against the
signature-checking rig's virtual-hosted endpoints (http and https).

Before, only ``ccfs mount`` had the option: these commands always sent path-style requests, and a
service that requires virtual-hosted buckets could not be used from the shell.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cliutil import CCFS
from tests.conftest import BUCKET
from tests.endpoint_modes.conftest import Endpoint


def ccfs(endpoint: Endpoint, *args: str, style: str | None = "virtual") -> subprocess.CompletedProcess[str]:
    chosen = ["--addressing-style", style] if style else []
    return subprocess.run([*CCFS, *args, "--endpoint-url", endpoint.url, *chosen], capture_output=True,
                          text=True, timeout=120)


def bucket_paths(endpoint: Endpoint) -> list[str]:
    """The S3 requests' paths that named the bucket (path style) since the log was cleared."""
    return [e["path"] for e in endpoint.server.requests()
            if e["path"] == f"/{BUCKET}" or e["path"].startswith(f"/{BUCKET}/")]


@pytest.mark.parametrize("endpoint", ["virtual", "tls-virtual"], indirect=True)
def test_every_store_command_takes_the_addressing_style(endpoint: Endpoint, localnames_env: None,
                                                         tmp_path: Path) -> None:
    array = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "a.npy", array)
    endpoint.server.clear_log()
    commands = [
        ("put", str(tmp_path / "a.npy"), f"s3://{BUCKET}/dir one/a"),
        ("ls", "-l", f"s3://{BUCKET}/dir one/"),
        ("cp", f"s3://{BUCKET}/dir one/a", f"s3://{BUCKET}/dir two/b"),
        ("glob", f"s3://{BUCKET}/dir */*"),
        ("info", f"s3://{BUCKET}/dir two/b"),
        ("get", f"s3://{BUCKET}/dir two/b", str(tmp_path / "b.npy")),
        ("rm", f"s3://{BUCKET}/dir one/a"),
    ]
    for command in commands:
        result = ccfs(endpoint, *command)
        assert result.returncode == 0, (command, result.stderr)
    assert np.array_equal(np.load(tmp_path / "b.npy"), array)
    listed = ccfs(endpoint, "ls", f"s3://{BUCKET}/")
    assert listed.stdout.splitlines() == [f"s3://{BUCKET}/dir two/"], listed.stdout
    assert len(endpoint.server.requests()) > len(commands)
    assert bucket_paths(endpoint) == []  # every request named the bucket in its Host
    # the option is what chose it: without it, these endpoints are addressed path-style
    endpoint.server.clear_log()
    assert ccfs(endpoint, "ls", f"s3://{BUCKET}/", style=None).returncode == 0
    assert bucket_paths(endpoint) != []


def test_a_style_not_among_the_tables_is_refused_by_name() -> None:
    result = subprocess.run([*CCFS, "ls", "s3://bucket/", "--addressing-style", "vhost"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "'--addressing-style'" in result.stderr and "'vhost'" in result.stderr
    assert "Traceback" not in result.stderr
