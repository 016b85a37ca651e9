"""Cache folders are private and nothing in them is followed (issue 24, item 2).

Another local user is played by uid 12345 (``os.chown``/``os.lchown``: the tests run as root), and by a
child process that takes that uid (``os.setuid``) where the attack needs one: the user who made a folder
can replace what is in it, read it, or leave links in it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cottoncandy.cache.disk import HEADER, MAGIC, VERSION, DiskBackedFetch, DiskBlockStore, block_name
from cottoncandy.cache.folder import CacheFolder, shared_blocks
from cottoncandy.cache.metadata import FILENAME, MetadataStore, shared_shelf
from cottoncandy.cache.private import UnsafeCacheFolder, private_folder
from cottoncandy.config import Settings
from cottoncandy.storage.base import ObjectInfo
from cottoncandy.storage.s3 import S3Store

OTHER = 12345  # another local user
BLOCK = 4096
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="playing another user needs root (chown, setuid)")
pytestmark = needs_root


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def other_users_folder(path: Path, bits: int = 0o777) -> Path:
    path.mkdir()
    os.chown(path, OTHER, OTHER)
    os.chmod(path, bits)
    return path


def as_other_user(code: str) -> None:
    """Run ``code`` in a child process as uid/gid ``OTHER`` (it fails the test if the child fails)."""
    script = f"import os\nos.setgid({OTHER})\nos.setuid({OTHER})\n" + textwrap.dedent(code)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


# --- refused folders, one line each -------------------------------------------------------------

@pytest.fixture
def umask_022() -> Iterator[None]:
    """umask 022 for one test, then the worker's own again (it is per process: later tests inherit it)."""
    old = os.umask(0o022)
    yield
    os.umask(old)

def test_a_folder_another_user_made_writable_for_all_is_refused(tmp_path: Path) -> None:
    """The issue's case: another user made the cache folder (0777) first; it was used silently."""
    squatted = other_users_folder(tmp_path / "cache")
    with pytest.raises(UnsafeCacheFolder) as caught:
        CacheFolder(squatted)
    message = str(caught.value)
    assert "\n" not in message and str(squatted) in message and f"uid {OTHER}" in message
    assert "chown" in message and "choose another folder" in message
    assert not (squatted / "blocks").exists()  # nothing was made in it


def test_a_folder_of_ours_that_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "cache"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(UnsafeCacheFolder, match=r"writable by other users \(mode 0777\).*chmod go-w"):
        CacheFolder(shared)
    os.chmod(shared, 0o755)  # what the message says to do
    CacheFolder(shared).close()


def test_a_folder_of_another_user_is_refused_even_when_only_they_can_write(tmp_path: Path) -> None:
    theirs = other_users_folder(tmp_path / "cache", 0o755)
    with pytest.raises(UnsafeCacheFolder, match=f"owned by uid {OTHER}"):
        DiskBlockStore(theirs, 2**20)


def test_a_level_above_that_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    above = tmp_path / "shared"
    above.mkdir()
    os.chmod(above, 0o777)  # anyone could rename our folder away and put theirs in its place
    with pytest.raises(UnsafeCacheFolder, match=f"{above}, a folder above it, is writable by other users"):
        private_folder(above / "cache")
    assert not (above / "cache").exists()
    os.chmod(above, 0o1777)  # sticky, as /tmp: others cannot rename or remove what is ours
    assert mode(private_folder(above / "cache")) == 0o700


def test_a_link_another_user_made_is_not_followed(tmp_path: Path) -> None:
    """In a sticky folder anyone can make a link where our cache folder would be."""
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    ours = tmp_path / "ours"
    ours.mkdir(mode=0o700)
    link = sticky / "cache"
    link.symlink_to(ours)
    os.lchown(link, OTHER, OTHER)
    with pytest.raises(UnsafeCacheFolder, match=f"{link} is a symbolic link made by uid {OTHER}"):
        CacheFolder(link)
    os.lchown(link, 0, 0)  # a link of our own is followed, and the folder it names is checked
    assert CacheFolder(link).root == ours


