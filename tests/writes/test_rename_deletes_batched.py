"""A folder rename deletes its old keys in one ``DeleteObjects`` whose entries carry the ETag copied
(``S3Store.delete_versions``), not one ``DeleteObject`` per key; a member another writer replaced
after its copy is still left (its entry refused for its condition), and the rename is ``ESTALE``.
Against the local S3 server (moto honours per-object ETags in DeleteObjects), requests counted by
the fault proxy in front of it."""

from __future__ import annotations

from cottoncandy.config import Settings
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.writes.tree_changes import TreeChanges
from tests.conftest import BUCKET

MEMBERS = 30


def store_at(endpoint_url: str) -> S3Store:
    return S3Account(Settings(endpoint_url=endpoint_url)).store(BUCKET)


def test_a_folder_rename_deletes_its_old_keys_in_one_request(s3, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    store = store_at(fault_proxy.endpoint_url)
    for n in range(MEMBERS):
        store.put(f"d/x{n:02d}.bin", b"member %d" % n)
    fault_proxy.reset_counts()
    TreeChanges(store, Namespace(store)).rename("d", "e")
    counts = fault_proxy.counts
    assert counts.get("DELETE", 0) == 0 and counts["POST"] == 1  # one DeleteObjects, no DeleteObject
    direct = store_at(s3.endpoint_url)
    assert sorted(info.key for info in direct.iter_objects()) == [f"e/x{n:02d}.bin" for n in range(MEMBERS)]


def test_a_member_replaced_after_its_copy_is_left_by_the_batch(s3) -> None:  # type: ignore[no-untyped-def]
    store = store_at(s3.endpoint_url)
    for n in range(3):
        store.put(f"d/x{n}.bin", b"member %d" % n)
    versions = {info.key: info.etag for info in store.iter_objects("d/")}
    store.put("d/x1.bin", b"theirs")  # after the version listed was copied
    assert store.delete_versions(versions) == ["d/x1.bin"]
    assert sorted(info.key for info in store.iter_objects()) == ["d/x1.bin"] and store.get("d/x1.bin") == b"theirs"


def test_an_endpoint_refusing_the_etag_field_is_asked_key_by_key(s3) -> None:  # type: ignore[no-untyped-def]
    """A DeleteObjects refused whole for its ETag field (MalformedXML, as an endpoint without
    per-object conditions answers) falls back to one conditional DeleteObject per key."""
    store = store_at(s3.endpoint_url)
    for n in range(3):
        store.put(f"d/x{n}.bin", b"member %d" % n)
    versions = {info.key: info.etag for info in store.iter_objects("d/")}
    store.put("d/x2.bin", b"theirs")
    refused: list[str] = []

    def malformed(params, **_) -> None:  # type: ignore[no-untyped-def]
        if any("ETag" in entry for entry in params["Delete"]["Objects"]):
            refused.append("DeleteObjects")
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "MalformedXML", "Message": "The XML you provided was not "
                                         "well-formed"}}, "DeleteObjects")

    store.client.meta.events.register("provide-client-params.s3.DeleteObjects", malformed)
    assert store.delete_versions(versions) == ["d/x2.bin"]
    assert refused == ["DeleteObjects"]  # asked once: the next deletes go key by key at once
    assert sorted(info.key for info in store.iter_objects()) == ["d/x2.bin"]
    again = store.put("d/x3.bin", b"another")
    assert store.delete_versions({"d/x3.bin": again.etag}) == []
    assert refused == ["DeleteObjects"]  # not asked again
    assert sorted(info.key for info in store.iter_objects()) == ["d/x2.bin"]
