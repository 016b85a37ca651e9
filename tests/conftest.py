"""Shared fixtures: a real S3 server (moto in server mode) on loopback, reset between tests.

Tests never see the developer's own credentials or cottoncandy config: the environment is pinned
to dummy keys and an empty config directory before anything imports boto3.

Every boto3 session of the test process shares one botocore data loader (``_share_botocore_data``):
the suite makes well over a thousand clients (one per interface), and each new session otherwise
parses botocore's JSON service and endpoint files again, about 0.2 s of CPU a client, against
0.03 s with the files parsed once. What a client is and does does not change: clients of one session
share the loader in the same way, as boto3 recommends.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# the store contract's checks live in the library (another backend runs them): their asserts explained too
pytest.register_assert_rewrite("cottoncandy.testing.contract")

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


class _UniquePaths(list):  # type: ignore[type-arg]
    """A loader's search paths: every boto3 session appends boto3's own data folder; keep it once."""

    def append(self, path: object) -> None:
        if path not in self:
            super().append(path)


def _share_botocore_data() -> None:
    import botocore.loaders
    import botocore.session

    real = botocore.loaders.create_loader
    if getattr(botocore.session, "create_loader", None) is not real:
        return  # botocore changed how sessions make loaders: leave it alone (only slower)
    made: dict[object, botocore.loaders.Loader] = {}

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in made:
            loader = real(search_path_string)
            if not isinstance(getattr(loader, "_search_paths", None), list):
                return loader  # not the loader this was written for: one per session, as botocore does
            loader._search_paths = _UniquePaths(loader._search_paths)
            made[search_path_string] = loader
        return made[search_path_string]

    botocore.session.create_loader = create_loader


_share_botocore_data()

from cottoncandy.config import Settings  # noqa: E402
from cottoncandy.storage import LocalStore, MemoryStore, ObjectStore, S3Account  # noqa: E402
from cottoncandy.testing.children import FaultProxyChild, S3ServerChild  # noqa: E402
from cottoncandy.testing.s3server import LocalS3Server  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = Path(os.environ.get("CC_CORPUS_DIR", SHARED / "corpus-0.4.0"))
BUCKET = "test-bucket"


@pytest.fixture(autouse=True)
def _own_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test its own ``XDG_CACHE_HOME``: the mount's metadata cache (``cache.metadata``) is never
    the user's, and a test cannot see HEAD answers another test left for a same-named object (the
    server is reset between tests, so two tests' objects can share key, ETag, size and second)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3ServerChild]:
    """The local S3 server, in a child process (``cottoncandy.testing.children`` says why: a test
    reading through a mount must not share its GIL with the server the mount reads from)."""
    server = S3ServerChild().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def in_process_s3_server() -> Iterator[LocalS3Server]:
    """A server in this process, for the few tests that look inside moto's backend (never through a mount)."""
    server = LocalS3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3ServerChild) -> S3ServerChild:
    """The server, emptied, with one bucket ``BUCKET``."""
    s3_server.reset()
    S3Account(Settings(endpoint_url=s3_server.endpoint_url)).create_bucket(BUCKET)
    return s3_server


@pytest.fixture
def fault_proxy(s3: S3ServerChild) -> Iterator[FaultProxyChild]:
    """A ``FaultProxy`` (in a child process) in front of the emptied server (no rules yet: it forwards everything).

    Point a client at ``fault_proxy.endpoint_url``; ``set_rules``/``outage``/``clear`` change what
    it does while the test runs. Fixed seed: the same request order draws the same faults.
    """
    proxy = FaultProxyChild(s3.endpoint_url, seed=1234).start()  # a child: see ``s3_server``
    yield proxy
    proxy.stop()


@pytest.fixture
def s3_settings(s3: S3ServerChild) -> Settings:
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
def cci(s3: S3ServerChild):  # type: ignore[no-untyped-def]
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


@contextmanager
def warns_about(pattern: str) -> Iterator[list[warnings.WarningMessage]]:
    """Like ``pytest.warns(UserWarning, match=...)``, but a ``ResourceWarning`` that garbage collection
    happens to emit inside the block (sockets of earlier clients) is not re-raised as a failure."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any(re.search(pattern, m) for m in messages), f"no UserWarning matching {pattern!r} in {messages}"


# --- running on several workers (pytest-xdist, scripts/test.sh) --------------------------------------------------
#: Tests that measure time (bounded reads, hedging, a signal releasing a reader, outages longer than the retries)
#: or run real mounts: they all run one after another on one worker (``--dist loadgroup``), so two mounts or two
#: stalled fault proxies never compete with each other (under heavy load they then still see the other workers'
#: CPU use). Every worker has its own S3 server (the session fixture), so request counts and resets are per
#: worker whatever the grouping.
#: why a real-mount test is skipped (``mountutil.needs_fuse``); ``real_mount`` knows such tests by it
FUSE_ABSENT = "/dev/fuse is absent: real-mount tests need FUSE"
SERIAL_GROUPS = {"faults": "real-io", "mount": "real-io"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        try:
            folder = item.path.resolve().relative_to(tests_dir).parts[0]
        except ValueError:
            continue
        if folder in SERIAL_GROUPS:
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUPS[folder]))
        elif real_mount(item) and item.get_closest_marker("xdist_group") is None:  # a mount in another folder
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUPS["mount"]))


def real_mount(item: pytest.Item) -> bool:
    """Whether a test runs a real mount: marked ``fuse``, or skipped without /dev/fuse (``mountutil.needs_fuse``)."""
    return item.get_closest_marker("fuse") is not None or any(
        mark.kwargs.get("reason") == FUSE_ABSENT for mark in item.iter_markers("skipif"))
