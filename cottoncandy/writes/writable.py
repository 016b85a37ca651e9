"""The writable seam (``ccfs mount --rw``): each path open for writing is one ``OpenFile`` holding one
``FileKind``; each open of it is a ``FileHandle`` (what the mount's file handle number names).

Dispatch, per handle, per WRITE: the file's kind takes the WRITE if it ``accepts`` it. A file starts
as a ``streaming.StreamingFile`` (create, or ``O_TRUNC``/empty rewrite of an existing file); a WRITE
or truncate it does not accept (not at its end), and an open of an existing non-empty file that is
not a plain rewrite (``O_RDWR``, ``O_APPEND``, ``O_WRONLY`` without ``O_TRUNC``), go to the staged kind.

WHERE THE STAGED KIND PLUGS IN (issue 26 item 3): pass ``staging=`` to ``StoreWriter`` an object
implementing ``kinds.Staging``:

- ``Staging.start(target, existing_node, flags) -> FileKind``: called by ``StoreWriter.open`` for an
  open of an existing object that is not a plain rewrite (see ``plain_rewrite``);
- ``Staging.adopt(stream) -> FileKind``: called by ``StoreWriter._switch`` when a streaming file gets
  a WRITE (or truncate) it does not accept; ``stream.held()`` is every byte written so far while none
  has been uploaded (``None`` after the first part went out);
- the returned kind implements ``kinds.FileKind``: its ``flush``/``fsync``/``release`` return the
  ``ObjectInfo`` stored (the seam tells the namespace, ``Namespace.stored``) or ``None``, and raise the
  store's refusal. The staged kind decides its own commit points (``fsync``, last ``release``).

``ccfs/filesystem.py`` builds ``StoreWriter(store, namespace, settings)``: give it the staging object
there. Until one is given, each such request fails with ``EOPNOTSUPP`` and one log line, and the file
is left as it was (nothing is ever stored out of order). A short ``.npy`` (``open_memmap``'s header,
close, reopen) is given up at its last release by the streaming kind; a staging object that wants to
keep it for the reopen adopts it before (``pending`` files are looked up by path).

A streamed file stored at a commit point (a FLUSH when one copy of a shared descriptor is closed:
``{ cmd1; cmd2; } > f``; an ``fsync``) that then gets another WRITE or truncate carries on as a staged
overwrite of the version it stored, committed at the next FLUSH, fsync or last RELEASE with
``If-Match`` of that version (``continued``): every byte written through the descriptor is stored.

``unlink``, ``rename``, ``mkdir``, ``rmdir`` (issue 26 item 6) go to ``tree_changes.TreeChanges``, which
tells the namespace with ``stored``/``removed``; a rename of a file open here calls back ``retarget``,
and a folder rename ``_folder_moved`` for the files open under it: the open file follows its name
(``moves``: later commits go to the new name with its condition, what is stored for it is moved at
once, an upload under way is moved when it completes). Folders made with ``mkdir`` and still empty are
shown through ``folder``/``folders_in`` until a file lands in them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator

from .. import waits
from ..namespace.facade import Namespace
from ..namespace.nodes import FileNode, FolderNode
from ..storage.base import MAX_OBJECT_SIZE, ObjectInfo, ObjectStore
from . import moves, recovery
from .continued import ContinuedFile, continued
from .kinds import FileKind, Staging, Target
from .memory import WriteMemory
from .replaced import drop_replaced, replaced_version
from .seam import Lookup, WriteHandle
from .settings import WriteSettings
from .streaming import StreamingFile
from .tree_changes import Refused, TreeChanges

log = logging.getLogger("cottoncandy.writes")

#: errnos a refusal keeps as the store said them; any other failure is EIO
KEPT_ERRNOS = frozenset({errno.EACCES, errno.ENOSPC, errno.EDQUOT, errno.ESTALE, errno.EEXIST, errno.ENOMEM,
                         errno.EFBIG, errno.EOPNOTSUPP, errno.EINTR})


class AlreadySaid(OSError):
    """A failure whose log line was written already (the same refusal raised again at a later
    ``close()`` of the same file): the face logs it at DEBUG, so each failure is one line."""


def refusal(exc: BaseException, key: str) -> OSError:
    """The error a program sees for a store's refusal of ``key``: EACCES, ENOSPC, ESTALE, EEXIST...
    as the store said, anything else EIO; the message names the key (one log line: ``ccfs.errors``)."""
    code = errno.EIO
    if isinstance(exc, PermissionError):
        code = errno.EACCES
    elif isinstance(exc, FileExistsError):
        code = errno.EEXIST
    elif isinstance(exc, OSError) and exc.errno in KEPT_ERRNOS:
        code = int(exc.errno)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return OSError(code, f"{key}: not stored: {reason}")


@contextlib.contextmanager
def said_once() -> Iterator[None]:
    """A refusal ``tree_changes`` logged already reaches the face as ``AlreadySaid`` (one log line)."""
    try:
        yield
    except Refused as exc:
        raise AlreadySaid(exc.errno, exc.strerror) from exc


def _touches(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder``, lies in it, or holds it."""
    return path == folder or path.startswith(folder + "/") or folder.startswith(path + "/") or not path or not folder


