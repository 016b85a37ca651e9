"""Buckets in other regions than the client's default (issue 25, item 2)."""

from __future__ import annotations

import boto3
import numpy as np

import cottoncandy as cc
from cottoncandy.testing.s3server import LocalS3Server


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
