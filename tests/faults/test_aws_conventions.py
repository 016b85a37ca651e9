"""AWS conventions: botocore's retries as the environment, the profile or options.cfg set them;
integrity checks on for AWS endpoints only; credentials from a ``credential_process`` profile.

Real parts: the local S3 server, the fault proxy answering 503s (each attempt counted there),
``ccfs ls`` and a real mount as subprocesses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.config import Settings, load_settings
from cottoncandy.storage.s3 import S3Account, make_client
from cottoncandy.testing.faultproxy import FaultProxy, FaultRule
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET
from tests.mountutil import ccfs, mounted, needs_fuse


def failing_gets(proxy: FaultProxy, settings: Settings, mode: str = "slowdown") -> int:
    """Attempts one ranged GET made through ``proxy`` while every GET is answered with ``mode``."""
    store = S3Account(settings).store(BUCKET)
    store.put("k", b"0123456789")
    proxy.set_rules([FaultRule(mode, methods=("GET",))])
    proxy.reset_counts()
    with pytest.raises(OSError):
        store.get_range("k", 0, 4)  # boto3 only (no fast path): botocore's attempts alone
    return proxy.count(mode, "GET")


def write_aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "aws-config"
    path.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    return path


def test_aws_max_attempts_is_honoured(fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert failing_gets(fault_proxy, Settings(endpoint_url=fault_proxy.endpoint_url)) == 2


def test_a_profiles_max_attempts_and_retry_mode_are_honoured(fault_proxy: FaultProxy, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    write_aws_config(tmp_path, monkeypatch, "[profile flaky]\nmax_attempts = 3\nretry_mode = adaptive\n"
                                            "aws_access_key_id = testing\naws_secret_access_key = x\n")
    settings = Settings(endpoint_url=fault_proxy.endpoint_url, profile="flaky")
    assert make_client(settings).meta.config.retries == {"total_max_attempts": 3, "mode": "adaptive"}
    assert failing_gets(fault_proxy, settings) == 3


def test_options_cfg_wins_over_the_environment(fault_proxy: FaultProxy, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    cfg = tmp_path / "options.cfg"
    cfg.write_text("[basic]\nmax_attempts = 2\nretry_mode = standard\n")
    settings = load_settings(endpoint_url=fault_proxy.endpoint_url, config_file=cfg)
    assert (settings.max_attempts, settings.retry_mode) == (2, "standard")
    assert failing_gets(fault_proxy, settings) == 2


def test_without_any_setting_five_standard_attempts(fault_proxy: FaultProxy) -> None:
    settings = Settings(endpoint_url=fault_proxy.endpoint_url)
    assert make_client(settings).meta.config.retries == {"total_max_attempts": 5, "mode": "standard"}
    assert failing_gets(fault_proxy, settings, mode="error500") == 5


def test_a_body_broken_midway_is_retried_by_our_loop(fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore has returned the answer when its body breaks: the ranged GET is asked again by us,
    as often as the configured attempts."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    store = S3Account(Settings(endpoint_url=fault_proxy.endpoint_url)).store(BUCKET)
    data = os.urandom(2**20)
    store.put("big", data)
    fault_proxy.set_rules([FaultRule("reset", methods=("GET",), limit=1)])
    assert store.get_range("big", 0, len(data)) == data
    fault_proxy.set_rules([FaultRule("reset", methods=("GET",))])
    fault_proxy.reset_counts()
    with pytest.raises(OSError):
        store.get_range("big", 0, len(data))
    assert fault_proxy.count("reset", "GET") == 2


# --- integrity checks -------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "relaxed"), [
    (None, False), ("https://s3.us-west-2.amazonaws.com", False), ("https://s3.amazonaws.com.cn", False),
    ("http://127.0.0.1:9000", True), ("https://minio.example.org", True)])
def test_checksums_relaxed_only_off_aws(endpoint: str | None, relaxed: bool) -> None:
    config = make_client(Settings(endpoint_url=endpoint)).meta.config
    expected = "when_required" if relaxed else "when_supported"
    assert (config.request_checksum_calculation, config.response_checksum_validation) == (expected, expected)


def test_a_custom_endpoint_from_the_environment_is_relaxed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert make_client(Settings()).meta.config.request_checksum_calculation == "when_required"


def test_the_environments_checksum_choice_wins_on_a_custom_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_supported")
    config = make_client(Settings(endpoint_url="http://127.0.0.1:9000")).meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == (
        "when_supported", "when_required")


def sent_checksum_headers(store) -> list[str]:  # type: ignore[no-untyped-def]
    """Header names about checksums of every request ``store``'s client sends from now on."""
    seen: list[str] = []

    def note(request, **_):  # type: ignore[no-untyped-def]
        seen.extend(name.lower() for name in request.headers if "checksum" in name.lower())

    store.client.meta.events.register("before-send.s3", note)
    return seen


