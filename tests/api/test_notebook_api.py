"""What notebook users meet, in this process: transfer callbacks, log records, HTML views, key completion.

The same features in a real Jupyter kernel: tests/notebook/test_kernel.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cottoncandy as cc
from tests.conftest import BUCKET

SECRET = "s3cr3t-value-never-shown"


class Recorder:
    """fsspec's Callback protocol, written out: what a transfer told it."""

    def __init__(self) -> None:
        self.size: int | None = None
        self.value = 0

    def set_size(self, size: int) -> None:
        self.size = size

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc

    def absolute_update(self, value: int) -> None:  # part of the protocol; transfers need not call it
        self.value = value


def _transfers(cci: Any, tmp_path: Path) -> dict[str, Any]:
    """Each transfer with a callback, run once: name -> (call, expected total bytes)."""
    arr = np.arange(300_000, dtype="<f8").reshape(1000, 300)
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 123_457)
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a").write_bytes(b"a" * 1000)
    (folder / "b").write_bytes(b"b" * 2345)
    npy_size = len(np.lib.format.header_data_from_array_1_0(arr)) and None  # size checked below
    return {
        "upload_raw_array": (lambda cb: cci.upload_raw_array("r", arr, compression=False, callback=cb), arr.nbytes),
        "download_raw_array": (lambda cb: cci.download_raw_array("r", callback=cb), arr.nbytes),
        "upload_npy_array": (lambda cb: cci.upload_npy_array("n", arr, callback=cb), npy_size),
        "download_npy_array": (lambda cb: cci.download_npy_array("n", callback=cb), npy_size),
        "upload_object": (lambda cb: cci.upload_object("o", b"y" * 5000, callback=cb), 5000),
        "download_object": (lambda cb: cci.download_object("o", callback=cb), 5000),
        "upload_from_file": (lambda cb: cci.upload_from_file(str(src), "f", callback=cb), 123_457),
        "download_to_file": (lambda cb: cci.download_to_file("f", str(tmp_path / "out.bin"), callback=cb), 123_457),
        "upload_dask_array": (lambda cb: cci.upload_dask_array("d", arr, axis=0, buffersize=5 * 2**20,
                                                               callback=cb), arr.nbytes),
        "upload_from_directory": (lambda cb: cci.upload_from_directory(str(folder), "tree", callback=cb), 3345),
        "download_directory": (lambda cb: cci.download_directory("tree", str(tmp_path / "back"), callback=cb), 3345),
    }


def test_every_transfer_reports_to_an_fsspec_callback_and_a_plain_callable(any_cci, tmp_path: Path) -> None:
    fsspec_callbacks = pytest.importorskip("fsspec.callbacks")
    for name, (call, total) in _transfers(any_cci, tmp_path).items():
        recorder, calls = Recorder(), []
        call(recorder)
        if total is None:  # .npy: the header's length is numpy's business
            total = any_cci.get_object_info("n").size
        assert (recorder.size, recorder.value) == (total, total), name
        call(lambda done, size, calls=calls: calls.append((done, size)))
        assert calls and calls[-1] == (total, total), name
        assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:])), name  # done only grows
        real = fsspec_callbacks.Callback()  # the library's own class, not our reading of it
        call(real)
        assert (real.size, real.value) == (total, total), name


def test_a_stream_of_unknown_length_reports_bytes_without_a_size(cci) -> None:  # type: ignore[no-untyped-def]
    import io

    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    recorder, calls = Recorder(), []
    cci.upload_object("u", Unseekable(b"z" * 70_000), callback=recorder)
    cci.upload_object("u", Unseekable(b"z" * 70_000), callback=lambda done, total: calls.append((done, total)))
    assert (recorder.size, recorder.value) == (None, 70_000) and calls[-1] == (70_000, None)
    assert cci.download_object("u") == b"z" * 70_000


def test_a_callback_of_the_wrong_kind_is_refused_before_any_request(cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="set_size.*relative_update.*fn\\(done, total\\)"):
        cci.upload_raw_array("never", np.ones(3), callback=42)
    assert not cci.exists_object("never")


