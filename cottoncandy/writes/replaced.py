"""One object per path: a commit that stores a file under the other of its path's two keys removes
the version it replaced.

Why: a path ``NAME.npy`` has two keys (the reverse naming rule, ``namespace.tree.written``): a plain
``.npy`` array is stored as the raw array ``NAME``, anything else byte for byte as ``NAME.npy``. A file
being written can change kind between commits (``{ printf MAGIC; cat rest; } > n.npy`` stores six
bytes as ``n.npy`` at the first FLUSH, then a whole array as ``n``; an array ``n`` rewritten through
``n.npy`` with bytes that are no plain array any more is stored as ``n.npy``). The new version goes to
the new key; the version it replaced, under the other key, would stay and the path would show two
objects. So the seam (``writable.StoreWriter``), after every commit that stored something, removes
the replaced version when its key differs from the stored one:

* only the other key of the same path (``Target.array_key`` / ``Target.bytes_key``), never another
  name: it is the path the user overwrote, so no ``--allow-delete`` is needed;
* only while it is the version this file replaced (``ObjectStore.delete_versions`` with its ETag);
  another writer's newer version there is kept, logged in one line naming both keys;
* a refused or failed removal never fails the user's ``close``/``fsync``: the user's data is stored;
* the namespace is told (``removed``) beside ``stored``, so listings here and on other mounts show one
  object.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ..storage.base import ObjectInfo, ObjectStore
from . import moves
from .kinds import FileKind

log = logging.getLogger("cottoncandy.writes")


class Removals(Protocol):
    """What is told of a removed key (``namespace.facade.Namespace.removed``)."""

    def removed(self, key: str) -> None: ...


def replaced_version(kind: FileKind) -> ObjectInfo | None:
    """The version a commit of ``kind`` now replaces: what it last stored, else the object it was
    opened over (``Target.seen``); ``None`` for a new name. Asked before the commit."""
    version = moves.shown_version(kind)
    return version if version is not None else kind.target.seen


def drop_replaced(store: ObjectStore, namespace: Removals, kind: FileKind, replaced: ObjectInfo | None,
                  stored: ObjectInfo) -> bool:
    """Remove ``replaced`` (the file's version before the commit that stored ``stored``) when it lies
    under the path's other key, at its ETag; True when it is gone. Never raises a store's refusal."""
    target = kind.target
    if replaced is None or replaced.key == stored.key or replaced.key not in (target.array_key, target.bytes_key):
        return False
    old, new = store.describe(replaced.key), store.describe(stored.key)
    try:
        left = store.delete_versions({replaced.key: replaced.etag or None})
    except OSError as exc:
        log.warning("%s: stored as %s; the version it replaced, %s, was not removed: %s", target.path, new, old, exc)
        return False
    if left:
        log.warning("%s: stored as %s; %s was kept: another version is there now", target.path, new, old)
        return False
    namespace.removed(replaced.key)
    log.info("%s: stored as %s; the version it replaced, %s, removed", target.path, new, old)
    return True
