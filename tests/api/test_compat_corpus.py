"""Every object cottoncandy 0.4.0 wrote (../shared/corpus-0.4.0) reads back value-exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from botocore.config import Config

from tests.conftest import BUCKET, require_corpus
from tests.corpusutil import c_order_sha, load_corpus_into

SINGLE_KINDS = {"raw_array", "npy_array", "json", "pickle"}


@pytest.fixture
def corpus_cci(cci):  # type: ignore[no-untyped-def]
    import boto3

    client = boto3.client("s3", endpoint_url=cci.settings.endpoint_url,
                          config=Config(request_checksum_calculation="when_required"))

    def put(key: str, body: bytes, metadata: dict) -> None:  # plain boto3, as the corpus README says
        client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)

    return cci, load_corpus_into(put)


def check_value(cci, key: str, want: dict) -> None:  # type: ignore[no-untyped-def]
    kind = want["kind"]
    if kind == "raw_array":
        arr = cci.download_raw_array(key)
    elif kind == "npy_array":
        arr = cci.download_npy_array(key)
    elif kind == "json":
        assert cci.download_json(key) == want["value"]
        return
    elif kind == "pickle":
        assert repr(cci.download_pickle(key)) == want["value_repr"]
        return
    else:
        raise AssertionError(kind)
    assert arr.dtype == np.dtype(want["dtype"]), key
    assert list(arr.shape) == want["shape"], key
    assert c_order_sha(arr) == want["sha256_c_order"], key


def test_every_single_object_value_reads_back(corpus_cci) -> None:  # type: ignore[no-untyped-def]
    cci, expected = corpus_cci
    checked = 0
    for key, want in expected.items():
        if want["kind"] in SINGLE_KINDS:
            check_value(cci, key, want)
            checked += 1
    assert checked >= 34


def test_every_raw_part_of_chunked_and_sparse_values_reads(corpus_cci) -> None:  # type: ignore[no-untyped-def]
    """Parts of dask and sparse values are raw arrays too; each must decode to its declared shape."""
    cci, _ = corpus_cci
    manifest = json.loads((require_corpus() / "manifest.json").read_text())
    for key, entry in manifest.items():
        if "shape" in entry["metadata"]:
            arr = cci.download_raw_array(key)
            shape = entry["metadata"]["shape"]
            assert arr.shape == (tuple(int(d) for d in shape.split(",")) if shape else ())


def test_local_backend_reads_the_corpus(cci_local) -> None:  # type: ignore[no-untyped-def]
    expected = load_corpus_into(lambda k, b, m: cci_local.store.put(k, b, m))
    for key, want in expected.items():
        if want["kind"] in SINGLE_KINDS:
            check_value(cci_local, key, want)
