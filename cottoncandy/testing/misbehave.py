"""A misbehaving S3 endpoint: answers that are well-formed HTTP but wrong, for the fault proxy.

The fault proxy (``faultproxy``) breaks the *network*: resets, truncations, stalls, 5xx. The
modes here break the *answers* of a server that is up and answers quickly, as a buggy S3-compatible
store, a caching gateway or a captive portal does. A client must not trust the shape of what comes
back (issue 24): each mode is something a client has been seen to loop on, to read as an empty
folder, or to mix two versions of an object over.

================  ====================================================================================
mode              what the client gets (only for the requests named; others pass unchanged)
================  ====================================================================================
``loop_token``    LIST: the folder's first page, marked truncated, with the continuation token
                  ``cc-loop-token``; asked with that token, the same page and the same token again.
``new_token``     LIST: ``count`` new objects (default 1,000; names after every earlier page's) and a
                  new continuation token, every time: a listing that never ends.
``overflow``      LIST: one page of ``count`` common prefixes (default 1,000,000) whatever ``max-keys``
                  asked, not truncated (about 60 MB of XML, generated as it is sent).
``html``          any request the rule matches: ``200 OK`` with an HTML sign-in page (a proxy or portal),
                  no ETag; a HEAD gets the headers only. The page is well-formed XML (the worst case:
                  an XML reader that does not look at the root reads it as an empty listing).
``cut_xml``       LIST: the server's answer cut after ``after`` bytes (default: half), with a
                  ``Content-Length`` that matches the cut body, so the HTTP answer is complete and the
                  XML is not.
``ignore_if_match``  GET and HEAD: the ``If-Match`` header is removed before the server sees it, so the
                  current version is served whatever version was asked for.
``head_etag``     HEAD: the answer names another ETag than the object has (GETs tell the truth).
``head_size``     HEAD: the answer's ``Content-Length`` is ``after`` bytes (default 4,096) more than the
                  object's (GETs tell the truth).
``head_stale``    HEAD: the first answer the rule gave for a key, whatever the object is now (a gateway
                  that caches HEADs): replace the object after one HEAD, and HEADs go on showing the
                  old version's ETag, size and metadata while GETs serve the new one.
``chunked``       GET: the server's answer, its body sent ``Transfer-Encoding: chunked`` (pieces of at most
                  ``after`` bytes, default 64 KiB) with no ``Content-Length``: valid HTTP/1.1, as some
                  proxies and gateways send (issue 25). Not a fault: a client must read it as the same bytes.
================  ====================================================================================

A rule of a LIST mode matches only ListObjectsV2 requests, of a HEAD mode only HEADs, and
``ignore_if_match`` only requests that carry ``If-Match``; ``methods``, ``key``, ``query``,
``fraction`` and ``limit`` narrow them further, as for every fault rule (``query="prefix=loop%2F"``
picks one folder). The local server does not check signatures, so a changed request still passes.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Iterator
from typing import Protocol

#: modes whose answers are made here without asking the server
SYNTHESIZED = ("new_token", "overflow", "html")
#: modes whose answers are the server's, changed
REWRITTEN = ("loop_token", "cut_xml", "head_etag", "head_size", "head_stale")
#: modes that change the request before the server sees it
REQUEST_CHANGED = ("loop_token", "ignore_if_match")
MODES = ("loop_token", "new_token", "overflow", "html", "cut_xml", "ignore_if_match", "head_etag", "head_size",
         "head_stale", "chunked")
#: modes whose answers are the server's, streamed in another framing
REFRAMED = ("chunked",)
LIST_MODES = ("loop_token", "new_token", "overflow", "cut_xml")
HEAD_MODES = ("head_etag", "head_size", "head_stale")

LOOP_TOKEN = "cc-loop-token"
#: the ETag a lying HEAD names (no object has it)
OTHER_ETAG = '"' + hashlib.md5(b"cottoncandy: another version").hexdigest() + '"'
_S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
_HTML = (b"<!DOCTYPE html>\n<html><head><title>Sign in to continue</title></head>\n"
         b"<body><h1>Network login</h1><form method=\"post\" action=\"/login\"><input name=\"user\"/>"
         b"<input type=\"password\" name=\"password\"/></form></body></html>\n")


class Rule(Protocol):
    """What of a ``faultproxy.FaultRule`` the modes read."""

    mode: str
    after: int | None
    count: int | None
    fired: int


def is_list(method: str, query: str) -> bool:
    """Whether a request is a ListObjectsV2 (``GET /bucket?list-type=2...``)."""
    return method == "GET" and "list-type=2" in query.split("&")


def applies(mode: str, method: str, query: str, has_if_match: bool) -> bool:
    """Whether ``mode`` can apply to this request at all (before the rule's own filters)."""
    if mode in LIST_MODES:
        return is_list(method, query)
    if mode in HEAD_MODES:
        return method == "HEAD"
    if mode == "ignore_if_match":
        return has_if_match
    if mode == "chunked":
        return method == "GET"
    return mode in MODES


def _query(target: str) -> dict[str, str]:
    return {name: values[0] for name, values in
            urllib.parse.parse_qs(urllib.parse.urlsplit(target).query, keep_blank_values=True).items()}


# --- requests --------------------------------------------------------------------------------
def changed_request(mode: str, head: bytes) -> bytes:
    """The request's line and headers as the server should see them under ``mode``."""
    lines = head.decode("latin-1").split("\r\n")
    if mode == "loop_token":  # always the first page: drop the token (and any start-after)
        method, target, version = lines[0].split(" ", 2)
        parts = urllib.parse.urlsplit(target)
        kept = [item for item in parts.query.split("&")
                if item and not item.startswith(("continuation-token=", "start-after="))]
        lines[0] = f"{method} {urllib.parse.urlunsplit(('', '', parts.path, '&'.join(kept), ''))} {version}"
    elif mode == "ignore_if_match":
        lines = [lines[0]] + [line for line in lines[1:] if not line.lower().startswith("if-match:")]
    return "\r\n".join(lines).encode("latin-1")


# --- answers made here -----------------------------------------------------------------------
def synthesized(rule: Rule, method: str, target: str) -> tuple[bytes, Iterator[bytes]]:
    """(status line and headers, body pieces) of an answer made without the server."""
    if rule.mode == "html":
        return _head(200, "text/html; charset=utf-8", len(_HTML)), iter(() if method == "HEAD" else (_HTML,))
    query = _query(target)
    if rule.mode == "new_token":
        return _endless_page(query, rule.fired, rule.count or 1000)
    if rule.mode == "overflow":
        return _overflowing_page(query, rule.count or 1_000_000)
    raise ValueError(f"{rule.mode} is not answered without the server")


def _head(status: int, content_type: str, length: int, extra: str = "") -> bytes:
    reason = {200: "OK"}.get(status, "Status")
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            f"x-amz-request-id: misbehave\r\n{extra}\r\n").encode("latin-1")


