"""Which version of each file this machine reads, so the kernel's page cache never mixes two.

The kernel keeps one page cache per file, shared by every handle open on it, while each of our
handles pins one object version (ETag) at open. Two rules keep those pages to one version:

* while any handle of a path is open, a new open of that path pins the same version (the cached
  pages are of it); reads the store can no longer answer for that version fail with ``ESTALE``;
* once none is open, a new open pins the current version, and if that differs from the version
  last opened at that path, the open tells the kernel to drop the file's cached pages (no
  ``keep_cache``). The attributes alone may not show the change: a replacement of the same size
  within the same second keeps size and mtime, and a listing can refresh the kernel's attributes
  from metadata older than what the open pins.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cachetools import LRUCache

from cottoncandy.namespace.nodes import FileNode


def version(node: FileNode) -> tuple[str, bytes]:
    """What the file's bytes depend on: the body (ETag) and the ``.npy`` header made from the
    metadata, which a metadata-only rewrite (copy onto itself) can change under the same ETag."""
    return node.info.etag, node.header


@dataclass
class _Held:
    node: FileNode
    handles: int


class OpenVersions:
    def __init__(self, remember: int = 100_000):
        """``remember``: paths whose last opened version is kept; a path forgotten here has its
        cached pages dropped at its next open (the safe side)."""
        self._lock = threading.Lock()
        self._open: dict[str, _Held] = {}
        self._last_opened: LRUCache[str, tuple[str, bytes]] = LRUCache(maxsize=remember)

    def acquire(self, node: FileNode) -> tuple[FileNode, bool]:
        """The version to open at ``node.path`` (``node``, or the one already open there) and
        whether the kernel may keep the file's cached pages. Pair with ``release``."""
        with self._lock:
            held = self._open.get(node.path)
            if held is not None:
                held.handles += 1
                return held.node, True
            keep = self._last_opened.get(node.path) == version(node)
            self._last_opened[node.path] = version(node)
            self._open[node.path] = _Held(node, 1)
            return node, keep

    def release(self, node: FileNode) -> None:
        with self._lock:
            held = self._open.get(node.path)
            if held is None:
                return
            held.handles -= 1
            if held.handles <= 0:
                del self._open[node.path]

    def open_paths(self) -> int:
        with self._lock:
            return len(self._open)
