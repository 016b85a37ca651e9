"""The fence around the S3 fast paths: private botocore names are looked up lazily, a missing one
sends the store to plain boto3 calls with one warning per process and a count, and a switch turns
the fast paths off.

A botocore release that renamed a private name is simulated by deleting it from its module while
botocore's own code still finds it (through builtins), as it would after a consistent rename.
"""

from __future__ import annotations

import builtins
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.auth
import pytest

from cottoncandy import fastpaths
from cottoncandy.config import Settings
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3.signed import SignedRequests
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET
from tests.fastpathutil import fresh_counts, warnings_logged  # noqa: F401 - fresh_counts is an autouse fixture

ROOT = Path(__file__).resolve().parents[2]



def rename_away(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """``module.name`` gone for us; botocore's own code still finds it (as after a rename)."""
    monkeypatch.setattr(builtins, name, getattr(module, name), raising=False)
    monkeypatch.delattr(module, name)


SCRIPT = textwrap.dedent("""
    import builtins, importlib, json, logging, sys

    import boto3  # noqa: F401  (botocore's own modules hold their references, as after a rename)
    import numpy as np

    module = importlib.import_module(sys.argv[2])
    setattr(builtins, sys.argv[3], getattr(module, sys.argv[3]))  # botocore's own code still finds it
    delattr(module, sys.argv[3])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    import ccfs.cli  # noqa: F401
    import cottoncandy as cc
    from cottoncandy import fastpaths

    arr = np.arange(12.0).reshape(3, 4)
    same = []
    for _ in range(2):  # two interfaces, two stores: two fallbacks, one warning
        cci = cc.get_interface(sys.argv[4], endpoint_url=sys.argv[1], verbose=False)
        cci.upload_raw_array("fence/a", arr, compression=False)
        same.append(bool(np.array_equal(cci.download_raw_array("fence/a"), arr)))
        same.append(cci.lsdir("fence/") == ["fence/a"])
    print(json.dumps({"same": same, "fallbacks": fastpaths.fallbacks()}))
""")


@pytest.mark.parametrize(("module", "name"), [
    ("botocore.auth", "_host_from_url"),  # private, was imported at module level: `import cottoncandy` failed
    ("botocore.utils", "percent_encode"),  # imported by s3_signed at module level, which s3.py now imports lazily
])
def test_import_and_s3_work_without_a_botocore_name(s3: LocalS3Server, module: str, name: str) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, s3.endpoint_url, module, name, BUCKET],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"same": [True] * 4, "fallbacks": {"botocore": 2}}
    warned = [line for line in result.stderr.splitlines() if "fast path botocore unavailable" in line]
    assert len(warned) == 1 and name in warned[0], result.stderr
    assert warned[0].startswith("WARNING cottoncandy.fastpaths:")


