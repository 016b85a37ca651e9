"""A newcomer's first hour: README's local-endpoint example runs as written, and a missing extra is one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_block(after_heading: str, language: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(after_heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {after_heading!r} in README"
    return match.group(1)


def _as_from_a_terminal() -> None:
    """Ctrl-C's default, as a shell at a terminal leaves it. A test run started in the background by a
    shell without job control (nohup, CI runners) inherits SIGINT ignored, and Python keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_readme_local_endpoint_example_runs_as_written(tmp_path: Path) -> None:
    shell = _readme_block("## Try it locally", "bash")
    assert "ccfs server --port 9000" in shell and "AWS_ACCESS_KEY_ID=test" in shell
    code = _readme_block("## Try it locally", "python")
    assert "force_bucket_creation=True" in code  # the bucket is created by the example itself
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    env.pop("AWS_ENDPOINT_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "ccfs", "server", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env,
                              preexec_fn=_as_from_a_terminal)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert found, (first, server.stderr.read() if server.poll() is not None else "")
        assert "any access key and secret" in first
        script = code.replace("127.0.0.1:9000", f"127.0.0.1:{found.group(1)}")  # a free port, not 9000
        result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "proj/sub01.grp" in result.stdout
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: stops cleanly
        assert server.wait(timeout=30) == 0


def test_server_exits_promptly_on_sigterm_with_requests_in_flight() -> None:
    """``kill`` (SIGTERM, what systemd and ``kill %1`` send) ends ``ccfs server`` within a second, with
    status 0 and nothing on stderr, even while requests are being answered (server-side copies of a
    64 MiB object, each some CPU-seconds of moto's work): it used to wait up to 5 s for them, then
    print waitress's "N thread(s) still running"."""
    import threading
    import time

    import boto3
    from botocore.config import Config

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    server = subprocess.Popen([sys.executable, "-m", "ccfs", "server", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    stop = threading.Event()
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:(\d+)", server.stdout.readline())
        assert found, server.stderr.read() if server.poll() is not None else ""
        s3 = boto3.client("s3", endpoint_url=found.group(0), region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
        s3.create_bucket(Bucket="sigterm")
        s3.put_object(Bucket="sigterm", Key="big", Body=b"\0" * (64 * 2**20))

        def copy_until_stopped(n: int) -> None:
            while not stop.is_set():
                try:
                    s3.copy_object(Bucket="sigterm", Key=f"copy{n}", CopySource={"Bucket": "sigterm", "Key": "big"})
                except Exception:  # noqa: BLE001 - the server went away, as it should
                    return

        copiers = [threading.Thread(target=copy_until_stopped, args=(n,), daemon=True) for n in range(4)]
        for copier in copiers:
            copier.start()
        time.sleep(1.5)  # copies are being made
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=30)
        took = time.monotonic() - started
        err = server.stderr.read() if server.stderr is not None else ""
        assert status == 0 and took < 3.0 and err == "", (status, took, err)  # ~0.25 s; it waited 5 s
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait()


def _without_server_extra(*args: str) -> subprocess.CompletedProcess[str]:
    """``ccfs ARGS`` in a process where ``import waitress`` fails, as without ``pip install '.[server]'``."""
    code = ("import sys; sys.modules['waitress'] = None; sys.modules['waitress.server'] = None\n"
            "from ccfs.cli import main; sys.argv = ['ccfs', *sys.argv[1:]]; main()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_demo_and_server_without_the_server_extra_give_a_one_line_hint() -> None:
    for args in (("demo",), ("server", "--port", "0")):
        result = _without_server_extra(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "waitress is not installed" in result.stderr and "pip install -e '.[server]'" in result.stderr


def test_python_m_s3server_without_the_server_extra_gives_the_hint() -> None:
    code = ("import runpy, sys; sys.modules['waitress'] = None; sys.modules['waitress.server'] = None\n"
            "runpy.run_module('cottoncandy.testing.s3server', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code, "--port", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: waitress is not installed; the local S3 endpoint needs the 'server' extra: "
        "pip install 'cottoncandy-ccfs[server]' (from a clone: pip install -e '.[server]')"]
