"""Listing and matching keys: ``lsdir``, ``ls`` and ``glob`` with shell semantics per level.

``glob`` walks the pattern one level at a time: a literal level costs nothing (it only extends
the prefix), a level with wildcards costs one delimiter LIST narrowed by its literal start, a
literal last level one HEAD per candidate, and ``**`` one flat LIST of the subtree it spans. So
``glob('proj/*/sub01.grp/*')`` never lists the whole bucket, and independent LISTs run in
parallel. Only objects match ``glob``; ``ls`` returns folders too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import NamedTuple, TypeVar

from ..cache.metadata import ScopedShelf
from ..namespace.patterns import RECURSIVE, has_magic, level_matcher, levels_regex, literal_prefix, split_levels
from ..namespace.tree import may_be_array
from ..printable import shown_name
from ..storage.base import Listing, ObjectInfo, ObjectStore
from ..storage.collect import objects_under

T = TypeVar("T")
R = TypeVar("R")


def _parallel(fn: Callable[[T], R], items: list[T], threads: int) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="cc-list") as pool:
        return list(pool.map(fn, items))


class Entry(NamedTuple):
    """One name ``ls`` shows: an object's key, or a folder (shown with its ``/`` by the command line)."""

    name: str
    folder: bool = False


def folder_prefix(path: str) -> str:
    """``'a/b'``, ``'a/b/'``, ``'/a/b'`` -> ``'a/b/'``; ``''`` and ``'/'`` -> ``''`` (the root)."""
    path = "/".join(split_levels(path))
    return path + "/" if path else ""


def lsdir(store: ObjectStore, path: str = "", limit: int | None = None) -> list[str]:
    """The children of a folder: sub-folders first, then objects, as full paths without a trailing ``/``.

    ``'path/*'`` means ``'path'`` (0.4.0's "trivial magic"); any other pattern is refused.
    """
    if path.endswith("/*") and not has_magic(path[:-2]):
        path = path[:-2]
    if has_magic(path):
        raise ValueError(f'Use ``ls()`` when using search patterns: "{path}"')
    return _children(store, path, limit)


def _children(store: ObjectStore, path: str, limit: int | None = None) -> list[str]:
    return [entry.name for entry in _child_entries(store, path, limit)]


def _child_entries(store: ObjectStore, path: str, limit: int | None = None) -> list[Entry]:
    prefix = folder_prefix(path)
    listing = store.list_dir(prefix)
    entries = [Entry(p[:-1], True) for p in listing.prefixes]  # prefix 'a//': the folder 'a/' (not 'a')
    entries += [Entry(o.key) for o in listing.objects if o.key != prefix]
    return entries[:limit] if limit is not None else entries


def _walk(store: ObjectStore, levels: list[str], threads: int, folders_too: bool) -> list[Entry]:
    """Objects (and, with ``folders_too``, folders) matching ``levels``, sorted."""
    frontier = [""]
    for index, level in enumerate(levels):
        last = index == len(levels) - 1
        if level == RECURSIVE:
            regex = levels_regex(levels[index:])

            def subtree(prefix: str, regex: re.Pattern[str] = regex) -> list[str]:
                return [o.key for o in objects_under(store, prefix)
                        if o.key != prefix and regex.fullmatch(o.key[len(prefix):])]

            return sorted({Entry(key) for keys in _parallel(subtree, frontier, threads) for key in keys})
        if not has_magic(level):
            if not last:
                frontier = [f"{prefix}{level}/" for prefix in frontier]
                continue
            candidates = [prefix + level for prefix in frontier]
            found = _parallel(lambda key: store.exists(key), candidates, threads)
            entries = [Entry(key) for key, ok in zip(candidates, found) if ok]
            if folders_too:
                listed = _parallel(lambda key: store.list_dir(key + "/"), candidates, threads)
                entries += [Entry(key, True) for key, listing in zip(candidates, listed)
                            if _non_empty(listing, key + "/")]
            return sorted(set(entries))
        match = level_matcher(level)
        start = literal_prefix(level)
        def list_level(prefix: str, start: str = start) -> Listing:
            return store.list_dir(prefix + start)

        listings = _parallel(list_level, frontier, threads)
        if last:
            entries = []
            for prefix, listing in zip(frontier, listings):
                entries += [Entry(o.key) for o in listing.objects if match(o.key[len(prefix):])]
                if folders_too:
                    entries += [Entry(p[:-1], True) for p in listing.prefixes if match(p[len(prefix):-1])]
            return sorted(set(entries))
        frontier = [p for prefix, listing in zip(frontier, listings)
                    for p in listing.prefixes if match(p[len(prefix):-1])]
        if not frontier:
            return []
    return []


def _non_empty(listing: Listing, prefix: str) -> bool:
    return bool(listing.prefixes) or any(o.key != prefix for o in listing.objects)


