"""JSON and pickle bodies, byte-compatible with 0.4.0 (``json.dumps`` defaults, UTF-8; ``pickle.dumps``).

A body that is not what the call reads fails as 0.4.0's did, with the object's name in the message:
``UnicodeDecodeError`` or ``json.JSONDecodeError`` (both ``ValueError``) for JSON, ``NotAPickle`` (an
``UnpicklingError`` and a ``ValueError``; ``TruncatedPickle`` where ``pickle.loads`` said ``EOFError``).
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from ..errors import NotAPickle, TruncatedPickle


def encode_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def decode_json(body: bytes, name: str) -> Any:
    """``body`` parsed as 0.4.0 parses it (``json.loads(body.decode())``); its errors name ``name``."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise UnicodeDecodeError(exc.encoding, exc.object, exc.start, exc.end,
                                 f"{exc.reason} ({name} is not valid JSON)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(f"{name} is not valid JSON: {exc.msg}", exc.doc, exc.pos) from None


def encode_pickle(value: Any) -> bytes:
    return pickle.dumps(value)


def decode_pickle(body: bytes, name: str) -> Any:
    """Unpickle ``body``: this RUNS CODE from the body (``download_pickle`` only). Bodies that are not
    pickles raise ``NotAPickle``; what the unpickled objects' own code raises is raised unchanged."""
    try:
        return pickle.loads(body)
    except EOFError as exc:  # empty, or ended early (pickle says so with EOFError or UnpicklingError)
        raise TruncatedPickle(f"{name} is not a readable pickle: it ends early ({exc})") from exc
    except pickle.UnpicklingError as exc:
        raise NotAPickle(f"{name} is not a readable pickle: {exc}") from exc
