"""``rename``, ``unlink``, ``mkdir`` and ``rmdir`` of a ``--rw`` mount (issue 26 item 6): the changes to
the tree that are not a file's bytes. ``writable.StoreWriter`` hands those four calls here.

What each does (docs/SEMANTICS.md, "Writes"):

- **rename of a file open for writing on this mount**: the writer retargets it (``Retarget``, given by
  the writer: ``StoreWriter.retarget(old, new) -> bool``; ``writes.moves`` has the rule): its later
  commits go to the new name, and what is stored for it already is moved with ``move`` (no copy at
  all for a file not stored yet, zarr's ``.partial`` then rename).
- **rename of a stored file** (just written by this mount, or any other): one server-side copy that
  keeps the object's metadata (``ObjectStore.copy``: S3's ``MetadataDirective=COPY``), then a delete of
  the old key only. A raw array ``a.npy`` renamed ``b.npy`` is the raw array ``b`` (the reverse naming
  rule, ``Namespace.written``); an object holding exactly a plain ``.npy`` renamed to ``b.npy`` (rsync's
  ``.b.npy.XXXXXX`` then rename) becomes the raw array ``b`` too, as ``cp`` to that name would store it:
  one server-side copy of the bytes after its header, with cottoncandy's metadata; every other object
  keeps its bytes under the new name as it is. One rule behind all three: **a rename keeps the bytes
  the mount shows** (what ``open(old).read()`` gave, ``open(new).read()`` gives). So a raw array
  renamed to a name that is not ``.npy`` is stored as its ``.npy`` bytes (``npy_bytes_of``): the header
  the mount shows joined with the body's first 5 MiB (fetched: S3's parts but the last are at least
  5 MiB) and the rest copied server-side, the user's metadata kept and the array's description dropped.
  A compressed raw array renamed so is ``EXDEV`` (one log line): its ``.npy`` bytes are the decoded
  array, which no server-side copy makes, so ``mv`` (and ``shutil.move``) copy it through the mount --
  decoded as read, streamed as written, with progress and interruptible -- and then remove the old
  name, instead of one ``rename`` call decoding and uploading a whole array while it blocks.
- **rename of a folder**: every object under it copied (server-side, ``RENAME_COPIES_AT_ONCE`` at once),
  then the old keys deleted, when there are at
  most ``rename_folder_limit`` of them (``WriteSettings``); beyond that ``EXDEV`` and one log line, before anything is
  copied, so ``mv`` falls back to copying file by file (visibly). A copy that fails removes the
  copies made and leaves every old key: nothing is half renamed. Files open for writing under it
  follow (``FolderMoved``, the writer's: told the old keys' copies once the old keys are gone).
- **unlink / rmdir**: only with ``allow_delete``, else ``EACCES`` and one log line; an exact-name
  delete of the one key shown (never a prefix, never a pattern: ``api_files.rm``'s rule). An empty
  folder made here (``made_folders``) is removed without asking the store, delete rights or not.
- **dask and sparse array folders** (a folder whose ``metadata.json`` is a chunked or sparse
  manifest: ``formats.dask``/``formats.sparse``) are removed whole or not at all: ``rmdir`` of the
  folder deletes its manifest and the objects directly in it (``ENOTEMPTY`` if it also holds
  sub-folders); ``unlink`` or ``rename`` of one of its files is ``EPERM`` (it would break the array).
  Renaming the whole folder is a folder rename (a moved dask array still reads: ``chunked.resolve_part``).
- **mkdir**: the folder lives in the mount only (``MadeFolders``) until a file lands in it.

Every change tells the namespace at once: ``stored(key, info)`` for a new key, ``removed(key)`` for a
gone one, ``refresh(path)`` for a folder renamed whole (its listings are asked again).

Invariant: no key is deleted that the user did not name -- the file's own key, the keys listed
under a folder being renamed (after their copies exist), or an array folder's own members.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from .. import waits
from ..formats.dask import MANIFEST, parse_manifest
from ..formats.keys import user_metadata
from ..formats.npy import NPY_HEADER_LIMIT, parse_npy_header
from ..formats.raw import ArraySpec, metadata_from_spec
from ..formats.sparse import parse_sparse_manifest
from ..namespace.nodes import FileNode, FolderNode, Node
from ..storage.base import MIN_COMPOSE_PIECE, CopiedRange, ObjectInfo, ObjectStore, Piece, delete_after_failure
from ..storage.conditions import CREATE, WriteCondition, lost_race, overwrite
from .commit import MAX_COPY_PIECE
from .made_folders import MadeFolders, parent_of
from .settings import WriteSettings

log = logging.getLogger("cottoncandy.writes")

#: server-side copies one folder rename keeps in flight (at most the store's ``concurrency``)
RENAME_COPIES_AT_ONCE = 8
#: the biggest ``metadata.json`` read to decide whether a folder is an array (manifests are small)
MAX_MANIFEST_PEEK = 1 << 20

#: the writer's hook: move the file open for writing at ``old`` to ``new``; False when none is open there
Retarget = Callable[[str, str], bool]
#: the writer's hook after a folder rename ``old`` -> ``new``: each old key -> the key of its copy
FolderMoved = Callable[[str, str, dict[str, str]], None]


class Refused(OSError):
    """A change this mount refuses by its rules (EXDEV, ENOTEMPTY...), its one log line written here."""


class RefusedPermission(Refused, PermissionError):
    """A change refused for want of ``--allow-delete`` (EACCES) or because it would break an array (EPERM)."""


class Tree(Protocol):
    """What this module needs of the namespace (``namespace.facade.Namespace``)."""

    def lookup(self, path: str) -> Node: ...

    def written(self, path: str) -> tuple[str, str | None]: ...

    def check_untaken(self, path: str) -> None: ...

    def stored(self, key: str, info: ObjectInfo) -> None: ...

    def removed(self, key: str) -> None: ...

    def refresh(self, path: str = "") -> None: ...


def copied_ranges(info: ObjectInfo, start: int) -> list[Piece]:
    """``info``'s bytes from ``start`` to its end as server-side copies, in pieces S3 allows
    (at most ``MAX_COPY_PIECE`` each; an empty remainder is one empty piece sent)."""
    if start >= info.size:
        return [b""]
    return [CopiedRange(info.key, a, min(info.size, a + MAX_COPY_PIECE), info.etag)
            for a in range(start, info.size, MAX_COPY_PIECE)]


def lost_race_in(future: Future[None]) -> bool:
    """Whether the copy ``future`` (settled) failed because another writer's object was at its new name."""
    if future.cancelled():
        return False
    exc = future.exception()
    return exc is not None and lost_race(exc)