def test_round_trips_with_integrity_checks_on_and_relaxed(s3: LocalS3Server) -> None:
    """AWS's defaults (CRC checksums sent and validated) against the local server, as on AWS; and
    the relaxed custom-endpoint default, which sends none. Single and multipart uploads both."""
    from botocore.config import Config

    data = os.urandom(11 * 2**20)
    on = Config(request_checksum_calculation="when_supported", response_checksum_validation="when_supported")
    for boto_config, checked in ((on, True), (None, False)):
        settings = Settings(endpoint_url=s3.endpoint_url, mpu_threshold=6 * 2**20, mpu_chunksize=5 * 2**20,
                            boto_config=boto_config)
        store = S3Account(settings).store(BUCKET)
        headers = sent_checksum_headers(store)
        store.put("multi", data)
        store.put("single", b"abc")
        assert store.get_range("multi", 0, len(data)) == data and store.get_range("single", 0, 3) == b"abc"
        with store.open_read("multi") as fh:
            assert fh.read() == data
        assert bool(headers) == checked, headers


# --- credentials through boto3's chain ----------------------------------------------------------

@pytest.fixture
def process_profile(s3: LocalS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``credential_process`` profile, the only credentials there are: its script prints the keys
    as JSON (Version 1) and leaves a mark each time it runs."""
    mark = tmp_path / "ran"
    script = tmp_path / "creds.py"
    script.write_text(
        "import json, pathlib, sys\n"
        f"pathlib.Path({str(mark)!r}).open('a').write('x')\n"
        "json.dump({'Version': 1, 'AccessKeyId': 'from-process', 'SecretAccessKey': 'process-secret'}, sys.stdout)\n")
    write_aws_config(tmp_path, monkeypatch, f"[profile viaprocess]\ncredential_process = {sys.executable} {script}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.passwd-s3fs
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata either
    return mark


def test_a_credential_process_profile_through_get_interface(s3: LocalS3Server, process_profile: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import cottoncandy as cc

    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, profile="viaprocess", verbose=False)
    cci.upload_raw_array("a", np.arange(5.0))
    assert process_profile.read_text() and np.array_equal(cci.download_raw_array("a"), np.arange(5.0))
    assert [o.key for o in cci.get_bucket().objects.all()] == ["a"]  # 0.4.0's boto3 resource: same chain
    monkeypatch.setenv("AWS_PROFILE", "viaprocess")  # and the profile named by the environment
    assert np.array_equal(cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False)
                          .download_raw_array("a"), np.arange(5.0))


def test_a_credential_process_profile_without_it_fails(s3: LocalS3Server, process_profile: Path) -> None:
    """The control: without the profile there are no credentials at all."""
    result = ccfs("ls", f"s3://{BUCKET}/", "--endpoint-url", s3.endpoint_url, check=False)
    assert result.returncode != 0 and not process_profile.exists()


@needs_fuse
def test_a_credential_process_profile_through_ccfs_ls_and_mount(s3: LocalS3Server, process_profile: Path,
                                                                tmp_path: Path) -> None:
    import cottoncandy as cc

    cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, profile="viaprocess",
                     verbose=False).upload_raw_array("a", np.arange(6.0))
    listed = ccfs("ls", f"s3://{BUCKET}/", "--endpoint-url", s3.endpoint_url, "--profile", "viaprocess")
    assert f"s3://{BUCKET}/a" in listed.stdout.split()
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--profile", "viaprocess") as m:
        assert np.array_equal(np.load(m / "a.npy"), np.arange(6.0))
    assert len(process_profile.read_text()) >= 3  # the library, ccfs ls and the daemon each ran it


@pytest.mark.parametrize(("line", "message"), [("max_attempts = many", "max_attempts = 'many'"),
                                               ("max_attempts = 0", "1 or more"),
                                               ("retry_mode = eager", "adaptive, legacy, standard")])
def test_a_bad_retry_setting_in_options_cfg_is_named(tmp_path: Path, line: str, message: str) -> None:
    cfg = tmp_path / "options.cfg"
    cfg.write_text(f"[basic]\n{line}\n")
    with pytest.raises(ValueError, match=message):
        load_settings(config_file=cfg)
