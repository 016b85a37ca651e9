"""Every query a fast LIST sends is the query it signed (``sigv4.query_string``): against the
signature-checking rig, a continuation token with '+', '/', '=' and a space, a unicode start-after and a
prefix with a space are each answered 200 to the fast request itself (no 403, no second request by boto3)."""

from __future__ import annotations

import pytest

from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.storage.s3.signed import SignedRequests
from tests.conftest import BUCKET
from tests.endpoint_modes.conftest import Endpoint


def fast_requests(endpoint: Endpoint) -> SignedRequests:
    store = S3Account(endpoint.settings(fast_paths=True)).store(BUCKET)
    assert isinstance(store, S3Store)
    signed = store._signed_requests()
    assert signed is not None
    for name in ("a dir/ä 1", "a dir/ä 2", "a dir/ö 3"):
        store.put(name, b"x")
    endpoint.server.clear_log()
    return signed


@pytest.mark.parametrize("token", ["a+b/c=d", "ends with==", "sp ace+/"])
def test_a_continuation_token_is_sent_as_signed(endpoint: Endpoint, token: str) -> None:
    # not one the server gave: moto starts the listing over, S3 would say 400 InvalidArgument -- either way
    # a signature it accepted; a 403 is what a query sent other than signed gets
    page = fast_requests(endpoint).list_page("a dir/", "/", token)
    assert page is not None
    assert endpoint.refused() == []


def test_a_unicode_start_after_is_sent_as_signed(endpoint: Endpoint) -> None:
    objects = fast_requests(endpoint).list_page_after("a dir/", "a dir/ä 1", 10)
    assert objects is not None and [o.key for o in objects] == ["a dir/ä 2", "a dir/ö 3"]
    assert endpoint.refused() == []


def test_pages_of_a_prefix_with_a_space_follow_their_tokens(endpoint: Endpoint) -> None:
    listed = fast_requests(endpoint).list_dir("a dir/", page_size=1)
    assert listed is not None and [o.key for o in listed[1]] == ["a dir/ä 1", "a dir/ä 2", "a dir/ö 3"]
    assert endpoint.refused() == []
    assert len(endpoint.server.requests()) == 3  # one request per page, none asked again
