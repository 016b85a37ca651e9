"""Conditional writes: a write that takes effect only if the key is as its writer last saw it.

Why: two writers of one key (two mounts, a mount and a script) must not silently lose one's
update (issue 26 item 5). S3 answers a ``PutObject`` or ``CompleteMultipartUpload`` carrying
``If-None-Match: *`` with 412 when the key exists, and one carrying ``If-Match: ETAG`` with 412 when
the key's version is another (404 when it is gone); a conditional write racing another one may get
409 ``ConditionalRequestConflict``. Every store takes a ``WriteCondition`` on ``put``/``put_chunks``
and raises the loser's error made here: ``FileExistsError`` (EEXIST) when a new name was created
meanwhile, ``OSError(ESTALE)`` when the version seen at open was replaced or removed.

Not every endpoint honours the headers (moto 5.2.6 honours both on PutObject, only
``If-None-Match`` on CompleteMultipartUpload, neither on CopyObject's destination; older servers
ignore both). A store says what it
honours with ``ObjectStore.conditional_writes()`` (``ConditionalSupport``); S3 finds out with
``probe`` (a few requests on one private probe key, removed after), so a mount can say at mount
time which races it cannot catch, once, instead of losing updates quietly.

Invariant: the error raised for a lost race never says anything the server did not say: an
answer that is no refusal of the condition (a fault, a denial) passes through unchanged.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields

#: S3 error codes meaning "a condition of this write failed" (409: another conditional write raced it)
REFUSED_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


@dataclass(frozen=True)
class WriteCondition:
    """What must hold of the key when a write lands: absent (``create``) or at version ``if_match``.

    At most one of the two is set; ``None`` instead of a condition is an unconditional write.
    """

    #: the key must not exist (``If-None-Match: *``): a new name
    create: bool = False
    #: the key must be at this ETag (``If-Match``): an overwrite of the version seen at open
    if_match: str | None = None

    def __post_init__(self) -> None:
        if self.create and self.if_match is not None:
            raise ValueError("a write is either a create (If-None-Match) or an overwrite (If-Match), not both")

    def headers(self) -> dict[str, str]:
        """boto3's parameters for ``put_object``/``complete_multipart_upload``."""
        if self.create:
            return {"IfNoneMatch": "*"}
        return {"IfMatch": self.if_match} if self.if_match else {}


#: a new name: the write fails if the key was created meanwhile
CREATE = WriteCondition(create=True)


def overwrite(etag: str) -> WriteCondition:
    """The write fails unless the key is still at ``etag`` (the version seen at open)."""
    return WriteCondition(if_match=etag)


def lost_create(where: str) -> FileExistsError:
    """The error of a writer whose new name was created by someone else first."""
    return FileExistsError(errno.EEXIST, f"{where} was created by another writer meanwhile; this write was not "
                                         "stored (mount with --last-writer-wins to overwrite)")


def lost_overwrite(where: str) -> OSError:
    """The error of a writer whose version seen at open was replaced or removed meanwhile."""
    return OSError(errno.ESTALE, f"{where} was replaced or removed by another writer since it was opened; this "
                                 "write was not stored (mount with --last-writer-wins to overwrite)")


def lost_race(exc: BaseException) -> bool:
    """Whether ``exc`` is a loser's error made here (``lost_create``/``lost_overwrite``): EEXIST or
    ESTALE. A writer whose earlier attempt's answer was lost asks the store whether the object there
    is its own before it believes it (``S3Store._ours``, ``S3Store._complete``)."""
    return isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ESTALE)


def check(condition: WriteCondition | None, current_etag: str | None, where: str) -> None:
    """For stores that check conditions themselves (memory, local): raise the loser's error when
    ``condition`` does not hold of the key's ``current_etag`` (``None``: no such key)."""
    if condition is None:
        return
    if condition.create and current_etag is not None:
        raise lost_create(where)
    if condition.if_match is not None and (current_etag is None or
                                           current_etag.strip('"') != condition.if_match.strip('"')):
        raise lost_overwrite(where)


def refused(condition: WriteCondition | None, exc: OSError, code: str, where: str) -> OSError:
    """The error a conditional write that failed with ``exc`` (S3 error ``code``) raises: the
    loser's error when the server refused the condition, else ``exc`` itself."""
    if condition is None or (not condition.create and condition.if_match is None):
        return exc
    if code in REFUSED_CODES or (condition.if_match is not None and isinstance(exc, FileNotFoundError)):
        return lost_create(where) if condition.create else lost_overwrite(where)
    return exc


@dataclass(frozen=True)
class ConditionalSupport:
    """Which conditions a store honours: on a single write (``PutObject``) and on completing a
    multipart upload. What a store does not honour, a mount says at mount time."""

    put_create: bool = True
    put_overwrite: bool = True
    complete_create: bool = True
    complete_overwrite: bool = True
    #: on a server-side copy's destination (CopyObject: a rename through the mount)
    copy_create: bool = True
    copy_overwrite: bool = True
    #: on deleting a rename's old name only while it is at the version copied (each entry's ETag in
    #: DeleteObjects, else DeleteObject's If-Match)
    delete_if_match: bool = True

    @property
    def complete(self) -> bool:
        return all(getattr(self, field.name) for field in fields(self))

    def gaps(self) -> list[str]:
        """What is not honoured, in words for the mount-time log line (empty: everything)."""
        names = {"put_create": "If-None-Match on PutObject", "put_overwrite": "If-Match on PutObject",
                 "complete_create": "If-None-Match on CompleteMultipartUpload",
                 "complete_overwrite": "If-Match on CompleteMultipartUpload",
                 "copy_create": "If-None-Match on CopyObject", "copy_overwrite": "If-Match on CopyObject",
                 "delete_if_match": "the ETag condition on a delete (a rename's delete of the old name)"}
        return [text for field, text in names.items() if not getattr(self, field)]


#: what an in-process store (memory, local) honours: everything, checked under its own lock
FULL_SUPPORT = ConditionalSupport()
#: what is assumed of an endpoint that could not be probed: nothing
NO_SUPPORT = ConditionalSupport(False, False, False, False, False, False, False)


#: how a probe asks one conditional write of the store: (kind, key, condition) -> whether it was refused;
#: kind is "put" (one PutObject), "complete" (a one-part multipart upload), "copy" (a server-side copy
#: of ``key`` onto itself, its metadata replaced) or "delete" (``delete_versions`` at the If-Match's ETag)
ProbeWrite = Callable[[str, str, WriteCondition | None], bool]


def probe_key(prefix: str = ".ccfs-probe/") -> str:
    """A key no one else writes: the probe's (removed at the end of ``probe``)."""
    return f"{prefix}{uuid.uuid4().hex}"


def probe(write: ProbeWrite, key: str) -> ConditionalSupport:
    """Ask the store what it honours with conditional writes of ``key`` (which must not exist and is
    left for the caller to delete): create it, then try a create and a stale overwrite by each way
    of writing, and last a delete at a wrong version; a condition the server let through is one it ignores
    (8 requests and the delete)."""
    write("put", key, None)
    wrong = overwrite('"00000000000000000000000000000000"')
    return ConditionalSupport(put_create=write("put", key, CREATE), put_overwrite=write("put", key, wrong),
                              complete_create=write("complete", key, CREATE),
                              complete_overwrite=write("complete", key, wrong),
                              copy_create=write("copy", key, CREATE), copy_overwrite=write("copy", key, wrong),
                              delete_if_match=write("delete", key, wrong))  # last: an ignored one removes the key
