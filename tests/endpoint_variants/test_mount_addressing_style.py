"""``ccfs mount --addressing-style`` and fstab's ``-o addressing_style=`` reach the store (issue 25,
item 2): a mount of a service that requires virtual-hosted buckets had no way to ask for them."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from ccfs import cli
from ccfs.fstab import translate_options
from ccfs.mount import MountRequest


def _requested(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> MountRequest:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "mount", lambda request, foreground: seen.setdefault("request", request))
    result = CliRunner().invoke(cli.main, ["mount", "s3://bucket", "/tmp", "-f", *args])
    assert result.exit_code == 0, result.output
    return seen["request"]


def test_the_mount_option_reaches_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _requested(monkeypatch, ["--addressing-style", "virtual"]).addressing_style == "virtual"
    assert _requested(monkeypatch, []).addressing_style is None  # the profile's, else path with an endpoint
    result = CliRunner().invoke(cli.main, ["mount", "s3://bucket", "/tmp", "--addressing-style", "vhost"])
    assert result.exit_code != 0 and "vhost" in result.output


def test_fstab_spells_it_as_an_o_option() -> None:
    assert translate_options("addressing_style=virtual,ro") == ["--addressing-style", "virtual"]