def _no_retarget(old: str, new: str) -> bool:
    return False


def _no_open_files(old: str, new: str, copies: dict[str, str]) -> None:
    return None


class TreeChanges:
    """The four calls (see the module); ``retarget`` is the writer's (``Retarget``)."""

    def __init__(self, store: ObjectStore, tree: Tree, settings: WriteSettings | None = None,
                 retarget: Retarget = _no_retarget, folders: MadeFolders | None = None,
                 folder_moved: FolderMoved = _no_open_files):
        self.store = store
        self.tree = tree
        self.settings = settings or WriteSettings()
        self.retarget = retarget
        self.folder_moved = folder_moved
        self.folders = folders if folders is not None else MadeFolders()

    # --- lookups -------------------------------------------------------------------------------
    def _shown(self, path: str) -> Node | None:
        try:
            return self.tree.lookup(path)
        except FileNotFoundError:
            return None

    def _is_folder(self, path: str) -> bool:
        return not path or path in self.folders or isinstance(self._shown(path), FolderNode)

    def array_folder(self, path: str) -> bool:
        """Whether the folder at ``path`` is a dask or sparse array (its ``metadata.json`` parses as
        either manifest); one GET of a small file, answered by the namespace's lookup first."""
        node = self._shown(f"{path}/{MANIFEST}" if path else MANIFEST)
        if not isinstance(node, FileNode) or node.size > MAX_MANIFEST_PEEK:
            return False
        try:
            doc = json.loads(self.store.get(node.key))
        except (OSError, ValueError):
            return False
        for parse in (parse_manifest, parse_sparse_manifest):
            try:
                parse(doc, node.key)
                return True
            except (ValueError, TypeError, KeyError):
                continue
        return False

    def _member_of_array(self, path: str, doing: str) -> None:
        folder = parent_of(path)
        if folder and self.array_folder(folder):
            log.warning("%s: %s refused: it is part of the chunked or sparse array %s, which is removed or "
                        "renamed whole (rmdir or mv of the folder)", path, doing, folder)
            raise RefusedPermission(errno.EPERM, f"{path} is part of the array folder {folder}: {doing} it would "
                                                 "break the array; remove or rename the folder whole")

    def _refuse_delete(self, path: str, doing: str) -> OSError:
        log.warning("%s: %s refused: this mount was not given --allow-delete", path, doing)
        return RefusedPermission(errno.EACCES, f"{path}: {doing} needs a mount with --allow-delete")

    # --- mkdir / rmdir -------------------------------------------------------------------------
    def mkdir(self, path: str) -> None:
        path = path.strip("/")
        self.tree.written(path)  # a name whose key S3 cannot hold is refused now, not at its first file
        if self._shown(path) is not None or path in self.folders:
            raise FileExistsError(errno.EEXIST, f"{path} exists")
        if not self._is_folder(parent_of(path)):
            raise FileNotFoundError(errno.ENOENT, f"{parent_of(path)}: no such folder")
        self.folders.add(path)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        node = self._shown(path)
        if node is None:
            if path not in self.folders:
                raise FileNotFoundError(errno.ENOENT, f"{path}: no such folder")
            if self.folders.under(path):
                raise OSError(errno.ENOTEMPTY, f"{path} is not empty")
            self.folders.discard(path)  # made here, holding nothing: no request to the store
            return
        if not isinstance(node, FolderNode):
            raise NotADirectoryError(errno.ENOTDIR, f"{path} is not a folder")
        listing = self.store.list_dir(node.prefix)
        marker = [o.key for o in listing.objects if o.key == node.prefix]  # a console's 'folder/' object
        members = [o.key for o in listing.objects if o.key != node.prefix]
        if not members and not listing.prefixes and not marker:
            self.folders.discard(path)
            return
        whole = members and not listing.prefixes and self.array_folder(path)
        if (members or listing.prefixes) and not whole:
            raise OSError(errno.ENOTEMPTY, f"{path} is not empty")
        if not self.settings.allow_delete:
            raise self._refuse_delete(path, "removing the array folder" if whole else "removing the folder")
        keys = members + marker
        self.store.delete_many(keys)
        for key in keys:
            self.tree.removed(key)
        self.tree.refresh(path)
        self.folders.discard(path)
        log.info("%s: removed %d object(s)%s", path, len(keys), " (a whole array folder)" if whole else "")

    # --- unlink --------------------------------------------------------------------------------
    def unlink(self, path: str) -> None:
        path = path.strip("/")
        node = self.tree.lookup(path)
        if isinstance(node, FolderNode):
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder")
        if not self.settings.allow_delete:
            raise self._refuse_delete(path, "removing a file")
        self._member_of_array(path, "removing")
        self._delete_shown(node)
        self.tree.removed(node.key)
        if parent_of(path):
            self.folders.add(parent_of(path))  # rm of its last file leaves the folder, as on a disk

    def _delete_shown(self, node: FileNode) -> None:
        """``rm`` deletes exactly the key shown, and only at the version shown (``If-Match``, as a rename's
        delete of its old name): another writer's newer version stored since is kept and the ``rm`` is
        ``ESTALE``; ``--last-writer-wins`` deletes whatever is there. The path shows theirs once its
        attributes are asked again (``--attr-ttl``), not at once: the kernel retries an ``ESTALE`` unlink
        once, and that retry must meet the version refused, not delete theirs."""
        version = None if self.settings.last_writer_wins else node.info.etag or None
        if self.store.delete_versions({node.key: version}):
            raise OSError(errno.ESTALE, f"{self.store.describe(node.key)} was replaced by another writer since "
                                        "this mount showed it: not removed, their version is kept")

    # --- rename --------------------------------------------------------------------------------
    def rename(self, old: str, new: str) -> None:
        old, new = old.strip("/"), new.strip("/")
        if old == new:
            return
        self.tree.written(new)  # a name whose key S3 cannot hold is refused before anything is copied
        if not self._is_folder(parent_of(new)):
            raise FileNotFoundError(errno.ENOENT, f"{parent_of(new)}: no such folder")
        if old in self.folders and self._shown(old) is None:
            if self._shown(new) is not None:
                raise FileExistsError(errno.EEXIST, f"{new} exists")
            self.folders.move(old, new)
            return
        if not self._is_folder(old):  # a file's new key x may hold the array shown as x.npy
            self.tree.check_untaken(new)
        if self.retarget(old, new):  # being written: stored under the new name when it is stored
            self.folders.landed(new)
            return
        node = self.tree.lookup(old)
        if isinstance(node, FolderNode):
            self._rename_folder(old, node, new)
        else:
            self._member_of_array(old, "renaming")
            self.rename_file(node, new)
        self.folders.landed(new)

    def rename_file(self, node: FileNode, new: str) -> ObjectInfo | None:
        """The stored file ``node`` renamed ``new`` (the module): the info of its copy, ``None`` when
        the new name is its own key already (nothing to do)."""
        target = self._shown(new)
        if isinstance(target, FolderNode):
            raise IsADirectoryError(errno.EISDIR, f"{new} is a folder")
        bytes_key, array_key = self.tree.written(new)
        inside = self._npy_inside(node) if array_key is not None and not node.is_array else None
        dst = array_key if array_key is not None and (node.is_array or inside is not None) else bytes_key
        if isinstance(target, FileNode) and target.key not in (dst, node.key):
            raise FileExistsError(errno.EEXIST, f"{new} is shown for the object {target.key}; remove it first")
        if dst == node.key:
            return None
        # what the copy requires of dst (issue 26 item 5): the version shown there still there, or no object
        condition = self._condition(target if isinstance(target, FileNode) and target.key == dst else None)
        what = f"renaming {node.path} to {new}"
        if inside is not None:  # the bytes of a plain .npy, named NAME.npy now: the raw array NAME
            spec, header_length = inside
            self.store.compose(dst, copied_ranges(node.info, header_length), metadata_from_spec(spec),
                               condition=condition)
        elif node.is_array and dst != array_key:  # a raw array named as bytes now: its .npy bytes
            self.npy_bytes_of(node, dst, condition, what)
        else:
            return self.move(node.key, dst, condition, what=what, source_etag=node.info.etag or None)
        info = self.store.head(dst)
        self.tree.stored(dst, info)
        self._refuse_stale(self._delete_old({node.key: dst}, {node.key: node.info.etag or None}, what), what)
        return info

    def npy_bytes_of(self, node: FileNode, dst: str, condition: WriteCondition | None, what: str) -> None:
        """Store at ``dst`` the ``.npy`` bytes the mount shows for the raw array ``node`` (its header, then
        its body) in one write: the header and the body's first ``MIN_COMPOSE_PIECE`` bytes sent (one
        ranged GET pinned to the version shown), the rest copied server-side. ``EXDEV`` for a compressed
        body (the module says why)."""
        spec = node.spec
        assert spec is not None
        if spec.compression is not None:
            log.warning("%s: refused (EXDEV): %s is a %s-compressed array, whose .npy bytes are the decoded "
                        "array; mv copies it through the mount instead", what, self.store.describe(node.key),
                        spec.compression)
            raise Refused(errno.EXDEV, f"{what}: a compressed array keeps its .npy bytes under a name that is not "
                                       ".npy only as a copy (mv falls back to one)")
        first = min(node.info.size, MIN_COMPOSE_PIECE)
        head = node.header + self.store.get_range(node.key, 0, first, if_match=node.info.etag) if first else node.header
        rest = copied_ranges(node.info, first) if first < node.info.size else []
        self.store.compose(dst, [head, *rest], user_metadata(node.info.metadata), condition=condition)

    def move(self, src: str, dst: str, condition: WriteCondition | None, what: str,
             source_etag: str | None = None) -> ObjectInfo:
        """The object ``src`` moved to ``dst``: one server-side copy keeping its metadata (landing only
        where ``condition`` holds; of the version ``source_etag`` only, the one the mount showed, else
        ESTALE and nothing written), then an exact delete of ``src``; the namespace told of both. The
        copy's info is returned (same bytes; its ETag may differ from the source's)."""
        self._copy(src, dst, condition, source_etag)
        info = self.store.head(dst)
        self.tree.stored(dst, info)
        self._refuse_stale(self._delete_old({src: dst}, {src: source_etag}, what), what)
        return info

    def _condition(self, replaced: FileNode | None) -> WriteCondition | None:
        """A rename's copy lands only over the version shown at its new name (``If-Match``), or where
        nothing is (``If-None-Match: *``), so another writer's object there is never overwritten
        silently (EEXIST/ESTALE); none with ``--last-writer-wins``."""
        if self.settings.last_writer_wins:
            return None
        return overwrite(replaced.info.etag) if replaced is not None else CREATE

    def _copy(self, src: str, dst: str, condition: WriteCondition | None, source_etag: str | None) -> None:
        """``ObjectStore.copy`` with ``condition`` on ``dst`` and pinned to the version ``source_etag`` of
        ``src`` (another writer's newer version there is never copied in the user's name, nor lost)."""
        self.store.copy(src, dst, condition=condition, source_etag=source_etag)

    def _npy_inside(self, node: FileNode) -> tuple[ArraySpec, int] | None:
        """The array spec and header length when the object ``node`` holds exactly a plain ``.npy``
        (what ``cp`` of the file to a ``.npy`` name would have stored as a raw array), else ``None``.
        One ranged GET of its first bytes, pinned to the version shown."""
        if node.size < 10:
            return None
        head = self.store.get_range(node.key, 0, min(node.size, NPY_HEADER_LIMIT), if_match=node.info.etag)
        found = parse_npy_header(head)
        if found is None or found[1] + found[0].nbytes != node.size:
            return None
        return found

    def _rename_folder(self, old: str, node: FolderNode, new: str) -> None:
        if self._shown(new) is not None:
            raise FileExistsError(errno.EEXIST, f"{new} exists")
        prefix = self.tree.written(f"{new}/x")[0][:-1]  # the folder's keys start with its path's (reverse rule)
        limit = self.settings.rename_folder_limit
        keys: list[str] = []
        versions: dict[str, str | None] = {}  # each key -> the version listed: what is copied, and only that
        for info in self.store.iter_objects(node.prefix):
            keys.append(info.key)
            versions[info.key] = info.etag or None
            if len(keys) > limit:
                log.warning("%s: renaming a folder of more than %d objects is refused (EXDEV: mv copies it "
                            "file by file; --rename-folder-limit raises the limit)", old, limit)
                raise Refused(errno.EXDEV, f"{old} holds more than {limit} objects (--rename-folder-limit)")
        copied = [prefix + key[len(node.prefix):] for key in keys]
        self._copy_all(dict(zip(keys, copied)), self._condition(None), versions)  # each copy is a new name
        what = f"renaming the folder {old} to {new}"
        left = self._delete_old(dict(zip(keys, copied)), versions, what)
        self.folder_moved(old, new, dict(zip(keys, copied)))
        self.tree.refresh(new)
        self.tree.refresh(old)
        self.folders.move(old, new)
        self._refuse_stale(left, what)
        log.info("%s -> %s: %d object(s) copied server-side and their old keys deleted", old, new, len(keys))

    def _copy_all(self, copies: dict[str, str], condition: WriteCondition | None,
                  versions: dict[str, str | None]) -> None:
        """Each old key copied to its new key (``copies``), pinned to the version listed, up to
        ``RENAME_COPIES_AT_ONCE`` at once: a copy is a HEAD and a CopyObject, two round trips, so one
        after another a 200-object folder took 400 of them.

        All or nothing: the first failure starts no further copy, lets those under way settle, then
        deletes every copy started -- a copy whose answer was lost may have landed -- except where
        another writer's object stood (``lost_race``: theirs, never removed here), and is raised; the
        old keys are untouched. The pool's threads give up when the caller's would (its ``waits``
        check: a FUSE request interrupted, the mount stopping)."""
        caller = waits.current()
        workers = max(1, min(RENAME_COPIES_AT_ONCE, self.store.concurrency, len(copies)))

        def one(src: str, dst: str) -> None:
            with waits.giving_up(caller):
                self._copy(src, dst, condition, versions[src])

        started: dict[Future[None], str] = {}
        pending: set[Future[None]] = set()
        failure: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cc-rename")
        try:
            for src, dst in copies.items():
                while len(pending) >= workers and failure is None:
                    finished, pending = waits.first_settled(pending)
                    failure = next((f.exception() for f in finished if f.exception() is not None), None)
                if failure is not None:
                    break
                future = pool.submit(one, src, dst)
                started[future] = dst
                pending.add(future)
            while pending and failure is None:
                finished, pending = waits.first_settled(pending)
                failure = next((f.exception() for f in finished if f.exception() is not None), None)
        except BaseException as exc:  # the caller gave up (waits.GaveUp), or was interrupted
            failure = exc
        finally:
            pool.shutdown(wait=True)  # copies under way settle (their own waits give up with the caller's)
        if failure is None:
            return
        theirs = {dst for future, dst in started.items() if lost_race_in(future)}
        delete_after_failure(self.store, [dst for dst in started.values() if dst not in theirs], failure, "copies")
        raise failure

    def _delete_old(self, copies: dict[str, str], versions: dict[str, str | None], what: str) -> list[str]:
        """The old keys of a rename (``copies``: each old key -> its copy), once their copies exist: exact
        names, each deleted only while at the version copied (``versions``; ``ObjectStore.delete_versions``),
        so a newer version another writer stored there after the copy is never deleted. The old keys
        left so are returned, after one log line naming the old key and its copy (both names stay)."""
        keys = list(copies)
        try:
            left = self.store.delete_versions({key: versions.get(key) for key in keys})
        except OSError as exc:
            log.warning("%s: the copies are stored but %d old object(s) could not be deleted (first %s): %s",
                        what, len(keys), self.store.describe(keys[0]), exc)
            raise OSError(errno.EIO, f"{what}: copied, but the old name could not be removed: {exc}") from exc
        for key in keys:
            if key not in left:
                self.tree.removed(key)
        if left:
            more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
            log.warning("%s: %s was replaced by another writer after it was copied to %s%s: both are kept (the "
                        "copy holds the version renamed, the old name theirs)", what,
                        self.store.describe(left[0]), self.store.describe(copies[left[0]]), more)
        return left

    def _refuse_stale(self, left: list[str], what: str) -> None:
        """ESTALE when ``_delete_old`` left an old key another writer replaced (logged there)."""
        if left:
            raise OSError(errno.ESTALE, f"{what}: {left[0]} was replaced by another writer during the rename; "
                                        "the copy and their version are both kept")
