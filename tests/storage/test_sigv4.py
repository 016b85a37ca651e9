"""The lean SigV4 signer writes exactly what botocore's ``S3SigV4Auth`` writes (headers, order and
signature) for the requests it signs, across keys, header values, temporary credentials, a new day
and rotated secrets; the store uses it only when it matched botocore for a probe, and its HEADs and
ranged GETs then go out signed by it."""

from __future__ import annotations

import random
import urllib.parse

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from cottoncandy.storage import S3Account
from cottoncandy.storage.s3.sigv4 import LeanSigner, query_string, verified
from tests.conftest import BUCKET

BASE = "http://127.0.0.1:9000/bucket/"


def botocore_headers(credentials: Credentials, region: str, method: str, url: str,
                     headers: dict[str, str]) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in request.headers.items()}


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE//temporary+token="])
def test_lean_headers_equal_botocores_for_every_key_and_header(token: str | None) -> None:
    rng = random.Random(3)
    alphabet = "abcXYZ019 -_.~/+=&?#%ä€😀\t"
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = LeanSigner(credentials, "eu-west-3", "127.0.0.1:9000")
    for _ in range(200):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        url = BASE + percent_encode(key, safe="/~")
        method = rng.choice(["HEAD", "GET"])
        headers = {}
        if rng.random() < 0.5:
            headers["Range"] = f"bytes={rng.randint(0, 99)}-{rng.randint(100, 10**9)}"
        if rng.random() < 0.5:
            headers["If-Match"] = rng.choice(['"abc"', '  "a  b"  ', '"0123456789abcdef-12"'])
        theirs = botocore_headers(credentials, "eu-west-3", method, url, headers)
        ours = signer.sign(method, urllib.parse.urlsplit(url).path, headers, timestamp=theirs["X-Amz-Date"])
        assert list(ours.items()) == list(theirs.items()), key


def test_a_new_day_and_a_rotated_secret_derive_a_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signing key is kept per (secret, day): a request just after midnight, or after the
    credentials were refreshed with a new secret, is signed with a new key, as botocore's is."""
    import datetime

    import botocore.auth

    credentials = Credentials("AKID", "first-secret")
    signer = LeanSigner(credentials, "us-east-1", "s3.amazonaws.com")
    for moment, secret in [("2026-11-30 23:59:59", "first-secret"), ("2026-12-01 00:00:01", "first-secret"),
                           ("2026-12-01 00:00:02", "second-secret")]:
        now = datetime.datetime.fromisoformat(moment)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda now=now: now)
        credentials.secret_key = secret
        theirs = botocore_headers(credentials, "us-east-1", "HEAD", "https://s3.amazonaws.com/b/k", {})
        assert signer.sign("HEAD", "/b/k", {}, timestamp=now.strftime("%Y%m%dT%H%M%SZ")) == theirs, moment


def test_verified_refuses_a_signer_that_differs() -> None:
    credentials = Credentials("AKID", "secret")
    botocore_signer = S3SigV4Auth(credentials, "s3", "us-east-1")
    url = BASE + "probe"
    assert verified(LeanSigner(credentials, "us-east-1", "127.0.0.1:9000"), botocore_signer, url, "/bucket/probe")
    assert not verified(LeanSigner(credentials, "us-west-2", "127.0.0.1:9000"), botocore_signer, url, "/bucket/probe")
    assert not verified(LeanSigner(credentials, "us-east-1", "other:9000"), botocore_signer, url, "/bucket/probe")


def test_the_store_signs_leanly(s3, s3_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The store chose the lean signer (it matched botocore), and its HEADs, batched HEADs and ranged
    GETs are signed by it, not by botocore."""
    store = S3Account(s3_settings).store(BUCKET)
    store.put("a key/ä+b", b"0123456789")
    fast = store._signed_requests()
    assert fast is not None and fast._lean is not None
    lean_calls = []
    sign = fast._lean.sign
    monkeypatch.setattr(fast._lean, "sign", lambda *a, **k: lean_calls.append(a[0]) or sign(*a, **k))
    monkeypatch.setattr(fast._signer, "add_auth", lambda request: pytest.fail("botocore signed a hot request"))
    info = fast.head("a key/ä+b")
    assert info is not None and info.size == 10
    assert fast.head_many(["a key/ä+b", "missing"]) == {"a key/ä+b": info, "missing": None}
    buffer = memoryview(bytearray(3))
    fast.get_into("a key/ä+b", 2, buffer, None)
    assert bytes(buffer) == b"234"
    assert lean_calls == ["HEAD", "HEAD", "HEAD", "GET"]


def test_the_request_date_follows_the_clock_second_by_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """X-Amz-Date is formatted once per second (not per request) and never lags the clock: a
    request signed in a new second carries that second, and the signature matches botocore's."""
    import datetime

    from cottoncandy.storage.s3 import sigv4 as sigv4

    signer = LeanSigner(Credentials("AKIDEXAMPLE", "secret"), "us-east-1", "h.example")
    clock = [1_767_225_599.2]  # 2025-12-31T23:59:59.2Z, a new day one second later
    monkeypatch.setattr(sigv4.time, "time", lambda: clock[0])
    dates = []
    for now in (1_767_225_599.2, 1_767_225_599.9, 1_767_225_600.0, 1_767_225_600.7, 1_767_225_661.0):
        clock[0] = now
        signed = signer.sign("HEAD", "/b/k", {})
        expected = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        assert signed["X-Amz-Date"] == expected
        assert signed == signer.sign("HEAD", "/b/k", {}, timestamp=expected)  # the same as given that date
        dates.append(signed["X-Amz-Date"])
    assert dates == ["20251231T235959Z", "20251231T235959Z", "20260101T000000Z", "20260101T000000Z",
                     "20260101T000101Z"]


def test_the_query_string_is_what_sigv4_signs() -> None:
    """``query_string`` (what the fast LIST sends) is botocore's canonical query of the same parameters, and
    a URL carrying it is signed unchanged: a space is %20, never '+'; '+', '/', '=' and unicode escaped."""
    rng = random.Random(7)
    alphabet = "abcXYZ019 -_.~/+=&?#%ä€😀"
    signer = S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "s3", "eu-west-3")
    for _ in range(200):
        params = {name: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
                  for name in ("prefix", "continuation-token", "start-after", "delimiter", "list-type")}
        query = query_string(params)
        assert "+" not in query and " " not in query, query
        assert query == signer._canonical_query_string_params(params), params
        assert query == signer.canonical_query_string(AWSRequest("GET", f"{BASE}?{query}")), params
        assert dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) == params
