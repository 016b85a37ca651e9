"""Buckets in other regions than the client's default (issue 25, item 2): made with their
LocationConstraint, followed once by the fast path (a 301's ``x-amz-bucket-region``), learned by the
bucket check and carried to workers in the store's spec. The checking front answers a request signed
for another region than its bucket's with S3's 301."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import boto3
import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.config import Settings
from cottoncandy.storage import S3Account, registry
from cottoncandy.storage.s3 import S3Store
from cottoncandy.storage.s3.signed import regional_url
from cottoncandy.testing.s3front import S3Front
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET
from tests.endpoint_variants.conftest import KEYS


def test_a_new_bucket_in_another_region_names_its_location_with_an_endpoint(s3: LocalS3Server) -> None:
    """``get_interface(new, region='eu-west-3', endpoint_url=..., force_bucket_creation=True)`` sent no
    LocationConstraint when an endpoint was given: ``IllegalLocationConstraintException`` (moto checks it)."""
    cci = cc.get_interface("made-in-paris", region="eu-west-3", endpoint_url=s3.endpoint_url,
                           force_bucket_creation=True, verbose=False)
    cci.upload_raw_array("x", np.arange(8.0))
    assert cci.download_raw_array("x").sum() == 28.0
    client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="eu-west-3")
    assert client.get_bucket_location(Bucket="made-in-paris")["LocationConstraint"] == "eu-west-3"
    # us-east-1 (the default) names none, as S3 requires
    cc.get_interface("made-in-virginia", endpoint_url=s3.endpoint_url, force_bucket_creation=True, verbose=False)
    assert client.get_bucket_location(Bucket="made-in-virginia")["LocationConstraint"] in (None, "us-east-1")


@pytest.fixture
def elsewhere(s3: LocalS3Server, front: Callable[..., S3Front]) -> S3Front:
    """The bucket lives in eu-west-3: a request signed for another region is answered 301 naming it."""
    S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET).put("dir/x", b"0123456789")
    return front(keys=KEYS, bucket_regions={BUCKET: "eu-west-3"})


def _moved(checking: S3Front) -> int:
    return sum(n for status, n in checking.statuses.items() if status.endswith(" 301"))


def test_the_fast_path_follows_a_bucket_to_its_region_once(elsewhere: S3Front) -> None:
    """A store opened without the bucket check (a dask worker, ``ccfs ls``): every fast request was
    answered 301 and asked again through boto3, for the life of the process."""
    store = S3Account(Settings(endpoint_url=elsewhere.endpoint_url)).store(BUCKET)
    assert isinstance(store, S3Store)
    fast = store._signed_requests()
    assert fast is not None and fast.region == "us-east-1"
    for _ in range(3):
        assert fast.head("dir/x") is not None
        assert fast.head_many(["dir/x"])["dir/x"] is not None
        assert fast.get_into("dir/x", 2, memoryview(bytearray(3)))
        assert fast.list_dir("dir/") is not None
    assert fast.region == "eu-west-3" and _moved(elsewhere) == 1, elsewhere.statuses
    assert store.bucket_region() == "eu-west-3"
    # carried to workers: one rebuilt from the spec elsewhere signs for eu-west-3 from its first request
    spec = store.spec()
    assert spec.region == "eu-west-3"
    worker = registry.kind_of("s3").from_spec(replace(spec, token=None))
    assert isinstance(worker, S3Store)
    worker_fast = worker._signed_requests()
    assert worker_fast is not None and worker_fast.head("dir/x") is not None
    assert worker_fast.head_many(["dir/x"])["dir/x"] is not None
    assert _moved(elsewhere) == 1, elsewhere.statuses


def test_the_bucket_check_learns_the_region_for_its_stores(elsewhere: S3Front) -> None:
    account = S3Account(Settings(endpoint_url=elsewhere.endpoint_url))
    assert account.bucket_exists(BUCKET)  # botocore follows the 301 itself
    assert account.regions == {BUCKET: "eu-west-3"}
    before = _moved(elsewhere)
    store = account.store(BUCKET)
    assert store.bucket_region() == "eu-west-3" and store.spec().region == "eu-west-3"
    fast = store._signed_requests()
    assert fast is not None and fast.head_many(["dir/x", "dir/y"])["dir/x"] is not None
    assert fast.get_into("dir/x", 0, memoryview(bytearray(4)))
    assert _moved(elsewhere) == before, elsewhere.statuses  # no fast request was moved


def test_a_bucket_in_the_clients_region_carries_no_region(s3: LocalS3Server) -> None:
    account = S3Account(Settings(endpoint_url=s3.endpoint_url))
    assert account.bucket_exists(BUCKET) and account.regions == {}
    assert account.store(BUCKET).spec().region is None


def test_regional_hosts_of_aws() -> None:
    assert regional_url("https://s3.amazonaws.com/b/", "eu-west-3") == "https://s3.eu-west-3.amazonaws.com/b/"
    assert regional_url("https://b.s3.us-east-1.amazonaws.com/", "ap-south-1") == \
        "https://b.s3.ap-south-1.amazonaws.com/"
    assert regional_url("http://127.0.0.1:9000/b/", "eu-west-3") == "http://127.0.0.1:9000/b/"
