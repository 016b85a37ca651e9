"""The S3 store sends every write condition it is given, whether or not the endpoint honours it
(issue 26 item 5): a staged overwrite's commit carries ``If-Match`` of the version seen at open on its
CompleteMultipartUpload (or PutObject) and ``CopySourceIfMatch`` on each UploadPartCopy; a new name
``If-None-Match: *``; ``--last-writer-wins`` none. The requests are seen as botocore sends them to
the local S3 server (moto 5.2.6 ignores If-Match on Complete and CopySourceIfMatch, so what it does
with them proves nothing here: what is sent is checked)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cottoncandy.config import Settings
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import MIN_PART, S3Store
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.staged_kind import StagedFiles
from cottoncandy.writes.staging import StagingArea
from cottoncandy.writes.writable import StoreWriter
from tests.conftest import BUCKET

MiB = 2**20


def recorded(store: S3Store) -> list[tuple[str, dict[str, str]]]:
    """(operation, headers) of every request the store's client sends from now on."""
    sent: list[tuple[str, dict[str, str]]] = []

    def seen(request: Any, event_name: str, **_: Any) -> None:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        sent.append((event_name.rsplit(".", 1)[-1], headers))

    store.client.meta.events.register("before-send.s3", seen)
    return sent


def headers_of(sent: list[tuple[str, dict[str, str]]], operation: str) -> list[dict[str, str]]:
    return [headers for name, headers in sent if name == operation]


def staged_writer(store: S3Store, tmp_path: Path, **settings: Any) -> StoreWriter:
    staging = StagedFiles(store, StagingArea(tmp_path))
    return StoreWriter(store, Namespace(store, ttl=600, folders_ahead=0), WriteSettings(**settings), staging=staging)


@pytest.mark.parametrize("last_writer_wins", [False, True])
def test_a_staged_overwrite_sends_if_match_on_complete_and_copies(s3, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                  last_writer_wins: bool) -> None:
    store = S3Account(Settings(endpoint_url=s3.endpoint_url, mpu_chunksize=MIN_PART)).store(BUCKET)
    body = os.urandom(12 * MiB)
    seen = store.put("big.bin", body)
    writer = staged_writer(store, tmp_path, last_writer_wins=last_writer_wins)
    handle = writer.open("big.bin", os.O_RDWR, writer.namespace.lookup)  # staged: changed in place
    writer.write(handle, 6 * MiB, b"changed")
    sent = recorded(store)
    writer.fsync(handle, False)
    writer.release(handle)
    writer.close()
    copies = headers_of(sent, "UploadPartCopy")
    completes = headers_of(sent, "CompleteMultipartUpload")
    assert len(copies) == 2 and len(completes) == 1  # [0, 6 MiB) and the tail copied, the changed part sent
    assert all(h["x-amz-copy-source-if-match"].strip('"') == seen.etag.strip('"') for h in copies)
    if last_writer_wins:
        assert "if-match" not in completes[0] and "if-none-match" not in completes[0]
    else:
        assert completes[0]["if-match"].strip('"') == seen.etag.strip('"')
    assert store.get("big.bin") == body[: 6 * MiB] + b"changed" + body[6 * MiB + 7 :]


def test_a_staged_new_name_sends_if_none_match(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET)
    writer = staged_writer(store, tmp_path)
    handle = writer.create("new.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    writer.write(handle, 10, b"tail")  # out of order: staged
    writer.write(handle, 0, b"head")
    sent = recorded(store)
    writer.fsync(handle, False)
    writer.release(handle)
    writer.close()
    puts = headers_of(sent, "PutObject")
    assert len(puts) == 1 and puts[0]["if-none-match"] == "*"
    assert store.get("new.bin") == b"head" + bytes(6) + b"tail"


def test_the_probe_finds_what_the_local_server_ignores(s3) -> None:  # type: ignore[no-untyped-def]
    """The mount-time probe asks each way of writing, CopyObject's destination too, and finds what
    moto 5.2.6 ignores: If-Match on Complete and both conditions on CopyObject (the line a --rw mount
    logs names them); the probe key is removed."""
    store = S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET)
    sent = recorded(store)
    support = store.conditional_writes()
    assert support.put_create and support.put_overwrite and support.complete_create
    assert support.gaps() == ["If-Match on CompleteMultipartUpload", "If-None-Match on CopyObject",
                              "If-Match on CopyObject"]
    copies = headers_of(sent, "CopyObject")
    assert [h.get("if-none-match") for h in copies] == ["*", None] and copies[1]["if-match"]
    assert list(store.iter_objects("")) == []