def _name(text: str, url: bool) -> str:
    escaped = urllib.parse.quote(text, safe="/~") if url else text
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _page_start(query: dict[str, str], max_keys: str, truncated: bool, count: int) -> str:
    url = query.get("encoding-type") == "url"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{_S3_XMLNS}">'
            f"<Name>misbehaving</Name><Prefix>{_name(query.get('prefix', ''), url)}</Prefix>"
            f"<KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>"
            + (f"<Delimiter>{_name(query['delimiter'], url)}</Delimiter>" if "delimiter" in query else "")
            + ("<EncodingType>url</EncodingType>" if url else "")
            + f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")


def _endless_page(query: dict[str, str], page: int, count: int) -> tuple[bytes, Iterator[bytes]]:
    """``count`` objects named after every earlier page's, and a new token: never the last page."""
    prefix, url = query.get("prefix", ""), query.get("encoding-type") == "url"
    parts = [_page_start(query, query.get("max-keys", "1000"), True, count)]
    stem = _name(f"{prefix}cc-{page:09d}-", url)
    for i in range(count):
        parts.append(f"<Contents><Key>{stem}{i:06d}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
                     f'<ETag>"{page:016x}{i:016x}"</ETag><Size>8</Size>'
                     "<StorageClass>STANDARD</StorageClass></Contents>")
    parts.append(f"<NextContinuationToken>cc-token-{page:09d}</NextContinuationToken></ListBucketResult>")
    body = "".join(parts).encode()
    return _head(200, "application/xml", len(body)), iter((body,))


