"""How one folder level of keys becomes directory entries (pure functions, no I/O).

Rules (docs/SEMANTICS.md, "What the mount shows"):
- every common prefix is a folder (``.grp`` groups included, names kept);
- a raw array (an object with dtype/shape metadata) named ``k`` is the file ``k.npy``: a synthesised
  header plus the object's bytes; a raw array already named ``*.npy`` keeps its name;
- any other object keeps its name and bytes (``.npy`` objects thus pass through unchanged);
- directory-marker keys (ending in ``/``) and empty names are not entries;
- clashes: folders win, then objects under their own key, then derived ``.npy`` names. A raw
  array whose ``.npy`` name is taken is shown under its bare key; an object whose name is taken by
  a folder is left out. Each clash is logged once.

The reverse rule (which key a file written through the mount becomes) is ``written``, below: it is
declared here, beside the forward one, so the two cannot drift.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

NPY = ".npy"
#: object names that are never raw arrays, so listing them needs no HEAD
NON_ARRAY_SUFFIXES = (".json", ".pkl", ".pickle", ".txt", ".csv", ".tsv", ".md", ".log", ".yaml", ".yml", ".png",
                      ".jpg", ".jpeg", ".gif", ".pdf", ".zip", ".tar", ".gz", ".bz2", ".h5", ".hdf5", ".hdf",
                      ".nii", ".mat", ".html", ".py", ".xml", ".tif", ".tiff")


def may_be_array(name: str) -> bool:
    """Whether an object's name leaves open that it is a raw array (then its metadata is needed)."""
    return not name.lower().endswith(NON_ARRAY_SUFFIXES)


def may_be_folder(name: str) -> bool:
    """Whether a looked-up name is worth trying as a folder first: not a ``.npy`` file or a name
    with a suffix of files (a folder may still have one: it is then found in its parent's listing)."""
    return not name.lower().endswith((NPY, *NON_ARRAY_SUFFIXES))


@dataclass(frozen=True)
class Entry:
    """A directory entry: what it is and which child of the listing it comes from."""

    kind: str  # "folder", "array" (raw array as .npy) or "object" (bytes as stored)
    child: str  # the folder or object name within the listing (not the displayed name)


def entries(folders: list[str], objects: Mapping[str, object], is_array: Callable[[str], bool],
            table: dict[str, Entry] | None = None) -> dict[str, Entry]:
    """Displayed name -> entry for one folder level. ``objects`` maps object names to anything.

    ``table``: the entries already decided (a folder listed a page at a time, see ``settled``),
    added to in place; only names settled on the pages so far may be passed in."""
    table = {} if table is None else table
    for name in folders:
        if name:
            table[name] = Entry("folder", name)
    derived: list[tuple[str, str]] = []
    for name in objects:
        if not name:
            continue
        array = is_array(name)
        if array and not name.endswith(NPY):
            derived.append((name + NPY, name))
            continue
        kind = "array" if array else "object"
        if name in table:
            log.info("name clash: object %r is hidden by a folder of the same name", name)
            continue
        table[name] = Entry(kind, name)
    for shown, name in derived:
        if shown not in table:
            table[shown] = Entry("array", name)
        elif name not in table:
            log.info("name clash: %r exists, so raw array %r is shown under its bare name", shown, name)
            table[name] = Entry("array", name)
        else:
            log.info("name clash: raw array %r has no free name and is hidden", name)
    return table


def settled(name: str, listed_up_to: str | None) -> bool:
    """Whether the object ``name`` can be given its entry before its folder is listed to the end.

    Every name that could clash with it (the folder ``name/``, the object ``name.npy``, the folder
    ``name.npy/``) sorts after ``name`` and no later than ``name/`` in S3's key order, and folders
    win every clash. So once the LIST has come past ``name/`` (``listed_up_to``: the greatest
    object name or folder name + ``/`` seen; ``None``: the whole folder is listed), what clashes
    with ``name`` is known: its entry is the one the whole listing gives it. Folders are always
    settled (they win), and an object's own-key rival ``name.npy`` settles before it does.
    """
    return listed_up_to is None or name + "/" <= listed_up_to


def candidates(name: str) -> list[str]:
    """The object names that could be displayed as ``name`` (to HEAD only those on a lookup)."""
    out = [name]
    if name.endswith(NPY) and len(name) > len(NPY):
        out.append(name[: -len(NPY)])
    out.append(name + NPY)  # its presence decides whether a bare-named array is shown bare
    return out


#: the longest key S3 stores, in bytes of UTF-8
MAX_KEY_BYTES = 1024


def shown_path(path: str) -> str:
    """``path`` as a log line or message can hold it: bytes that were not UTF-8 as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def key_bytes(key: str) -> int | None:
    """How many bytes ``key`` takes as UTF-8 (what S3 limits), or ``None`` when it is not UTF-8 at all:
    a name the kernel passed as bytes that are not UTF-8 (decoded with ``surrogateescape``)."""
    if key.isascii():
        return len(key)
    try:
        return len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def check_storable(path: str, key: str) -> None:
    """Raise the error a program should get for making ``path`` when its ``key`` cannot be an S3 key:
    ``EILSEQ`` for a name that is not UTF-8, ``ENAMETOOLONG`` past ``MAX_KEY_BYTES``; the message names
    the path (escaped) and what is wrong. Nothing has been sent or taken when it is raised."""
    size = key_bytes(key)
    if size is None:
        raise OSError(errno.EILSEQ, f"{shown_path(path)}: the name is not UTF-8, so no S3 key can hold it")
    if size > MAX_KEY_BYTES:
        raise OSError(errno.ENAMETOOLONG, f"{shown_path(path)}: its key would be {size} bytes; S3 keys hold at "
                                          f"most {MAX_KEY_BYTES}")


def written(name: str) -> str | None:
    """The reverse of ``entries`` for a new file written as ``name``: the object name of the raw array
    it becomes if its bytes are a plain ``.npy`` array (not object dtype, no pickle): ``x.npy`` ->
    ``x``, which ``entries`` shows as ``x.npy`` again. ``None`` for every other name, and for a
    ``.npy`` whose bytes are not a plain array: those are stored byte for byte under ``name``.
    A file that already exists keeps the key it was read from (``cottoncandy.writes.writable``)."""
    if name.endswith(NPY) and len(name) > len(NPY):
        return name[: -len(NPY)]
    return None
