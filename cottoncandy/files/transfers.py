"""Moving whole objects and folders: cp, mv, rm, directory upload/download, sizes.

Folders are key prefixes: ``rm(..., recursive=True)`` and ``cp``/``mv`` of a folder act on the
keys under ``name/`` only (never on ``name2``, which 0.4.0's prefix matching also hit).
``download_directory`` never writes outside its target: keys with ``..``, ``.``, empty levels, NUL,
a part longer than the filesystem's file names or a path through a symlink that leaves the target
are skipped, each with a warning naming it and why, and the other objects are written.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import IsAFolder, NeedsOptionWarning, NotAPath, ObjectExists, ObjectNotFound, OptionAdvice, advised
from ..namespace.patterns import has_magic
from ..printable import escape_controls
from ..progress import Progress, ProgressCallback
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.collect import objects_under
from ..storage.filenames import DEFAULT_NAME_MAX, NotAFileName, is_name_error, name_max, path_problem
from ..storage.tempfiles import create_temp
from .listing import folder_prefix
from .resolve import Kind, resolve


@dataclass(frozen=True)
class Copy:
    src: str
    dst: str
    size: int | None = None  # the source's size, when its listing said


def copy_object(src_store: ObjectStore, src: str, dst_store: ObjectStore, dst: str) -> None:
    """Server-side when the destination store reaches the source (``ObjectStore.copy_from``), else streamed."""
    dst_store.copy_from(src_store, src, dst)


def plan_copy(src_store: ObjectStore, src: str, dst_store: ObjectStore, dst: str, *,
              recursive: bool, overwrite: bool) -> list[Copy]:
    """Which keys go where: one object, or (``recursive``) every key of the folder ``src``.

    ``src`` is resolved like every name (``resolve``, no patterns): a key named ``x[1]`` is that
    key; ``a/`` is the folder, never the object ``a``.
    """
    if dst.endswith("/") or not dst:
        dst = folder_prefix(dst) + src.rstrip("/").rsplit("/", 1)[-1]
    target = resolve(src_store, src, patterns=False)
    if target.kind is Kind.KEY:
        plan = [Copy(src, dst)]
    else:
        prefix = target.prefix
        keys = [key for key in target.keys if key != prefix]
        if not keys:
            hint = " (patterns are not copied: list the keys with glob)" if target.looks_like_pattern else ""
            raise ObjectNotFound(errno.ENOENT, f"nothing to copy: {src_store.describe(src)} is neither an "
                                                  f"object nor a folder of objects{hint}")
        if not recursive:
            advice = OptionAdvice(f"{src_store.describe(src)} is a folder of {len(keys)} objects",
                                  "recursive", "to copy it")
            raise advised(IsAFolder(errno.EISDIR, advice.render()), advice)
        plan = [Copy(o.key, folder_prefix(dst) + o.key[len(prefix):], o.size) for o in target.objects
                if o.key != prefix]
    if not overwrite:
        if len(plan) == 1:
            clashes = [plan[0].dst] if dst_store.exists(plan[0].dst) else []
        else:  # one listing of the destination folder, not a HEAD per key
            taken = {o.key for o in objects_under(dst_store, folder_prefix(dst))}
            clashes = [c.dst for c in plan if c.dst in taken]
        if clashes:
            more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
            advice = OptionAdvice(f"{dst_store.describe(clashes[0])} already exists{more}", "overwrite", "to replace")
            raise advised(ObjectExists(errno.EEXIST, advice.render()), advice)
    return plan


def run_copies(src_store: ObjectStore, dst_store: ObjectStore, plan: list[Copy], threads: int, *,
               skip_refused: bool = False) -> list[Copy]:
    """Carry out ``plan``; the copies made. Any failure raises, after the copies under way end.

    ``skip_refused``: a copy the destination cannot hold (its key refused, ``ValueError``: ``.``,
    ``..``, empty parts or NUL in a folder's files, a part longer than its file names) or whose
    source is refused (a bad local sidecar) is skipped with a ``SkippedObject`` warning naming it and
    why, and the others are made; a folder marker (an empty key ending in ``/``) the destination
    refuses is left out quietly (its folder is there as soon as anything is in it). Callers that
    delete the sources afterwards (``mv``) must not skip.
    """
    def one(copy: Copy) -> Copy | None:
        try:
            copy_object(src_store, copy.src, dst_store, copy.dst)
        except (ValueError, OSError) as exc:
            if not skip_refused or not (isinstance(exc, ValueError) or is_name_error(exc)):
                raise
            if copy.dst.endswith("/") and copy.size == 0:
                return None
            if isinstance(exc, NotAFileName):
                reason = f"it cannot be a file in {dst_store.describe()}: {exc.reason}"
            elif isinstance(exc, ValueError):
                reason = str(exc)
            else:
                reason = (f"it cannot be a file in {dst_store.describe()}: the filesystem refuses its name "
                          f"({exc.strerror})")
            warnings.warn(SkippedObject(copy.src, src_store.describe(copy.src), reason), stacklevel=2)
            return None
        return copy

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(plan))), thread_name_prefix="cc-copy") as pool:
        return [done for done in [fut.result() for fut in [pool.submit(one, c) for c in plan]] if done is not None]


def remove(store: ObjectStore, name: str, recursive: bool = False) -> list[str]:
    """Delete what ``name`` means (``resolve``): that key, a folder's keys or a pattern's matches (``recursive``).

    A key wins over a pattern and over a folder of the same name (``rm('x[1]')`` removes the key
    ``x[1]``, never ``x1``; ``rm('a', recursive=True)`` next to ``a/...`` removes the object ``a``);
    ``a/`` is the folder only. As in 0.4.0, a folder or a pattern's matches are removed only with
    ``recursive=True``, and removing nothing warns and returns ``[]`` instead of raising.
    """
    target = resolve(store, name, patterns=True)
    if target.kind is Kind.KEY:
        store.delete_many(target.keys)
        return list(target.keys)
    if not target.keys:
        what = (f"no objects match {name!r} in {store.describe()}" if target.kind is Kind.PATTERN
                else f"{store.describe(name)} is neither an object nor a folder of objects")
        warnings.warn(f"nothing removed: {what}", UserWarning, stacklevel=3)
        return []
    if not recursive:
        what = (f"{name!r} matches {len(target.keys)} objects in {store.describe()}" if target.kind is Kind.PATTERN
                else f"{store.describe(name)} is a folder of {len(target.keys)} objects")
        warnings.warn(NeedsOptionWarning(OptionAdvice(f"nothing removed: {what}", "recursive", "to remove them")),
                      stacklevel=3)
        return []
    store.delete_many(target.keys)
    return list(target.keys)


def total_size(store: ObjectStore, prefix: str = "") -> int:
    return sum(o.size for o in objects_under(store, prefix))  # bounded: an endless listing ends


# --- directories ------------------------------------------------------------------------------


def directory_to_upload(disk_path: object) -> str:
    """``disk_path`` checked as 0.4.0's ``os.listdir`` checked it: missing -> ``FileNotFoundError``, not a
    folder -> ``NotADirectoryError`` (a bad descriptor number: ``OSError``); a value that names no path
    (an array, a dict, None; bytes or a descriptor number, which 0.4.0 could not upload from) -> ``NotAPath``."""
    if not isinstance(disk_path, (str, bytes, os.PathLike, int)) or isinstance(disk_path, bool):
        raise NotAPath(f"disk_path must name a directory (a str or os.PathLike), not {type(disk_path).__name__}")
    try:
        st = os.stat(disk_path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"no such directory to upload: {disk_path!s}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"not a directory: {disk_path!s}")
    if isinstance(disk_path, int) or not isinstance(os.fspath(disk_path), str):
        raise NotAPath(f"disk_path must name a directory (a str or os.PathLike), not {type(disk_path).__name__}")
    return os.fspath(disk_path)  # type: ignore[return-value]  # a str: checked above


def upload_directory(store: ObjectStore, disk_path: str, cloud_path: str, *, recursive: bool,
                     acl: str | None, metadata: dict[str, str] | None, threads: int,
                     verbose: bool, callback: ProgressCallback | None = None) -> list[ObjectInfo]:
    """Every file of ``disk_path`` (and its sub-folders when ``recursive``) under ``cloud_path``."""
    disk_path = directory_to_upload(disk_path)
    files: list[tuple[str, str]] = []
    for folder, subdirs, names in os.walk(disk_path):
        subdirs.sort()
        if not recursive:
            subdirs.clear()
        relative = os.path.relpath(folder, disk_path)
        for name in sorted(names):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            parts = [] if relative == "." else relative.split(os.sep)
            files.append((path, "/".join([cloud_path.rstrip("/"), *parts, name]).lstrip("/")))
    total = sum(os.path.getsize(path) for path, _ in files)

    with Progress(total, f"upload {disk_path}", enabled=verbose, callback=callback) as progress:
        def put(item: tuple[str, str]) -> ObjectInfo:
            path, key = item
            with open(path, "rb") as fh:
                return store.put(key, fh, metadata, acl=acl, progress=progress.update)

        if not files:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(files))), thread_name_prefix="cc-up") as pool:
            return list(pool.map(put, files))


class SkippedObject(UserWarning):
    """One object a transfer of many left out, and why (its name cannot be a file here, the
    destination refused it): the others were transferred. ``key`` names it in its store."""

    def __init__(self, key: str, shown: str, reason: str):
        super().__init__(f"skipped {escape_controls(shown)}: {reason}")
        self.key = key
        self.reason = reason


def local_path_problem(root: str, relative_key: str, limit: int = DEFAULT_NAME_MAX) -> str | None:
    """Why ``relative_key`` cannot be written under ``root`` (``filenames.path_problem``, or a path
    through a symlink that leaves ``root``), or ``None`` when it can."""
    parts = relative_key.split("/")
    problem = path_problem(parts, limit)
    if problem is not None:
        return problem
    if os.sep != "/" and any(os.sep in p for p in parts):  # pragma: no cover - POSIX machines
        return f"it holds {os.sep!r}, which separates folders here"
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(os.path.dirname(os.path.join(root, *parts)))
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        return f"its path would leave {root} (through a symlink)"
    return None


def write_object_to_file(store: ObjectStore, key: str, path: str, progress: Callable[[int], None] | None,
                         info: ObjectInfo | None = None) -> None:
    """Stream one object into ``path`` atomically (a temporary file beside it, then a rename)."""
    info = info or store.head(key)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = create_temp(folder, prefix=".cc-download-")
    try:
        with os.fdopen(fd, "wb") as fh, store.open_read(key, if_match=info.etag) as src:
            while chunk := src.read(8 * 2**20):
                fh.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _listed(names: list[str], most: int = 5) -> str:
    shown = ", ".join(escape_controls(name) for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def download_directory(store: ObjectStore, directory: str, disk_name: str, *, threads: int,
                       verbose: bool, callback: ProgressCallback | None = None) -> list[str]:
    """Every key under ``directory/`` into ``disk_name``, keeping the folder structure.

    An object whose key cannot be a path under ``disk_name`` (``.``, ``..`` or empty parts, NUL, a
    part longer than the filesystem's file names, a path through a symlink out of it, a clash with
    a folder) is skipped with a ``SkippedObject`` warning naming it and why; the others are written,
    and one last warning lists what was skipped. Folder markers (empty keys ending in ``/``) become
    folders. Returns the paths written.
    """
    if directory.endswith("/*"):
        directory = directory[:-2]  # 'path/*' means 'path', as in 0.4.0 (and 'run[1]/*' the folder 'run[1]')
    prefix = folder_prefix(directory)
    resolved = resolve(store, prefix, patterns=False)  # a folder 'd[1]' is taken literally
    objects = [o for o in resolved.objects if o.key != prefix]
    if not objects and has_magic(directory):
        raise NotImplementedError(f"download_directory takes a folder, not a pattern: {directory!r} "
                                  "(wildcards are not implemented, as in 0.4.0)")
    os.makedirs(disk_name, exist_ok=True)
    if not objects:
        warnings.warn(f"nothing downloaded: no objects under {store.describe(prefix)}", UserWarning, stacklevel=3)
        return []
    root = os.path.abspath(disk_name)
    limit = name_max(root)
    skipped: list[str] = []

    def skip(info: ObjectInfo, reason: str) -> None:
        skipped.append(store.describe(info.key))
        warnings.warn(SkippedObject(info.key, store.describe(info.key), reason), stacklevel=4)

    jobs: list[tuple[ObjectInfo, str]] = []
    for info in objects:
        relative = info.key[len(prefix):]
        if relative.endswith("/") and info.size == 0 and local_path_problem(root, relative[:-1], limit) is None:
            os.makedirs(os.path.join(root, *relative[:-1].split("/")), exist_ok=True)  # a folder marker
            continue
        problem = local_path_problem(root, relative, limit)
        if problem is not None:
            skip(info, problem)
            continue
        jobs.append((info, os.path.join(root, *relative.split("/"))))
    written: list[str] = []
    with Progress(sum(i.size for i, _ in jobs), f"download {prefix or store.describe()}",
                  enabled=verbose, callback=callback) as progress:
        def fetch(job: tuple[ObjectInfo, str]) -> str | None:
            info, target = job
            problem = local_path_problem(root, info.key[len(prefix):], limit)  # re-check: folders appear as we go
            if problem is not None:
                skip(info, problem)
                return None
            try:
                write_object_to_file(store, info.key, target, progress.update, info)
            except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
                skip(info, f"{target} clashes with another key ({type(exc).__name__})")
                return None
            except OSError as exc:
                if not is_name_error(exc):
                    raise
                skip(info, f"this filesystem refuses its name ({exc.strerror or exc})")
                return None
            except ValueError as exc:  # a bad object (e.g. a local symlink out of the bucket): skip it only
                skip(info, str(exc))
                return None
            return target

        if jobs:
            with ThreadPoolExecutor(max_workers=max(1, min(threads, len(jobs))),
                                    thread_name_prefix="cc-down") as pool:
                written = [path for path in pool.map(fetch, jobs) if path is not None]
    if skipped:
        warnings.warn(f"downloaded {len(written)} of {len(written) + len(skipped)} objects of "
                      f"{store.describe(prefix)} into {root}; skipped {_listed(sorted(skipped))} "
                      "(each named above with why)", UserWarning, stacklevel=3)
    return written
