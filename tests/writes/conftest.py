"""The store every store-level write test runs against, unless its module asks for fewer kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cottoncandy.storage import LocalStore, MemoryStore
from cottoncandy.storage.base import ObjectStore


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A memory store, a local folder, or the local S3 server (``s3_store``)."""
    if request.param == "s3":
        s3: ObjectStore = request.getfixturevalue("s3_store")
        return s3
    return MemoryStore("bkt") if request.param == "memory" else LocalStore(tmp_path / "bkt")
