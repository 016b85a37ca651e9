"""The layout of a cache folder: persistent blocks, and per-mount spill folders removed at the end.

Why: ``--cache-dir`` used to hold only decoded arrays spilled by one mount (a temporary folder by
default, removed at unmount). It now also holds the persistent block tier (``disk.py``), which
several mounts share and which outlives them, so the two uses get their own places:

* ``<folder>/blocks/``: the ``DiskBlockStore`` (kept across mounts);
* ``<folder>/metadata/``: the ``MetadataStore`` of HEAD answers (kept across mounts; without a
  named folder it lives in the user's cache folder, ``metadata.default_folder``, since it is small);
* ``<folder>/spill-<pid>-<random>/``: this mount's decoded arrays, removed when it closes; one left
  by a daemon that died (its pid is gone) is removed by the next mount that opens the folder.

With no folder named, a temporary folder is made for the spills and removed at the end, and there
is no disk block tier (nothing would outlive the mount to share).

A named folder must be private (``private.py``): it and every folder above it belong to the user or
root and others cannot write to it (sticky folders such as ``/tmp`` excepted above it); missing levels
are made 0700. Otherwise it is refused with one line saying why and what to do
(``UnsafeCacheFolder``). Its ``blocks``, ``metadata`` and spill folders are 0700, files 0600.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .disk import DiskBlockStore
from .metadata import MetadataStore, default_folder, enabled_by_environment
from .private import UnsafeCacheFolder, private_folder, private_subfolder

log = logging.getLogger(__name__)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: signalling it is refused, not failed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CacheFolder:
    def __init__(self, folder: str | os.PathLike[str] | None):
        self.persistent = folder is not None
        try:
            if folder is None:
                self.root = Path(tempfile.mkdtemp(prefix="ccfs-cache-"))
                self.spill_dir = self.root
            else:
                self.root = private_folder(folder)
                self._remove_dead_spills()
                self.spill_dir = Path(tempfile.mkdtemp(prefix=f"spill-{os.getpid()}-", dir=self.root))
        except UnsafeCacheFolder:
            raise  # its one line says which folder, why, and what to do
        except OSError as exc:
            raise OSError(exc.errno, f"cannot use the cache folder {folder}: {exc.strerror or exc}") from exc
        self.blocks: DiskBlockStore | None = None

    def open_blocks(self, limit: int, reserved: Callable[[], int] | None = None,
                    queue_bytes: int = 32 * 2**20) -> DiskBlockStore | None:
        """The shared block tier under a named folder (None for a temporary one)."""
        if self.persistent and self.blocks is None:
            try:
                self.blocks = DiskBlockStore(private_subfolder(self.root, "blocks"), limit, reserved, queue_bytes)
            except UnsafeCacheFolder:
                raise
            except (OSError, sqlite3.Error) as exc:
                raise OSError(getattr(exc, "errno", None), f"cannot use the cache folder {self.root}: {exc}") from exc
        return self.blocks

    def open_metadata(self, limit: int) -> MetadataStore | None:
        """The shared shelf of HEAD answers (``<folder>/metadata``, else the user's cache folder);
        ``None``, with one warning, when it cannot be used: the mount then HEADs as before."""
        folder = self.root / "metadata" if self.persistent else default_folder()
        if not enabled_by_environment():
            return None
        try:
            if self.persistent:
                private_subfolder(self.root, "metadata")
            return MetadataStore(folder, limit)
        except (OSError, sqlite3.Error) as exc:
            log.warning("metadata cache: cannot use %s (%s); HEAD answers are not kept", folder, exc)
            return None

    def _remove_dead_spills(self) -> None:
        for entry in os.scandir(self.root):
            if not entry.name.startswith("spill-") or entry.name.count("-") < 2:
                continue
            pid = entry.name.split("-")[1]
            if entry.is_dir(follow_symlinks=False) and pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)

    def close(self, timeout: float | None = None) -> bool:
        """Finish writing blocks (within ``timeout`` seconds, if given: False if that was not
        enough); remove this mount's spills (idempotent)."""
        done = True
        if self.blocks is not None:
            done = self.blocks.close(timeout)
        shutil.rmtree(self.spill_dir if self.persistent else self.root, ignore_errors=True)
        return done


#: seconds the library spends at interpreter exit writing blocks still queued
EXIT_DRAIN_SECONDS = 10.0
_shared: dict[str, DiskBlockStore] = {}
_shared_lock = threading.Lock()


def shared_blocks(folder: str | os.PathLike[str], limit: int) -> DiskBlockStore:
    """The block tier of a cache folder for the library's downloads: the ``blocks/`` a mount with
    ``--cache-dir`` of that folder uses, one store per folder per process, written out at exit."""
    root = Path(os.path.abspath(os.fspath(folder)))
    with _shared_lock:
        store = _shared.get(str(root))
        if store is None:
            try:
                store = DiskBlockStore(private_subfolder(private_folder(root), "blocks"), limit)
            except UnsafeCacheFolder:
                raise
            except (OSError, sqlite3.Error) as exc:
                raise OSError(getattr(exc, "errno", None), f"cannot use the cache folder {root}: {exc}") from exc
            if not _shared:
                atexit.register(_close_shared)
            _shared[str(root)] = store
        return store


def _close_shared() -> None:
    with _shared_lock:
        stores = list(_shared.values())
        _shared.clear()
    for store in stores:
        store.close(timeout=EXIT_DRAIN_SECONDS)
