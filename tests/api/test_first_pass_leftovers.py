"""The first trust pass's leftovers (issue 24, item 7), library side: keys that cannot be files skip
only themselves, pickles and reprs carry no secret, ``*`` matches one non-empty level."""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

import cottoncandy as cc
from cottoncandy.config import Settings
from cottoncandy.files import listing
from cottoncandy.files.transfers import SkippedObject
from cottoncandy.storage import LocalStore, MemoryStore, S3Account
from cottoncandy.storage.filenames import NotAFileName
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET

LONG = "x" * 300  # a path part longer than the 255 bytes of NAME_MAX
SECRET = "s3cr3t-never-in-a-pickle"

# --- keys that cannot be files ----------------------------------------------------------------


def _skips(caught: list[warnings.WarningMessage]) -> dict[str, str]:
    return {w.message.key: w.message.reason for w in caught if isinstance(w.message, SkippedObject)}


def test_download_directory_skips_only_the_keys_no_file_can_have(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = {f"d/{LONG}": "300 bytes", f"d/sub/{LONG}/f": "300 bytes", "d/.": "'.' part", "d/..": "'..' part",
           "d/a/./b": "'.' part", "d/nul\x00x": "NUL", "d/e//f": "empty part"}
    good = ["d/a1", "d/sub/b2", "d/z9"]
    for key in [*bad, *good]:
        cci.store.put(key, key.encode())
    cci.store.put("d/marker/", b"")  # a folder marker: a folder, no warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = cci.download_directory("d", str(tmp_path / "out"))
    skipped = _skips(caught)
    assert sorted(skipped) == sorted(bad)
    for key, why in bad.items():
        assert why in skipped[key], (key, skipped[key])
    assert sorted(written) == sorted(str(tmp_path / "out" / k[2:]) for k in good)
    for key in good:
        assert (tmp_path / "out" / key[2:]).read_bytes() == key.encode()
    assert (tmp_path / "out" / "marker").is_dir()
    summary = [str(w.message) for w in caught if not isinstance(w.message, SkippedObject)]
    assert len(summary) == 1 and "downloaded 3 of 10 objects" in summary[0] and "d/." in summary[0]
    for path in tmp_path.rglob("*"):  # nothing outside the target
        assert path == tmp_path / "out" or (tmp_path / "out") in path.parents


def test_download_directory_skips_a_name_the_filesystem_refuses_while_writing(
        cci, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A name refused only when written (a filesystem with shorter names below the target): skipped too."""
    from cottoncandy.files import transfers

    for key in ("d/a", "d/b", "d/c"):
        cci.store.put(key, b"x")
    real = transfers.write_object_to_file

    def refuse_b(store, key, path, progress, info=None):  # type: ignore[no-untyped-def]
        if key == "d/b":
            raise OSError(36, "File name too long", path)
        return real(store, key, path, progress, info)

    monkeypatch.setattr(transfers, "write_object_to_file", refuse_b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = cci.download_directory("d", str(tmp_path / "out"))
    assert sorted(os.path.basename(p) for p in written) == ["a", "c"]
    assert "refuses its name" in _skips(caught)["d/b"]


def test_the_local_store_refuses_keys_no_file_can_hold(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "b")
    for key in (LONG, f"a/{LONG}/b", "a//b", "m/", ".", "a/../b", "n\x00ul", "x" * 250):
        with pytest.raises(NotAFileName) as refused:
            store.put(key, b"x")
        assert isinstance(refused.value, ValueError) and refused.value.reason
    store.put("x" * (255 - len(".meta.json")), b"fits with its sidecar")
    assert not any(p.name.startswith(".cc-tmp-") for p in (tmp_path / "b").iterdir())


# --- no secret in pickles or reprs ------------------------------------------------------------


def test_pickles_and_reprs_carry_no_secret(s3: LocalS3Server, tmp_path: Path) -> None:
    cci = cc.get_interface(BUCKET, ACCESS_KEY="testing", SECRET_KEY=SECRET, endpoint_url=s3.endpoint_url,
                           verbose=False)
    cci.upload_object("k", b"value")
    settings = cci.settings
    assert settings.secret_key == SECRET
    objects = {"settings": settings, "interface": cci, "store": cci.store, "account": cci.account,
               "spec": cci.store.spec(), "token-less settings": replace(settings, access_key=None, secret_key=None),
               "account of settings": S3Account(settings), "store of settings": S3Account(settings).store(BUCKET),
               "local interface": cc.get_interface(str(tmp_path / "l"), backend="local", verbose=False)}
    for name, obj in objects.items():
        blob = pickle.dumps(obj)
        assert SECRET.encode() not in blob, name
        assert SECRET not in repr(obj) and SECRET not in str(obj), name
        assert SECRET not in getattr(obj, "_repr_html_", lambda: "")(), name
    # in this process the pickles bring the credentials back (the token), and work
    back = pickle.loads(pickle.dumps(cci))
    assert back.settings.secret_key == SECRET and back.download_object("k") == b"value"
    assert pickle.loads(pickle.dumps(settings)) is settings


def test_pickled_settings_elsewhere_have_no_keys(s3: LocalS3Server) -> None:
    """Another process does not know the token: the settings come without keys (its own chain finds them)."""
    import subprocess
    import sys

    settings = Settings(endpoint_url=s3.endpoint_url, access_key="a", secret_key=SECRET, threads=3)
    code = ("import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); "
            "print(s.secret_key, s.access_key, s.threads, s.endpoint_url)")
    result = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(settings), capture_output=True,
                            timeout=120, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert result.stdout.decode().split() == ["None", "None", "3", s3.endpoint_url]


# --- '*' is one non-empty level -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["s3", "memory"])
def test_a_star_matches_one_non_empty_level(kind: str, request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("s3_store") if kind == "s3" else MemoryStore()
    for key in ("a//x", "a/b/x", "c/", "c/d", "e/f//g"):
        store.put(key, b"1")
    assert listing.glob(store, "a/*/x") == ["a/b/x"]
    assert listing.ls(store, "a/*/x") == ["a/b/x"]
    assert listing.glob(store, "c/*") == ["c/d"]  # not the folder marker 'c/' (an empty last part)
    assert listing.glob(store, "e/*/*/g") == []
    assert listing.glob(store, "**/x") == ["a/b/x"]
    assert listing.glob(store, "a/**") == ["a//x", "a/b/x"]  # a whole subtree: every key under a/
