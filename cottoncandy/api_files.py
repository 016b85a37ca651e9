"""The filesystem half of the 0.4.0 API: listing, matching, copying, removing, directories.

A mixin of ``CloudInterface`` (as 0.4.0's ``FileSystemInterface`` was); the work is in
``listing`` and ``transfers``. Where results differ from 0.4.0 the README says how and why.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from .api_host import MixinBase
from .files import listing, transfers
from .messages import say
from .names import clean_object_name, require_key
from .printable import shown_name
from .progress import ProgressCallback
from .storage.base import ObjectInfo
from .storage.collect import objects_under

log = logging.getLogger(__name__)


class FileSystemMethods(MixinBase):
    """Needs ``store``, ``account``, ``settings`` and ``verbose`` of the interface (``api_host.InterfaceHost``)."""

    def lsdir(self, path: str = "/", limit: int | None = None) -> list[str]:
        """Children of a folder: sub-folders first, then objects, full paths (every page, not just 1,000)."""
        return listing.lsdir(self.store, clean_object_name(path), limit)

    def ls(self, pattern: str = "", page_size: int = 10**3, limit: int | None = None,
           verbose: bool = False) -> list[str]:
        """Folders and objects matching a shell pattern (or a folder's children), sorted."""
        names = listing.ls(self.store, clean_object_name(pattern), self.settings.threads)
        names = names[:limit] if limit is not None else names
        if verbose:
            print("\n".join(shown_name(name) for name in names))
        return names

    def glob(self, pattern: str, **kwargs: Any) -> list[str]:
        """Keys of objects matching ``pattern``: ``*``/``?`` within a level, ``[...]``, ``**`` any depth.

        Accepts 0.4.0's ``verbose``, ``limit`` and ``page_size`` (``page_size`` is not needed:
        every page is read). ``do_unquote=True`` URL-unquotes the results as 0.4.0 did.
        """
        unknown = set(kwargs) - {"verbose", "limit", "page_size", "do_unquote"}
        if unknown:
            raise TypeError(f"glob() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
        keys = listing.glob(self.store, clean_object_name(pattern), self.settings.threads)
        if kwargs.get("limit") is not None:
            keys = keys[: kwargs["limit"]]
        if kwargs.get("verbose"):
            self._print_matches(keys, pattern)
        if kwargs.get("do_unquote"):
            from urllib.parse import unquote

            keys = sorted(unquote(k) for k in keys)
        return keys

    def glob_s3(self, pattern: str, **kwargs: Any) -> list[str]:
        """0.4.0's name for ``glob`` on S3 (its ``glob`` called it); the same matching as ``glob``."""
        return self.glob(pattern, **kwargs)

    def _print_matches(self, keys: list[str], pattern: str) -> None:
        infos = [self.store.head(k) for k in keys]
        if infos:
            print(listing.format_objects(infos))
        print(f'Found {len(infos)} objects matching "{pattern}"')

    def search(self, pattern: str, **kwargs: Any) -> None:
        """Print the objects matching ``pattern`` (name, date, size) and how many there are."""
        self.glob(pattern, verbose=True, **kwargs)

    def cp(self, source_name: str, dest_name: str, source_bucket: str | None = None,
           dest_bucket: str | None = None, overwrite: bool = False, recursive: bool = False) -> list[str]:
        """Copy an object (server-side), or a folder's objects with ``recursive=True``.

        A ``dest_name`` ending in ``/`` copies into that folder. Existing destinations are kept
        unless ``overwrite=True`` (``FileExistsError``). Returns the keys written.
        """
        src_store, dst_store = self._stores(source_bucket, dest_bucket)
        plan = transfers.plan_copy(src_store, require_key(source_name), dst_store, clean_object_name(dest_name),
                                   recursive=recursive, overwrite=overwrite)
        transfers.run_copies(src_store, dst_store, plan, self.settings.threads)
        return [c.dst for c in plan]

    def mv(self, source_name: str, dest_name: str, source_bucket: str | None = None,
           dest_bucket: str | None = None, overwrite: bool = False, recursive: bool = False) -> list[str]:
        """Copy, then delete the sources once every copy has succeeded."""
        src_store, dst_store = self._stores(source_bucket, dest_bucket)
        plan = transfers.plan_copy(src_store, require_key(source_name), dst_store, clean_object_name(dest_name),
                                   recursive=recursive, overwrite=overwrite)
        transfers.run_copies(src_store, dst_store, plan, self.settings.threads)
        moved_onto_itself = {c.src for c in plan if c.src == c.dst and src_store is dst_store}
        src_store.delete_many([c.src for c in plan if c.src not in moved_onto_itself])
        return [c.dst for c in plan]

    def _stores(self, source_bucket: str | None, dest_bucket: str | None) -> tuple[Any, Any]:
        src = self.account.store(source_bucket) if source_bucket else self.store
        dst = self.account.store(dest_bucket) if dest_bucket else src
        return src, dst

    def rm(self, object_name: str, recursive: bool = False, delete: bool = True) -> list[str]:
        """Delete an object, a folder with ``recursive=True`` (keys under ``name/`` only), or a pattern's matches.

        A name that is a key deletes exactly that key, even with ``*?[]`` in it; ``name/`` is the
        folder only; a name is a pattern only when no such key or folder exists (``resolve``).
        """
        keys = transfers.remove(self.store, require_key(object_name), recursive)
        if len(keys) > 1:
            say(log, f"deleted {len(keys)} objects", self.verbose)
        return keys

    def upload_from_directory(self, disk_path: str, cloud_path: str | None = None, recursive: bool = False,
                              ExtraArgs: dict[str, Any] | None = None,  # noqa: N803
                              threads: int | None = None, *,
                              callback: ProgressCallback | None = None) -> list[ObjectInfo]:
        """Upload a directory's files (and sub-directories with ``recursive=True``) under ``cloud_path``."""
        disk_path = transfers.directory_to_upload(disk_path)  # before its name is used as a key
        target = clean_object_name(cloud_path if cloud_path is not None else disk_path)
        extra = ExtraArgs or {}
        infos = transfers.upload_directory(self.store, disk_path, target, recursive=recursive,
                                           acl=extra.get("ACL"), metadata=extra.get("Metadata"),
                                           threads=threads or self.settings.threads,
                                           verbose=self.verbose, callback=callback)
        say(log, f'Uploaded "{disk_path}" to "{target}"', self.verbose)
        return infos

    def download_directory(self, directory: str, disk_name: str, *,
                           callback: ProgressCallback | None = None) -> list[str]:
        """Download every object under ``directory/`` into ``disk_name``; never writes outside it."""
        return transfers.download_directory(self.store, clean_object_name(directory), disk_name,
                                            threads=self.settings.threads, verbose=self.verbose, callback=callback)

    def get_size(self) -> int:
        """Bytes held by every object of the bucket (one flat listing)."""
        return transfers.total_size(self.store)

    def get_bucket_size(self, limit: int = 10**6, page_size: int = 10**6) -> int:
        warnings.warn("Deprecated, use get_size() instead", DeprecationWarning, stacklevel=2)
        return self.get_size()

    def get_objects(self, limit: int | None = None, page_size: int | None = None,
                    filter: dict[str, str] | None = None, **kwargs: Any) -> list[ObjectInfo]:  # noqa: A002
        """Objects of the bucket (``filter=dict(Prefix=...)``), each with key, size, etag, last_modified."""
        prefix = (filter or {}).get("Prefix", "")
        objects: list[ObjectInfo] = []
        for info in objects_under(self.store, clean_object_name(prefix)):
            if limit is not None and len(objects) >= limit:
                break
            objects.append(info)
        return objects

    def get_bucket_objects(self, **kwargs: Any) -> list[ObjectInfo]:
        warnings.warn("Deprecated. Use get_objects() instead", DeprecationWarning, stacklevel=2)
        return self.get_objects(**kwargs)

    def show_objects(self, limit: int = 1000, page_size: int = 1000) -> None:
        """Print the bucket's objects (name, date, size), at most ``limit``."""
        text = listing.format_objects(self.get_objects(limit=limit))
        if text:
            print(text)

    def get_object_owner(self, object_name: str) -> dict[str, str]:
        """The object's owner (``DisplayName``, ``ID``); printed, as in 0.4.0, and returned."""
        owner = self.store.owner(require_key(object_name))
        print(owner)
        return owner

    def get_browser(self) -> Any:
        """A tab-completing browser of the bucket (see ``cottoncandy.get_browser``)."""
        from .browser import S3Directory

        return S3Directory("", interface=self)
