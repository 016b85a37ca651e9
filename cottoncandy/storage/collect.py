"""Recursive listings gathered whole, within a stated memory limit.

``ObjectStore.iter_objects`` is a generator: it holds one page, and a reader that stops reading
stops the listing (an endpoint handing out new continuation tokens forever costs it nothing). A
caller that *keeps* what it reads -- a glob's matches, the objects a folder name stands for, the
parts of a dask array, the arrays ``refs`` describes -- would grow without end over such an
endpoint, or over a bucket of millions of keys (issue 24 item 1). Every such caller gathers through
``objects_under``: at most ``limit()`` bytes of entries, as ``answers.entry_cost`` estimates them,
after which ``ListingTooLarge`` (``EFBIG``) names the listing, its endpoint, the limit and how to
raise it. Order and token checks are the store's (``answers.ListingGuard``); this module only counts.

A sum over a listing (``files.transfers.total_size``: ``get_size``) keeps nothing but goes through
here too: over an endpoint handing out tokens forever it would never end.

Invariant: nothing above ``storage`` turns ``iter_objects`` into a list, set or dict except through
here (``tests/faults/test_endless_listings.py`` greps for it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .answers import ListingTooLarge, entry_cost
from .base import ObjectInfo, ObjectStore

#: memory a gathered recursive listing may take (estimated per entry): ~3,000,000 keys of 30 bytes
TREE_LISTING_MEMORY = 2**30
#: the environment variable that changes it (bytes, ASCII digits; ``0``: no limit)
LIMIT_VARIABLE = "COTTONCANDY_LISTING_MEMORY"


def limit() -> int | None:
    """The limit in bytes (``None``: none), ``TREE_LISTING_MEMORY`` unless the environment says
    otherwise. A value that is not ASCII digits is an error naming the variable, not ignored."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return TREE_LISTING_MEMORY
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise ValueError(f"{LIMIT_VARIABLE}={text!r}: not a number of bytes in ASCII digits (0: no limit)")
    return int(text) or None


def objects_under(store: ObjectStore, prefix: str, limit_bytes: int | None = -1) -> Iterator[ObjectInfo]:
    """``store.iter_objects(prefix)``, ended by ``ListingTooLarge`` once what was read would take
    more than ``limit_bytes`` (default: ``limit()``; ``None``: no limit) to keep."""
    bound = limit() if limit_bytes == -1 else limit_bytes
    held = 0
    for count, info in enumerate(store.iter_objects(prefix)):
        held += entry_cost(info.key)
        if bound is not None and held > bound:
            raise ListingTooLarge(
                f"{store.listing_where(prefix)}: more than {_mib(bound)} of listing ({count:,} objects so far); "
                f"list a subfolder or a longer prefix, or raise the limit ({LIMIT_VARIABLE}=BYTES, 0 for none)")
        yield info


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size} bytes"
