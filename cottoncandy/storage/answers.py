"""What an S3 endpoint's answer must be before it is believed: LIST pages and the ETag of a GET.

Everything from outside the process is untrusted, the *shape* of a server's answers included. Seen
from S3-compatible stores, caching gateways and captive portals (issue 24): a LIST whose next page
carries the same continuation token (a client following it never ends), one handing out a new token
forever, a page of a million entries where a thousand were asked for, an HTML sign-in page or cut-off
XML sent with ``200 OK``, a GET that ignores ``If-Match`` and serves another version's bytes. So:

- ``parse_list_page`` reads one ListObjectsV2 body, and is the only reader of them (the signed fast
  path calls it on the body it received; the boto3 path calls it from botocore's ``before-parse``
  event, before botocore's own handlers parse anything, see ``s3.check_list_answers``): a body
  longer than a page of ``max_keys`` entries can be, a body that is not XML, whose root is not
  ``ListBucketResult``, that holds more entries than asked for, a name outside the asked prefix, a
  size that is not a number or a date that is not one is ``BadAnswer``, naming the endpoint and
  what came back. Entries are counted in the bytes before any XML is parsed: a page of 10^6 common
  prefixes never becomes 10^6 objects.
- ``ListingGuard`` follows one listing across its pages: a continuation token seen before (or the
  one just sent) is ``BadAnswer``; so is a page whose entries sort before the previous page's (S3
  lists in key order, a server that starts over repeats itself; an entry equal to the last one is
  dropped, not an error), and ``EMPTY_PAGES`` truncated pages in a row with no entry. One folder's
  listing (``limit_bytes``) may hold at most ``LISTING_MEMORY`` bytes as estimated by
  ``entry_cost``: beyond it ``ListingTooLarge`` (``EFBIG``) says so. Recursive listings
  (``iter_objects``) hold nothing and have no size limit; the token and order rules still apply, and
  a caller that keeps what it reads gathers it through ``collect.objects_under`` (its own limit).
- ``check_etag``: a GET sent with ``If-Match`` must answer with that ETag; any other (or none) is
  ``OSError(ESTALE)`` -- a server that ignored the condition served another version -- and the bytes
  are not used. Any other HEAD or GET answer of an object must name a version (an ETag): one that
  does not (a portal's page) is ``BadAnswer`` (``s3.S3Store._version_of``), never the object.

``BadAnswer`` is an ``OSError(EIO)``: the mount answers ``EIO`` and logs it, the library and the CLI
raise it. It counts as "the store gave no answer" (``errors.unreachable``): what a cache holds may
stand in for it.
"""

from __future__ import annotations

import errno
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree

from .base import ObjectInfo
from .errors import NoAnswer

#: S3's page: the most entries one ListObjectsV2 answer may hold
MAX_KEYS = 1000
#: the longest a ListObjectsV2 body may be for a page of ``n`` entries: a 1,024-byte key fully
#: URL-escaped is 3 KiB, plus its ETag, size, date, storage class and owner
PAGE_BYTES_PER_ENTRY = 8 * 1024
PAGE_BYTES_BASE = 64 * 1024
#: memory one folder's listing may take (``entry_cost`` per entry); ~750,000 entries of 30-byte names
LISTING_MEMORY = 256 * 2**20
#: what one listed entry costs in memory beyond its name (an ``ObjectInfo`` and the tree's copies,
#: measured at ~350 bytes for a 24-byte key), and per byte of name (a name is held twice)
ENTRY_OVERHEAD = 320
#: truncated pages in a row without a single entry before a listing is taken to go nowhere (S3 itself
#: may answer a few empty pages while it skips many delete markers of a versioned bucket)
EMPTY_PAGES = 1000


class BadAnswer(NoAnswer):
    """The endpoint answered, but not with what the protocol allows (``EIO``): a LIST that loops or
    overflows, a body that is not the XML asked for. The message names the endpoint and what came.
    For the store's callers it is no answer (``errors.NoAnswer``)."""

    def __init__(self, message: str):
        super().__init__(errno.EIO, message)


class ListingTooLarge(OSError):
    """A folder's listing would take more memory than it may (``EFBIG``)."""

    def __init__(self, message: str):
        super().__init__(errno.EFBIG, message)


@dataclass
class ListPage:
    """One ListObjectsV2 answer, checked."""

    prefixes: list[str] = field(default_factory=list)
    objects: list[ObjectInfo] = field(default_factory=list)
    truncated: bool = False
    next_token: str | None = None

    def names(self) -> list[str]:
        return [*self.prefixes, *(info.key for info in self.objects)]


def page_bytes(max_keys: int) -> int:
    """The longest body a page of ``max_keys`` entries may have."""
    return PAGE_BYTES_BASE + max(1, max_keys) * PAGE_BYTES_PER_ENTRY


def entry_cost(name: str) -> int:
    """Estimated memory of one listed entry named ``name``."""
    return ENTRY_OVERHEAD + 2 * len(name)


