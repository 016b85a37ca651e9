"""Session fixtures of the differential tests: the 0.4.0 environment, one runner per library, buckets."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from .harness import Runner, env_for
from .venv040 import ensure_venv

OLD_BUCKET = "compat-040"
NEW_BUCKET = "compat-ours"


@pytest.fixture(scope="session")
def python040() -> str:
    """cottoncandy 0.4.0's python; building its environment may take minutes the first time (cached)."""
    try:
        return str(ensure_venv(log=lambda msg: print(msg, file=sys.stderr)))
    except Exception as exc:  # noqa: BLE001 - a failure here must fail the tests, never skip them
        pytest.fail(f"the differential tests need cottoncandy 0.4.0 in a side environment and it could not "
                    f"be built (registry unreachable?): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def compat_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compat-home")


@pytest.fixture(scope="session")
def runners(python040: str, compat_home: Path) -> Iterator[tuple[Runner, Runner]]:
    old = Runner(python040, env_for(compat_home / "old"), "cottoncandy 0.4.0", compat_home / "old.log")
    new = Runner(sys.executable, env_for(compat_home / "new"), "ours", compat_home / "new.log")
    assert old.hello["version"] == "0.4.0", old.hello
    assert old.hello["version"] != new.hello["version"], new.hello
    yield old, new
    old.close()
    new.close()


@pytest.fixture
def s3_client(s3_server: Any) -> Any:
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret", region_name="us-east-1")
    for bucket in (OLD_BUCKET, NEW_BUCKET):
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)
    return client
