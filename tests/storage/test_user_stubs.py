"""A user's in-process S3 (moto's ``mock_aws``, a ``before-send`` stub) still answers the library.

The LIST body cap (``storage/s3/list_bodies.py``) once answered ``before-send`` itself: it sent the request
to the network before a user's stub could answer, so under ``mock_aws`` ``ls`` failed with "cannot reach
AWS S3" (and, with a network, sent the user's keys to AWS). The cap now only marks the request."""

from __future__ import annotations

import numpy as np
import pytest
from moto import mock_aws

import cottoncandy as cc


@pytest.fixture
def offline_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path talks to sockets, which ``mock_aws`` cannot answer: boto3's path only (the cap stays)."""
    monkeypatch.setenv("CCFS_FAST_PATHS", "0")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_moto_s_mock_answers_listings_and_arrays(offline_fast_paths: None) -> None:
    with mock_aws():
        cci = cc.get_interface("stubbed", verbose=False, force_bucket_creation=True)
        cci.upload_raw_array("a/x", np.arange(5.0))
        assert cci.ls("a/") == ["a/x"]
        assert cci.glob("a/*") == ["a/x"]
        assert np.array_equal(cci.download_raw_array("a/x"), np.arange(5.0))


def test_the_cap_still_bounds_what_reaches_the_network() -> None:
    """Installed on a real client: listing requests are marked, and only they are capped."""
    from cottoncandy.storage.s3 import list_bodies as list_bodies

    class Session:
        def __init__(self) -> None:
            self.sent: list[object] = []

        def send(self, request: object) -> str:
            self.sent.append(request)
            return "plain"

    class Endpoint:
        http_session = Session()

    class Events:
        def __init__(self) -> None:
            self.handlers: dict[str, object] = {}

        def register(self, name: str, handler: object, unique_id: str) -> None:
            self.handlers[name] = handler

    class Client:
        _endpoint = Endpoint()
        meta = type("Meta", (), {"events": Events()})()

    client = Client()
    list_bodies.cap_list_bodies(client)
    list_bodies.cap_list_bodies(client)  # idempotent: one wrapper
    session = Client._endpoint.http_session
    other = type("Request", (), {"url": "http://h/b/k"})()
    assert session.send(other) == "plain"  # not a listing: untouched
    assert set(client.meta.events.handlers) == {f"before-send.s3.{op}" for op in list_bodies.OPERATIONS}
