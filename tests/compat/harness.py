"""The differential harness: run one scripted case through cottoncandy 0.4.0 and through ours, compare.

Each library answers through its own ``runner.py`` process (0.4.0 in its side environment, ours in
the test environment) against its own bucket of the same local S3 server, or its own directory for
the local backend. A case's outcome is compared three ways:

* the value: arrays exactly (dtype, shape, bytes), listings, dicts, metadata, streams;
* the exception: when 0.4.0 raised, ours must raise an instance of every class in 0.4.0's exception
  MRO, by module and name (``json.decoder.JSONDecodeError``, ``_pickle.UnpicklingError``, the
  built-ins); 0.4.0's own classes such as ``cottoncandy.backend.FileNotFoundError`` cannot be ours and
  are checked by their bases; when 0.4.0 returned, ours must return;
* what is stored afterwards: keys, user metadata on the wire, and each body (gzip and numcodecs bodies
  by their decoded bytes, since gzip headers carry a time stamp).

Deliberate differences are declared on the case (``Case.differs``) with a pointer to README's table; a
declared difference that no longer differs fails too, so the declarations stay the list of what differs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.py"


@dataclass(frozen=True)
class Case:
    """One scripted call: ``code`` runs first (setup), ``expr`` is the call whose outcome is compared.

    ``differs``: a deliberate difference (text pointing at README's table); the harness then checks
    ``expect_ours`` instead of equality: ``"returns"``, ``"raises:<builtin>"``, or ``"value"`` (ours
    returns, value not compared). ``compare_store=False`` skips the stored-state comparison (used only
    with ``differs``). ``warns``: a warning category ours must emit (where 0.4.0 went on silently or
    printed).
    """

    name: str
    code: str = ""
    expr: str = ""
    backend: str = "s3"
    differs: str = ""
    expect_ours: str = ""
    compare_store: bool = True
    warns: str = ""
    #: 0.4.0 returned None; ours returns a result (README: "return a result where 0.4.0 returned None")
    additive: bool = False
    #: for a deliberate difference: what 0.4.0 does (same spelling as ``expect_ours``), checked too, so
    #: README's description of 0.4.0 stays true
    expect_old: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


class Runner:
    """A ``runner.py`` process speaking JSON lines; one per library per session."""

    def __init__(self, python: str, env: Mapping[str, str], label: str, log_path: Path):
        self.label = label
        self._log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([python, str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=dict(env), cwd=str(HERE), text=True, bufsize=1)
        self._lock = threading.Lock()
        self._next = 0
        hello = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not hello:
            raise RuntimeError(f"{label} runner did not start; see {log_path}")
        self.hello = json.loads(hello)

    def run(self, *, backend: str, bucket: str, endpoint: str, tmp: str, code: str, expr: str) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            request = {"id": self._next, "backend": backend, "bucket": bucket, "endpoint": endpoint, "tmp": tmp,
                       "code": code, "expr": expr}
            self.proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"{self.label} runner died (exit {self.proc.poll()})")
        answer = json.loads(line)
        assert answer["id"] == self._next
        return answer  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")  # type: ignore[union-attr]
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._log.close()


# --- what is stored --------------------------------------------------------------------------------


def body_digest(body: bytes, metadata: Mapping[str, str]) -> str:
    """The body's identity: decoded bytes for gzip/numcodecs bodies (their framing may differ)."""
    compression = metadata.get("compression")
    if metadata.get("gzip", "").lower() in ("true", "1"):
        compression = "gzip"
    try:
        if compression == "gzip":
            body = gzip.decompress(body)
        elif compression and compression not in ("False", "None"):
            import numcodecs

            body = bytes(numcodecs.get_codec({"id": compression.lower()}).decode(body))
    except Exception as exc:  # noqa: BLE001 - an undecodable body is itself a finding
        return f"undecodable({type(exc).__name__})"
    return hashlib.sha256(body).hexdigest()[:16]


def snapshot_s3(client: Any, bucket: str) -> dict[str, Any]:
    """Every object of the bucket: user metadata as on the wire, and the body digest."""
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])]

    def one(key: str) -> dict[str, Any]:
        obj = client.get_object(Bucket=bucket, Key=key)
        metadata = {k.lower(): v for k, v in obj["Metadata"].items()}
        return {"metadata": metadata, "body": body_digest(obj["Body"].read(), metadata)}

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(keys, pool.map(one, keys)))