def test_the_metadata_folder_does_not_follow_a_link_into_another_users_folder(tmp_path: Path) -> None:
    theirs = other_users_folder(tmp_path / "theirs", 0o755)
    home_cache = tmp_path / "home-cache" / "ccfs"
    home_cache.mkdir(parents=True)
    (home_cache / "metadata").symlink_to(theirs)
    with pytest.raises(UnsafeCacheFolder, match=rf"the folder {theirs} its link names\) is owned by uid {OTHER}"):
        MetadataStore(home_cache / "metadata")
    assert list(theirs.iterdir()) == []


def test_an_unusable_shelf_is_one_warning_and_no_shelf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    other_users_folder(tmp_path / "xdg")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    store = S3Store("bkt", Settings(endpoint_url="http://example.test:9000"), client=object())
    assert shared_shelf(store, tmp_path / "xdg" / "ccfs" / "metadata") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"uid {OTHER}" in warnings[0] and "not kept" in warnings[0]


def test_a_dangling_database_link_does_not_make_root_create_its_target(tmp_path: Path) -> None:
    folder = tmp_path / "meta"
    folder.mkdir(mode=0o700)
    target = tmp_path / "victim" / "file"
    target.parent.mkdir()
    (folder / FILENAME).symlink_to(target)
    (folder / f"{FILENAME}-wal").symlink_to(tmp_path / "victim" / "wal")
    shelf = MetadataStore(folder)
    shelf.remember("s3 e b", [ObjectInfo(key="k", size=4, etag='"e"', metadata={"shape": "4"})])
    assert not target.exists() and list(target.parent.iterdir()) == []
    for name in (FILENAME, f"{FILENAME}-wal", f"{FILENAME}-shm"):
        path = folder / name
        assert stat.S_ISREG(os.lstat(path).st_mode) and mode(path) == 0o600, name
    shelf.close()


# --- what is made is private ---------------------------------------------------------------------------
def test_folders_are_0700_and_files_0600(tmp_path: Path, umask_022: None) -> None:
    folder = CacheFolder(tmp_path / "new" / "cache")
    assert mode(tmp_path / "new") == 0o700 and mode(folder.root) == 0o700  # each level made
    blocks = folder.open_blocks(2**20)
    assert blocks is not None
    fetch = DiskBackedFetch(blocks, "s3 http://e b\0k", "e1", lambda s, b: b.__setitem__(slice(None), b"x" * len(b)),
                            lambda n: memoryview(bytearray(n)), BLOCK)
    fetch(0, 3 * BLOCK)
    blocks.flush()
    shelf = folder.open_metadata(2**20)
    assert shelf is not None
    shelf.remember("s3 e b", [ObjectInfo(key="k", size=4, etag='"e"', metadata={"shape": "4"})])
    files = [p for p in folder.root.rglob("*") if p.is_file()]
    folders = [p for p in folder.root.rglob("*") if p.is_dir()]
    assert any(p.parent.parent == blocks.root for p in files) and (blocks.root / "index.sqlite") in files
    assert {str(p): mode(p) for p in files} == {str(p): 0o600 for p in files}
    assert {str(p): mode(p) for p in folders} == {str(p): 0o700 for p in folders}
    folder.close()
    shelf.close()


