"""Key names made safe to print on a terminal.

A key can hold any character, ESC, CR, BEL and the bidirectional overrides included; printed raw
they move the cursor, rewrite the line or reorder what is shown, so a listing could hide or fake
names. Names are shown as they are when harmless, else in bash's ``$'...'`` quoting, which is
visible, unambiguous and can be pasted back into a shell (``ccfs rm $'s3://b/a\\x1bb'``).
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls, and the format characters that reorder or hide text
_UNSAFE_CLASS = "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
_UNSAFE_OR_QUOTING = re.compile(f"[{_UNSAFE_CLASS}\\\\']")
_NAMED = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
          "\r": "\\r", "\x1b": "\\E", "\\": "\\\\", "'": "\\'"}
_QUOTE_START = "$'"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def needs_quoting(text: str) -> bool:
    return _UNSAFE.search(text) is not None or text.startswith(_QUOTE_START)


def shown_name(text: str) -> str:
    """``text`` as is when it prints harmlessly, else ``$'...'`` with every unsafe character escaped."""
    if not needs_quoting(text):
        return text
    return _QUOTE_START + _UNSAFE_OR_QUOTING.sub(_escape, text) + "'"


def escape_controls(text: str) -> str:
    """For free text naming keys (error messages): each unsafe character as a visible escape."""
    return _UNSAFE.sub(_escape, text)


def without_userinfo(endpoint: str) -> str:
    """``http://user:secret@host:9000`` -> ``http://host:9000``: a repr never shows a password."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return "(unparseable endpoint)"
    if "@" not in parts.netloc:
        return endpoint
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def normalized_endpoint(url: str) -> str:
    """``scheme://host[:port][/path]`` of an endpoint URL, lower-cased where URLs are case-blind, without
    user part, query, fragment or trailing ``/``: one spelling per endpoint, for the names caches and
    change messages give a bucket (``HTTP://Host:9000/`` and ``http://host:9000`` are one endpoint)."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"
