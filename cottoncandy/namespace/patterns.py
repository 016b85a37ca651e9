"""Shell-style patterns over ``/``-separated keys, matched one path level at a time (no I/O).

``*`` and ``?`` never cross ``/``; ``[...]`` is a character class (``[!...]`` negated); a level
that is exactly ``**`` matches any number of levels, including none. Every other level matches one
non-empty path part, as in a shell: ``a/*/x`` is not ``a//x`` (its middle part is empty), and
``a/*`` is not the folder marker ``a/``; only a last ``**`` (a whole subtree) reaches such keys.
Matching is case-sensitive, as keys are. A leading dot is matched by ``*`` (keys have no hidden
files).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MAGIC = re.compile(r"[*?\[]")
RECURSIVE = "**"


def has_magic(text: str) -> bool:
    return MAGIC.search(text) is not None


def split_levels(pattern: str) -> list[str]:
    """``'/a//b/*/'`` -> ``['a', 'b', '*']``."""
    return [level for level in pattern.split("/") if level]


def literal_prefix(level: str) -> str:
    """The text before the first wildcard: what a LIST can be narrowed with."""
    match = MAGIC.search(level)
    return level if match is None else level[: match.start()]


def translate_level(level: str) -> str:
    """Regex source for one level: one non-empty path part (never ``/``, nor the empty part of
    ``a//x``, which ``*`` alone would match)."""
    out: list[str] = ["(?=[^/])"]
    i, n = 0, len(level)
    while i < n:
        char = level[i]
        i += 1
        if char == "*":
            if out[-1] != "[^/]*":
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            j = i
            if j < n and level[j] in "!^":
                j += 1
            if j < n and level[j] == "]":
                j += 1
            while j < n and level[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(char))
                continue
            body = level[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("/", "")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def level_matcher(level: str) -> Callable[[str], bool]:
    regex = re.compile(translate_level(level))
    return lambda name: regex.fullmatch(name) is not None


def levels_regex(levels: Sequence[str]) -> re.Pattern[str]:
    """A regex for a key path relative to some prefix, ``**`` levels spanning any depth."""
    source = ""
    for index, level in enumerate(levels):
        last = index == len(levels) - 1
        if level == RECURSIVE:
            source += ".+" if last else "(?:[^/]+/)*"
        else:
            source += translate_level(level) + ("" if last else "/")
    return re.compile(source)
