"""Every user-metadata key the library writes or reads for itself, declared once.

An object's user metadata (``x-amz-meta-*``, a local ``.meta.json`` sidecar) mixes the array's own
description with what the user passed (``upload_raw_array(..., subject='s01')``). Whatever shows
metadata to people or copies it into attributes reads the sets below, never a list of its own:

- ``get_metadata``/``download_stream`` hide :data:`HIDDEN_KEYS` (keys 0.4.0 never wrote, so code
  comparing or copying metadata sees what it saw with 0.4.0): :func:`visible_metadata`;
- ``ccfs info`` and zarr attributes show :func:`user_metadata`: every key but :data:`INTERNAL_KEYS`
  (the description is shown as its own fields: dtype, shape, order, compression).
"""

from __future__ import annotations

from collections.abc import Mapping

#: 0.4.0's four keys describing a raw array (extra metadata may not use these names)
RESERVED_KEYS = ("dtype", "shape", "compression", "order")
#: the flag of legacy writers (``gzip: True``), which wins over ``compression`` when present
GZIP_FLAG = "gzip"
#: structured dtypes: numpy's descr as JSON (0.4.0 ignores it)
DESCR_KEY = "dtype-descr"
#: a body written by ``pgzip.ParallelGzip``: its block index is in the gzip header (``VERSION:BLOCK:COUNT``)
INDEX_KEY = "cc-gzip-blocks"

#: written for this library's own reading; 0.4.0 never wrote them, and no API call or command shows them
HIDDEN_KEYS = frozenset({INDEX_KEY})
#: the array's description: shown as fields (``dtype``, ``shape``...), not as user metadata
DESCRIPTION_KEYS = frozenset({*RESERVED_KEYS, GZIP_FLAG, DESCR_KEY})
#: every key that is not the user's own
INTERNAL_KEYS = DESCRIPTION_KEYS | HIDDEN_KEYS


def visible_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata as the API shows it (``get_metadata``): all but :data:`HIDDEN_KEYS`."""
    return {k: v for k, v in (metadata or {}).items() if str(k).lower() not in HIDDEN_KEYS}


def user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The user's own keys (``upload_raw_array(..., subject='s01')``): all but :data:`INTERNAL_KEYS`."""
    return {k: v for k, v in (metadata or {}).items() if str(k).lower() not in INTERNAL_KEYS}
