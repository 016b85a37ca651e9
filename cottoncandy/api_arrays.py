"""The array half of the 0.4.0 API beyond single arrays: dask arrays, sparse matrices, trees.

A mixin of ``CloudInterface`` (as 0.4.0's ``ArrayInterface`` was): each method checks its
arguments and hands the work to ``chunked``, ``sparse`` or ``groups``.
"""

from __future__ import annotations

import logging
from typing import Any

from .api_host import MixinBase
from .arrays import chunked, groups, sparse
from .formats.raw import string_metadata
from .messages import say
from .names import cleans_object_name
from .progress import ProgressCallback
from .storage.base import ObjectInfo

log = logging.getLogger(__name__)


class ArrayMethods(MixinBase):
    """Needs ``store``, ``settings``, ``verbose``, ``_encode_choice()`` of the interface (api_host.InterfaceHost)."""

    @cleans_object_name
    def upload_dask_array(self, object_name: str, arr: Any, axis: int | None = -1,
                          buffersize: int | None = None, threads: int | None = None, *,
                          callback: ProgressCallback | None = None, **metakwargs: Any) -> ObjectInfo:
        """Upload ``arr`` (numpy or dask) in parts of about ``buffersize`` bytes along ``axis``.

        0.4.0's layout (``NAME/pt0000``... raw arrays with the default compression, then
        ``NAME/metadata.json``); keyword arguments become user metadata of ``metadata.json``.
        A dask array is uploaded part by part by its own scheduler, never whole in memory.
        """
        return chunked.upload_dask_array(
            self.store, object_name, arr, axis, buffersize or self.settings.dask_chunksize,
            choice=self._encode_choice(), metadata=string_metadata(metakwargs),
            threads=threads or min(4, self.settings.threads), verbose=self.verbose, callback=callback)

    @cleans_object_name
    def download_dask_array(self, object_name: str, dask_name: str | None = None, threads: int | None = None) -> Any:
        """A lazy ``dask.array.Array`` of a chunked array; slicing it fetches only the parts it needs.

        The graph holds only picklable descriptors, so it computes on a distributed cluster;
        workers take credentials from their own environment. ``dask_name`` defaults to a
        unique token (0.4.0 named every array ``'array'``, which collides in one graph).
        """
        return chunked.download_dask_array(self.store, object_name, dask_name)

    @cleans_object_name
    def download_raw_array_as_dask(self, object_name: str, chunks: Any = "auto", dask_name: str | None = None) -> Any:
        """A lazy dask array over one uncompressed raw array, read by byte ranges in ``chunks``, or over a gzip
        array cottoncandy wrote, read by block (``chunks="auto"``: one chunk per block of whole rows)."""
        return chunked.raw_array_as_dask(self.store, object_name, chunks, dask_name)

    @cleans_object_name
    def upload_sparse_array(self, object_name: str, arr: Any, threads: int | None = None, *,
                            callback: ProgressCallback | None = None) -> ObjectInfo:
        """Store a scipy.sparse matrix/array (csr, csc, coo, bsr, dia; lil and dok as csr).

        ``callback``: progress in the parts' array bytes, as for every transfer (``cottoncandy.progress``).
        """
        return sparse.upload_sparse_array(self.store, object_name, arr, choice=self._encode_choice(),
                                          threads=threads or self.settings.threads, verbose=self.verbose,
                                          callback=callback)

    @cleans_object_name
    def download_sparse_array(self, object_name: str, threads: int | None = None, *,
                              callback: ProgressCallback | None = None) -> Any:
        """The scipy.sparse matrix stored at ``object_name`` (a ``*_matrix``, as 0.4.0 returns)."""
        return sparse.download_sparse_array(self.store, object_name, threads or self.settings.threads,
                                            verbose=self.verbose, callback=callback)

    @cleans_object_name
    def dict2cloud(self, object_name: str, array_dict: dict[str, Any], acl: str | None = None,
                   verbose: bool = True, threads: int | None = None, *, callback: ProgressCallback | None = None,
                   **metadata: Any) -> None:
        """Upload a nested dict of arrays: each leaf a raw array at ``NAME/key[/subkey...]``.

        ``callback``: progress in the leaves' array bytes (``cottoncandy.progress``).
        """
        folders = groups.upload_tree(self.store, object_name, array_dict, acl=acl,
                                     metadata=string_metadata(metadata), choice=self._encode_choice(),
                                     threads=threads or self.settings.threads, verbose=verbose and self.verbose,
                                     callback=callback)
        for folder in folders:
            say(log, f'uploaded arrays in "{folder}"', verbose)

    @cleans_object_name
    def cloud2dict(self, object_root: str, verbose: bool = True, keys: Any = None, threads: int | None = None,
                   **metadata: Any) -> Any:
        """The arrays under ``object_root`` as a nested dict (``keys=`` picks some children)."""
        def report(message: str) -> None:
            say(log, message, verbose)

        result = groups.download_tree(self.store, object_root, keys, threads or self.settings.threads, report)
        if result is not None:
            report(f'Downloaded arrays in "{object_root}"')
        return result

    @cleans_object_name
    def cloud2dataset(self, object_root: str, **metadata: Any) -> Any:
        """An h5py-like view of ``object_root`` with ``keys()`` and ``load()``."""
        from .browser import S3Directory

        return S3Directory(object_root, interface=self)

