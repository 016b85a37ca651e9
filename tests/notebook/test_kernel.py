"""cottoncandy in a real Jupyter kernel (ipykernel, driven by jupyter_client as a notebook server drives it).

One kernel for the module (starting one takes seconds); each test writes its own data and names.
The module runs on one xdist worker (``xdist_group``), so the suite starts one kernel, not one per worker.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns about its path migration otherwise
jupyter_manager = pytest.importorskip("jupyter_client.manager")
pytest.importorskip("ipykernel")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402

from tests.conftest import BUCKET  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.xdist_group("kernel")]
TIMEOUT = 120


class Kernel:
    def __init__(self, client: Any):
        self.client = client

    def run(self, code: str) -> list[dict[str, Any]]:
        """Execute ``code``; the iopub messages it caused (stream, display_data, execute_result, error)."""
        messages: list[dict[str, Any]] = []
        reply = self.client.execute_interactive(code, timeout=TIMEOUT, output_hook=messages.append,
                                                allow_stdin=False)
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        assert reply["content"]["status"] == "ok" and not errors, (reply["content"], errors)
        return messages

    def complete(self, code: str) -> list[str]:
        msg_id = self.client.complete(code, len(code))
        reply = self.client.get_shell_msg(timeout=TIMEOUT)
        assert reply["parent_header"]["msg_id"] == msg_id
        return list(reply["content"]["matches"])


@pytest.fixture(scope="module")
def kernel(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    # our own kernelspec: this interpreter (a 'python3' spec found on the machine may be another Python)
    kernels = tmp_path_factory.mktemp("kernels")
    (kernels / "cc-test").mkdir()
    (kernels / "cc-test" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cottoncandy tests", "language": "python"}))
    manager = jupyter_manager.KernelManager(kernel_name="cc-test",
                                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint_url}
    manager.start_kernel(env=env, cwd=str(Path(__file__).resolve().parents[2]))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=TIMEOUT)
        kernel = Kernel(client)
        kernel.run("import numpy as np, cottoncandy as cc")
        yield kernel
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _streams(messages: list[dict[str, Any]], name: str) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == name)


def test_progress_bar_appears_in_the_notebook(kernel: Kernel, s3: Any) -> None:
    messages = kernel.run(
        f"cci = cc.get_interface({BUCKET!r})\n"  # verbose=True: 0.4.0's default
        "import cottoncandy.progress as progress\n"
        "progress.MIN_BYTES = 0  # a bar for a small array too\n"
        "cci.upload_raw_array('bar/x', np.zeros(200_000), compression=False)\n"
        "real_bar, progress._tqdm_class = progress._tqdm_class, lambda: None  # as without tqdm: our line\n"
        "try:\n"
        "    y = cci.download_raw_array('bar/x')\n"
        "finally:\n"
        "    progress._tqdm_class = real_bar\n")
    assert "Current bucket: test-bucket" in _streams(messages, "stdout")
    widgets = [m for m in messages if m["msg_type"] == "display_data"
               and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    err = _streams(messages, "stderr")
    assert widgets or ("upload bar/x: 100%" in err and "1.53M/1.53M" in err), err  # tqdm: widget or text
    assert "download bar/x: 100.0% 1.5 MiB / 1.5 MiB" in err, err  # our own line, also seen in a kernel


def test_html_views_render(kernel: Kernel, s3: Any) -> None:
    messages = kernel.run(
        f"cci = cc.get_interface({BUCKET!r}, verbose=False)\n"
        "cci.upload_raw_array('html/sub-01.grp/w', np.zeros((3, 4), '<f4'), compression='Zstd')\n"
        "display(cci)\n"
        "cci.get_browser()['html']\n")
    displayed = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
    assert displayed and "text/html" in displayed[0] and BUCKET in displayed[0]["text/html"]
    assert "testing-secret" not in json.dumps(displayed)
    result = [m["content"]["data"] for m in messages if m["msg_type"] == "execute_result"]
    assert result and "sub-01.grp/" in result[0]["text/html"] and "folder" in result[0]["text/html"]
    shown = kernel.run("cci.get_browser()['html/sub-01.grp']")
    group = next(m["content"]["data"]["text/html"] for m in shown if m["msg_type"] == "execute_result")
    assert "(3, 4)" in group and "float32" in group and "Zstd" in group


def test_tab_completion_offers_stored_names(kernel: Kernel, s3: Any) -> None:
    kernel.run(f"cci = cc.get_interface({BUCKET!r}, verbose=False)\n"
               "cci.upload_raw_array('tab/raw-name', np.ones(2))\n"
               "cci.upload_raw_array('tab/9lives', np.ones(2))\n"
               "node = cci.get_browser().tab\n")
    keys = kernel.complete("node['")
    assert any("raw-name" in k for k in keys) and any("9lives" in k for k in keys), keys
    attributes = kernel.complete("node.")
    assert any(a.endswith("raw_name") for a in attributes) and any(a.endswith("NUM_9lives") for a in attributes)


def _final_widget_states(messages: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """The last state of each widget of ``model`` as a notebook front end sees it: the state the comm
    was opened with, updated by every later ``update`` message, in order."""
    states: dict[str, dict[str, Any]] = {}
    for m in messages:
        content = m["content"]
        if m["msg_type"] == "comm_open" and content["data"].get("state", {}).get("_model_name") == model:
            states[content["comm_id"]] = dict(content["data"]["state"])
        elif m["msg_type"] == "comm_msg" and content["comm_id"] in states \
                and content["data"].get("method") in ("update", "echo_update"):
            states[content["comm_id"]].update(content["data"]["state"])
    return list(states.values())


def test_progress_widgets_end_full_and_green(kernel: Kernel, s3: Any) -> None:
    """Issue 23: a compressed upload's bar ended short and red (value = compressed bytes, max = array bytes)."""
    pytest.importorskip("ipywidgets")
    messages = kernel.run(
        f"cci = cc.get_interface({BUCKET!r})\n"
        "import cottoncandy.progress as progress\n"
        "progress.MIN_BYTES = 2**20\n"
        "zeros = np.zeros(2**20)  # 8 MiB that gzip stores in ~8 KiB\n"
        "noise = np.random.default_rng(0).integers(0, 256, 8 * 2**20, dtype=np.uint8)\n"
        "cci.upload_raw_array('widget/zeros', zeros)  # the default: gzip\n"
        "cci.upload_raw_array('widget/noise', noise, compression='LZ4')  # stored in more than 8 MiB\n"
        "back = cci.download_raw_array('widget/zeros')  # an 8 MiB array: a bar, whatever its stored size\n")
    bars = _final_widget_states(messages, "FloatProgressModel")
    assert len(bars) == 3, bars
    for bar in bars:
        assert bar["value"] == bar["max"] == 8 * 2**20 and bar["bar_style"] == "success", bar