def _overflowing_page(query: dict[str, str], count: int) -> tuple[bytes, Iterator[bytes]]:
    """One page of ``count`` common prefixes, streamed (its length is known without making it)."""
    prefix, url = query.get("prefix", ""), query.get("encoding-type") == "url"
    start = _page_start(query, query.get("max-keys", "1000"), False, count).encode()
    end = b"</ListBucketResult>"
    escaped = _name(prefix, url).encode()
    width = max(7, len(str(count - 1)))

    def entry(i: int) -> bytes:
        return b"<CommonPrefixes><Prefix>" + escaped + b"cc-" + str(i).zfill(width).encode() + \
            b"/</Prefix></CommonPrefixes>"

    length = len(start) + len(end) + count * len(entry(0))

    def pieces() -> Iterator[bytes]:
        yield start
        for first in range(0, count, 4096):
            yield b"".join(entry(i) for i in range(first, min(count, first + 4096)))
        yield end

    return _head(200, "application/xml", length), pieces()


# --- the server's answers, changed -----------------------------------------------------------
def chunked_head(head: bytes) -> bytes:
    """The server's status line and headers (ending with the blank line) for the same answer sent
    ``Transfer-Encoding: chunked``: its ``Content-Length`` dropped."""
    lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    kept = [line for line in lines if line.partition(":")[0].strip().lower()
            not in ("content-length", "transfer-encoding")]
    return ("\r\n".join(kept) + "\r\nTransfer-Encoding: chunked\r\n\r\n").encode("latin-1")


def chunks(pieces: Iterator[bytes], size: int | None) -> Iterator[bytes]:
    """``pieces`` as HTTP/1.1 chunks of at most ``size`` bytes (default 64 KiB), then the last chunk."""
    size = size or 65536
    for piece in pieces:
        for start in range(0, len(piece), size):
            part = piece[start : start + size]
            yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def rewritten(rule: Rule, method: str, head: bytes, body: bytes, key: str = "",
              remembered: dict[str, bytes] | None = None) -> bytes:
    """The server's whole answer (``head`` ends with the blank line), as the client gets it.
    ``remembered``: the rule's first answers by key (``head_stale``), kept by the caller."""
    lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    if rule.mode == "head_stale" and remembered is not None:
        return remembered.setdefault(key, head)
    if rule.mode in HEAD_MODES and status == 200:
        for i, line in enumerate(lines):
            name, _, value = line.partition(":")
            if rule.mode == "head_etag" and name.strip().lower() == "etag":
                lines[i] = f"ETag: {OTHER_ETAG}"
            elif rule.mode == "head_size" and name.strip().lower() == "content-length":
                lines[i] = f"Content-Length: {int(value) + (rule.after if rule.after is not None else 4096)}"
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if status == 200 and rule.mode == "loop_token":
        text = body.decode("utf-8")
        text = re.sub(r"<IsTruncated>\w+</IsTruncated>", "<IsTruncated>true</IsTruncated>", text)
        text = re.sub(r"<(Next)?ContinuationToken>[^<]*</(Next)?ContinuationToken>", "", text)
        text = text.replace("</ListBucketResult>",
                            f"<NextContinuationToken>{LOOP_TOKEN}</NextContinuationToken></ListBucketResult>")
        body = text.encode("utf-8")
    elif status == 200 and rule.mode == "cut_xml":
        body = body[: rule.after if rule.after is not None else len(body) // 2]
    kept = [line for line in lines if line.partition(":")[0].strip().lower()
            not in ("content-length", "transfer-encoding")]
    return ("\r\n".join(kept) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
