"""Fixtures of the endpoint-feature tests (issue 25): the checking front (``cottoncandy.testing.s3front``)
in front of the local server, certificates made at test time, and ``*.localhost`` names that resolve to
loopback for the test's duration only (``localhost_names``: no file of the machine is edited)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cottoncandy.testing.certificates import CertFiles, make_certificates
from cottoncandy.testing.localnames import resolving_localhost
from cottoncandy.testing.s3front import S3Front
from cottoncandy.testing.s3server import LocalS3Server

#: the keys the tests' environment gives boto3 (``tests/conftest.py``): the front checks signatures with them
KEYS = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}


@pytest.fixture
def localhost_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.localhost`` resolves to loopback in this process for the test's duration (``testing.localnames``)."""
    monkeypatch.setattr(socket, "getaddrinfo", resolving_localhost(socket.getaddrinfo))


@pytest.fixture
def certificates(tmp_path: Path) -> Callable[..., CertFiles]:
    """``certificates(names, expired=, self_signed=)``: a new CA and server certificate."""
    count = iter(range(100))
    return lambda *args, **kwargs: make_certificates(tmp_path / f"tls{next(count)}", *args, **kwargs)


@pytest.fixture
def front(s3: LocalS3Server) -> Iterator[Callable[..., S3Front]]:
    """``front(**options)``: a started ``S3Front`` before the emptied local server (stopped after the test)."""
    started: list[S3Front] = []

    def make(**options: Any) -> S3Front:
        made = S3Front(s3.endpoint_url, **options)
        try:
            made.start()
        except OSError as exc:  # a port another program holds (443 on a busy machine)
            pytest.skip(f"cannot listen on {options.get('host')}:{options.get('port')}: {exc}")
        started.append(made)
        return made

    yield make
    for made in started:
        made.stop()