def test_fallback_warns_once_counts_each_time_and_the_store_still_works(
        s3: LocalS3Server, s3_settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    rename_away(monkeypatch, botocore.auth, "_host_from_url")
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    for i in range(3):
        store = S3Account(s3_settings).store(BUCKET)
        store.put(f"k{i}", b"abc", {"dtype": "<f8"})
        assert store.head(f"k{i}").metadata == {"dtype": "<f8"}
        assert store.head_many([f"k{i}"]) == {f"k{i}": None}  # not batched: callers use head() for each
        assert store.get_range(f"k{i}", 1, 3) == b"bc"
    assert fastpaths.fallbacks() == {"botocore": 3}
    warned = warnings_logged(caplog)
    assert len(warned) == 1
    assert "botocore.auth has no attribute '_host_from_url'" in warned[0] and "plain boto3 calls" in warned[0]


def stand_in_client(real: Any) -> Any:
    """A client whose private parts are plain namespaces (each can be taken away), public parts real."""
    session = real._endpoint.http_session
    return SimpleNamespace(
        meta=real.meta, head_object=real.head_object,
        _request_signer=SimpleNamespace(_credentials=real._request_signer._credentials),
        _endpoint=SimpleNamespace(http_session=SimpleNamespace(
            send=session.send, _verify=session._verify, _proxy_config=session._proxy_config)))


@pytest.mark.parametrize(("path", "missing"), [
    ((), "_request_signer"), (("_request_signer",), "_credentials"), ((), "_endpoint"),
    (("_endpoint",), "http_session"), (("_endpoint", "http_session"), "_verify"),
    (("_endpoint", "http_session"), "_proxy_config"),
])
def test_every_private_client_attribute_is_fenced(path: tuple[str, ...], missing: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    real = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    assert SignedRequests.for_client(stand_in_client(real), "my-bucket") is not None  # all there: taken
    client = stand_in_client(real)
    owner = client
    for name in path:
        owner = getattr(owner, name)
    delattr(owner, missing)
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    assert SignedRequests.for_client(client, "my-bucket") is None
    assert SignedRequests.for_client(client, "my-bucket") is None
    assert fastpaths.fallbacks() == {"botocore": 2}
    warned = warnings_logged(caplog)
    assert len(warned) == 1 and repr(missing) in warned[0]


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no"])
def test_the_environment_switch_turns_the_fast_paths_off_without_a_warning(
        value: str, s3: LocalS3Server, s3_settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cottoncandy.fastpaths")
    monkeypatch.setenv(fastpaths.ENV, value)
    store = S3Account(s3_settings).store(BUCKET)
    store.put("k", b"abc")
    assert store._signed_requests() is None and store.head("k").size == 3
    assert fastpaths.fallbacks() == {} and warnings_logged(caplog) == []
    monkeypatch.setenv(fastpaths.ENV, "1")
    assert S3Account(s3_settings).store(BUCKET)._signed_requests() is not None


def test_disable_turns_them_off_for_the_process(s3_settings: Settings) -> None:
    assert fastpaths.enabled()
    fastpaths.disable()  # what `ccfs mount --no-fast-paths` does in the daemon
    assert not fastpaths.enabled()
    assert S3Account(s3_settings).store(BUCKET)._signed_requests() is None


def test_private_names_the_lookup() -> None:
    assert fastpaths.private("botocore.auth", "_host_from_url") is botocore.auth._host_from_url
    with pytest.raises(fastpaths.Unavailable, match="no module cottoncandy.no_such_module"):
        fastpaths.private("cottoncandy.no_such_module", "x")
    with pytest.raises(fastpaths.Unavailable, match=r"SimpleNamespace.a has no attribute 'c'"):
        fastpaths.private(SimpleNamespace(a=SimpleNamespace(b=1)), "a", "c")


def test_a_body_without_the_private_socket_path_is_read_the_portable_way(caplog: pytest.LogCaptureFixture) -> None:
    """``_socket_readinto`` (a GET's body read by its socket into the buffer) is fenced too: a body
    whose raw stream lacks urllib3's private ``_fp`` falls back, with one warning."""
    import io

    from botocore.response import StreamingBody

    from cottoncandy.storage.s3.store import _socket_readinto

    for _ in range(2):
        body = StreamingBody(io.BytesIO(b"abc"), 3)  # a raw stream that is not urllib3's response
        assert _socket_readinto(body, memoryview(bytearray(3))) is None and body.read() == b"abc"
    assert fastpaths.fallbacks() == {"botocore-body": 2}
    assert len(warnings_logged(caplog)) == 1 and "_fp" in warnings_logged(caplog)[0]


def test_switched_off_the_store_reads_bodies_the_portable_way(s3_settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from cottoncandy.storage.s3 import store as s3_module

    used: list[int] = []
    real = s3_module._socket_readinto
    monkeypatch.setattr(s3_module, "_socket_readinto", lambda body, buf: used.append(1) or real(body, buf))
    for fast, expected in ((False, 0), (True, 1)):
        store = S3Account(Settings(endpoint_url=s3_settings.endpoint_url, fast_paths=fast)).store(BUCKET)
        store.put("k", b"x" * 100)
        store._signed = None  # not the signed GET: the boto3 path, whose body is read here
        used.clear()
        buffer = bytearray(100)
        store.readinto("k", 0, memoryview(buffer))
        assert bytes(buffer) == b"x" * 100 and len(used) == expected