def plain_rewrite(flags: int, node: FileNode) -> bool:
    """Whether an open of the existing ``node`` rewrites it from its first byte (streamable)."""
    if flags & os.O_TRUNC:
        return True
    return node.size == 0 and not flags & os.O_RDWR


class OpenFile:
    """One path being written: its kind, how many handles have it open, the lock its calls take."""

    def __init__(self, path: str, kind: FileKind):
        self.path = path
        self.kind = kind
        self.handles = 0
        self.lock = threading.Lock()
        #: the failure already reported (logged once; raised again as ``AlreadySaid``)
        self.said: BaseException | None = None
        #: set when its last release began storing it: an open meanwhile waits for it (``closed``)
        self.closing: threading.Event | None = None


class FileHandle:
    """A write handle (``seam.WriteHandle``): one open of an ``OpenFile``."""

    def __init__(self, file: OpenFile):
        self.file = file
        self.path = file.path

    @property
    def key(self) -> str:
        return self.file.kind.key

    @property
    def size(self) -> int:
        return self.file.kind.size

    def read(self, size: int, offset: int) -> bytes:
        with self.file.lock:
            return self.file.kind.read(size, offset)


def opened(handle: WriteHandle) -> OpenFile:
    """The open file of one of this writer's handles."""
    if not isinstance(handle, FileHandle):
        raise OSError(errno.EBADF, f"{handle.path}: not a handle of this mount's writer")
    return handle.file