def test_a_folder_of_an_older_version_is_emptied_and_made_private(tmp_path: Path) -> None:
    """Before: blocks named without the endpoint, folders 0755 and files 0644 any user could read."""
    root = tmp_path / "cache"
    blocks = root / "blocks"
    (blocks / "ab").mkdir(parents=True)
    old = blocks / "ab" / ("c" * 62)
    old.write_bytes(b"CCB1" + bytes(16) + b"old")
    os.chmod(blocks / "ab", 0o755)
    os.chmod(old, 0o644)
    db = sqlite3.connect(blocks / "index.sqlite")
    db.execute("CREATE TABLE entries (name TEXT PRIMARY KEY, size INTEGER NOT NULL, used REAL NOT NULL)")
    db.execute("CREATE TABLE totals (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL)")
    db.execute("INSERT INTO entries VALUES (?, 23, 0)", ("ab" + "c" * 62,))
    db.execute("INSERT INTO totals VALUES (0, 23)")
    db.commit()
    db.close()
    os.chmod(blocks / "index.sqlite", 0o644)
    folder = CacheFolder(root)
    store = folder.open_blocks(2**20)
    assert store is not None and store.usage == 0 and not old.exists()
    assert mode(blocks) == 0o700 and mode(blocks / "index.sqlite") == 0o600
    db = sqlite3.connect(blocks / "index.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    db.close()
    folder.close()


# --- what is read back is only ours ----------------------------------------------------------------
def forge_block(store: DiskBlockStore, name: str, data: bytes) -> Path:
    """A block file with a valid header and checksum, as anyone able to write there could make."""
    import xxhash

    path = store.path(name)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(HEADER.pack(MAGIC, xxhash.xxh3_64_intdigest(data), len(data)) + data)
    return path


@pytest.mark.parametrize("how", ["other-owner", "link"])
def test_a_block_file_that_is_not_ours_is_not_served(tmp_path: Path, how: str) -> None:
    store = DiskBlockStore(tmp_path / "blocks", 2**20)
    name = block_name("s3 http://e b\0k", "e1", 0, BLOCK)
    forged = forge_block(store, name, b"F" * BLOCK)
    if how == "other-owner":
        os.chown(forged, OTHER, OTHER)
    else:
        elsewhere = tmp_path / "elsewhere"
        forged.rename(elsewhere)
        forged.symlink_to(elsewhere)
    fetch = DiskBackedFetch(store, "s3 http://e b\0k", "e1", lambda s, b: b.__setitem__(slice(None), b"R" * len(b)),
                            lambda n: memoryview(bytearray(n)), BLOCK)
    assert bytes(fetch(0, BLOCK)) == b"R" * BLOCK
    assert store.corrupt == 1
    store.close()


def test_another_user_cannot_read_or_replace_what_a_mount_cached(tmp_path: Path) -> None:
    """A real other user (a child process with uid 12345) against a folder ccfs made."""
    base = Path(tempfile.mkdtemp(prefix="ccfs-private-", dir="/tmp"))  # pytest's tmp_path is 0700: the other
    os.chmod(base, 0o755)                                                # user could not even reach it
    try:
        other_user_meets_a_private_cache(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def other_user_meets_a_private_cache(base: Path) -> None:
    folder = CacheFolder(base / "cache")
    blocks = folder.open_blocks(2**20)
    assert blocks is not None
    identity = "s3 http://e b\0k"
    DiskBackedFetch(blocks, identity, "e1", lambda s, b: b.__setitem__(slice(None), b"R" * len(b)),
                    lambda n: memoryview(bytearray(n)), BLOCK)(0, BLOCK)
    blocks.flush()
    path = blocks.path(block_name(identity, "e1", 0, BLOCK))
    as_other_user(f"""
        assert os.listdir({str(base)!r}) == ['cache']  # the other user reaches the folder: the cache's modes stop it
        for attempt in (lambda: open({str(path)!r}, 'rb').read(), lambda: os.listdir({str(blocks.root)!r}),
                        lambda: open({str(path)!r} + '.x', 'wb'), lambda: os.rename({str(path)!r}, '/tmp/x')):
            try:
                attempt()
            except PermissionError:
                continue
            raise SystemExit('the other user got in')
    """)
    folder.close()


def test_the_librarys_block_folder_is_checked_too(tmp_path: Path) -> None:
    squatted = other_users_folder(tmp_path / "lib-cache")
    with pytest.raises(UnsafeCacheFolder, match=f"uid {OTHER}"):
        shared_blocks(squatted, 2**20)
