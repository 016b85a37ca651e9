"""Cache folders that only their user (and root) can change, and files opened without following links.

Why: a cache folder holds bytes and HEAD answers of the user's buckets, and what is read back from it
is served as the bucket's. A folder another local user made (or can write to) lets that user replace a
block file with one that passes its checksum, read the cached bytes of a private mount, or plant a
symbolic link that makes the daemon (perhaps root) write where they choose. So, as ssh checks
``~/.ssh`` before trusting it (OpenSSH's ``safe_path``):

* the folder named (``--cache-dir``, ``block_cache_dir``, ``$XDG_CACHE_HOME/ccfs/metadata``) is
  resolved level by level from ``/``. Every level must be a folder owned by the current user or root;
  folders above the cache folder must not be writable by group or others unless they are sticky
  (``/tmp``: others may add names there but cannot rename or remove ours); the cache folder itself must
  not be writable by group or others at all. A symbolic link on the way is followed only if it belongs
  to the current user or root (in a sticky folder anyone can make one). Missing levels are created,
  mode 0700, one at a time, and checked as they are made.
* inside it, nothing is followed: subfolders are made 0700 and checked with ``lstat`` (a link there is
  refused), files are created 0600 and opened with ``O_NOFOLLOW``, and a file that is not a regular file
  owned by the current user is not read.

A refused folder raises :class:`UnsafeCacheFolder`: one line naming the folder (or the level above it)
and what is wrong, and what to do (chmod/chown it, or choose another folder).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from pathlib import Path

#: levels of symbolic links followed while resolving a folder (the kernel's own limit)
MAX_LINKS = 40


class UnsafeCacheFolder(PermissionError):
    """A cache folder (or a level above it) that another local user could change."""

    def __init__(self, message: str):
        super().__init__(errno.EACCES, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def _trusted_owner(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def _check_level(path: str, st: os.stat_result, folder: str, above: bool) -> None:
    """Refuse a level of ``folder``'s path that another user could change (``above``: a folder above it,
    where a sticky bit makes group/other write access harmless for names that are ours)."""
    if above:
        subject = f"cache folder {folder}: {path}, a folder above it,"
    else:
        subject = f"cache folder {folder}" + (f" (the folder {path} its link names)" if path != folder else "")
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"cache folder {folder}: {path} is not a folder")
    if not _trusted_owner(st.st_uid):
        raise UnsafeCacheFolder(
            f"{subject} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}) or root: that user could "
            f"replace what it holds; chown it to yourself or choose another folder")
    if st.st_mode & 0o022 and not (above and st.st_mode & stat.S_ISVTX):
        raise UnsafeCacheFolder(
            f"{subject} is writable by other users (mode {_mode(st)}): they could replace what it holds; "
            f"run chmod go-w {path} (or chmod 700) or choose another folder")


def private_folder(path: str | os.PathLike[str]) -> Path:
    """The folder at ``path``, created (0700) where missing, every level checked (module docstring);
    its canonical path. :class:`UnsafeCacheFolder` if another user could change it."""
    folder = os.path.abspath(os.fspath(path))
    parts: deque[str] = deque(p for p in folder.split("/") if p)
    current = "/"
    _check_level("/", os.lstat("/"), folder, above=True)
    links = 0
    missing: list[str] = []
    while parts:
        name = parts.popleft()
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            missing = [name, *parts]
            break
        if stat.S_ISLNK(st.st_mode):
            if not _trusted_owner(st.st_uid):
                raise UnsafeCacheFolder(
                    f"cache folder {folder}: {candidate} is a symbolic link made by uid {st.st_uid}, not by you "
                    f"(uid {os.geteuid()}) or root; name the folder it points to, or choose another folder")
            links += 1
            if links > MAX_LINKS:
                raise OSError(errno.ELOOP, f"cache folder {folder}: too many levels of symbolic links")
            target = os.readlink(candidate)
            parts.extendleft(reversed([p for p in target.split("/") if p]))
            if target.startswith("/"):
                current = "/"
            continue
        if any(p != "." for p in parts):  # the last level is checked as the cache folder, below
            _check_level(candidate, st, folder, above=True)
        current = candidate
    for i, name in enumerate(missing):
        if name in (".", ".."):
            raise FileNotFoundError(errno.ENOENT, f"cache folder {folder}: {os.path.join(current, name)} "
                                    "does not exist")
        current = os.path.join(current, name)
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process: checked below
            os.mkdir(current, 0o700)
        st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeCacheFolder(f"cache folder {folder}: {current} became a symbolic link while it was made; "
                                    "choose another folder")
        if any(p != "." for p in missing[i + 1 :]):
            _check_level(current, st, folder, above=True)
    _check_level(current, os.lstat(current), folder, above=False)
    return Path(current)


def private_subfolder(parent: Path, name: str) -> Path:
    """``parent/name`` (``parent`` already checked), made 0700 if missing; an existing one must be a
    real folder (not a link) of the current user or root, and is made 0700 if it is ours."""
    path = parent / name
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeCacheFolder(f"cache folder {path} is a symbolic link; remove it, or choose another folder")
    _check_level(str(path), st, str(path), above=False)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o700:
        _chmod(path, 0o700, os.O_DIRECTORY)  # made by an older version (0755)
    return path


def _chmod(path: str | os.PathLike[str], mode: int, kind: int) -> None:
    """``chmod`` of what ``path`` names itself, never a link's target (``O_NOFOLLOW``, then ``fchmod``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | kind)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def create_private_file(path: str | os.PathLike[str], truncate: bool = True) -> int:
    """A descriptor of ``path`` opened for writing: created 0600 if missing, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
    fd = os.open(path, flags, 0o600)
    try:
        _check_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_file(path: str | os.PathLike[str]) -> int:
    """A descriptor of the existing file ``path`` for reading, never through a link; ``OSError`` unless
    it is a regular file of the current user (or root) that others cannot write. ``O_NONBLOCK``: a named
    pipe (or a device) at that name is refused after the open returns, not waited on for a writer that
    never comes (regular files ignore the flag)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        _check_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_file(fd: int, path: str | os.PathLike[str]) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    if not _trusted_owner(st.st_uid):
        raise UnsafeCacheFolder(f"{path} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}) or root")
    if st.st_mode & 0o022:
        raise UnsafeCacheFolder(f"{path} is writable by other users (mode {_mode(st)})")


def prepare_database(path: Path) -> None:
    """Make sure SQLite opens a private regular file at ``path`` (in a checked folder), not a link:
    the database is created 0600 here (SQLite gives its ``-wal`` and ``-shm`` files the database's mode),
    a link or other non-file at any of its names is removed, and files of an older version are made 0600."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        name = Path(f"{path}{suffix}")
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            name.unlink()  # a link (perhaps dangling: SQLite would create its target) or anything else
        elif not _trusted_owner(st.st_uid):
            raise UnsafeCacheFolder(f"{name} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}) or "
                                    "root; remove it, or choose another folder")
        elif stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.geteuid():
            _chmod(name, 0o600, 0)
    os.close(create_private_file(path, truncate=False))
