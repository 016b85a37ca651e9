"""Loading ../shared/corpus-0.4.0 (objects cottoncandy 0.4.0 wrote) into a store under test."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from tests.conftest import require_corpus


def load_corpus_into(store_put) -> dict:  # type: ignore[no-untyped-def]
    corpus = require_corpus()
    manifest = json.loads((corpus / "manifest.json").read_text())
    for key, entry in manifest.items():
        body = (corpus / entry["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        store_put(key, body, entry["metadata"])
    return json.loads((corpus / "expected.json").read_text())


def c_order_sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
