"""The exceptions cottoncandy raises where 0.4.0 raised something else than the precise built-in.

Rule (README, compatibility): where 0.4.0 raised, we raise an instance of 0.4.0's type; the precise
built-in comes first, so new code catches ``FileNotFoundError`` and old code catching 0.4.0's
``RuntimeError``/``AssertionError``/``KeyError``/``AttributeError`` keeps working. Each class is raised
at the root (the storage error table, the format checks), never by wrappers around single calls.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


#: how a face names an option: (library keyword, placeholder of its value or None for a flag) -> text
Spelling = Callable[[str, "str | None"], str]


def python_keyword(option: str, value: str | None = None) -> str:
    """How the library names an option: ``overwrite`` -> ``overwrite=True``; ``endpoint_url`` with the
    placeholder ``URL`` -> ``endpoint_url='URL'``."""
    return f"{option}=True" if value is None else f"{option}={value!r}"


@dataclass(frozen=True)
class OptionAdvice:
    """An error's (or warning's) remedy, kept apart from its sentence: which option makes the call succeed.

    Each face names the option its own way: the library says ``pass overwrite=True to replace``, the
    command line ``pass --overwrite to replace`` (``ccfs/commands.py``), from the same ``OptionAdvice``,
    so no face rewrites another face's wording.
    """

    problem: str  # what is wrong: "s3://b/k already exists"
    option: str  # the library keyword that changes it: "overwrite"
    purpose: str  # what passing it does: "to replace"
    value: str | None = None  # a placeholder for the option's value ("URL"); None: a flag

    def render(self, spell: Spelling = python_keyword) -> str:
        return f"{self.problem}; pass {spell(self.option, self.value)} {self.purpose}"


def advised(exc: E, advice: OptionAdvice) -> E:
    """``exc`` carrying ``advice`` (``exc.advice``); its message should be ``advice.render()``."""
    exc.advice = advice  # type: ignore[attr-defined]
    return exc


class NeedsOptionWarning(UserWarning):
    """A call that did nothing because an option was missing (``rm`` of a folder without ``recursive``)."""

    def __init__(self, advice: OptionAdvice):
        super().__init__(advice.render())
        self.advice = advice


class ObjectNotFound(FileNotFoundError, RuntimeError, AssertionError):
    """A missing object or bucket. 0.4.0 raised ``cottoncandy.backend.FileNotFoundError`` (a
    ``RuntimeError``) from ``exists_object(raise_err=True)`` and every ``download_*``, ``IOError`` from
    ``download_stream`` and ``AssertionError`` for the sources of ``download_to_file``,
    ``upload_from_file``, ``cp`` and ``mv``."""


class ObjectExists(FileExistsError, AssertionError):
    """``cp``/``mv`` onto an existing key without ``overwrite=True`` (0.4.0: ``AssertionError``)."""


class IsAFolder(IsADirectoryError, AssertionError):
    """``cp``/``mv`` of a folder without ``recursive=True`` (0.4.0: ``AssertionError``, no such object)."""


class ReservedMetadataKey(ValueError, AssertionError):
    """Extra metadata named ``dtype``/``shape``/``order``/``compression`` (0.4.0: ``AssertionError``)."""


class BadPartSize(ValueError, AssertionError):
    """A dask ``buffersize`` S3 cannot take (under 5 MiB, too many parts; 0.4.0: ``AssertionError``)."""


class InvalidBucketName(OSError, ValueError):
    """A bucket name no S3 store takes (checked before any request), or one the server refused: a bad
    argument (``ValueError``) that is also a store failure (``OSError``, ``EINVAL``) for code catching those."""


class NotARawArray(ValueError, KeyError):
    """An object without raw-array metadata read as one (0.4.0: ``KeyError`` on the missing key)."""

    __str__ = Exception.__str__  # KeyError would quote the whole message


class FolderNotAnObject(ObjectNotFound, IsADirectoryError):
    """An object read where the local backend holds a folder (0.4.0's local backend: ``IsADirectoryError``
    from ``open``; on S3 there is no object of that name: ``ObjectNotFound``)."""


class WrongArgumentType(TypeError, AttributeError):
    """An argument of the wrong type where 0.4.0 failed looking up one of its attributes
    (``AttributeError``: ``.nbytes`` of an array, ``.tocsr`` of a sparse matrix, ``.items`` of a dict)."""


class NotAnArray(WrongArgumentType):
    """An argument that is not a numpy array where one is needed (0.4.0: ``AttributeError``)."""


class NotASparseMatrix(WrongArgumentType):
    """``upload_sparse_array`` of something that is not a scipy.sparse matrix or array (0.4.0:
    ``AttributeError``, ``'numpy.ndarray' object has no attribute 'tocsr'``)."""


class NotADict(WrongArgumentType):
    """``dict2cloud`` of something that is not a dict (0.4.0: ``AttributeError`` on ``.items``)."""


class NotABinaryBody(TypeError, ValueError, AttributeError):
    """``upload_object`` of a body that is neither bytes-like nor a binary file object (0.4.0 on S3:
    boto3's ``ValueError``, ``Fileobj must implement read``; on the local backend ``AttributeError``)."""


class NotAPath(TypeError, ValueError, AssertionError):
    """A local path argument that is not a ``str`` or ``os.PathLike`` naming one (``upload_from_file(5)``,
    bytes, an array...). 0.4.0 failed on S3 with ``AssertionError`` (``os.path.exists`` was false) or
    boto3's ``ValueError`` (``Filename must be a string or a path-like object``), on the local backend
    with ``TypeError`` (``os.path.join``)."""


class BadManifest(ValueError, KeyError, TypeError):
    """A dask or sparse ``metadata.json`` without the keys the call reads, or not a JSON object (0.4.0:
    ``KeyError`` looking the key up, ``TypeError`` indexing a list or string with it)."""

    __str__ = Exception.__str__  # KeyError would quote the whole message


class NotAPickle(pickle.UnpicklingError, ValueError):
    """``download_pickle`` of an object that is not a pickle (0.4.0: ``pickle.UnpicklingError``)."""


class TruncatedPickle(NotAPickle, EOFError):
    """``download_pickle`` of an empty object or a pickle that ends early (0.4.0: ``EOFError``,
    ``Ran out of input``, where ``pickle.loads`` raised that rather than ``UnpicklingError``)."""


class EmptyNpyFile(ValueError, EOFError):
    """``download_npy_array`` of an empty object (0.4.0: ``EOFError`` from ``np.load``,
    ``No data left in file``)."""


__all__ = ["BadManifest", "BadPartSize", "EmptyNpyFile", "FolderNotAnObject", "InvalidBucketName", "IsAFolder",
           "NeedsOptionWarning", "NotABinaryBody", "NotADict",
           "NotAPath", "NotAPickle", "NotARawArray", "NotASparseMatrix", "NotAnArray",
           "ObjectExists", "ObjectNotFound", "OptionAdvice", "ReservedMetadataKey", "TruncatedPickle",
           "WrongArgumentType", "advised"]
