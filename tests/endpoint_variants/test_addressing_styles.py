"""The addressing style of buckets (issue 25, item 2): ``s3.addressing_style`` of the AWS profile,
``config=`` (a botocore ``Config``), ``Settings``/``ccfs mount --addressing-style``; the fast path
follows the same choice, and a store's spec carries it to workers. Against the checking front in
its virtual-only mode (path-style requests are refused 400, as a service that requires
virtual-hosted buckets does), with ``*.localhost`` resolving to loopback for the test only.

Before, with an endpoint the library always forced path style: every request was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from botocore.config import Config

import cottoncandy as cc
from cottoncandy.config import Settings, checked_addressing_style
from cottoncandy.storage import S3Account, registry
from cottoncandy.storage.s3 import S3Store
from cottoncandy.testing.s3front import S3Front
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET
from tests.endpoint_variants.conftest import KEYS


@pytest.fixture
def virtual_only(s3: LocalS3Server, front: Callable[..., S3Front], localhost_names: None) -> S3Front:
    S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET).put("dir/x", b"0123456789")
    return front(keys=KEYS, url_host="localhost", virtual_host="localhost", virtual_only=True)


def _check(store: S3Store, checking: S3Front) -> None:
    """Every fast request and every boto3 request of ``store`` is virtual-hosted (none refused)."""
    fast = store._signed_requests()
    assert fast is not None and fast.base_url.startswith(f"http://{BUCKET}.localhost:")
    assert fast.head("dir/x") is not None and fast.list_dir("dir/") is not None
    assert store.head("dir/x").size == 10 and [o.key for o in store.list_dir("dir/").objects] == ["dir/x"]
    assert not [s for s in checking.statuses if s.endswith((" 400", " 403"))], checking.statuses
    assert f"{BUCKET}.localhost:{checking.port}" in checking.hosts


def test_the_profiles_addressing_style_is_honoured(virtual_only: S3Front, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[default]\ns3 =\n    addressing_style = virtual\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    store = S3Account(Settings(endpoint_url=virtual_only.endpoint_url)).store(BUCKET)
    assert isinstance(store, S3Store)
    _check(store, virtual_only)
    # the choice travels with the store's spec: a worker in another process (the token unknown there)
    # may have no such profile
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    worker = registry.kind_of("s3").from_spec(replace(store.spec(), token=None))
    assert isinstance(worker, S3Store) and worker.settings.addressing_style == "virtual"
    _check(worker, virtual_only)


def test_a_config_given_to_get_interface_chooses_the_style(virtual_only: S3Front) -> None:
    cci = cc.get_interface(BUCKET, endpoint_url=virtual_only.endpoint_url, verbose=False,
                           config=Config(s3={"addressing_style": "virtual"}, connect_timeout=7))
    cci.upload_raw_array("arr", np.arange(5.0))
    np.testing.assert_array_equal(cci.download_raw_array("arr"), np.arange(5.0))
    store = S3Account(Settings(endpoint_url=virtual_only.endpoint_url,
                               boto_config=Config(s3={"payload_signing_enabled": False},
                                                  ))).store(BUCKET)
    assert store.client.meta.config.s3["addressing_style"] == "path"  # their s3 options beside ours


def test_the_settings_choice_and_the_mount_option(virtual_only: S3Front) -> None:
    from ccfs.mount import MountRequest, make_store
    from ccfs.target import parse_target

    store = S3Account(Settings(endpoint_url=virtual_only.endpoint_url, addressing_style="virtual")).store(BUCKET)
    assert isinstance(store, S3Store)
    _check(store, virtual_only)
    mounted = make_store(MountRequest(parse_target(f"s3://{BUCKET}"), "/nonexistent",
                                      endpoint_url=virtual_only.endpoint_url, addressing_style="virtual"))
    assert isinstance(mounted, S3Store)
    _check(mounted, virtual_only)


def test_path_style_stays_the_default_with_an_endpoint(virtual_only: S3Front) -> None:
    store = S3Account(Settings(endpoint_url=virtual_only.endpoint_url)).store(BUCKET)
    with pytest.raises(OSError):
        store.head("dir/x")
    assert virtual_only.statuses["HEAD 400"] >= 1


def test_a_style_is_one_of_three() -> None:
    assert checked_addressing_style(" Virtual ") == "virtual" and checked_addressing_style(None) is None
    with pytest.raises(ValueError, match="auto, path, virtual"):
        checked_addressing_style("vhost")


def test_workers_are_told_the_style_the_client_uses_when_config_overrides_the_settings() -> None:
    """``config=`` wins over the settings in the client (``client_config``); the spec given to workers
    must say the same, not the settings' choice (it once said path where the client used virtual)."""
    settings = Settings(endpoint_url="http://127.0.0.1:9", addressing_style="path",
                        boto_config=Config(s3={"addressing_style": "virtual"}))
    store = S3Account(settings).store(BUCKET)
    assert store.client.meta.config.s3["addressing_style"] == "virtual"
    assert store.addressing_style() == "virtual"
    assert dict(store.spec().settings)["addressing_style"] == "virtual"
