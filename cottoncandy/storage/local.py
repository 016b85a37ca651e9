"""A directory used as a bucket, in cottoncandy 0.4.0's local layout.

Key ``a/b/c`` is the file ``ROOT/a/b/c`` with exactly the bytes S3 would hold; its user metadata is
the JSON sidecar ``ROOT/a/b/c.meta.json`` (``indent=4``, ``{}`` when there is none), so directories
written by either implementation read in the other. No key may reach outside ``ROOT``: ``..``,
absolute keys and paths through symlinks are refused. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from ..config import Settings
from ..errors import FolderNotAnObject, ObjectNotFound
from . import conditions
from .base import (
    Account,
    Buffer,
    Capabilities,
    Listing,
    ObjectInfo,
    ObjectStore,
    Progress,
    StoreSpec,
    as_byte_view,
    check_copy_source,
    check_range,
)
from .conditions import WriteCondition
from .filenames import NotAFileName, name_max, path_problem
from .registry import StoreKind, StoreOptions
from .tempfiles import create_temp

META_SUFFIX = ".meta.json"
#: S3 allows 2 KB of user metadata; a sidecar holding more is not one this layout writes
MAX_META_BYTES = 64 * 2**10
COPY_CHUNK = 8 * 2**20
#: conditional writes check and write under this lock: atomic within a process (not across processes)
_CONDITIONAL = threading.Lock()


def file_etag(st: os.stat_result) -> str:
    """A cheap identity that changes whenever the file is replaced or rewritten."""
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"'


class LocalAccount(Account):
    """Buckets of the local backend are directories; the 'bucket name' is the directory path."""

    named_buckets = False

    def store(self, bucket: str) -> LocalStore:
        return LocalStore(bucket)

    def list_buckets(self) -> list[str]:
        return []

    def bucket_exists(self, bucket: str) -> bool:
        return Path(bucket).expanduser().is_dir()

    def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        Path(bucket).expanduser().mkdir(parents=True, exist_ok=True)

    def delete_bucket(self, bucket: str) -> None:
        path = Path(bucket).expanduser()
        if any(path.iterdir()):
            raise OSError(errno.ENOTEMPTY, f"local bucket {path} is not empty")
        path.rmdir()

    @property
    def endpoint(self) -> str:
        return "local machine"


class LocalStore(ObjectStore):
    part_size = 64 * 2**20
    concurrency = 4
    capabilities = Capabilities(other_processes=True)

    def __init__(self, root: str | os.PathLike[str], create: bool = True):
        path = Path(root).expanduser()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise FileNotFoundError(errno.ENOENT, f"local bucket directory not found: {path}")
        self.root = path.resolve()
        self.bucket = str(self.root)
        self.name_max = name_max(self.root)  # bytes a file name may have here (a longer key part is refused)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def describe(self, key: str | None = None) -> str:
        return str(self.root / key) if key else str(self.root)

    def spec(self) -> StoreSpec:
        return StoreSpec(KIND.scheme, str(self.root))

    # --- key -> path, safely -----------------------------------------------------------------
    def path_of(self, key: str) -> Path:
        """The file holding ``key``; ``ValueError`` for any key that would leave the root."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"invalid object key {key!r}: keys are non-empty strings")
        parts = key.split("/")
        if key.startswith("/"):
            raise NotAFileName(key, "an absolute key would leave the bucket's folder")
        problem = path_problem([p for p in parts if p], self.name_max)  # '.', '..', NUL, a part too long
        if problem is not None:
            raise NotAFileName(key, problem)
        path = self.root.joinpath(*[p for p in parts if p])
        real_parent = path.parent.resolve()
        if real_parent != self.root and self.root not in real_parent.parents:
            raise ValueError(f"invalid object key {key!r}: it leads outside {self.root} (through a symlink)")
        if path.is_symlink():
            target = path.resolve()
            if self.root not in target.parents:
                raise ValueError(f"invalid object key {key!r}: it is a symlink leading outside {self.root}")
        return path

    def _meta_path(self, path: Path) -> Path:
        return path.with_name(path.name + META_SUFFIX)

    def _stat(self, key: str) -> tuple[Path, os.stat_result]:
        path = self.path_of(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(errno.ENOENT, f"object not found: {self.describe(key)}") from None
        if stat.S_ISDIR(st.st_mode):  # 0.4.0's open() said IsADirectoryError: this is one too
            raise FolderNotAnObject(errno.ENOENT, f"object not found: {self.describe(key)} (a folder)")
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(errno.ENOENT, f"object not found: {self.describe(key)} (not a regular file)")
        return path, st

    def _check_etag(self, key: str, st: os.stat_result, if_match: str | None) -> None:
        if if_match and file_etag(st) != if_match:
            raise OSError(errno.ESTALE, f"{self.describe(key)} changed since it was opened")

    # --- reading -----------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        path, st = self._stat(key)
        metadata = self._read_metadata(self._meta_path(path))
        return ObjectInfo(key=key, size=st.st_size, etag=file_etag(st),
                          last_modified=datetime.fromtimestamp(st.st_mtime, timezone.utc), metadata=metadata)

    def exists(self, key: str) -> bool:
        """Whether the object's file is there, without reading its (untrusted) sidecar: an object
        whose sidecar is refused still exists, so it can be named, removed and listed."""
        try:
            self._stat(key)
        except FileNotFoundError:
            return False
        return True

    def _read_metadata(self, meta_path: Path) -> dict[str, str]:
        """The sidecar's metadata: untrusted input, so a regular file inside the root, bounded, a
        JSON object; ``ValueError`` naming the sidecar otherwise (the object alone is unreadable)."""
        try:
            st = os.lstat(meta_path)
        except FileNotFoundError:
            return {}
        except OSError as exc:  # a name too long for a sidecar beside it: none was written
            if exc.errno == errno.ENAMETOOLONG:
                return {}
            raise
        if stat.S_ISLNK(st.st_mode):
            target = meta_path.resolve()
            if self.root not in target.parents:
                raise ValueError(f"{meta_path}: metadata sidecar is a symlink leading outside {self.root}; "
                                 "refused")
            try:
                st = os.stat(meta_path)
            except FileNotFoundError:
                return {}
        if stat.S_ISDIR(st.st_mode):
            return {}
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{meta_path}: metadata sidecar is not a regular file; refused")
        if st.st_size > MAX_META_BYTES:
            raise ValueError(f"{meta_path}: metadata sidecar is {st.st_size} bytes (at most {MAX_META_BYTES})")
        with open(meta_path, "rb") as fh:
            text = fh.read(MAX_META_BYTES + 1)
        try:
            raw = json.loads(text) if len(text) <= MAX_META_BYTES else None
        except (ValueError, RecursionError):
            raw = None
        if not isinstance(raw, dict):
            raise ValueError(f"{meta_path}: metadata sidecar is not a JSON object")
        return {str(k).lower(): str(v) for k, v in raw.items()}

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        check_range(start, end)
        path, st = self._stat(key)
        self._check_etag(key, st, if_match)
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)

    def readinto(self, key: str, start: int, buffer: memoryview, if_match: str | None = None) -> None:
        path, st = self._stat(key)
        self._check_etag(key, st, if_match)
        with open(path, "rb", buffering=0) as fh:
            fh.seek(start)
            pos = 0
            while pos < len(buffer):
                n = fh.readinto(buffer[pos:])
                if not n:
                    raise OSError(errno.EIO, f"{self.describe(key)}: short read ({pos} of {len(buffer)} bytes)")
                pos += n

    def open_read(self, key: str, if_match: str | None = None) -> BinaryIO:
        path, st = self._stat(key)
        self._check_etag(key, st, if_match)
        return open(path, "rb")

    # --- writing -----------------------------------------------------------------------------
    def _atomic_write(self, path: Path, writer: Callable[[BinaryIO], object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_temp(path.parent, prefix=".cc-tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
            os.replace(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None = None,
            acl: str | None = None, progress: Progress | None = None, *,
            condition: WriteCondition | None = None) -> ObjectInfo:
        if condition is None:
            return self._put(key, data, metadata, progress)
        with _CONDITIONAL:  # the check and the write as one step (within this process)
            try:
                current: str | None = file_etag(self._stat(key)[1])
            except FileNotFoundError:
                current = None
            conditions.check(condition, current, self.describe(key))
            return self._put(key, data, metadata, progress)

    def _put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None,
             progress: Progress | None) -> ObjectInfo:
        if key.endswith(META_SUFFIX):
            raise ValueError(f"invalid object key {key!r}: names ending in {META_SUFFIX} hold metadata "
                             "in the local layout")
        # every part a file name: 'a//b' would be the file of 'a/b' and 'a/' a file 'a' beside a folder
        # (reads take both as 'a/b' and 'a'); the last one leaves room for its sidecar's suffix
        problem = path_problem(key.split("/"), self.name_max)
        size = len(os.fsencode(key.rpartition("/")[2])) if problem is None else 0
        if size + len(META_SUFFIX) > self.name_max:
            problem = (f"its name is {size} bytes, and with its sidecar's {META_SUFFIX} more than the "
                       f"{self.name_max} a file name may have here")
        if problem is not None:
            raise NotAFileName(key, problem)
        path = self.path_of(key)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, f"cannot write {self.describe(key)}: it is a folder")
        meta = dict(metadata or {})

        def write_body(fh: BinaryIO) -> None:
            if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "__array_interface__"):
                fh.write(as_byte_view(data))  # type: ignore[arg-type]
            else:
                shutil.copyfileobj(data, fh, COPY_CHUNK)

        self._atomic_write(self._meta_path(path), lambda fh: fh.write(json.dumps(meta, indent=4).encode()))
        self._atomic_write(path, write_body)
        st = path.stat()
        if progress is not None:
            progress(st.st_size)
        self.changed([key])
        return ObjectInfo(key=key, size=st.st_size, etag=file_etag(st), metadata=meta)

    def owner(self, key: str) -> dict[str, str]:
        import pwd

        _, st = self._stat(key)
        try:
            name = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            name = str(st.st_uid)
        return {"DisplayName": name, "ID": str(st.st_uid)}

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        try:
            info = self.head(src)
        except FileNotFoundError:
            check_copy_source(source_etag, None, self.describe(src))  # asked for a version: stale
            raise
        with self.open_read(src) as fh:  # files are replaced whole: the open file is one version
            check_copy_source(source_etag, file_etag(os.fstat(fh.fileno())), self.describe(src))
            self.put(dst, fh, info.metadata, condition=condition)

    def delete_versions(self, versions: Mapping[str, str | None]) -> list[str]:
        left = []
        with _CONDITIONAL:  # the check and the delete as one step (within this process)
            for key, etag in versions.items():
                try:
                    now: str | None = file_etag(self._stat(key)[1])
                except FileNotFoundError:
                    now = None
                if now is not None and etag is not None and now != etag:
                    left.append(key)
                else:
                    self.delete_many([key])
        return left

    def delete_many(self, keys: Iterable[str], *, cleanup: bool = False) -> None:
        deleted = []
        try:
            for key in keys:
                path = self.path_of(key)
                for target in (path, self._meta_path(path)):
                    with suppress(FileNotFoundError):
                        target.unlink()
                self._prune(path.parent)
                deleted.append(key)
        finally:
            self.changed(deleted)

    def change_scope(self) -> str | None:
        """``local <folder>``: the bucket's folder, resolved."""
        return f"local {self.root}"

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, up to the root (0.4.0 does the same)."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    # --- listing -----------------------------------------------------------------------------
    def _entry(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(key=key, size=st.st_size, etag=file_etag(st),
                          last_modified=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        folder_part, _, name_start = prefix.rpartition("/")
        folder = self.path_of(folder_part) if folder_part else self.root
        listing = Listing()
        if not folder.is_dir():
            return listing
        base = f"{folder_part}/" if folder_part else ""
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.name.startswith(name_start) or entry.name.startswith(".cc-tmp-"):
                continue
            key = base + entry.name
            if entry.is_dir(follow_symlinks=False):
                listing.prefixes.append(key + "/")
            elif entry.is_file(follow_symlinks=False) and not entry.name.endswith(META_SUFFIX):
                listing.objects.append(self._entry(key, Path(entry.path)))
        return listing

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        listing = self.list_dir(prefix)
        items: list[tuple[str, bool]] = [(o.key, False) for o in listing.objects]
        items += [(p, True) for p in listing.prefixes]
        for name, is_prefix in sorted(items):
            if is_prefix:
                yield from self.iter_objects(name)
            else:
                yield self._entry(name, self.path_of(name))



def _open(path: str, options: StoreOptions) -> LocalStore:
    return LocalStore(path, create=options.create)


def _account(settings: Settings) -> LocalAccount:
    return LocalAccount()


def _from_spec(spec: StoreSpec) -> LocalStore:
    return LocalStore(spec.bucket, create=False)


KIND = StoreKind(scheme="file", open_bucket=_open, account=_account, from_spec=_from_spec,
                 backend_names=("local",), paths=True)
