"""A ``credential_process`` (of an AWS profile) with a time limit, and errors that name the profile.

botocore runs the command of a profile's ``credential_process`` and waits for it without a limit: a
helper that never exits (a prompt nobody answers, a hung agent) hangs ``ccfs ls``, ``ccfs mount``
and every library call. ``bound_credential_process`` replaces the session's provider of that source
(``custom-process`` in its public ``CredentialResolver.providers``) with botocore's own
``ProcessProvider`` built with a ``popen`` (its public constructor argument) whose ``communicate``
waits at most ``COTTONCANDY_CREDENTIAL_TIMEOUT`` seconds (default 30), then kills the helper and
what it started.

What the helper prints is never shown (it holds secrets): output that is not JSON is reported as
one line naming the profile. The helper's stderr (its own error message) is passed on, cut to one
line. The other sources that run nothing (environment, files) cannot block; instance metadata and
SSO have botocore's own timeouts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
from typing import Any

from botocore.credentials import ProcessProvider

#: the environment variable that sets the limit (seconds)
TIMEOUT_VARIABLE = "COTTONCANDY_CREDENTIAL_TIMEOUT"
DEFAULT_TIMEOUT = 30.0


def credential_timeout() -> float:
    """Seconds a ``credential_process`` may take (``COTTONCANDY_CREDENTIAL_TIMEOUT``, else 30)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return seconds if 0 < seconds < float("inf") else DEFAULT_TIMEOUT


class CredentialProcessError(PermissionError):
    """The helper of a profile timed out, failed or printed no credentials: one line naming the profile
    (no credentials: access is denied, and no store answer stands in for it)."""

    def __init__(self, error_msg: str):
        super().__init__(errno.EACCES, error_msg)


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux's ``/proc/PID/task/TID/children``; none elsewhere)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                children = [int(child) for child in fh.read().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


class BoundedProcess:
    """``subprocess.Popen`` as ``ProcessProvider`` uses it, whose ``communicate`` has a time limit."""

    def __init__(self, profile: str, timeout: float, args: Any, **kwargs: Any):
        self.profile = profile
        self.timeout = timeout
        self.returncode: int | None = None
        try:
            # in the caller's process group: a mount that fails kills its daemon's group, helpers included
            self.process = subprocess.Popen(args, **kwargs)
        except OSError as exc:
            raise CredentialProcessError(
                error_msg=f"credential_process of profile {profile!r} could not be run: {exc.strerror or exc}",
            ) from None

    def communicate(self) -> tuple[bytes, bytes]:
        profile = self.profile
        try:
            stdout, stderr = self.process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            for pid in [*descendants(self.process.pid), self.process.pid]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()
            raise CredentialProcessError(
                error_msg=(f"credential_process of profile {profile!r} gave no credentials within "
                           f"{self.timeout:g}s and was stopped (set {TIMEOUT_VARIABLE} to wait longer)"),
            ) from None
        self.returncode = self.process.returncode
        if self.returncode != 0:
            said = " ".join(stderr.decode("utf-8", "replace").split())[:300]
            raise CredentialProcessError(
                error_msg=(f"credential_process of profile {profile!r} failed with status {self.returncode}"
                           + (f": {said}" if said else "")),
            )
        try:
            parsed = json.loads(stdout.decode("utf-8"))
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):  # its output is not shown: it may hold secrets
            raise CredentialProcessError(
                error_msg=(f"credential_process of profile {profile!r} printed something that is not JSON "
                           f"credentials ({len(stdout)} bytes, not shown); it must print "
                           '{"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ...}'),
            )
        return stdout, stderr


def bound_credential_process(core: Any, timeout: float | None = None) -> None:
    """Put a time limit on the ``credential_process`` source of this botocore session (in place)."""
    try:
        resolver = core.get_component("credential_provider")
        providers = resolver.providers
    except Exception:  # a profile botocore cannot read: the first request says so itself
        return
    profile = core.get_config_variable("profile") or "default"
    limit = credential_timeout() if timeout is None else timeout

    def popen(args: Any, **kwargs: Any) -> BoundedProcess:
        return BoundedProcess(profile, limit, args, **kwargs)

    for index, provider in enumerate(providers):
        if type(provider) is ProcessProvider:
            providers[index] = ProcessProvider(profile_name=profile, load_config=lambda: core.full_config,
                                               popen=popen)
