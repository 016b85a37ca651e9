"""The exceptions cottoncandy raises where 0.4.0 raised something else than the precise built-in.

Rule (README, compatibility): where 0.4.0 raised, we raise an instance of 0.4.0's type; the precise
built-in comes first, so new code catches ``FileNotFoundError`` and old code catching 0.4.0's
``RuntimeError``/``AssertionError``/``KeyError``/``AttributeError`` keeps working. Each class is raised
at the root (the storage error table, the format checks), never by wrappers around single calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


def python_keyword(option: str) -> str:
    """How the library names an option: ``overwrite`` -> ``overwrite=True``."""
    return f"{option}=True"


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

    def render(self, spell: Callable[[str], str] = python_keyword) -> str:
        return f"{self.problem}; pass {spell(self.option)} {self.purpose}"


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


class NotARawArray(ValueError, KeyError):
    """An object without raw-array metadata read as one (0.4.0: ``KeyError`` on the missing key)."""

    __str__ = Exception.__str__  # KeyError would quote the whole message


class NotAnArray(TypeError, AttributeError):
    """An argument that is not a numpy array where one is needed (0.4.0: ``AttributeError``)."""


__all__ = ["BadPartSize", "IsAFolder", "NeedsOptionWarning", "NotARawArray", "NotAnArray", "ObjectExists",
           "ObjectNotFound", "OptionAdvice", "ReservedMetadataKey", "advised"]