def glob(store: ObjectStore, pattern: str, threads: int = 8) -> list[str]:
    """Keys of objects matching ``pattern`` level by level, sorted.

    A trailing ``/`` names folders: ``glob('a/')`` is ``glob('a/**')`` (the keys under ``a/``, as
    0.4.0 returned), never the object ``a``.
    """
    levels = split_levels(pattern)
    if pattern.endswith("/") and levels:
        levels.append(RECURSIVE)
    return [entry.name for entry in _walk(store, levels, threads, folders_too=False)] if levels else []


def ls(store: ObjectStore, pattern: str, threads: int = 8) -> list[str]:
    """Like the shell's ``ls``: a folder's children, or every object and folder matching a pattern.

    A name that exists is listed as itself even if it holds ``*?[]`` (the rule ``rm`` uses, see
    ``resolve``): ``ls('x[1]')`` shows the key ``x[1]``, not ``x1``, so what ``ls`` shows is what
    ``rm`` of the same name removes.
    """
    entries, matched = _ls(store, pattern, threads)
    names = [entry.name for entry in entries]
    return sorted(set(names)) if matched else names  # a pattern's matches: each name once


def ls_entries(store: ObjectStore, pattern: str, threads: int = 8) -> list[Entry]:
    """What ``ls`` lists, each name saying whether it is a folder (``ccfs ls`` prints those with a
    ``/``); an object and a folder of the same name are two entries."""
    return _ls(store, pattern, threads)[0]


def _ls(store: ObjectStore, pattern: str, threads: int) -> tuple[list[Entry], bool]:
    """``ls``'s entries, and whether they are a pattern's matches (rather than a folder's children)."""
    levels = split_levels(pattern)
    if not levels:
        return _child_entries(store, ""), False
    if has_magic(pattern):
        from .resolve import Kind, resolve  # resolve builds on this module's glob

        literal = resolve(store, pattern, patterns=False)
        if literal.kind is Kind.KEY:
            return [Entry(literal.name)], False
        if literal.kind is Kind.FOLDER:
            return _child_entries(store, pattern), False
    if levels[-1] == "*" and not has_magic("/".join(levels[:-1])):
        return _child_entries(store, "/".join(levels[:-1])), False  # 'path/*' is 'path' (0.4.0's "trivial magic")
    if not has_magic(pattern):
        return _child_entries(store, pattern), False
    return _walk(store, levels, threads, folders_too=True), True


def described(store: ObjectStore, listed: Iterable[ObjectInfo], shelf: ScopedShelf | None,
              refused: dict[str, str] | None = None) -> dict[str, ObjectInfo]:
    """What a HEAD says of each listed object whose name leaves open that it is a raw array (its
    metadata: dtype, shape...), key -> info; objects gone or refused since the LIST are left out.
    An object whose metadata the store refuses (``ValueError``: a local sidecar that is no JSON
    object, too big...) is left out too, and its reason put in ``refused`` (key -> message): one
    bad object never fails the others.

    The shelf (``cache.metadata``, shared with mounts) answers each object whose listed version
    it holds; the rest are HEADed (many at once where the store can) and put on the shelf, so
    ``ccfs ls -l`` of an unchanged folder costs its LIST and no HEAD, as a mount's visit does.
    """
    wanted = {info.key: info for info in listed if may_be_array(info.key.rsplit("/", 1)[-1])}
    out = shelf.recall(wanted.values()) if shelf is not None and wanted else {}
    todo = [key for key in wanted if key not in out]
    answered: dict[str, ObjectInfo] = {}
    if len(todo) > 1 and store.capabilities.batched_head:
        answered = {key: info for key, info in store.head_many(todo).items() if info is not None}
    for key in todo:
        if key not in answered:
            try:
                info = store.head_if_exists(key)
            except PermissionError:  # its metadata may not be read: shown as a plain object
                continue
            except ValueError as exc:  # its metadata is refused: that object alone says so
                if refused is not None:
                    refused[key] = str(exc)
                continue
            if info is not None:
                answered[key] = info
    if shelf is not None and answered:
        shelf.remember(answered.values())
    return {**out, **answered}


def format_objects(objects: Iterable[ObjectInfo]) -> str:
    """0.4.0's listing lines: ``KEY   YYYY/MM/DD (HH:MM:SS) 0.0M`` (local time)."""
    objects = list(objects)
    if not objects:
        return ""
    names = [shown_name(o.key) for o in objects]  # control characters escaped, never sent to the terminal
    width = min(max(len(name) for name in names) + 3, 70)
    lines = []
    for o, name in zip(objects, names):
        when = o.last_modified.astimezone() if isinstance(o.last_modified, datetime) else None
        date = when.strftime("%Y/%m/%d (%H:%M:%S)") if when else "-" * 21
        lines.append(f"{name[-100:]:<{width}} {date} {round(o.size / 2**20, 1)}M")
    return "\n".join(lines)
