"""A daemon killed mid-upload leaves no orphan parts after the next mount (issue 26 item 4): its
journal names exactly its own unfinished uploads, and only a journal whose writer is gone is read."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from cottoncandy.storage import upload_journal
from cottoncandy.storage.upload_journal import UploadJournal, read_unfinished


def _uploads(store: Any) -> set[str]:
    return {u["UploadId"] for u in store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])}


def test_journal_records_started_and_ended(tmp_path: Path) -> None:
    journal = UploadJournal(tmp_path, "s3 aws b")
    journal.started("a/x", "id1")
    journal.started("a/y", "id2")
    journal.ended("id1")
    assert read_unfinished(journal.path) == {"id2": "a/y"} == journal.unfinished()
    with journal.path.open("ab") as fh:  # a line cut by a crash is skipped
        fh.write(b'{"start": "id3", "ke')
    assert read_unfinished(journal.path) == {"id2": "a/y"}
    assert oct(journal.path.stat().st_mode & 0o777) == "0o600"
    journal.close()
    assert journal.path.exists()  # an upload is still open: kept for the next mount


def test_a_live_daemons_journal_is_never_read(tmp_path: Path) -> None:
    live = UploadJournal(tmp_path, "s3 aws b")
    live.started("k", "theirs")
    aborted: list[tuple[str, str]] = []
    assert upload_journal.recover(tmp_path, "s3 aws b", lambda k, u: aborted.append((k, u))) == 0
    assert aborted == [] and live.path.exists()
    live.ended("theirs")
    live.close()
    assert not live.path.exists()  # a clean end removes it


def _killed_writer(folder: str, bucket: str, settings: Any, started: Any) -> None:
    """A daemon's writer that starts an upload, sends a part, and is killed before completing it."""
    from cottoncandy.storage.s3 import S3Store

    store = S3Store(bucket, settings)
    store.record_uploads(UploadJournal(folder, store.change_scope() or ""))
    upload_id = store._create_upload("big/array", {"Metadata": {"dtype": "<f8"}}, "write")
    store.client.upload_part(Bucket=bucket, Key="big/array", UploadId=upload_id, PartNumber=1, Body=b"x" * 100)
    started.set()
    signal.pause()


def test_next_mount_aborts_a_killed_daemons_upload_and_no_other(s3_store: Any, tmp_path: Path) -> None:
    others = s3_store.client.create_multipart_upload(Bucket=s3_store.bucket, Key="big/array")["UploadId"]
    scope = s3_store.change_scope()
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    child = ctx.Process(target=_killed_writer, args=(str(tmp_path), s3_store.bucket, s3_store.settings, started))
    child.start()
    try:
        assert started.wait(30)
        assert len(_uploads(s3_store)) == 2
        assert upload_journal.recover(tmp_path, scope, s3_store.abort_upload) == 0  # alive: untouched
    finally:
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
    assert len(_uploads(s3_store)) == 2  # the killed one is still there until the next mount
    other_scope = upload_journal.recover(tmp_path, "s3 elsewhere bucket", s3_store.abort_upload)
    assert other_scope == 0  # another bucket's mount reads none of it
    assert upload_journal.recover(tmp_path, scope, s3_store.abort_upload) == 1
    assert _uploads(s3_store) == {others}  # another writer's upload of the same key is kept
    assert not list(tmp_path.glob("uploads-*"))
    assert not s3_store.exists("big/array")


def test_completed_and_failed_uploads_leave_the_journal_empty(s3_store: Any, tmp_path: Path) -> None:
    journal = UploadJournal(tmp_path, s3_store.change_scope())
    s3_store.record_uploads(journal)
    try:
        s3_store.put_chunks("done", iter([b"a" * 2**20] * 11))  # a multipart upload, completed
        assert s3_store.head("done").size == 11 * 2**20

        def failing() -> Any:
            yield b"b" * 6 * 2**20
            yield b"b" * 6 * 2**20
            raise RuntimeError("the writer failed mid-upload")

        with pytest.raises(RuntimeError):
            s3_store.put_chunks("failed", failing())  # aborted
        assert journal.unfinished() == {} and read_unfinished(journal.path) == {}
        assert _uploads(s3_store) == set()
    finally:
        s3_store.record_uploads(None)
        journal.close()
    assert not journal.path.exists()
