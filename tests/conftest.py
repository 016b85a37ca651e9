"""Shared fixtures: a real S3 server (moto in server mode) on loopback, reset between tests.

Tests never see the developer's own credentials or cottoncandy config: the environment is pinned
to dummy keys and an empty config directory before anything imports boto3.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_CONFIG_HOME = tempfile.mkdtemp(prefix="cc-test-config-")
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing-secret-do-not-log",
    AWS_DEFAULT_REGION="us-east-1",
    XDG_CONFIG_HOME=_CONFIG_HOME,
    AWS_CONFIG_FILE=os.path.join(_CONFIG_HOME, "aws-config"),
    AWS_SHARED_CREDENTIALS_FILE=os.path.join(_CONFIG_HOME, "aws-credentials"),
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"):
    os.environ.pop(_name, None)

from cottoncandy.config import Settings  # noqa: E402
from cottoncandy.storage import LocalStore, MemoryStore, ObjectStore, S3Account  # noqa: E402
from cottoncandy.testing.faultproxy import FaultProxy  # noqa: E402
from cottoncandy.testing.s3server import LocalS3Server  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = Path(os.environ.get("CC_CORPUS_DIR", SHARED / "corpus-0.4.0"))
BUCKET = "test-bucket"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3Server]:
    server = LocalS3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: LocalS3Server) -> LocalS3Server:
    """The server, emptied, with one bucket ``BUCKET``."""
    s3_server.reset()
    S3Account(Settings(endpoint_url=s3_server.endpoint_url)).create_bucket(BUCKET)
    return s3_server


@pytest.fixture
def fault_proxy(s3: LocalS3Server) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of the emptied server (no rules yet: it forwards everything).

    Point a client at ``fault_proxy.endpoint_url``; ``set_rules``/``outage``/``clear`` change what
    it does while the test runs. Fixed seed: the same request order draws the same faults.
    """
    proxy = FaultProxy(s3.endpoint_url, seed=1234).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def s3_settings(s3: LocalS3Server) -> Settings:
    return Settings(endpoint_url=s3.endpoint_url)


@pytest.fixture
def s3_store(s3_settings: Settings) -> ObjectStore:
    return S3Account(s3_settings).store(BUCKET)


@pytest.fixture(params=["s3", "local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Every store, for the contract suite."""
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    if request.param == "local":
        return LocalStore(tmp_path / "bucket")
    return MemoryStore()


@pytest.fixture
def cci(s3: LocalS3Server):  # type: ignore[no-untyped-def]
    import cottoncandy as cc

    return cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False)


@pytest.fixture
def cci_local(tmp_path: Path):  # type: ignore[no-untyped-def]
    import cottoncandy as cc

    return cc.get_interface(str(tmp_path / "localbucket"), backend="local", verbose=False)


@pytest.fixture(params=["s3", "local"])
def any_cci(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.getfixturevalue("cci" if request.param == "s3" else "cci_local")


def require_corpus() -> Path:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip(f"the cottoncandy 0.4.0 corpus is not at {CORPUS} (set CC_CORPUS_DIR)")
    return CORPUS
