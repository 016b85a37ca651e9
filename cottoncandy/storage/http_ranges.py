"""The HTTP ``Range`` header (and the ``Content-Range`` that answers it), built in one place.

Byte ranges are half-open ``[start, end)`` everywhere in this project (see ``base``); HTTP names
the last byte instead (``bytes=a-b`` is inclusive, RFC 9110 14.1.2) and leaves the end open in
``bytes=a-``. The conversion was written by hand at each request (a GET, a resume, a part copy, the
signed GET), some with ``end - 1`` and one with a local inclusive end: one function keeps that
arithmetic, and its off-by-one, in one place.
"""

from __future__ import annotations


def _check(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"no HTTP range for [{start}, {end if end is not None else ''}): "
                         "it must be non-empty and start at a byte >= 0")


def http_range(start: int, end: int | None = None) -> str:
    """The ``Range`` (or ``CopySourceRange``) value for bytes ``[start, end)``; to the end without ``end``.

    An empty range has no HTTP form (``bytes=a-(a-1)`` is unsatisfiable): callers answer it
    themselves, so it is refused here rather than sent."""
    _check(start, end)
    return f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"


def content_range_prefix(start: int, end: int | None = None) -> str:
    """How a ``206`` answer to ``http_range(start, end)`` starts its ``Content-Range``:
    ``bytes a-b/`` (the total size follows), or ``bytes a-`` for an open range."""
    _check(start, end)
    return f"bytes {start}-" if end is None else f"bytes {start}-{end - 1}/"


def parse_content_range(value: str) -> tuple[int, int, int | None] | None:
    """``(start, end, total)`` of a 206's ``Content-Range: bytes a-b/total`` (``end`` half-open, as
    everywhere here; ``total`` ``None`` for ``*``); ``None`` when it is not of that form. The length
    of a body sent without ``Content-Length`` (``Transfer-Encoding: chunked``) is ``end - start``."""
    unit, _, rest = value.strip().partition(" ")
    span, _, total = rest.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not (first.isdigit() and last.isdigit() and first.isascii() and last.isascii()):
        return None
    if not (total == "*" or (total.isdigit() and total.isascii())):
        return None
    start, end = int(first), int(last) + 1
    if end <= start or (total != "*" and end > int(total)):
        return None
    return start, end, None if total == "*" else int(total)
