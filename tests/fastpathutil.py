"""Shared by the tests of the fast paths' fence: fresh fallback counts, and the warnings it logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cottoncandy import fastpaths


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    """Every test starts and ends with no fallback counted (the counts are per process)."""
    fastpaths.reset()
    yield
    fastpaths.reset()


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "cottoncandy.fastpaths" and r.levelno == logging.WARNING]
