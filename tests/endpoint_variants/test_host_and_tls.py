"""The Host the fast path signs is the Host it sends, TLS host names are checked alike by both paths,
and certificate failures say why (issue 25, item 2), against the checking front
(``cottoncandy.testing.s3front``: SigV4 verified with the Host as received, TLS from a private CA).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.testing.certificates import CertFiles
from cottoncandy.testing.s3front import S3Front
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET
from tests.endpoint_variants.conftest import KEYS


def _seed(s3: LocalS3Server) -> None:
    store = S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET)
    store.put("dir/a b+c", b"0123456789" * 100, metadata={"dtype": "<f8"})


def _fast_reads(endpoint_url: str) -> S3Store:
    """A store through ``endpoint_url`` whose fast HEAD, GET and LIST must all be taken."""
    store = S3Account(Settings(endpoint_url=endpoint_url)).store(BUCKET)
    assert isinstance(store, S3Store)
    fast = store._signed_requests()
    assert fast is not None
    info = fast.head("dir/a b+c")
    assert info is not None and info.size == 1000 and (info.metadata or {})["dtype"] == "<f8"
    assert fast.head_many(["dir/a b+c"])["dir/a b+c"] is not None
    buffer = bytearray(10)
    assert fast.get_into("dir/a b+c", 5, memoryview(buffer)) and bytes(buffer) == b"5678901234"
    listed = fast.list_dir("dir/")
    assert listed is not None and [o.key for o in listed[1]] == ["dir/a b+c"]
    return store


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_an_endpoint_with_its_default_port_is_signed_as_sent(
        s3: LocalS3Server, front: Callable[..., S3Front], certificates: Callable[..., CertFiles],
        monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    """``https://HOST:443`` (and ``http://HOST:80``): botocore signs ``Host: HOST``; the raw client sent
    ``HOST:443`` (http.client's default port is 80), so every fast request was refused 403."""
    _seed(s3)
    address = "127.0.25.1"
    tls = certificates((address,)) if scheme == "https" else None
    checking = front(host=address, port=443 if tls else 80, certificates=tls, keys=KEYS)
    if tls is not None:
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    endpoint = f"{scheme}://{address}:{checking.port}"
    store = _fast_reads(endpoint)
    assert store.head("dir/a b+c").size == 1000  # boto3's own requests agree
    assert not [s for s in checking.statuses if s.endswith(" 403")], checking.statuses
    assert set(checking.hosts) == {address}, checking.hosts


def test_a_wildcard_certificate_is_taken_alike_by_both_paths(
        s3: LocalS3Server, front: Callable[..., S3Front], certificates: Callable[..., CertFiles],
        localhost_names: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.localhost``: urllib3's host-name rule (boto3's) takes it for ``s3.localhost``, OpenSSL's
    refuses it (too few labels). The fast path matched with OpenSSL's, so every fast request failed
    TLS and was asked again through boto3; both now use one rule (``storage.tls.check_host``)."""
    _seed(s3)
    tls = certificates(("*.localhost",))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    checking = front(certificates=tls, keys=KEYS, url_host="s3.localhost")
    _fast_reads(checking.endpoint_url)
    assert not [s for s in checking.statuses if s.endswith(" 403")], checking.statuses


def test_a_certificate_for_another_name_is_refused_by_both_paths(
        s3: LocalS3Server, front: Callable[..., S3Front], certificates: Callable[..., CertFiles],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(s3)
    tls = certificates(("other.example",))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    checking = front(certificates=tls, keys=KEYS)
    store = S3Account(Settings(endpoint_url=checking.endpoint_url, max_attempts=1)).store(BUCKET)
    assert isinstance(store, S3Store)
    fast = store._signed_requests()
    assert fast is not None and fast.head("dir/a b+c") is None
    with pytest.raises(OSError, match="doesn't match 'other.example'.*AWS_CA_BUNDLE"):
        store.head("dir/a b+c")
    assert not checking.statuses  # no request was answered: both refused the certificate


CASES: dict[str, tuple[dict[str, Any], bool, str]] = {
    "self-signed": ({"self_signed": True}, False, "self-signed certificate"),
    "expired": ({"expired": True}, True, "certificate has expired"),
    "unknown CA": ({}, False, "unable to get local issuer certificate"),
    "another name": ({"names": ("other.example",)}, True, "doesn't match 'other.example'"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_refused_certificate_says_why_in_the_library_and_the_mount(
        s3: LocalS3Server, front: Callable[..., S3Front], certificates: Callable[..., CertFiles],
        monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Was ``failed to check s3://B: SSLError`` (the mount: ``cannot reach https://...: SSLError``)."""
    from ccfs.mount import MountError, MountRequest, make_store
    from ccfs.target import parse_target

    options, trusted, reason = CASES[case]
    tls = certificates(**options)
    if trusted:
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    else:
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    checking = front(certificates=tls)
    account = S3Account(Settings(endpoint_url=checking.endpoint_url))
    with pytest.raises(OSError) as caught:
        account.bucket_exists(BUCKET)
    assert reason in str(caught.value) and "AWS_CA_BUNDLE" in str(caught.value), caught.value
    with pytest.raises(MountError) as refused:
        make_store(MountRequest(parse_target(f"s3://{BUCKET}"), "/nonexistent", endpoint_url=checking.endpoint_url))
    message = str(refused.value)
    assert message.startswith(f"cannot reach {checking.endpoint_url}") and reason in message, message
    assert "AWS_CA_BUNDLE" in message
