"""ListObjectsV2 pages from a sorted name index, for ``LocalS3Server`` (moto's own costs O(N) per page).

Why: moto answers every ListObjectsV2 page by walking, filtering and sorting *all* of the bucket's
keys, then skipping to the continuation token: one page of a 100,000-key folder costs about a
second of server CPU, and listing the folder (100 pages) about 100 s -- a floor no client can go
below, and nothing like S3, where a page costs the same in a big bucket as in a small one. The
benchmarks of big folders (scripts/bench_mount.py) measured moto, not the client.

``enable_fast_listing`` patches moto's backend (once per process) to answer from a sorted list of the
bucket's key names, rebuilt only after the bucket's keys changed (puts and deletes count changes on
the key store), then bisected to the page's start: a page costs its own 1,000 entries. Answers are
moto's, entry for entry: the same keys and common prefixes, in the same order, with the same
truncation and continuation tokens (checked against moto's own listing in tests/storage).

The page's XML is then written directly (``page_xml``) rather than by moto's generic serializer,
which took ~0.3 s of CPU per 1,000 entries (half of it parsing and re-printing each timestamp): the
same bytes, checked byte for byte against moto's serializer in tests/storage. Requests the direct
writer does not cover (``fetch-owner``, an ``encoding-type`` other than ``url``) go to moto as before.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import urllib.parse
from typing import Any
from xml.sax.saxutils import escape

_patched = False
_lock = threading.Lock()
_stamps = itertools.count(1)  # next() is atomic: concurrent changes never share or reuse a stamp
#: moto's own ``S3Backend.list_objects_v2`` (set once patched: what the index is checked against)
moto_list_objects_v2: Any = None
#: whether ListObjectsV2 answers are written by ``page_xml`` (tests turn it off to compare with moto's)
direct_xml = True
_XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'


def _count_changes(store_class: Any) -> None:
    """Make each change of a key store give it a new ``cc_changes`` stamp, before and after (the
    index's validity: an index is kept with the stamp it was built under)."""
    for name in ("__setitem__", "__delitem__", "pop", "setlist", "clear", "update", "popitem", "setdefault"):
        original = getattr(store_class, name, None)
        if original is None:
            continue

        def counted(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            self.cc_changes = next(_stamps)  # one process-wide sequence: a stamp is never seen twice
            try:
                return _original(self, *args, **kwargs)
            finally:
                self.cc_changes = next(_stamps)  # a listing that read the store meanwhile is not kept

        setattr(store_class, name, counted)


def _sorted_names(keys: Any) -> list[str]:
    """The key names of ``keys`` (a moto key store), sorted; cached until the store changes."""
    with _lock:
        changes = getattr(keys, "cc_changes", 0)
        cached = getattr(keys, "cc_index", None)
        if cached is not None and cached[0] == changes:
            return cached[1]  # type: ignore[no-any-return,unused-ignore]
    names = sorted(dict.keys(keys))  # the dict's own keys: no per-version work
    with _lock:
        if getattr(keys, "cc_changes", 0) == changes:
            keys.cc_index = (changes, names)
    return names


def _after(text: str) -> str:
    """The smallest string greater than every string that starts with ``text``."""
    return text[:-1] + chr(ord(text[-1]) + 1)


def list_page(backend: Any, bucket: Any, prefix: str | None, delimiter: str | None, continuation_token: str | None,
              start_after: str | None, max_keys: int) -> tuple[list[Any], bool, str | None]:
    """What moto's ``S3Backend.list_objects_v2`` returns, from the index."""
    from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket
    from moto.utilities.utils import md5_hash

    if isinstance(bucket, FakeTableStorageBucket):
        from moto.s3.exceptions import MethodNotAllowed

        raise MethodNotAllowed()
    if max_keys == 0:
        return [], False, None
    prefix = prefix or ""
    limit = backend._pagination_tokens.get(continuation_token) if continuation_token else start_after
    names = _sorted_names(bucket.keys)
    at = bisect.bisect_left(names, prefix)
    if limit:
        at = max(at, bisect.bisect_right(names, limit))
    out: list[Any] = []
    truncated = False
    while at < len(names):
        name = names[at]
        if not name.startswith(prefix):
            break
        rest = name[len(prefix):]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter, 1)[0] + delimiter
            at = bisect.bisect_left(names, _after(folder), at)  # past every key under it
            if limit is not None and folder <= limit:
                continue
            entry: Any = folder
        else:
            at += 1
            key = bucket.keys.get(name)
            if key is None or isinstance(key, FakeDeleteMarker):
                continue
            entry = key
        if len(out) == max_keys:
            truncated = True
            break
        out.append(entry)
    token = None
    if truncated:
        last = out[-1]
        last_name = last if isinstance(last, str) else last.name
        token = md5_hash(last_name.encode("utf-8")).hexdigest()
        backend._pagination_tokens[token] = last_name
    return out, truncated, token


def _element(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>" if text else f"<{name}/>"


def page_xml(bucket_name: str, entries: list[Any], truncated: bool, token: str | None, *, prefix: str | None,
             delimiter: str | None, max_keys: int, encoding_type: str | None, continuation_token: str | None,
             start_after: str | None) -> bytes:
    """The ListObjectsV2 answer moto's serializer writes for this page, written directly."""
    url = encoding_type == "url"
    out = [_XML_HEAD, f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
    folders: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            folders.append(urllib.parse.quote(entry) if url else entry)
            continue
        checksum = f"<ChecksumAlgorithm>{escape(entry.checksum_algorithm)}</ChecksumAlgorithm>" \
            if entry.checksum_algorithm else ""
        out.append(f"<Contents>{_element('Key', entry.safe_name(encoding_type))}"
                   f"<LastModified>{entry.last_modified_ISO8601}</LastModified>{_element('ETag', entry.etag)}"
                   f"{checksum}<Size>{int(entry.size)}</Size>"
                   f"{_element('StorageClass', entry.storage_class)}</Contents>")
    shown_prefix = (urllib.parse.quote(prefix) if url else prefix) if prefix else ""
    out.append(f"{_element('Name', bucket_name)}{_element('Prefix', shown_prefix)}")
    if delimiter:
        out.append(_element("Delimiter", delimiter))
    out.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if delimiter:
        out.extend(f"<CommonPrefixes>{_element('Prefix', folder)}</CommonPrefixes>" for folder in folders)
    if encoding_type:
        out.append(_element("EncodingType", encoding_type))
    out.append(f"<KeyCount>{len(entries)}</KeyCount>")
    if token:
        out.append(_element("NextContinuationToken", token))
    if not continuation_token and start_after:
        out.append(_element("StartAfter", start_after))
    out.append("</ListBucketResult>")
    return "".join(out).encode("utf-8")


def _list_response(original: Any) -> Any:
    """``S3Response.list_objects_v2`` answering plain requests with ``page_xml``; the rest as moto."""

    def list_objects_v2(self: Any) -> Any:
        query = self.querystring
        fetch_owner = query.get("fetch-owner", [False])[0]
        encoding_type = query.get("encoding-type", [None])[0]
        token = query.get("continuation-token", [None])[0]
        if not direct_xml or fetch_owner or encoding_type not in (None, "url") or token == "":
            return original(self)
        bucket = self.backend.get_bucket(self.bucket_name)
        prefix = self._get_querystring(self.request, self.uri).get("prefix", [None])[0]
        if isinstance(prefix, bytes):
            prefix = prefix.decode("utf-8")
        delimiter = query.get("delimiter", [None])[0]
        from moto import settings

        max_keys = int(query.get("max-keys", [settings.get_s3_default_max_keys()])[0])
        start_after = query.get("start-after", [None])[0]
        entries, truncated, next_token = self.backend.list_objects_v2(
            bucket=bucket, prefix=prefix, delimiter=delimiter, continuation_token=token, start_after=start_after,
            max_keys=max_keys)
        self.data["Action"] = "ListObjectsV2"
        body = page_xml(bucket.name, entries, truncated, next_token, prefix=prefix, delimiter=delimiter,
                        max_keys=max_keys, encoding_type=encoding_type, continuation_token=token,
                        start_after=start_after)
        headers = {"Content-Type": "application/xml", **self.response_headers}
        return 200, headers, body

    return list_objects_v2


def enable_fast_listing() -> None:
    """Patch moto (once per process) so ListObjectsV2 pages come from the sorted name index."""
    global _patched, moto_list_objects_v2
    if _patched:
        return
    from moto.s3 import models, responses, utils

    moto_list_objects_v2 = models.S3Backend.list_objects_v2

    _count_changes(utils._VersionedKeyStore)

    def list_objects_v2(self: Any, bucket: Any, prefix: str | None, delimiter: str | None,
                        continuation_token: str | None, start_after: str | None,
                        max_keys: int) -> tuple[list[Any], bool, str | None]:
        return list_page(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)

    models.S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign,assignment]
    responses.S3Response.list_objects_v2 = _list_response(  # type: ignore[method-assign]
        responses.S3Response.list_objects_v2)
    _patched = True
