"""Running the installed ``ccfs`` command against the test S3 server, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

CCFS = [sys.executable, "-m", "ccfs"]


def run(s3, *args: str, ok: bool = True, env: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
        command: list[str] = CCFS) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "AWS_ENDPOINT_URL": s3.endpoint_url, **(env or {})}
    result = subprocess.run([*command, *args], capture_output=True, text=True, env=full_env, timeout=120)
    if ok:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result
