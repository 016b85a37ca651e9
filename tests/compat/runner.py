"""Run scripted cottoncandy calls on request: one long-lived process per library, JSON lines in and out.

The same file runs under cottoncandy 0.4.0's side environment and under ours, so both libraries see
exactly the same script text. A request names a backend and a bucket (or directory) and holds a few
lines of Python (``code``, run first) and one expression (``expr``); the names ``cc``, ``cci``, ``np``,
``tmp``, ``BUCKET`` and ``ENDPOINT`` are bound. The answer is the expression's value, encoded (arrays
as ``.npy`` files in ``tmp``), or the exception's type (its whole MRO, as ``module.qualname``) and
message, plus the categories of the warnings raised. Everything the libraries print goes to stderr,
so stdout carries only the protocol.
"""

import contextlib
import io
import json
import os
import sys
import traceback
import uuid
import warnings

PROTO = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr

import numpy as np  # noqa: E402

import cottoncandy as cc  # noqa: E402

INTERFACES = {}


def interface(backend, bucket, endpoint):
    """One interface per bucket, remade when a case left it on another bucket (0.4.0's ``rm_bucket``)."""
    key = (backend, bucket)
    cci = INTERFACES.get(key)
    if cci is None or (backend == "s3" and cci.bucket_name != bucket):
        if backend == "local":
            cci = cc.get_interface(bucket, backend="local", verbose=False)
        else:
            cci = cc.get_interface(bucket, ACCESS_KEY="testing", SECRET_KEY="testing-secret", endpoint_url=endpoint,
                                   verbose=False)
        INTERFACES[key] = cci
    return cci


def encode(value, tmp, depth=0):
    """A JSON description of a return value that the harness can compare across libraries."""
    if depth > 6:
        return {"t": "deep"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"t": "bytes", "hex": bytes(value).hex()}
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        path = os.path.join(tmp, uuid.uuid4().hex + ".npy")
        np.save(path, value, allow_pickle=False)
        return {"t": "ndarray", "path": path, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, dict):
        return {"t": "dict", "items": {str(k): encode(v, tmp, depth + 1) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [encode(v, tmp, depth + 1) for v in value]
    kind = type(value).__module__ + "." + type(value).__qualname__
    # a dask array is one by isinstance (ours is a subclass: its own compute fills one result)
    if any(c.__module__.startswith("dask.array") and c.__name__ == "Array" for c in type(value).__mro__):
        return {"t": "dask", "shape": list(value.shape), "dtype": value.dtype.str,
                "value": encode(np.asarray(value.compute()), tmp, depth + 1)}
    if kind.startswith("scipy.sparse"):
        return {"t": "sparse", "format": value.format, "shape": list(value.shape),
                "dense": encode(np.asarray(value.toarray()), tmp, depth + 1)}
    if hasattr(value, "content") and hasattr(value, "metadata"):
        return {"t": "stream", "metadata": dict(value.metadata), "content": value.content.read().hex()}
    return {"t": "opaque", "type": kind}


def mro(exc):
    return [c.__module__ + "." + c.__qualname__ for c in type(exc).__mro__]


def handle(request):
    tmp = request["tmp"]
    cci = interface(request["backend"], request["bucket"], request["endpoint"])
    scope = {"cc": cc, "cci": cci, "np": np, "tmp": tmp, "BUCKET": request["bucket"],
             "ENDPOINT": request["endpoint"], "os": os, "io": io}
    answer = {"id": request["id"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(request.get("code") or "pass", scope)
            value = eval(request["expr"], scope) if request.get("expr") else None
            answer["value"] = encode(value, tmp)
        except BaseException as exc:  # noqa: B036 - report everything, AssertionError and SystemExit too
            answer["exc"] = {"mro": mro(exc), "msg": str(exc)[:500],
                             "where": traceback.format_exc(limit=-3)[-1500:]}
    answer["warnings"] = sorted({w.category.__module__ + "." + w.category.__qualname__ for w in caught})
    return answer


def main():
    PROTO.write(json.dumps({"ready": True, "version": cc.__version__, "file": cc.__file__}) + "\n")
    PROTO.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            answer = handle(request)
        except BaseException as exc:  # noqa: B036 - the interface itself could not be made
            answer = {"id": request.get("id"), "exc": {"mro": mro(exc), "msg": str(exc)[:500],
                                                       "where": traceback.format_exc(limit=-3)}, "warnings": []}
        PROTO.write(json.dumps(answer) + "\n")
        PROTO.flush()


if __name__ == "__main__":
    main()
