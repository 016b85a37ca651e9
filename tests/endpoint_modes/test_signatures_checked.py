"""The rig really checks: keys it does not know, or a signature they did not make, are refused (403) on
both the fast path (``s3.signed``) and boto3 -- so a test passing against it means the signatures were right.

Also: the virtual-hosted mode really puts the bucket in the host name (the server's log shows
bucket-less paths), and the https mode really needs the CA (no ``AWS_CA_BUNDLE``: refused by the client).
"""

from __future__ import annotations

import errno
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.config import Config

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.testing.s3identities import Keys
from cottoncandy.testing.s3process import ServerProcess
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET
from tests.endpoint_modes.conftest import REGION_BUCKET, Endpoint, endpoint_of

BAD_KEYS = ("wrong-secret", "revoked", "unknown", "role-without-token", "role-wrong-token")


def bad_keys(endpoint: Endpoint, kind: str) -> Keys:
    ids = endpoint.server.identities
    return {
        "wrong-secret": Keys(ids.user.access_key, ids.user.secret_key[:-4] + "AAAA"),
        "revoked": ids.revoked,
        "unknown": Keys("AKIAUNKNOWNUNKNOWN00", "x" * 40),
        "role-without-token": Keys(ids.role.access_key, ids.role.secret_key),
        "role-wrong-token": Keys(ids.role.access_key, ids.role.secret_key, "FQoGZXIvYXdzEBogus" * 8),
    }[kind]


