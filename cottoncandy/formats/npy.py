"""``.npy`` headers synthesised from array metadata, identical byte for byte to ``np.save``'s.

The mount serves ``header + body`` for every raw array, so ``np.load(path, mmap_mode='r')`` works on
objects that never held a header. Only numpy's own header writer guarantees identity across
versions 1.0/2.0/3.0 of the format, so we call it.
"""

from __future__ import annotations

import functools
import io
import warnings
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from .raw import ArraySpec

MAGIC = b"\x93NUMPY"
#: enough bytes for any header numpy reads by default (its ``max_header_size`` is 10,000)
NPY_HEADER_LIMIT = 2**16


def npy_header(spec: ArraySpec) -> bytes:
    """The exact bytes ``np.save`` writes before the data of an array described by ``spec``."""
    return _header_bytes(spec.dtype, bool(spec.fortran), tuple(spec.shape))


@functools.lru_cache(maxsize=4096)
def _header_bytes(dtype: np.dtype[Any], fortran: bool, shape: tuple[int, ...]) -> bytes:
    """``npy_header``, remembered: numpy's writer was a tenth of the mount's CPU while listing a
    folder of arrays (one header per entry, and a folder's arrays mostly share dtype and shape)."""
    out = io.BytesIO()
    fields = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": fortran, "shape": shape}
    writer = getattr(npformat, "_write_array_header", None)
    if writer is not None:
        with warnings.catch_warnings():  # numpy warns when it must use format 2.0; that is expected
            warnings.simplefilter("ignore", UserWarning)
            writer(out, fields, None)
    else:  # pragma: no cover - older numpy
        try:
            npformat.write_array_header_1_0(out, fields)
        except ValueError:
            out = io.BytesIO()
            npformat.write_array_header_2_0(out, fields)
    return out.getvalue()


def npy_size(spec: ArraySpec) -> int:
    """Size of the ``.npy`` file: header plus the array's bytes."""
    return len(npy_header(spec)) + spec.nbytes


def parse_npy_header(prefix: bytes) -> tuple[ArraySpec, int] | None:
    """Spec and header length of an ``.npy`` file from its first bytes; ``None`` if not ``.npy``."""
    if not prefix.startswith(MAGIC) or len(prefix) < 10:
        return None
    stream = io.BytesIO(prefix)
    try:
        version = npformat.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = npformat.read_array_header_2_0(stream)
    except Exception:  # noqa: BLE001 - untrusted bytes: whatever numpy's header parser raises means "not .npy"
        return None
    if dtype.hasobject:
        return None
    return ArraySpec(dtype=dtype, shape=tuple(shape), order="F" if fortran else "C"), stream.tell()