def excerpt(body: bytes, limit: int = 80) -> str:
    """The start of a body as printable text (what came back, for an error message)."""
    text = body[:limit].decode("utf-8", "replace")
    shown = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    shown = " ".join(shown.split())
    return repr(shown + ("..." if len(body) > limit else ""))


def _what(body: bytes) -> str:
    start = body[:512].lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start:
        kind = "an HTML page"
    elif not body.strip():
        kind = "an empty body"
    else:
        kind = "a body"
    return f"{kind} of {len(body)} bytes: {excerpt(body)}"


def parse_list_page(body: bytes, *, max_keys: int, prefix: str, where: str) -> ListPage:
    """One ListObjectsV2 body (``200 OK``) as a ``ListPage``, or ``BadAnswer`` (see the module).

    ``where`` names the listing in messages (``LIST of s3://bucket/prefix at endpoint``).
    ``max_keys``: what the request asked for (S3 counts folders and objects together)."""
    if len(body) > page_bytes(max_keys):
        raise BadAnswer(f"{where}: an answer of {len(body)} bytes, where a page takes at most "
                        f"{page_bytes(max_keys)} bytes; the endpoint does not answer as S3 does")
    marks = body.count(b"<Contents>") + body.count(b"<CommonPrefixes>")  # counted before anything is built
    if marks > max_keys:
        raise BadAnswer(f"{where}: a page of {marks} entries where {max_keys} were asked for; the endpoint does "
                        "not answer as S3 does")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise BadAnswer(f"{where}: the answer is cut off or is not XML ({exc}); it is {_what(body)}") from None
    # in any namespace (or none), as botocore reads it: s3rver names another one than S3's
    if root.tag.rpartition("}")[2] != "ListBucketResult":
        raise BadAnswer(f"{where}: the answer is not a ListBucketResult but {_what(body)}")
    return _page_of(root, max_keys, prefix, where)


def _page_of(root: ElementTree.Element, max_keys: int, prefix: str, where: str) -> ListPage:
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""  # S3's, or another's
    cut = len(ns)
    fields: dict[str, str | None] = {}
    entries: list[ElementTree.Element] = []
    for child in root:
        tag = child.tag[cut:]
        if tag in ("Contents", "CommonPrefixes"):
            entries.append(child)
        else:
            fields[tag] = child.text
    if len(entries) > max_keys:
        raise BadAnswer(f"{where}: a page of {len(entries)} entries where {max_keys} were asked for; the endpoint "
                        "does not answer as S3 does")
    url_encoded = (fields.get("EncodingType") or "").strip().lower() == "url"
    decode = urllib.parse.unquote_plus if url_encoded else None  # as botocore decodes them

    def outside(value: str, what: str) -> BadAnswer:
        return BadAnswer(f"{where}: a listed {what} {excerpt(value.encode())} outside the prefix asked for")

    # findtext per field, in C: a folder of 100,000 entries is parsed here, on the mount's listing path
    prefix_tag, key_tag, size_tag = f"{ns}Prefix", f"{ns}Key", f"{ns}Size"
    etag_tag, date_tag, owner_tag = f"{ns}ETag", f"{ns}LastModified", f"{ns}Owner"
    page = ListPage()
    for entry in entries:
        if entry.tag[cut:] == "CommonPrefixes":
            text = entry.findtext(prefix_tag)
            if text is None:
                raise BadAnswer(f"{where}: a listed folder without its name")
            value = decode(text) if decode is not None else text
            if not value.startswith(prefix):
                raise outside(value, "folder")
            page.prefixes.append(value)
            continue
        text = entry.findtext(key_tag)
        if text is None:
            raise BadAnswer(f"{where}: a listed object without its name")
        key = decode(text) if decode is not None else text
        if not key.startswith(prefix):
            raise outside(key, "object")
        size_text = entry.findtext(size_tag) or ""
        if not size_text.isdigit() or not size_text.isascii():
            size_text = size_text.strip()
            if not size_text.isdigit() or not size_text.isascii():
                raise BadAnswer(f"{where}: {excerpt(key.encode())} listed with the size {excerpt(size_text.encode())}")
        modified = entry.findtext(date_tag)
        owner = entry.find(owner_tag)
        page.objects.append(ObjectInfo(
            key=key, size=int(size_text), etag=entry.findtext(etag_tag) or "",
            last_modified=_iso_time(modified, where) if modified else None,
            owner=None if owner is None else (owner.findtext(f"{ns}DisplayName") or owner.findtext(f"{ns}ID"))))
    page.truncated = (fields.get("IsTruncated") or "").strip().lower() == "true"
    if page.truncated:
        page.next_token = fields.get("NextContinuationToken") or None
    return page