class StoreWriter:
    """The writer of a ``--rw`` mount (see the module)."""

    writable = True

    def __init__(self, store: ObjectStore, namespace: Namespace, settings: WriteSettings,
                 staging: Staging | None = None):
        self.store = store
        self.namespace = namespace
        self.settings = settings
        self.staging = staging
        self.memory = WriteMemory(settings.memory, settings.memory_wait)
        self._files: dict[str, OpenFile] = {}
        self._lock = threading.RLock()  # open takes it, then _handle again (a second open of a file)
        #: folder renames under way with files open inside (``rename``): (old folder, new folder, thread)
        self._moving: list[tuple[str, str, int]] = []
        self._moves_done = threading.Condition(self._lock)
        #: paths whose commit at the last release was refused, and the refusal (``release_refusal``)
        self._release_refusals: dict[str, OSError] = {}
        self.names = TreeChanges(store, namespace, settings, retarget=self.retarget, folder_moved=self._folder_moved)
        #: what earlier daemons left is aborted; this mount's uploads are recorded (``recovery``)
        self.journal = recovery.open_journal(store, settings.journal_folder)
        #: which conditions the store honours (``None``: --last-writer-wins), said once at mount time
        self.conditions = recovery.say_conditions(store, settings.last_writer_wins)
        #: staged files an earlier unmount kept (its commit refused or cut short) are stored now
        recovery.recover(store, namespace, staging, not settings.last_writer_wins, self._stored)

    # --- opening -------------------------------------------------------------------------------
    def _stream(self, target: Target) -> StreamingFile:
        return StreamingFile(self.store, target, self.settings, self.memory)

    @contextlib.contextmanager
    def _unmoved(self, *paths: str) -> Iterator[None]:
        """The writer's lock, taken once no other thread's folder rename touches ``paths`` (one of them in
        the folder or its new name, or holding it). Why: such a rename holds its open files' locks across
        its copies without the writer's lock, then takes the writer's lock to publish the files' new
        names (``rename``); whoever would wait for one of those files' locks, or change which files are
        open there, while holding the writer's lock waits here instead, holding nothing. Every other
        path goes on at once: one folder's copies never stall the rest of the mount."""
        me = threading.get_ident()
        with self._lock:
            while any(owner != me and any(_touches(path, folder) for path in paths for folder in (old, new))
                      for old, new, owner in self._moving):
                waits.wait(self._moves_done)
            yield

    def _handle(self, path: str, make: Callable[[], FileKind]) -> FileHandle:
        with self._unmoved(path):
            file = self._files.get(path)
            if file is None or file.closing is not None:  # a file being stored by its last release: a new one
                file = self._files[path] = OpenFile(path, make())
            file.handles += 1
        return FileHandle(file)

    def _settled(self, path: str) -> OpenFile | None:
        """The open file at ``path`` to join, or ``None``; a file whose last release is storing it is
        waited for first (a RELEASE is sent in the background: ``dd`` has exited and the next command
        opens the file while its store is under way), so the open sees the version stored. The wait
        is given up as the request says (``waits``: an interrupted ``stat``, the mount stopping)."""
        while True:
            with self._lock:
                file = self._files.get(path)
                if file is None or file.closing is None:
                    return file
                closing = file.closing
            waits.happened(closing)

    def create(self, path: str, flags: int) -> FileHandle:
        path = path.strip("/")
        bytes_key, array_key = self.namespace.written(path)
        self.namespace.check_untaken(path)  # x: the key of the array shown as x.npy
        target = Target(path, bytes_key, array_key, conditional=not self.settings.last_writer_wins)
        return self._handle(path, lambda: self._stream(target))

    def open(self, path: str, flags: int, lookup: Lookup) -> FileHandle:
        path = path.strip("/")
        while (file := self._settled(path)) is not None:  # another open of a file being written: the same file
            with self._lock:
                if self._files.get(path) is file and file.closing is None:
                    file.handles += 1
                    return FileHandle(file)
        node = lookup(path)
        if isinstance(node, FolderNode):
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder")
        # an array stays an array (or becomes its bytes under the file's name); an object stays bytes
        bytes_key, _ = self.namespace.written(path)
        conditional = not self.settings.last_writer_wins
        target = Target(path, bytes_key, node.key, node.info, conditional) if node.is_array else \
            Target(path, node.key, None, node.info, conditional)
        if plain_rewrite(flags, node):
            return self._handle(path, lambda: self._stream(target))
        if self.staging is None:
            raise self._unsupported(node.key, "opening an existing file to change it in place (O_RDWR, "
                                              "O_APPEND, or no O_TRUNC)")
        staging = self.staging
        return self._handle(path, lambda: staging.start(target, node, flags))

    def pending(self, path: str) -> FileHandle | None:
        file = self._settled(path.strip("/"))  # one being stored by its last release: its stored version
        return FileHandle(file) if file is not None else None

    # --- data ----------------------------------------------------------------------------------
    def write(self, handle: WriteHandle, offset: int, data: bytes) -> int:
        file = opened(handle)
        with file.lock:
            self._storable_size(file, offset + len(data), f"a write of {len(data)} bytes at {offset}")
            if not file.kind.accepts(offset, len(data)):
                self._switch(file, f"a write at {offset} (the file has {file.kind.size} bytes)")
            try:
                return file.kind.write(offset, data)
            except OSError as exc:
                error = refusal(exc, self.store.describe(file.kind.key))
                if exc is file.said:
                    raise AlreadySaid(error.errno, error.strerror) from exc
                file.said = exc
                raise error from exc

    def truncate(self, path: str, length: int, handle: WriteHandle | None) -> None:
        file = opened(handle) if handle is not None else self._files.get(path.strip("/"))
        if file is None:  # named by its path: which key a path not open stands for is not looked up here
            raise self._unsupported(path.strip("/"), f"truncating a file not open for writing to {length} bytes")
        with file.lock:
            if length == file.kind.size:
                return
            self._storable_size(file, length, "a truncate")
            if not file.kind.can_truncate(length):
                self._switch(file, f"a truncate to {length} bytes (the file has {file.kind.size})")
            file.kind.truncate(length)

    def _storable_size(self, file: OpenFile, size: int, what: str) -> None:
        """``EFBIG`` naming the file when ``what`` would make it larger than S3 stores, before any byte
        is taken: a sparse staged file holds such a hole for nothing, and its commit would send
        terabytes of zeros (in parts of hundreds of MiB, several at once) to be refused at the end."""
        if size > MAX_OBJECT_SIZE:
            raise OSError(errno.EFBIG, f"{self.store.describe(file.kind.key)}: {what} would make the file "
                                       f"{size} bytes; S3 objects hold at most 5 TiB")

    def _switch(self, file: OpenFile, what: str) -> None:
        """The file's kind refused a request: the staged kind takes the file over, or EOPNOTSUPP. A
        streamed file already stored at a commit point (a FLUSH from the close of one copy of a shared
        descriptor, an fsync) carries on as a staged overwrite of that version (``continued``)."""
        if self.staging is None:
            raise self._unsupported(file.kind.key, what)
        kind = file.kind
        if isinstance(kind, StreamingFile) and kind.stored is not None and kind.failure is None:
            spec = kind.spec if kind.key == kind.target.array_key else None
            file.kind = continued(self.staging, kind.target, kind.stored, spec, kind.header_length, kind.size,
                                  self.store.describe(kind.key))
            return
        file.kind = self.staging.adopt(kind)

    def _unsupported(self, key: str, what: str) -> OSError:
        log.warning("%s: %s is not supported yet (only files written from start to end are); nothing "
                    "was changed", self.store.describe(key), what)
        return OSError(errno.EOPNOTSUPP, f"{key}: {what} is not supported yet")

    # --- commit points -------------------------------------------------------------------------
    def flush(self, handle: WriteHandle) -> None:
        self._commit(opened(handle), "flush")

    def fsync(self, handle: WriteHandle, datasync: bool) -> None:
        self._commit(opened(handle), "fsync")

    def release(self, handle: WriteHandle) -> None:
        file = opened(handle)
        with self._unmoved(file.path):
            file.handles -= 1
            last = file.handles <= 0
            if last and self.staging is not None:  # a short .npy stays, staged, for its reopen (open_memmap)
                with file.lock:
                    kept = self.staging.keep(file.kind)
                if kept is not None:
                    file.kind = kept
                    return
            closing = file.closing = threading.Event() if last else None  # an open meanwhile waits for it
        if closing is not None:
            try:
                self._commit(file, "release")
            except OSError as exc:  # no program hears a RELEASE's answer: its next open or stat does
                self._release_refusals[file.path] = exc
                raise
            finally:
                with self._lock:
                    if self._files.get(file.path) is file:
                        del self._files[file.path]
                closing.set()

    def release_refusal(self, path: str) -> OSError | None:
        """The refusal of ``path``'s commit at its last release, told once (``seam.Writer``)."""
        return self._release_refusals.pop(path.strip("/"), None) if self._release_refusals else None

    def _commit(self, file: OpenFile, point: str) -> None:
        with file.lock:
            kind = file.kind
            replaced = replaced_version(kind)  # the version this commit replaces (one object per path)
            try:
                info = kind.flush() if point == "flush" else kind.fsync() if point == "fsync" else kind.release()
                if info is not None and info.key != kind.key:  # renamed while its upload was under way
                    info = self._moved_after_upload(file, info)
            except OSError as exc:
                error = refusal(exc, self.store.describe(kind.key))
                if exc is file.said:
                    raise AlreadySaid(error.errno, error.strerror) from exc
                file.said = exc
                raise error from exc
        if info is not None:
            self._stored(info)
            drop_replaced(self.store, self.namespace, kind, replaced, info)  # stored under the path's other key
            self.names.folders.landed(file.path)  # a folder made here is in the store now

    def _stored(self, info: ObjectInfo) -> None:
        """The namespace learns the new object at once (listings, attributes: no HEAD, no LIST)."""
        if info.last_modified is None:
            info = ObjectInfo(key=info.key, size=info.size, etag=info.etag, metadata=info.metadata,
                              last_modified=datetime.datetime.now(datetime.timezone.utc), owner=info.owner)
        self.namespace.stored(info.key, info)

    # --- names (``tree_changes``) ----------------------------------------------------------------
    def unlink(self, path: str) -> None:
        if self.pending(path) is not None:
            raise OSError(errno.EBUSY, f"{path} is open for writing: close it before removing it")
        with said_once():
            self.names.unlink(path)

    def rename(self, old: str, new: str) -> None:
        """``TreeChanges.rename``. The files open for writing under a folder being renamed take no
        commit until it is done (their locks held), so each is copied once and then follows it.

        Lock order, so that one folder's copies never hold up the rest of the mount: the files open
        under the folder are decided under the writer's lock, and the rename is registered there
        (``_moving``: opens, last releases and renames touching either folder wait for it, see
        ``_unmoved``); their locks are then taken and the copies and deletes made without the
        writer's lock; ``_folder_moved`` takes it again to publish the files' new names."""
        old, new = old.strip("/"), new.strip("/")
        inside = old + "/"
        with self._unmoved(old, new):
            files = [file for path, file in sorted(self._files.items()) if path.startswith(inside)]
            move = (old, new, threading.get_ident())
            if files:
                self._moving.append(move)
        if not files:
            with said_once():
                self.names.rename(old, new)
            return
        try:
            with contextlib.ExitStack() as held:
                for file in files:  # a commit under way ends first; none starts until the rename is done
                    held.enter_context(file.lock)
                for file in files:  # each follows the folder's copy of its version: it must still be there
                    version = moves.shown_version(file.kind)
                    if version is not None:
                        self._still_there(version)
                with said_once():
                    self.names.rename(old, new)
        finally:
            with self._lock:
                self._moving.remove(move)
                self._moves_done.notify_all()

    def mkdir(self, path: str) -> None:
        self.names.mkdir(path)

    def rmdir(self, path: str) -> None:
        with said_once():
            self.names.rmdir(path)

    def folder(self, path: str) -> bool:
        """Whether ``path`` is a folder made here that the store does not show yet."""
        return path.strip("/") in self.names.folders

    def folders_in(self, path: str) -> list[str]:
        """Names of the folders made here, directly in ``path``, that the store may not show yet."""
        return self.names.folders.names_in(path)

    def retarget(self, old: str, new: str) -> bool:
        """``TreeChanges``' hook: the file open for writing at ``old`` follows its name to ``new``
        (``moves``): retargeted, and what is stored for it moved now (or, for an upload under way,
        when it completes); False when no file is open at ``old``. ``EBUSY`` when ``new`` is open for
        writing too; the move's refusal (``EEXIST``/``ESTALE``: another writer's object at ``new``)
        leaves the file where it was."""
        old, new = old.strip("/"), new.strip("/")
        self._settled(old)  # a file its last release is storing is a stored object by the time it is renamed
        with self._unmoved(old, new):  # the file is claimed under its new name; its move runs without the writer's lock
            file = self._files.get(old)
            if file is None:
                return False
            if new in self._files:
                raise OSError(errno.EBUSY, f"{new} is open for writing too")
            file.lock.acquire()
            self._files[new] = self._files.pop(old)
        try:
            self._follow(file, new)
        except BaseException:
            file.lock.release()
            with self._lock:  # refused (another writer's object at new): the file stays where it was
                if self._files.get(new) is file and old not in self._files:
                    self._files[old] = self._files.pop(new)
            raise
        file.lock.release()
        return True

    def _shown_at(self, path: str) -> FileNode | None:
        """What the mount shows at ``path`` (a file; ``EISDIR`` for a folder), or ``None``."""
        try:
            shown = self.namespace.lookup(path)
        except FileNotFoundError:
            return None
        if isinstance(shown, FolderNode):
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder")
        return shown

    def _follow(self, file: OpenFile, new: str) -> None:
        """``file`` (its lock held) renamed ``new``: retargeted, its stored version moved (``moves``)."""
        kind = file.kind
        bytes_key, array_key = self.namespace.written(new)
        if isinstance(kind, StreamingFile) and kind.stored is not None and kind.failure is None:
            self._follow_closed(file, kind, new, bytes_key, array_key)
            return
        shown = self._shown_at(new)
        target = moves.retargeted(kind, new, bytes_key, array_key, shown.info if shown is not None else None)
        version = moves.shown_version(kind)
        moved = None
        if version is not None:
            dst = target.array_key if target.array_key is not None and moves.is_array(kind, version) \
                else target.bytes_key
            if shown is not None and shown.key not in (dst, version.key):
                raise FileExistsError(errno.EEXIST, f"{new} is shown for the object {shown.key}; remove it first")
            if dst != version.key:
                self._still_there(version)
            moved = version if dst == version.key else self.names.move(
                version.key, dst, target.condition(dst), what=f"renaming {file.path} (open for writing) to {new}",
                source_etag=version.etag or None)
            target = dataclasses.replace(target, seen=moved)
        moves.rebase(kind, target, moved)
        file.path = new
        log.info("%s: renamed %s while open for writing%s", self.store.describe(kind.key), new,
                 "; its upload moves there when it completes" if moves.in_flight(kind) else "")

    def _still_there(self, version: ObjectInfo) -> None:
        """``ESTALE`` unless ``version`` is still the object under its key: the file stands on its bytes
        (a staged file copies its unchanged stretches from the moved copy), so moving another writer's
        newer version in its place would store a mix of the two. (The copy is pinned to the version too,
        ``ObjectStore.copy``'s source ETag; this HEAD refuses before anything is sent.)"""
        current = self.store.head(version.key)
        if current.etag.strip('"') != version.etag.strip('"'):  # logged once by the face, as other refusals
            raise OSError(errno.ESTALE, f"{self.store.describe(version.key)} was replaced since it was opened")

    def _follow_closed(self, file: OpenFile, kind: StreamingFile, new: str, bytes_key: str,
                       array_key: str | None) -> None:
        """A streamed file stored at its FLUSH whose RELEASE is still to come (closed, then renamed:
        zarr's ``.partial``, rsync's temporary) is renamed as the stored file it is (``rename_file``:
        a plain ``.npy`` stored as bytes becomes the raw array); a write after it continues the copy."""
        node = self.namespace.lookup(file.path)
        if not isinstance(node, FileNode):
            raise IsADirectoryError(errno.EISDIR, f"{file.path} is a folder")
        stored = kind.stored
        assert stored is not None
        info = self.names.rename_file(node, new) or stored
        kind.target = Target(new, bytes_key, array_key, info, kind.target.conditional)
        if info is not stored and info.key == array_key and kind.spec is None:  # bytes, now the raw array
            shown = self._shown_at(new)
            if shown is not None and shown.spec is not None:
                kind.spec, kind.header_length = shown.spec, len(shown.header)
        kind.stored = info
        file.path = new

    def _moved_after_upload(self, file: OpenFile, info: ObjectInfo) -> ObjectInfo:
        """A file renamed while its upload was under way (its key could not change) is stored under the
        old key: moved now to the key it has (the new name's condition), the old key deleted."""
        kind = file.kind
        moved = self.names.move(info.key, kind.key, kind.target.condition(kind.key),
                                what=f"moving {file.path}, renamed while it was uploaded, to its name",
                                source_etag=info.etag or None)
        moves.rebase(kind, dataclasses.replace(kind.target, seen=moved), moved)
        return moved

    def _folder_moved(self, old: str, new: str, copies: dict[str, str]) -> None:
        """``TreeChanges``' hook after the folder ``old`` was renamed ``new`` (each old key -> its copy):
        the files open under it follow (their locks held by ``rename``, which keeps any other file from
        opening there meanwhile); a stored version is the copy. The copies' HEADs are asked without the
        writer's lock; the new names are published under it."""
        inside = old + "/"
        with self._lock:
            files = [(path, file) for path, file in sorted(self._files.items()) if path.startswith(inside)]
        moved: dict[str, ObjectInfo | None] = {}
        for path, file in files:
            version = moves.shown_version(file.kind)
            copy = copies.get(version.key) if version is not None else None
            moved[path] = self.store.head(copy) if copy is not None else None
        with self._lock:
            for path, file in files:
                kind, moved_path = file.kind, new + "/" + path[len(inside):]
                if self._files.get(path) is not file:
                    continue
                if moved_path in self._files:
                    log.warning("%s: open for writing under the renamed folder %s, but %s is open for writing "
                                "too: it stays under its old name", path, old, moved_path)
                    continue
                bytes_key, array_key = self.namespace.written(moved_path)
                info = moved[path]
                moves.rebase(kind, moves.retargeted(kind, moved_path, bytes_key, array_key, info), info)
                file.path = moved_path
                self._files[moved_path] = self._files.pop(path)

    def close(self) -> None:
        """The mount ends: staged files still open with changes are stored, or kept under --cache-dir
        for the next mount; the others are given up, no object, no orphan upload (``recovery.settle``)."""
        with self._lock:
            files, self._files = list(self._files.values()), {}
        kinds = [file.kind.inner if isinstance(file.kind, ContinuedFile) else file.kind for file in files]
        recovery.settle(self.store, kinds, self.staging, self.settings.journal_folder is not None, self._stored)
        if self.staging is not None:
            self.staging.close()
        if self.journal is not None:
            self.store.record_uploads(None)
            self.journal.close()
