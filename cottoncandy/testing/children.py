"""The rig's servers in child processes: the local S3 server and the fault proxy, driven from the test.

Why: a test that reads through a real mount is a client of the daemon, and the daemon a client of
the S3 server (and of the fault proxy in front of it). When those servers run on threads of the
test's own process they share its GIL, and a C extension may hold the GIL across a system call on
the mount: numpy's ``fromfile`` (so ``np.load(path)``) seeks its duplicated ``FILE*`` with the GIL
held, which makes glibc ``fstat`` the file, a FUSE GETATTR the daemon may have to confirm with the
store; a page fault in a memory-mapped array does the same. The server then cannot answer until
the daemon gives up (three 4 s attempts), and the read fails: a deadlock of the rig, not of the
product (a scientist's S3 is not in their Python process). Found as a short read in
``test_one_mount_through_every_mode_and_an_outage`` (about 1 run in 5): the proxy's accept queue
held the daemon's requests, unread, for 12 s while the test thread sat in ``fuse_do_getattr``.

``S3ServerChild`` offers the ``LocalS3Server`` calls tests make (``endpoint_url``, ``reset``,
``requests``, ``clear_log``, ``stop``) over the child's control paths; ``FaultProxyChild`` offers
``FaultProxy``'s (``set_rules``, ``clear``, ``outage``, ``counts``, ``count``, ``reset_counts``)
over the child's standard input and output, a channel an outage (a closed listening socket) does
not close. Every wait on a child is bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict
from typing import IO, Any

from .faultproxy import FaultProxy, FaultRule
from .s3process import ServerProcess, end_child, line_within
from .s3server import LoggedRequest, at_least_logged

#: seconds a child has to start, and to answer one command
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 30.0


class S3ServerChild:
    """A ``LocalS3Server`` (plain: no auth, no TLS) in a child process, with its test API."""

    def __init__(self, *args: str):
        self._process = ServerProcess(*args)

    def start(self) -> S3ServerChild:
        self._process.start(timeout=START_TIMEOUT)
        return self

    @property
    def endpoint_url(self) -> str:
        return self._process.endpoint_url

    @property
    def host(self) -> str:
        return str(urllib.parse.urlsplit(self.endpoint_url).hostname)

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.endpoint_url).port or 80)

    def reset(self) -> None:
        """Forget every bucket and object, and clear the request log."""
        self._process.reset()

    def clear_log(self) -> None:
        self._process.clear_log()

    def requests(self, at_least: int = 0, timeout: float = 10.0) -> list[LoggedRequest]:
        """The request log. A response is logged once its last byte is written, which may be just
        after the client got it: ``at_least`` waits (up to ``timeout`` seconds) for that many entries."""
        return at_least_logged(lambda: [LoggedRequest(**entry) for entry in self._process.requests()],
                               at_least, timeout)

    def stop(self) -> None:
        self._process.stop()

    def __enter__(self) -> S3ServerChild:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FaultProxyChild:
    """A ``FaultProxy`` in a child process (``python -m cottoncandy.testing.children``), with its API."""

    def __init__(self, upstream: str, seed: int = 0):
        self.upstream = upstream
        self.seed = seed
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> FaultProxyChild:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cottoncandy.testing.children", self.upstream, str(self.seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        assert self._process.stdout is not None
        try:
            started = json.loads(line_within(self._process.stdout, START_TIMEOUT, "the fault proxy"))
        except Exception:
            self.stop()
            raise
        self.host, self.port = started["host"], int(started["port"])
        return self

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _ask(self, command: dict[str, Any]) -> Any:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()
        answer = json.loads(line_within(process.stdout, COMMAND_TIMEOUT, f"fault proxy command {command['op']}"))
        if "error" in answer:
            raise ValueError(answer["error"])
        return answer.get("value")

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        self._ask({"op": "set_rules", "rules": [asdict(rule) for rule in rules]})

    def clear(self) -> None:
        self._ask({"op": "clear"})

    def outage(self, seconds: float) -> None:
        self._ask({"op": "outage", "seconds": seconds})

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._ask({"op": "counts"}))

    def count(self, mode: str | None = None, method: str | None = None) -> int:
        return int(self._ask({"op": "count", "mode": mode, "method": method}))

    def reset_counts(self) -> None:
        self._ask({"op": "reset_counts"})

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the child's command loop ends, and with it the proxy
        end_child(process)

    def __enter__(self) -> FaultProxyChild:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_commands(proxy: FaultProxy, commands: IO[str], answers: IO[str]) -> None:
    """The child's side: one JSON command per line in, one JSON answer per line out, until EOF."""
    for line in commands:
        try:
            command = json.loads(line)
            op = command["op"]
            value: Any = None
            if op == "set_rules":
                proxy.set_rules(FaultRule.from_dict(fields) for fields in command["rules"])
            elif op == "clear":
                proxy.clear()
            elif op == "outage":
                proxy.outage(float(command["seconds"]))
            elif op == "counts":
                value = proxy.counts
            elif op == "count":
                value = proxy.count(command.get("mode"), command.get("method"))
            elif op == "reset_counts":
                proxy.reset_counts()
            else:
                raise ValueError(f"no command {op!r}")
            answer: dict[str, Any] = {"value": value}
        except (KeyError, TypeError, ValueError) as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv: list[str] | None = None) -> None:  # the child: python -m cottoncandy.testing.children UPSTREAM SEED
    upstream, seed = (argv if argv is not None else sys.argv[1:])[:2]
    proxy = FaultProxy(upstream, seed=int(seed)).start()
    print(json.dumps({"host": proxy.host, "port": proxy.port}), flush=True)
    try:
        _serve_commands(proxy, sys.stdin, sys.stdout)
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