def _iso_time(text: str, where: str) -> datetime:
    """S3's ``2026-01-02T03:04:05.000Z`` as an aware datetime (what botocore gives)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadAnswer(f"{where}: a listed date {excerpt(text.encode())} that is not one") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class ListingGuard:
    """One listing followed across its pages (see the module): tokens never repeat, entries go
    forward, empty pages do not go on forever, and (``limit_bytes``) the whole fits its memory."""

    def __init__(self, where: str, limit_bytes: int | None = None):
        self.where = where
        self.limit_bytes = limit_bytes
        self.pages = 0
        self.entries = 0
        self.bytes = 0
        self._tokens: set[str] = set()
        self._last: str | None = None
        self._empty = 0

    def sent(self, token: str | None) -> None:
        """The token a request is about to carry (remembered: an answer naming it again loops)."""
        if token is not None:
            self._tokens.add(token)

    def page(self, page: ListPage) -> ListPage:
        """``page`` checked against the pages before it; an entry equal to the last one is dropped."""
        self.pages += 1
        if page.truncated:
            token = page.next_token
            if not token:
                raise BadAnswer(f"{self.where}: page {self.pages} says more follow but gives no continuation token")
            if token in self._tokens:
                raise BadAnswer(f"{self.where}: page {self.pages} hands back the continuation token "
                                f"{excerpt(token.encode(), 40)} already followed; the listing would never end")
        names = page.names()
        if names and self._last is not None:
            first = min(names)
            if first < self._last:
                raise BadAnswer(f"{self.where}: page {self.pages} starts at {excerpt(first.encode())}, before the "
                                f"{excerpt(self._last.encode())} of the page before it: the endpoint is listing "
                                "the folder again instead of going on")
            if first == self._last:
                page = ListPage([p for p in page.prefixes if p != first],
                                [o for o in page.objects if o.key != first], page.truncated, page.next_token)
                names = page.names()
        if names:
            self._last = max(names)
            self._empty = 0
        elif page.truncated:
            self._empty += 1
            if self._empty >= EMPTY_PAGES:
                raise BadAnswer(f"{self.where}: {EMPTY_PAGES} pages in a row without an entry; the endpoint's "
                                "listing goes nowhere")
        self.entries += len(names)
        if self.limit_bytes is not None:
            self.bytes += sum(entry_cost(name) for name in names)
            if self.bytes > self.limit_bytes:
                raise ListingTooLarge(
                    f"{self.where}: more than {self.limit_bytes >> 20} MiB of listing ({self.entries:,} entries "
                    f"in {self.pages} pages so far); a folder this big is not listed whole: list a subfolder, "
                    "or a prefix of its names")
        return page

    def next_token(self, page: ListPage) -> str | None:
        """The token to ask the next page with (``None``: the listing is complete)."""
        token = page.next_token if page.truncated else None
        self.sent(token)
        return token


# --- the boto3 path: botocore's ``before-parse`` event --------------------------------------
_expected = threading.local()


@contextmanager
def expecting(max_keys: int, prefix: str, where: str) -> Iterator[None]:
    """While inside, a ListObjectsV2 answer to this thread's boto3 call is read by
    ``parse_list_page`` (``check_boto_answer``) before botocore parses it."""
    _expected.value = (max_keys, prefix, where)
    try:
        yield
    finally:
        _expected.value = None


def expected_where() -> str | None:
    """How this thread's LIST inside ``expecting`` is named in messages (``None`` outside one)."""
    expected = getattr(_expected, "value", None)
    return None if expected is None else str(expected[2])


def check_boto_answer(operation_model: Any = None, response_dict: dict[str, Any] | None = None,
                      customized_response_dict: dict[str, Any] | None = None, **_: Any) -> None:
    """botocore's ``before-parse.s3.*`` handler: a ``200`` body of a ListObjectsV2 must be a page
    (``BadAnswer`` otherwise, which botocore lets through unretried); the checked page is handed on
    as ``CottoncandyPage`` of the parsed answer. Calls made outside ``expecting`` are left alone."""
    expected = getattr(_expected, "value", None)
    if expected is None or getattr(operation_model, "name", None) != "ListObjectsV2" or response_dict is None \
            or int(response_dict.get("status_code") or 0) >= 300:
        return
    body = response_dict.get("body")
    if not isinstance(body, (bytes, bytearray)):
        return
    max_keys, prefix, where = expected
    page = parse_list_page(bytes(body), max_keys=max_keys, prefix=prefix, where=where)
    if customized_response_dict is not None:
        customized_response_dict["CottoncandyPage"] = page


# --- GETs pinned to a version ----------------------------------------------------------------
def same_etag(a: str | None, b: str | None) -> bool:
    """Whether two ETag header values name the same version (quotes and a weak ``W/`` aside)."""
    def bare(value: str) -> str:
        value = value.strip()
        return value[2:].strip('"') if value.startswith("W/") else value.strip('"')

    return a is not None and b is not None and bare(a) == bare(b) and bare(a) != ""


def check_etag(asked: str | None, answered: str | None, what: str) -> None:
    """A GET sent with ``If-Match: asked`` must answer ``ETag: asked``: else ``OSError(ESTALE)``,
    naming both (the server ignored the condition and served another version, or no version)."""
    if asked is None or same_etag(asked, answered):
        return
    got = f"version {answered.strip()}" if answered and answered.strip() else "an answer naming no version"
    raise OSError(errno.ESTALE, f"{what} changed since it was opened: asked for version {asked.strip()} "
                                f"(If-Match), the endpoint served {got}; its bytes were not used")
