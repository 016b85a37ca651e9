"""What a rename does to a file still open for writing: the file follows its name.

Why: a program may rename a file it still has open and go on writing (``os.rename`` with a memmap
or a descriptor open, a tool writing ``x.partial`` and renaming it before its last close, ``mv`` of
the folder holding it). On a disk the open file is the renamed file: every later write and the last
close land under the new name, and the old name is gone. Here the file's bytes end up in a key, so
the rename must move both what is already stored for the file and where its later commits go.

The rule, one for every state a file open for writing can be in (``writable.StoreWriter.retarget``):

* the open file is **retargeted**: its keys become the new name's (by the reverse naming rule; a file
  kept as bytes stays bytes), and its write condition the new name's: ``If-None-Match: *`` where the
  mount shows nothing, ``If-Match`` of the version it shows there;
* the version stored for it under the old name (``shown_version``: what it last stored, else the
  object it was opened over) is **moved at once**, as a stored file is renamed: a server-side copy
  that keeps the metadata, with the new name's condition, then a delete of the old key; the file
  then stands on that copy (``rebase``: a staged file copies its unchanged stretches from it, and its
  next commit carries ``If-Match`` of it);
* an upload **under way** under the old key (a streamed file from its first part on: a multipart
  upload's key cannot change) completes there at its commit point and is then moved the same way
  (``in_flight``; the writer moves it when the stored key is not the file's key).

So after the last close the new name holds everything written and the old name is gone, whether the
file was streaming, stored at a FLUSH and written on (``continued``), staged and fsynced, opened over
an existing object, or a short ``.npy`` kept for its reopen (nothing stored: retargeted only). A kept
file at unmount (``recovery.settle``) is recorded under the name it has then.
"""

from __future__ import annotations

import dataclasses
import errno

from ..storage.base import ObjectInfo
from .continued import ContinuedFile
from .kinds import FileKind, Target
from .staged_kind import StagedKind
from .streaming import StreamingFile


def shown_version(kind: FileKind) -> ObjectInfo | None:
    """The stored object that stands for this file under its name now: the version it last stored,
    else the one it was opened over; ``None`` when nothing is stored for it (a new file, an upload
    under way, a short ``.npy`` kept unstored)."""
    if isinstance(kind, ContinuedFile):
        return kind.last
    if isinstance(kind, StagedKind):
        base = kind.staged.base
        return base.info if base is not None else None
    if isinstance(kind, StreamingFile):
        if kind.stored is not None:
            return kind.stored
        return None if in_flight(kind) else kind.target.seen
    stored = getattr(kind, "stored", None)
    return stored if isinstance(stored, ObjectInfo) else kind.target.seen


def in_flight(kind: FileKind) -> bool:
    """Whether an upload of the file is under way under its key (a streamed file from its first part
    on, not yet stored nor given up): that key cannot change until it completes."""
    return isinstance(kind, StreamingFile) and kind.held() is None and kind.stored is None and not kind.given_up


def is_array(kind: FileKind, version: ObjectInfo) -> bool:
    """Whether ``version`` is stored as the raw array of the file (not its bytes)."""
    return version.key == kind.target.array_key


def retargeted(kind: FileKind, path: str, bytes_key: str, array_key: str | None, seen: ObjectInfo | None) -> Target:
    """The file's target under ``path`` (the new name's keys: ``written(path)``), standing on ``seen``
    (the version there it may replace: the moved copy, or what the mount shows; ``None``: a new name).
    A file that was to stay bytes (opened over an object that is not an array) stays bytes.

    ``EXDEV`` when the version stored for it, or the upload under way for it, is a raw array and
    ``path`` is not a ``.npy`` name: a rename keeps the bytes the mount shows (``tree_changes``), and
    the file stands on that version's bytes at their offsets (an upload's body, moved as it is, would
    lose the ``.npy`` header); the program may copy it instead (``shutil.move`` does on EXDEV)."""
    old = kind.target
    version = shown_version(kind)
    stored_as_array = version is not None and is_array(kind, version)
    uploading_array = in_flight(kind) and old.array_key is not None and kind.key == old.array_key
    if array_key is None and (stored_as_array or uploading_array):
        raise OSError(errno.EXDEV, f"{old.path} is a raw array open for writing: it keeps its .npy bytes under "
                                   f"{path}, a name that is not .npy, only as a copy")
    return Target(path, bytes_key, array_key if old.array_key is not None else None, seen, old.conditional)


def rebase(kind: FileKind, target: Target, moved: ObjectInfo | None) -> None:
    """Point ``kind`` at ``target``; ``moved``: the copy its stored version became (same bytes and
    metadata, under the new key), which it now stands on. Called under the open file's lock."""
    if isinstance(kind, ContinuedFile):
        if moved is not None:
            kind.last = moved
        rebase(kind.inner, target, moved)
        return
    if isinstance(kind, StagedKind):
        staged = kind.staged
        with staged.lock:
            if moved is not None and staged.base is not None:
                staged.base = dataclasses.replace(staged.base, info=moved)
            staged.path = target.path
            if moved is not None:
                staged.key = moved.key
        if moved is not None and kind.stored is not None:
            kind.stored = moved
    elif isinstance(kind, StreamingFile) and moved is not None and kind.stored is not None:
        kind.stored = moved
    kind.target = target
