"""Fast requests the server refuses are counted by cause, and a run of them is one warning.

A fault proxy in front of the real local S3 server answers ``403 SignatureDoesNotMatch`` to the fast
path's own requests only (``raw=True``: no botocore User-Agent) and forwards boto3's: every read
still succeeds, asked again through boto3, and ``fastpaths.refusals()`` says how many and why.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from cottoncandy import fastpaths
from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.storage.s3 import refusals as refusal_causes
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET
from tests.fastpathutil import fresh_counts, warnings_logged  # noqa: F401 - fresh_counts is an autouse fixture


def proxied_store(proxy: FaultProxy) -> S3Store:
    store = S3Account(Settings(endpoint_url=proxy.endpoint_url)).store(BUCKET)
    assert isinstance(store, S3Store) and store._signed_requests() is not None
    return store


def test_refused_fast_requests_are_counted_by_cause_and_warned_once(
        fault_proxy: FaultProxy, caplog: pytest.LogCaptureFixture) -> None:
    store = proxied_store(fault_proxy)
    store.put("a/x", b"0123456789")
    fault_proxy.set_rules([FaultRule("denied", raw=True)])
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    for _ in range(25):
        assert store.head("a/x").size == 10  # refused fast, answered by boto3
    assert fastpaths.refusals() == {"HTTP 403": 25}  # a HEAD answer has no body: no error code
    buf = memoryview(bytearray(4))
    for _ in range(5):
        store.readinto("a/x", 2, buf)
        assert bytes(buf) == b"2345"
    assert [o.key for o in store.list_dir("a/").objects] == ["a/x"]
    assert fastpaths.refusals() == {"HTTP 403": 25, "HTTP 403 SignatureDoesNotMatch": 6}
    assert fault_proxy.count("denied") == 31
    warned = warnings_logged(caplog)
    assert len(warned) == 1, warned  # one for the run, not one per request
    assert "HTTP 403" in warned[0] and "20 in a row" in warned[0] and "another signature" in warned[0]
    assert "ccfs info --mount" in warned[0]


def test_answers_boto3_gives_alike_are_no_refusals(fault_proxy: FaultProxy,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """404s and 412s are the object's answer (boto3 gets the same), and taken requests end a run."""
    store = proxied_store(fault_proxy)
    first = store.put("v", b"version one")
    store.put("v", b"version two")
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    for _ in range(30):
        assert not store.exists("missing")
        with pytest.raises(OSError):
            store.get_range("v", 0, 3, if_match=first.etag)
    assert store.head_many(["missing", "v"])["v"] is not None
    assert fastpaths.refusals() == {}
    fault_proxy.set_rules([FaultRule("denied", raw=True, limit=15)])
    for _ in range(40):  # 15 refused, then taken: never 20 in a row, nor two thirds of the last minute
        assert store.head("v").size == 11
    assert fastpaths.refusals() == {"HTTP 403": 15} and warnings_logged(caplog) == []


