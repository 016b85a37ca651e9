"""Object names as 0.4.0 normalises them."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_SLASHES = re.compile(r"/+")


def clean_object_name(name: str) -> str:
    """Collapse runs of ``/`` and drop one leading ``/``: ``///x`` -> ``x``, ``a//b`` -> ``a/b``."""
    if not isinstance(name, str):
        raise TypeError(f"object_name must be a str, not {type(name).__name__}")
    name = _SLASHES.sub("/", name)
    return name[1:] if name.startswith("/") else name


def require_key(name: str) -> str:
    """A cleaned name that can be an object key (non-empty, no ``..`` component)."""
    key = clean_object_name(name)
    if not key or key == "/":
        raise ValueError("object_name must not be empty")
    refuse_dot_components(key, f"object_name {name!r}")
    return key


def refuse_dot_components(key: str, shown: str) -> None:
    """Refuse a ``.`` or ``..`` level: keys are not paths, and such a name means different objects
    to S3 (literally), to the local backend and to a shell (``a/../x`` is ``x``)."""
    if any(part in ("..", ".") for part in key.split("/")):
        raise ValueError(f"{shown} has a '.' or '..' component; keys like that are refused")


def cleans_object_name(method: F) -> F:
    """Decorator: the first argument of an API method is an object name to normalise."""

    @wraps(method)
    def wrapper(self: Any, object_name: str, *args: Any, **kwargs: Any) -> Any:
        return method(self, require_key(object_name), *args, **kwargs)

    return wrapper  # type: ignore[return-value]