def store_with(endpoint: Endpoint, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name, value in keys.environment().items():
        monkeypatch.setenv(name, value)
    store = S3Account(endpoint.settings()).store(BUCKET)
    assert isinstance(store, S3Store)
    return store


@pytest.mark.refusals_expected
@pytest.mark.parametrize("kind", BAD_KEYS)
def test_bad_keys_are_refused_on_both_paths(endpoint: Endpoint, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    good = store_with(endpoint, endpoint.keys, monkeypatch)
    good.put("dir/obj", b"some bytes")
    signed = good._signed_requests()
    assert signed is not None and signed.head("dir/obj") is not None  # the fast path, with good keys
    assert endpoint.refused() == []

    bad = store_with(endpoint, bad_keys(endpoint, kind), monkeypatch)
    signed = bad._signed_requests()
    assert signed is not None
    assert signed.head("dir/obj") is None  # refused: the fast path gives up (and the store asks boto3)
    assert signed.get_into("dir/obj", 0, memoryview(bytearray(4))) is False
    assert signed.list_page("dir/", "/", None) is None
    refused_fast = endpoint.refused()
    # 403, or 400 InvalidToken for a session token S3 cannot read (as S3 answers)
    status = 400 if kind == "role-wrong-token" else 403
    assert [(e["method"], e["status"]) for e in refused_fast] == [("HEAD", status), ("GET", status),
                                                                  ("GET", status)], refused_fast
    assert "list-type=2" in refused_fast[2]["query"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        bad.client.head_object(Bucket=BUCKET, Key="dir/obj")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    with pytest.raises(botocore.exceptions.ClientError) as err:
        bad.client.put_object(Bucket=BUCKET, Key="dir/other", Body=b"x")
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken")
    with pytest.raises(OSError) as oserr:  # through the store: one error, EACCES
        bad.get("dir/obj")
    assert oserr.value.errno == errno.EACCES
    assert good.get("dir/obj") == b"some bytes"  # nothing was changed by the refused keys


def test_virtual_mode_puts_the_bucket_in_the_host(endpoint: Endpoint) -> None:
    store = S3Account(endpoint.settings()).store(BUCKET)
    store.put("v/x", b"12345")
    assert store.head("v/x").size == 5
    assert store.get_range("v/x", 1, 3) == b"23"
    assert [o.key for o in store.list_dir("v/").objects] == ["v/x"]
    paths = {entry["path"].rstrip("/") for entry in endpoint.server.requests()
             if entry["method"] in ("PUT", "HEAD", "GET")}
    if endpoint.addressing_style == "virtual":
        assert paths == {"", "/v/x"}, paths  # the bucket was in the Host header, not the path
    else:
        assert paths == {f"/{BUCKET}", f"/{BUCKET}/v/x"}, paths


@pytest.mark.parametrize("endpoint", ["virtual"], indirect=True)
@pytest.mark.parametrize("how", ["profile", "config"])
def test_virtual_style_from_the_profile_or_config(endpoint: Endpoint, how: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The style chosen the other ways a user chooses it: the AWS profile's ``s3.addressing_style``, or
    a botocore ``Config`` given as ``config=``; both paths (fast and boto3) follow it."""
    if how == "profile":
        profile = tmp_path / "aws-config"
        profile.write_text("[default]\ns3 =\n    addressing_style = virtual\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(profile))
        settings = endpoint.settings(addressing_style=None)
    else:
        settings = endpoint.settings(addressing_style=None, boto_config=Config(s3={"addressing_style": "virtual"}))
    store = S3Account(settings).store(BUCKET)
    endpoint.server.clear_log()
    store.put("v/y", b"1")
    assert store.head("v/y").size == 1
    assert [o.key for o in store.list_dir("v/").objects] == ["v/y"]
    assert [e["path"] for e in endpoint.server.requests()] == ["/v/y", "/v/y", "/"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "boto3"])
def test_https_mode_needs_the_ca(rig: ServerProcess, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``AWS_CA_BUNDLE`` the client refuses the server's certificate: the https mode is not
    trusted by accident (a verification switched off would pass every other test too)."""
    tls = endpoint_of(rig, "tls")
    for name, value in tls.keys.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    store = S3Account(tls.settings(fast_paths=fast)).store(BUCKET)
    with pytest.raises(OSError) as err:
        store.head("anything")
    assert "certificate" in str(err.value).lower() or "SSL" in str(err.value), err.value
    monkeypatch.setenv("AWS_CA_BUNDLE", rig.ca_file)
    trusting = S3Account(tls.settings(fast_paths=fast)).store(BUCKET)
    with pytest.raises(OSError) as err:
        trusting.head("anything")  # reached the server: no bucket (the rig is not reset here)
    assert "certificate" not in str(err.value).lower()


def test_one_process_serves_open_or_checking_servers_not_both() -> None:
    """moto's checks are one switch per process: a checking server beside an open one in the same
    process would make the open one refuse every request, so it is refused."""
    open_server = LocalS3Server().start()
    try:
        with pytest.raises(RuntimeError, match="process-wide"):
            checking = LocalS3Server(auth=True)
            try:
                checking.start()
            finally:
                checking.stop()  # had it started, checks would be on for the whole test process
        account = S3Account(Settings(endpoint_url=open_server.endpoint_url))
        account.create_bucket("still-open")  # the open server still takes the tests' dummy keys
        account.store("still-open").put("k", b"v")
    finally:
        open_server.stop()


@pytest.mark.parametrize("endpoint", ["auth-user"], indirect=True)
def test_a_profile_that_assumes_the_role(endpoint: Endpoint, fast: bool, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile with ``role_arn`` and ``source_profile``: botocore asks the rig's STS for the role's
    keys (``AWS_ENDPOINT_URL_STS``) and refreshes them itself; both paths sign with them."""
    ids = endpoint.server.identities
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile analyst]\nrole_arn = {ids.role_arn}\nsource_profile = base\n"
                      "region = us-east-1\n")
    credentials.write_text(f"[base]\naws_access_key_id = {ids.user.access_key}\n"
                           f"aws_secret_access_key = {ids.user.secret_key}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", endpoint.server.endpoint_url)
    store = S3Account(endpoint.settings(fast_paths=fast, profile="analyst")).store(BUCKET)
    assert isinstance(store, S3Store)
    store.put("p/q", b"assumed")
    assert store.head("p/q").size == 7
    assert store.get_range("p/q", 0, 3) == b"ass"
    assert [o.key for o in store.list_dir("p/").objects] == ["p/q"]
    used = store.client._request_signer._credentials.get_frozen_credentials()
    assert used.access_key.startswith("ASIA") and used.token  # the role's, not the user's
    assert used.access_key not in (ids.user.access_key, ids.role.access_key)


@pytest.mark.parametrize("endpoint", ["auth-user", "tls-virtual"], indirect=True)
def test_a_bucket_in_another_region(endpoint: Endpoint, fast: bool) -> None:
    """Signed for eu-west-3 (the scope the server checks), the bucket made there: every path
    signs with that region, so nothing is refused or redirected."""
    settings = endpoint.settings(fast_paths=fast, region="eu-west-3")
    S3Account(settings).create_bucket(REGION_BUCKET)
    store = S3Account(settings).store(REGION_BUCKET)
    assert isinstance(store, S3Store)
    store.put("r/x", b"bonjour")
    assert store.head("r/x").size == 7
    assert store.get_range("r/x", 3, 7) == b"jour"
    assert [o.key for o in store.list_dir("r/").objects] == ["r/x"]
    if fast:
        signed = store._signed_requests()
        assert signed is not None and signed.region == "eu-west-3"
    assert [e["status"] for e in endpoint.server.requests() if e["status"] >= 300] == []
