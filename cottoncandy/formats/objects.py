"""JSON and pickle bodies, byte-compatible with 0.4.0 (``json.dumps`` defaults, UTF-8; ``pickle.dumps``)."""

from __future__ import annotations

import json
import pickle
from typing import Any


def encode_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def decode_json(body: bytes, name: str) -> Any:
    try:
        return json.loads(body.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from exc


def encode_pickle(value: Any) -> bytes:
    return pickle.dumps(value)


def decode_pickle(body: bytes, name: str) -> Any:
    try:
        return pickle.loads(body)
    except Exception as exc:
        raise ValueError(f"{name} is not a readable pickle: {type(exc).__name__}: {exc}") from exc
