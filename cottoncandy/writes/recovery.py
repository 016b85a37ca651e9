"""What a ``--rw`` mount does once, when it starts: clean up after a daemon killed mid-upload, and say
which lost updates the store cannot catch (issue 26 items 4, 5).

- ``open_journal``: aborts the unfinished multipart uploads the same user's earlier daemons of the same
  bucket recorded and did not end (``storage.upload_journal``: only ids they wrote down, never another
  writer's), then records this mount's own, in ``FOLDER/uploads`` (``--cache-dir``, else
  ``$XDG_CACHE_HOME/ccfs``; private, 0700). A store with no change scope (memory) keeps no journal.
- ``say_conditions``: one log line at mount time naming the conditional writes the endpoint ignores
  (``storage.conditions``: found by a probe of a few requests), or that ``--last-writer-wins`` turned
  them off; so a lost update the mount cannot refuse is a documented gap, not a surprise.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..cache.private import private_folder, private_subfolder
from ..storage import upload_journal
from ..storage.base import ObjectStore
from ..storage.conditions import ConditionalSupport
from ..storage.upload_journal import UploadJournal

log = logging.getLogger("cottoncandy.writes")


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/ccfs`` (``~/.cache/ccfs`` without it): where the journal lives without ``--cache-dir``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ccfs"


def open_journal(store: ObjectStore, folder: str | os.PathLike[str] | None = None) -> UploadJournal | None:
    """Recover what earlier daemons left, then record this mount's uploads (see the module); ``None``
    when the store has no change scope or the folder cannot be made private (logged)."""
    scope = store.change_scope()
    if scope is None:
        return None
    try:
        uploads = private_subfolder(private_folder(folder or default_folder()), "uploads")
        aborted = upload_journal.recover(uploads, scope, store.abort_upload)
        if aborted:
            log.info("%s: aborted %d multipart upload(s) an earlier daemon left unfinished", store.describe(), aborted)
        journal = UploadJournal(uploads, scope)
    except OSError as exc:
        log.warning("%s: no record of this mount's uploads (a daemon killed mid-upload leaves parts until the "
                    "bucket's lifecycle rule removes them): %s", store.describe(), exc)
        return None
    store.record_uploads(journal)
    return journal


def say_conditions(store: ObjectStore, last_writer_wins: bool) -> ConditionalSupport | None:
    """Log once which lost updates this mount cannot refuse; the store's support (``None`` when off)."""
    if last_writer_wins:
        log.info("%s: --last-writer-wins: writes carry no condition; a file created or changed meanwhile by "
                 "another writer is overwritten", store.describe())
        return None
    support = store.conditional_writes()
    gaps = support.gaps()
    if gaps:
        log.warning("%s: the store ignores %s: such a write by another writer meanwhile is overwritten, not "
                    "refused (EEXIST/ESTALE)", store.describe(), " and ".join(gaps))
    return support