def snapshot_dir(root: Path) -> dict[str, Any]:
    """A local-backend directory: each object's metadata sidecar (parsed) and body digest."""
    out: dict[str, Any] = {}
    if not root.is_dir():
        return out
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.endswith(".meta.json") or path.name.startswith(".cc-"):
            continue
        key = path.relative_to(root).as_posix()
        side = path.with_name(path.name + ".meta.json")
        # no sidecar reads as {} in both libraries (0.4.0's upload_from_file writes none)
        metadata = json.loads(side.read_text()) if side.is_file() else {}
        out[key] = {"metadata": metadata, "body": body_digest(path.read_bytes(), metadata or {})}
    return out


# --- comparing outcomes -----------------------------------------------------------------------------


def required_classes(mro: list[str]) -> list[str]:
    """The classes of 0.4.0's exception MRO that ours must be an instance of (``module.qualname``): all but
    0.4.0's own (``cottoncandy.*``, which only its process has; their bases are in the MRO too) and the
    ones every exception has."""
    return [m for m in mro if not m.startswith("cottoncandy.")
            and m not in ("builtins.object", "builtins.BaseException", "builtins.Exception")]


def value_diff(old: Any, new: Any, path: str = "value") -> str | None:
    """Why two encoded values differ (``None`` when equal)."""
    if isinstance(old, dict) and old.get("t") == "ndarray":
        if not (isinstance(new, dict) and new.get("t") == "ndarray"):
            return f"{path}: 0.4.0 returned an array, ours {describe(new)}"
        a, b = np.load(old["path"]), np.load(new["path"])
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{path}: 0.4.0 {a.dtype}{a.shape}, ours {b.dtype}{b.shape}"
        if a.tobytes() != b.tobytes():
            return f"{path}: array contents differ"
        return None
    if old is None and isinstance(new, dict) and new.get("t") == "opaque" and new["type"].endswith("ObjectInfo"):
        return None  # README table: uploads return an ObjectInfo where 0.4.0 returned None (additive)
    if isinstance(old, dict) and old.get("t") == "opaque":
        return None if isinstance(new, dict) and new.get("t") == "opaque" or new is None else \
            f"{path}: 0.4.0 returned {old['type']}, ours {describe(new)}"
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("t") != new.get("t"):
            return f"{path}: 0.4.0 {describe(old)}, ours {describe(new)}"
        keys = set(old) | set(new)
        for key in sorted(keys):
            if key in ("path",):
                continue
            if key not in old or key not in new:
                return f"{path}.{key}: only in {'ours' if key in new else '0.4.0'}"
            why = value_diff(old[key], new[key], f"{path}.{key}")
            if why:
                return why
        return None
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return f"{path}: 0.4.0 {len(old)} items {short(old)}, ours {len(new)} items {short(new)}"
        for i, (a, b) in enumerate(zip(old, new)):
            why = value_diff(a, b, f"{path}[{i}]")
            if why:
                return why
        return None
    if old != new or type(old) is not type(new):
        return f"{path}: 0.4.0 {short(old)}, ours {short(new)}"
    return None


def describe(value: Any) -> str:
    if isinstance(value, dict) and "t" in value:
        return value["t"] if value["t"] != "opaque" else value["type"]
    return short(value)


def short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 300 else text[:300] + "..."


