"""Which keys a name means, for every call that takes "a name or a pattern" (rm, cp, mv, get...).

Keys may hold ``*``, ``?``, ``[`` and ``]``, so reading such a name as a pattern can delete or
copy the wrong objects. One rule, in this order, answers for every caller:

1. a name ending in ``/`` is the folder: the keys under it, never the object beside it
   (``a/`` is never the object ``a``);
2. a name that is a key is exactly that key, wildcards or not (as 0.4.0's ``rm`` did);
3. a name with keys under ``name/`` is that folder (``a`` is never ``ab``: folders end at ``/``);
4. only then, and only for callers that take patterns, a name with wildcards is a pattern
   (``glob`` semantics: ``*``/``?`` within a level, ``[...]``, ``**``; ``tmp*/`` is every
   object under the folders matching ``tmp*``).

A plain key costs one HEAD; a folder or pattern one more listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..namespace.patterns import has_magic
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.collect import objects_under
from .listing import folder_prefix, glob


class Kind(Enum):
    KEY = "key"  # exactly one object, the name itself
    FOLDER = "folder"  # the keys under ``prefix``
    PATTERN = "pattern"  # the objects a pattern matches (possibly none)
    MISSING = "missing"  # nothing: no object, no folder, and not a pattern (or patterns not taken)


@dataclass(frozen=True)
class Resolved:
    name: str
    kind: Kind
    keys: tuple[str, ...] = ()
    prefix: str = ""  # the folder prefix (``name/``) for FOLDER
    objects: tuple[ObjectInfo, ...] = ()  # a FOLDER's listing (sizes, ETags), in ``keys`` order

    @property
    def looks_like_pattern(self) -> bool:
        return has_magic(self.name)


def resolve(store: ObjectStore, name: str, *, patterns: bool, threads: int = 8) -> Resolved:
    """The keys ``name`` stands for in ``store`` (see the module docstring for the rule).

    ``name`` is an already-cleaned key name (``names.require_key``); ``''`` is the store's root
    folder. A FOLDER's keys include a marker object named ``prefix`` itself, if one exists.
    """
    wants_folder = name.endswith("/") or not name
    if not wants_folder and store.exists(name):
        return Resolved(name, Kind.KEY, (name,))
    prefix = folder_prefix(name)
    below = tuple(objects_under(store, prefix))
    if below:
        return Resolved(name, Kind.FOLDER, tuple(o.key for o in below), prefix, below)
    if patterns and has_magic(name):
        # 'tmp*/' names folders: every object under a folder matching 'tmp*', never an object 'tmp1'
        pattern = prefix + "**" if wants_folder else name
        return Resolved(name, Kind.PATTERN, tuple(glob(store, pattern, threads)))
    return Resolved(name, Kind.MISSING)