def test_a_run_of_failed_connections_is_warned_with_its_cause(fault_proxy: FaultProxy,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    store = proxied_store(fault_proxy)
    store.put("k", b"abc")
    fault_proxy.set_rules([FaultRule("reset", raw=True, methods=("HEAD",), forward=False)])
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    keys = [f"k{i}" for i in range(3)] + ["k"]
    for _ in range(6):
        found = store.head_many(keys)  # the batched HEADs: every one reset, so None (boto3 asked later)
        assert set(found) == set(keys) and all(v is None for v in found.values())
    counts = fastpaths.refusals()
    assert sum(counts.values()) >= 24 and all(c.startswith(("connection:", "protocol:")) for c in counts), counts
    assert len(warnings_logged(caplog)) == 1


def test_most_of_the_last_minute_is_a_run_too(caplog: pytest.LogCaptureFixture) -> None:
    """Refusals among answers: two thirds of the last minute's fast requests warn; half do not."""
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    where = SimpleNamespace(base_url="https://s3.example.org:443/b/", region="us-east-1")
    for _ in range(40):  # one refused, one taken: half
        refusal_causes.answer(where, "GET", 403, {}, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        refusal_causes.answered()
    assert warnings_logged(caplog) == []
    for _ in range(50):  # three refused, one taken: two thirds of the minute after 40 rounds
        for _ in range(3):
            refusal_causes.answer(where, "GET", 403, {}, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        refusal_causes.answered()
    warned = warnings_logged(caplog)
    assert len(warned) == 1 and "taken in the last 60 s" in warned[0], warned
    assert "names its scheme's default port: give it without :443" in warned[0]  # the advice for this URL


@pytest.mark.parametrize(("status", "headers", "body", "cause", "advice"), [
    (301, {"x-amz-bucket-region": "eu-west-3"}, b"<Error><Code>PermanentRedirect</Code></Error>",
     "HTTP 301 PermanentRedirect", "The bucket is in region eu-west-3; requests are signed for us-east-1: give "
                                   "--region eu-west-3"),
    (400, {}, b"<Error><Code>AuthorizationHeaderMalformed</Code><Region>ap-south-1</Region></Error>",
     "HTTP 400 AuthorizationHeaderMalformed", "region ap-south-1"),
    (403, {}, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", "HTTP 403 SignatureDoesNotMatch",
     "another signature"),
    (503, {}, b"<Error><Code>SlowDown</Code></Error>", "HTTP 503 SlowDown", "throttling"),
])
def test_each_cause_says_what_to_change(caplog: pytest.LogCaptureFixture, status: int, headers: dict[str, str],
                                        body: bytes, cause: str, advice: str) -> None:
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    where = SimpleNamespace(base_url="http://127.0.0.1:9000/b/", region="us-east-1")
    for _ in range(fastpaths.RUN):
        refusal_causes.answer(where, "GET", status, headers, body)
    assert fastpaths.refusals() == {cause: fastpaths.RUN}
    warned = warnings_logged(caplog)
    assert len(warned) == 1 and cause in warned[0] and advice in warned[0], warned


def test_tls_failures_name_the_certificate_problem(caplog: pytest.LogCaptureFixture) -> None:
    import ssl

    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    where = SimpleNamespace(base_url="https://s3.example.org/b/", region="us-east-1")
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    error.verify_code = 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    for _ in range(fastpaths.RUN):
        refusal_causes.failed(where, "HEAD", error)
    assert fastpaths.refusals() == {"TLS: certificate verify failed (self-signed certificate)": fastpaths.RUN}
    assert "AWS_CA_BUNDLE" in warnings_logged(caplog)[0]


def test_causes_never_carry_the_text_of_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """Counts show in ``ccfs info --mount`` and the root's attribute, which other users may read under
    ``allow_other``: a certificate's own names, a credential helper's words or a URL never become a cause."""
    import ssl

    from botocore.exceptions import CredentialRetrievalError

    from cottoncandy.storage.tls import check_host

    where = SimpleNamespace(base_url="https://s3.example.org/b/", region="us-east-1")
    mismatch = ssl.SSLCertVerificationError(1, "hostname 'secret-host.internal' doesn't match 'other.example'")
    mismatch.verify_message = str(mismatch.args[1])
    mismatch.verify_code = 62
    refusal_causes.failed(where, "GET", mismatch)
    refusal_causes.failed(where, "HEAD", CredentialRetrievalError(provider="custom-process",
                                                                  error_msg="token=SECRET-TOKEN-123"))
    counts = fastpaths.refusals()
    assert counts == {"TLS: certificate verify failed (hostname mismatch)": 1, "other: CredentialRetrievalError": 1}
    assert "secret-host" not in repr(counts) and "SECRET" not in repr(counts)
    assert check_host.__doc__  # our own host check says a mismatch with OpenSSL's code (storage.tls)


def test_a_kept_alive_connection_the_server_dropped_is_no_refusal(fault_proxy: FaultProxy) -> None:
    """A batched HEAD on a kept-alive connection that is reset is sent again on a new one and taken: not
    refused (servers close idle connections; counting those would make a sound endpoint look faulty)."""
    store = proxied_store(fault_proxy)
    store.put("k", b"abc")
    assert store.head_many(["k"])["k"] is not None  # the connection is kept for the next batch
    fault_proxy.set_rules([FaultRule("reset", raw=True, methods=("HEAD",), forward=False, limit=1)])
    found = store.head_many(["k"])
    assert fault_proxy.count("reset") == 1 and found["k"] is not None and found["k"].size == 3
    assert fastpaths.refusals() == {}


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_dropped_kept_alive_connection_is_asked_again_on_the_fast_path(fault_proxy: FaultProxy,
                                                                         method: str) -> None:
    """A HEAD or ranged GET on this thread's kept-alive connection, reset before any answer (a server
    closing an idle connection as the request leaves), is sent again on a new connection: taken, not
    refused and asked of boto3 (which would be two requests after every idle spell)."""
    store = proxied_store(fault_proxy)
    store.put("k", b"abcdef")
    buf = memoryview(bytearray(3))
    store.readinto("k", 1, buf)  # this thread's connection is kept for the next request
    assert store.head("k").size == 6
    fault_proxy.set_rules([FaultRule("reset", raw=True, methods=(method,), forward=False, limit=1)])
    before = fault_proxy.counts.get(method, 0)
    if method == "HEAD":
        assert store.head("k").size == 6
    else:
        store.readinto("k", 2, buf)
        assert bytes(buf) == b"cde"
    assert fault_proxy.count("reset") == 1 and fastpaths.refusals() == {}
    assert fault_proxy.counts[method] - before == 2  # the reset one and its second, both fast


def test_a_hostile_endpoint_cannot_grow_the_counts_or_write_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Only S3's shapes of error codes and regions are shown; distinct causes are bounded."""
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    where = SimpleNamespace(base_url="http://127.0.0.1:9000/b/", region="us-east-1")
    for i in range(100):
        refusal_causes.answer(where, "GET", 403, {"x-amz-bucket-region": "x\\nFAKE LOG LINE"},
                              f"<Error><Code>Code{i}</Code><Region>evil\nline</Region></Error>".encode())
    refusal_causes.answer(where, "GET", 403, {}, b"<Error><Code>Bad\nCode</Code></Error>")
    counts = fastpaths.refusals()
    assert len(counts) == fastpaths.MAX_CAUSES and sum(counts.values()) == 101
    assert counts[fastpaths.OTHER] == 101 - (fastpaths.MAX_CAUSES - 1)
    warned = warnings_logged(caplog)
    assert len(warned) == 1 and "FAKE" not in warned[0] and "\n" not in warned[0]