def compare(case: Case, old: dict[str, Any], new: dict[str, Any], old_store: Any, new_store: Any) -> list[str]:
    """Every way ours differs from 0.4.0 on this case that the case does not declare."""
    problems: list[str] = []
    if "exc" in new and "exc" not in old and not case.differs:
        problems.append(f"0.4.0 returned {short(old.get('value'))}; ours raised "
                        f"{new['exc']['mro'][0]}: {new['exc']['msg']}\n{new['exc']['where']}")
    if case.differs:
        problems += check_expected(case.expect_ours, case.differs, new, "ours")
        if case.expect_old:
            problems += check_expected(case.expect_old, case.differs, old, "0.4.0")
    elif "exc" in old:
        if "exc" not in new:
            problems.append(f"0.4.0 raised {old['exc']['mro'][0]} ({old['exc']['msg']}); ours returned "
                            f"{short(new.get('value'))}")
        else:
            required = required_classes(old["exc"]["mro"])
            missing = [cls for cls in required if cls not in new["exc"]["mro"]]
            if missing:
                problems.append(f"0.4.0 raised {old['exc']['mro'][0]} ({', '.join(required)})"
                                f"; ours {new['exc']['mro'][0]} is not a {', '.join(missing)}: {new['exc']['msg']}")
    elif "exc" not in new and not (case.additive and old.get("value") is None):
        why = value_diff(old.get("value"), new.get("value"))
        if why:
            problems.append(why)
    if case.warns and not any(w.endswith(case.warns) for w in new.get("warnings", [])):
        problems.append(f"ours did not warn {case.warns} (warnings: {new.get('warnings')})")
    if case.compare_store:
        new_store = {key: {**entry, "metadata": without_deliberate_keys(entry["metadata"])}
                     for key, entry in new_store.items()}
    if case.compare_store and old_store != new_store:
        problems.append(store_diff(old_store, new_store))
    if case.differs and not compare(replace(case, differs="", expect_ours="", expect_old="", compare_store=True),
                                    old, new, old_store, new_store):
        problems.append(f"declared a deliberate difference ({case.differs}), but ours now does what 0.4.0 "
                        "does: remove the declaration (and its README row, if no other case needs it)")
    return problems


#: metadata keys we add and 0.4.0 ignores (README table: structured dtypes travel in ``dtype-descr``;
#: gzip bodies compressed in parallel carry ``cc-gzip-blocks``, their block count and size)
DELIBERATE_EXTRA_METADATA = frozenset({"dtype-descr", "cc-gzip-blocks"})


def without_deliberate_keys(metadata: Any) -> Any:
    if not isinstance(metadata, dict):
        return metadata
    return {k: v for k, v in metadata.items() if k not in DELIBERATE_EXTRA_METADATA}


def check_expected(want: str, why: str, answer: dict[str, Any], who: str) -> list[str]:
    """``returns``/``value``: no exception; ``raises:Name``: an exception with ``Name`` in its MRO."""
    if want in ("returns", "value"):
        return [] if "exc" not in answer else [f"expected {who} to return ({why}); it raised "
                                               f"{answer['exc']['mro'][0]}: {answer['exc']['msg']}"]
    if want.startswith("raises:"):
        cls = want.split(":", 1)[1]
        if "exc" in answer and any(m.rsplit(".", 1)[-1] == cls for m in answer["exc"]["mro"]):
            return []
        return [f"expected {who} to raise {cls} ({why}); got {short(answer)}"]
    return [f"unknown expectation {want!r}"]


def store_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    lines = ["stored state differs:"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"  {key}: 0.4.0 {short(old.get(key))}\n  {' ' * len(key)}  ours  {short(new.get(key))}")
    return "\n".join(lines[:20])


def reset_bucket(client: Any, bucket: str) -> None:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    for i in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})


def env_for(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               PYTHONDONTWRITEBYTECODE="1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing-secret",
               AWS_DEFAULT_REGION="us-east-1")
    env.update(extra or {})
    return env
