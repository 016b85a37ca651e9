"""What a path of the tree resolves to: a folder, or a file backed by one object version."""

from __future__ import annotations

from dataclasses import dataclass

from ..formats.raw import ArraySpec
from ..storage.base import ObjectInfo


@dataclass(frozen=True)
class FolderNode:
    path: str  # relative to the mount root, '' for the root
    prefix: str  # the key prefix it shows, with its trailing '/' ('' for a bucket root)


@dataclass(frozen=True)
class FileNode:
    """A file: the bytes of ``info`` as stored, or ``header`` + the array's bytes for a raw array.

    ``error`` is set for objects that look like raw arrays but cannot be served (bad metadata,
    body of the wrong size): they are listed, and opening them fails with EIO and a log line.
    """

    path: str
    info: ObjectInfo
    spec: ArraySpec | None = None
    header: bytes = b""
    error: str | None = None

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def is_array(self) -> bool:
        return self.spec is not None

    @property
    def size(self) -> int:
        if self.spec is not None:
            return len(self.header) + self.spec.nbytes
        return self.info.size


Node = FolderNode | FileNode
