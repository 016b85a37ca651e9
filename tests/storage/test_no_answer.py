"""Issue 24 item 9: "the store gave no answer" is an error type of the store contract
(``storage.errors.NoAnswer``), raised by the store itself; the layers above catch that type and know
nothing of botocore. An answer about the object is never one. Against the local server behind the
fault proxy, with the fast paths on and off."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.answers import BadAnswer
from cottoncandy.storage.errors import NoAnswer
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from tests.conftest import BUCKET


@pytest.fixture(params=[True, False], ids=["signed", "boto3"])
def store(request: pytest.FixtureRequest, s3_store, fault_proxy: FaultProxy):  # type: ignore[no-untyped-def]
    s3_store.put("k", b"12345678")
    settings = Settings(endpoint_url=fault_proxy.endpoint_url, fast_paths=request.param, max_attempts=2)
    return S3Account(settings).store(BUCKET)


@pytest.mark.parametrize("mode", ["slowdown", "error500"])
def test_an_endpoint_that_does_not_answer_is_no_answer(store, fault_proxy: FaultProxy, mode: str) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.set_rules([FaultRule(mode)])
    for call in (lambda: store.head("k"), lambda: store.get("k"), lambda: store.list_dir(""),
                 lambda: list(store.iter_objects(""))):
        with pytest.raises(NoAnswer) as caught:
            call()
        assert caught.value.errno == errno.EIO and isinstance(caught.value, OSError)


def test_a_refused_connection_is_no_answer(store, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    fault_proxy.outage(30)
    with pytest.raises(NoAnswer):
        store.head("k")
    with pytest.raises(NoAnswer):
        store.get("k")


def test_answers_about_the_object_are_not_no_answer(store, fault_proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError) as missing:
        store.head("no-such-key")
    assert not isinstance(missing.value, NoAnswer)
    fault_proxy.set_rules([FaultRule("denied")])
    with pytest.raises(PermissionError) as denied:
        store.head("k")
    assert not isinstance(denied.value, NoAnswer)


def test_an_answer_not_of_s3s_shape_is_no_answer() -> None:
    assert issubclass(BadAnswer, NoAnswer)


def test_nothing_above_storage_looks_at_botocore_to_tell_no_answer() -> None:
    """The namespace, the caches and the mount catch ``NoAnswer``; none imports botocore's exceptions
    or asks ``unreachable`` (the stores' own classifier of their library's failures)."""
    root = Path(__file__).resolve().parents[2]
    folders = [root / "cottoncandy" / "namespace", root / "cottoncandy" / "cache", root / "ccfs"]
    pattern = re.compile(r"botocore\.exceptions|\bunreachable\(")
    found = [f"{path.relative_to(root)}:{n}" for folder in folders for path in folder.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == [], found
