"""Shared by the tests of ``cottoncandy.refs``: reading arrays back the ways a user would."""

from __future__ import annotations

from typing import Any

import numpy as np


def zarr_values(group: Any) -> dict[str, np.ndarray]:
    """Every array of a zarr group (subgroups included) by its path, read whole."""
    out: dict[str, np.ndarray] = {}
    for path, node in group.members(max_depth=None):
        if hasattr(node, "shape") and hasattr(node, "dtype"):
            out[path] = node[...]
    return out


def gets_of(s3: Any, key_part: str) -> list[Any]:
    """The server's GET requests of objects whose path holds ``key_part``."""
    return [r for r in s3.requests() if r.method == "GET" and key_part in r.path]
