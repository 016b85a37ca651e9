"""Endpoints as users meet them: the same tests against a signature-checking server, over TLS, virtual-hosted.

One child process per pytest worker serves every mode (``rig``): moto with its own IAM/SigV4 checks on,
plus an https port (``LocalS3Server(auth=True, tls=True)`` run by ``ServerProcess``, since moto's switch
is process-wide). The ``endpoint`` fixture is that server seen one way per parameter:

===============  ==========================  ==========  ================================================
mode             endpoint URL                addressing  credentials
===============  ==========================  ==========  ================================================
``auth-user``    ``http://127.0.0.1:PORT``   path        the IAM user's access key
``auth-role``    ``http://127.0.0.1:PORT``   path        an assumed role's keys and session token
``tls``          ``https://localhost:TLS``   path        the assumed role's keys; the CA made at start
                                                         trusted through ``AWS_CA_BUNDLE``
``virtual``      ``http://localhost:PORT``   virtual     the IAM user's key; bucket hosts
                                                         ``BUCKET.localhost`` (``testing.localnames``)
``tls-virtual``  ``https://localhost:TLS``   virtual     the IAM user's key; ``BUCKET.localhost`` is in
                                                         the certificate (``--tls-name``: no wildcard
                                                         under ``localhost`` passes OpenSSL's check)
===============  ==========================  ==========  ================================================

Credentials reach boto3 as a user's would, through ``AWS_*`` environment variables (so a ``ccfs mount``
child has the same). Every request is checked, so a fast request the server refused shows as a 403 in
its log: the fixture fails a test whose log holds any 403 or 400 (a silent fallback to boto3 is a bug here,
not a detail), unless the test is marked ``refusals_expected``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.testing.localnames import child_environment, resolving_localhost
from cottoncandy.testing.s3identities import Keys
from cottoncandy.testing.s3process import ServerProcess
from tests.conftest import BUCKET

#: a bucket made in eu-west-3 (test_a_bucket_in_another_region); its virtual host is in the certificate too
REGION_BUCKET = "paris-bucket"
MODES = ("auth-user", "auth-role", "tls", "virtual", "tls-virtual")


@dataclass(frozen=True)
class Endpoint:
    """One way of reaching the rig: URL, addressing style, keys, trusted CA."""

    mode: str
    url: str
    keys: Keys
    addressing_style: str  # "path" or "virtual"
    ca_file: str | None
    server: ServerProcess

    def settings(self, fast_paths: bool = True, **more: Any) -> Settings:
        """Settings for this endpoint (keys from the environment, as the fixture set them; the
        addressing style as the library's option, ``Settings.addressing_style``)."""
        more.setdefault("addressing_style", self.addressing_style)
        return Settings(endpoint_url=self.url, fast_paths=fast_paths, **more)

    def environment(self) -> dict[str, str]:
        """What this mode puts in the environment: keys, CA bundle."""
        env = self.keys.environment()
        if self.ca_file:
            env["AWS_CA_BUNDLE"] = self.ca_file
        return env

    def refused(self) -> list[dict[str, Any]]:
        """Requests the server refused since the test began: 403 (a signature, a key), 400 (a token)."""
        return [entry for entry in self.server.requests() if entry["status"] in (400, 403)]


@pytest.fixture(scope="session")
def rig() -> Iterator[ServerProcess]:
    names = [arg for bucket in (BUCKET, REGION_BUCKET) for arg in ("--tls-name", f"{bucket}.localhost")]
    server = ServerProcess("--auth", "--tls", *names).start()
    yield server
    server.stop()


def endpoint_of(rig: ServerProcess, mode: str) -> Endpoint:
    ids = rig.identities
    keys = ids.role if mode in ("auth-role", "tls") else ids.user
    url = {"tls": rig.tls_endpoint_url, "tls-virtual": rig.tls_endpoint_url,
           "virtual": rig.virtual_endpoint_url}.get(mode, rig.endpoint_url)
    return Endpoint(mode, url, keys, "virtual" if mode.endswith("virtual") else "path",
                    rig.ca_file if mode.startswith("tls") else None, rig)


@pytest.fixture(params=MODES)
def endpoint(request: pytest.FixtureRequest, rig: ServerProcess,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """The rig, emptied, with one bucket ``BUCKET``, seen in one mode; fails the test on any refusal."""
    found = endpoint_of(rig, request.param)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name, value in found.environment().items():
        monkeypatch.setenv(name, value)
    if found.addressing_style == "virtual":
        # BUCKET.localhost is loopback in this process for this test only (children: ``localnames_env``)
        monkeypatch.setattr(socket, "getaddrinfo", resolving_localhost(socket.getaddrinfo))
    rig.reset()
    S3Account(found.settings()).create_bucket(BUCKET)
    yield found
    if request.node.get_closest_marker("refusals_expected") is None:
        assert found.refused() == [], "the signature-checking server refused requests (a fast path fell back?)"


@pytest.fixture(params=["fast", "boto3"])
def fast(request: pytest.FixtureRequest) -> bool:
    """Fast paths on (signed HEAD/GET/LIST of ``s3.signed``) or off (boto3 calls only)."""
    return bool(request.param == "fast")


@pytest.fixture
def localnames_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Python children of this test (a ``ccfs mount`` daemon) resolve ``*.localhost`` to loopback too."""
    monkeypatch.setenv("PYTHONPATH", child_environment(folder=tmp_path / "localnames")["PYTHONPATH"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "refusals_expected: the test makes the signature-checking server refuse")
