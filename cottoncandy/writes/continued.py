"""A file written on after a commit point stored it: a staged overwrite of the object just stored.

Why: one open file description is often shared, and every ``close()`` of any copy of it sends FLUSH.
``{ cmd1; cmd2; } > f`` hands the descriptor to two commands; the first one's exit closes its copy,
the FLUSH stores ``f`` (a streamed file completes at FLUSH: ``close()`` reports the upload's result),
and ``cmd2`` then writes more through the same description. So do ``exec 3>f; echo x >&3; echo y >&3``
(each ``>&3`` closes a duplicate), a forked child writing after its parent closed, and a program that
calls ``fsync`` (or closes a ``dup``) and writes on. The bytes written after that commit point must be
stored too, and the final object must be everything written.

How: the streamed kind, once stored, takes no more bytes; the seam (``writable.StoreWriter``) then
asks ``continued(...)`` for a kind that carries on from the object it just stored:

* a staged file (``kinds.Staging.start``) whose base is that object, exactly as the program's file
  shows it (for a raw array, the mount's ``.npy`` header followed by the array's bytes): nothing is
  fetched until read or needed at commit, and an unchanged stretch of 5 MiB or more is copied by the
  server (``writes.commit``);
* its writes carry the condition ``If-Match`` of the version this mount just stored (``Target.seen``),
  so another writer's version stored in between is never overwritten silently (ESTALE, unless
  ``--last-writer-wins``);
* a raw array takes no byte past the size its header promises (EFBIG, as when it was streamed), so
  it stays one array and never becomes a second object of bytes beside it;
* it commits where the streamed file would have: at the next FLUSH (the next ``close()`` of any
  copy reports that commit's result), at ``fsync``, and at the last RELEASE; a FLUSH with nothing
  new since the last commit stores nothing.

What ``close()`` reports: the result of the commit that FLUSH made, i.e. of everything written
through the description up to then. The single-writer case (``np.save``, ``cp``, ``cmd > f``) never
gets here: its one FLUSH after data stores the file and ``close()`` reports that upload's result.

Invariants: the object under the key is always one whole version (each commit is one PUT or one
CompleteMultipartUpload); a file whose offsets would not match what the program wrote (a ``.npy``
whose own header has another length than the header the mount shows for it) is refused with
``EOPNOTSUPP`` and one log line, never stored shifted.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os

from ..formats.npy import npy_header
from ..formats.raw import ArraySpec, metadata_from_spec
from ..namespace.nodes import FileNode
from ..storage.base import ObjectInfo
from .kinds import FileKind, Staging, Target

log = logging.getLogger("cottoncandy.writes")


class ContinuedFile:
    """A staged kind (``inner``) that commits at FLUSH too, as the streamed file it continues did.
    Methods are called under the open file's lock (``writable.OpenFile``)."""

    def __init__(self, inner: FileKind, stored: ObjectInfo, limit: int | None = None):
        self.inner = inner
        #: the latest version this file was stored as (the streamed file's, then each commit's)
        self.last = stored
        #: a raw array's ``.npy`` size: no byte past it (as when it was streamed), so it stays one array
        self.limit = limit

    @property
    def target(self) -> Target:
        return self.inner.target

    @target.setter
    def target(self, target: Target) -> None:
        self.inner.target = target

    @property
    def stored(self) -> ObjectInfo:
        """The version stored under the key now (``writable.StoreWriter.retarget`` copies it)."""
        return self.last

    @property
    def key(self) -> str:
        return self.inner.key

    @property
    def size(self) -> int:
        return self.inner.size

    def accepts(self, offset: int, length: int) -> bool:
        return self.inner.accepts(offset, length)

    def write(self, offset: int, data: bytes) -> int:
        if self.limit is not None and offset + len(data) > self.limit:
            raise OSError(errno.EFBIG, f"{self.key}: more bytes than the .npy header promises ({self.limit})")
        return self.inner.write(offset, data)

    def read(self, size: int, offset: int) -> bytes:
        return self.inner.read(size, offset)

    def can_truncate(self, length: int) -> bool:
        return self.inner.can_truncate(length)

    def truncate(self, length: int) -> None:
        self.inner.truncate(length)

    def _kept(self, info: ObjectInfo | None) -> ObjectInfo | None:
        if info is not None:
            self.last = info
        return info

    def flush(self) -> ObjectInfo | None:
        """FLUSH: store what was written since the last commit (the streamed file's commit point)."""
        return self._kept(self.inner.fsync())

    def fsync(self) -> ObjectInfo | None:
        return self._kept(self.inner.fsync())

    def release(self) -> ObjectInfo | None:
        return self._kept(self.inner.release())

    def abort(self) -> None:
        self.inner.abort()


def continued(staging: Staging, target: Target, stored: ObjectInfo, spec: ArraySpec | None,
              header_length: int, size: int, describe: str) -> ContinuedFile:
    """The kind that carries on a file stored as ``stored`` (``spec``: the raw array it was stored as,
    whose ``.npy`` header in the program's file was ``header_length`` bytes; ``None``: its bytes as
    they are) of ``size`` bytes in the program's offsets. ``EOPNOTSUPP`` when the mount cannot show
    the stored object at those offsets (module docstring)."""
    header = npy_header(spec) if spec is not None else b""
    if spec is None and stored.size != size:  # bytes that are not the program's file (an array renamed to bytes)
        log.warning("%s: a write after the file was stored is not supported: the object holds %d bytes, the "
                    "program's file %d; nothing more was stored", describe, stored.size, size)
        raise OSError(errno.EOPNOTSUPP, f"{describe}: writing on after the file was stored is not supported "
                                        "for this object; write the file again from the start")
    if spec is not None and (len(header) != header_length or len(header) + spec.nbytes != size):
        log.warning("%s: a write after the file was stored at a commit point (close of a copy of its "
                    "descriptor, or fsync) is not supported: its .npy header has %d bytes, the mount "
                    "shows %d; nothing more was stored", describe, header_length, len(header))
        raise OSError(errno.EOPNOTSUPP, f"{describe}: writing on after the file was stored is not supported "
                                        "for this .npy header; write the file again from the start")
    if not stored.metadata and spec is not None:  # the store's answer may leave the metadata out
        stored = dataclasses.replace(stored, metadata=metadata_from_spec(spec))
    node = FileNode(path=target.path, info=stored, spec=spec, header=header)
    log.info("%s: written on after it was stored; the next commit overwrites that version (If-Match)", describe)
    inner = staging.start(dataclasses.replace(target, seen=stored), node, os.O_WRONLY)
    return ContinuedFile(inner, stored, size if spec is not None else None)
