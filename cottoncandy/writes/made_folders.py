"""Folders made with ``mkdir`` through a ``--rw`` mount that hold nothing yet.

Why: S3 has no folders, only keys with a common prefix, so an empty folder cannot be stored without
inventing a marker object other tools would show as a file. ``mkdir x`` followed by ``np.save('x/a.npy')``
must still work, so the folder lives in the mount (this set) until a file lands in it; then the store's
keys show it and it leaves this set. ``rm`` of a folder's last file keeps the folder here too, so the
``rmdir`` that ``rm -r`` sends next finds it, as on a disk.

Invariants: paths are relative to the mount root, without leading or trailing ``/``; the root is
never in the set; a path's parent is always shown (made here or in the store) when it is added.
The set is this mount's alone: another mount, or the library, does not see an empty folder.
"""

from __future__ import annotations

import threading


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


class MadeFolders:
    """Empty folders this mount shows (see the module). Thread-safe."""

    def __init__(self) -> None:
        self._paths: set[str] = set()
        self._lock = threading.Lock()

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return isinstance(path, str) and path.strip("/") in self._paths

    def add(self, path: str) -> None:
        path = path.strip("/")
        if path:
            with self._lock:
                self._paths.add(path)

    def discard(self, path: str) -> None:
        with self._lock:
            self._paths.discard(path.strip("/"))

    def names_in(self, folder: str) -> list[str]:
        """Names of the made folders directly in ``folder`` (for ``readdir``), sorted."""
        folder = folder.strip("/")
        with self._lock:
            return sorted(p.rpartition("/")[2] for p in self._paths if parent_of(p) == folder)

    def under(self, folder: str) -> list[str]:
        """Made folders inside ``folder`` at any depth."""
        folder = folder.strip("/")
        with self._lock:
            return sorted(p for p in self._paths if p.startswith(folder + "/"))

    def landed(self, path: str) -> None:
        """A file was stored at ``path``: its folders are in the store now, so they leave the set."""
        parts = path.strip("/").split("/")[:-1]
        with self._lock:
            for i in range(1, len(parts) + 1):
                self._paths.discard("/".join(parts[:i]))

    def move(self, old: str, new: str) -> None:
        """``rename`` of a made folder: it and the made folders inside it move to ``new``."""
        old, new = old.strip("/"), new.strip("/")
        with self._lock:
            moved = {p for p in self._paths if p == old or p.startswith(old + "/")}
            self._paths -= moved
            self._paths |= {new + p[len(old):] for p in moved}