def test_messages_are_log_records_and_printed_only_when_verbose(cci, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="cottoncandy")
    cci.dict2cloud("g.grp", {"a": np.ones(2)}, verbose=False)
    assert capsys.readouterr().out == ""
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("cottoncandy.api_arrays",
                                                                   'uploaded arrays in "g.grp"')]
    caplog.clear()
    cci.cloud2dict("g.grp")  # verbose=True, 0.4.0's default: printed as 0.4.0 did, and logged
    assert capsys.readouterr().out == 'Downloaded arrays in "g.grp"\n'
    assert [r.getMessage() for r in caplog.records] == ['Downloaded arrays in "g.grp"']


@pytest.fixture
def secret_cci(s3):  # type: ignore[no-untyped-def]
    """An interface made with an explicit secret key, and a small tree to show."""
    cci = cc.get_interface(BUCKET, ACCESS_KEY="AKIDNOTASECRET", SECRET_KEY=SECRET, endpoint_url=s3.endpoint_url,
                           verbose=False)
    cci.upload_raw_array("proj/sub-01.grp/model01", np.zeros((4, 5), "<f4"), compression="Zstd")
    cci.upload_raw_array("proj/sub-01.grp/w", np.zeros(7), compression=False)
    cci.upload_json("proj/notes.json", {"a": 1})
    return cci


def test_html_views_show_arrays_and_never_a_secret(secret_cci) -> None:  # type: ignore[no-untyped-def]
    b = secret_cci.get_browser()
    group = b["proj/sub-01.grp"]
    views = {
        "interface": secret_cci._repr_html_(),
        "root": b._repr_html_(),
        "folder": b.proj._repr_html_(),
        "group": group._repr_html_(),
        "dataset": group["model01"]._repr_html_(),
        "file": b.proj["notes.json"]._repr_html_(),
    }
    assert BUCKET in views["interface"] and secret_cci.settings.endpoint_url in views["interface"]
    assert "sub-01.grp/" in views["folder"] and "notes.json" in views["folder"]
    assert "group" in views["group"] and "(4, 5)" in views["group"] and "float32" in views["group"]
    assert "Zstd" in views["group"] and "(7,)" in views["group"] and "none" in views["group"]
    assert "dataset" in views["dataset"] and "(4, 5)" in views["dataset"] and "80 B" in views["dataset"]
    assert "file" in views["file"] and "dataset" not in views["file"]
    shown = [*views.values(), repr(secret_cci), repr(b), repr(group), repr(group["model01"])]
    assert not [v for v in shown if SECRET in v]


def test_html_view_escapes_names(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("h/<b>x&y", np.ones(2))
    view = cci.get_browser().h._repr_html_()
    assert "&lt;b&gt;x&amp;y" in view and "<b>x" not in view


def test_key_access_and_completion_use_stored_names(secret_cci) -> None:  # type: ignore[no-untyped-def]
    b = secret_cci.get_browser()
    assert b.proj._ipython_key_completions_() == ["notes.json", "sub-01.grp"]
    assert np.array_equal(b["proj"]["sub-01.grp"]["model01"](), np.zeros((4, 5), "<f4"))
    assert repr(b["proj/sub-01.grp"]) == repr(b.proj.sub_01_DOT_grp)
    with pytest.raises(KeyError, match="nothing"):
        b["proj/nothing"]


def test_displaying_a_node_costs_one_listing_not_a_request_per_probe(secret_cci, s3) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    formatter = InteractiveShell.instance().display_formatter
    node = secret_cci.get_browser().proj
    s3.clear_log()
    data, _ = formatter.format(node)
    assert "text/html" in data and "sub-01.grp/" in data["text/html"]
    # IPython probes _repr_png_, _repr_svg_, _repr_latex_...: none may become a HEAD or LIST of a child
    requests = [(r.method, r.query) for r in s3.requests()]
    assert len(requests) <= 4, requests
