"""What the installed zarr can read that references may depend on: the v3 rectilinear chunk grid.

Why: 0.4.0's usual dask split leaves the last part of an axis shorter than the others. A zarr chunk
grid that is regular stores edge chunks full size, so such parts cannot be chunks of a portable
reference; zarr v3's rectilinear grid (the zarr-extensions ``rectilinear`` chunk grid, landing in
zarr-python behind the ``array.rectilinear_chunks`` setting) gives each chunk its own edge lengths
and would take them as they are. Until the installed zarr has it, ``ccfs refs`` leaves such folders
out and says why in these words (:func:`rectilinear_missing`).
"""

from __future__ import annotations

import importlib


def rectilinear_missing() -> str | None:
    """``None`` when the installed zarr has the rectilinear chunk grid; otherwise a clause saying it
    has not (zarr's version named), for ``refs.build``'s message."""
    try:
        zarr = importlib.import_module("zarr")
        grids = importlib.import_module("zarr.core.chunk_grids")
    except ImportError:
        return "zarr is not installed here"
    settings = zarr.config.get("array", {})
    if hasattr(grids, "RectilinearChunkGrid") and isinstance(settings, dict) and "rectilinear_chunks" in settings:
        return None
    return f"the installed zarr {getattr(zarr, '__version__', '?')} has no rectilinear chunk grid"
