"""Raw-array metadata (the four ``x-amz-meta-*`` strings of 0.4.0) <-> an ``ArraySpec``.

Rules from FORMAT.md section 1: ``dtype`` is ``dtype.str``; ``shape`` joins dims with ``,`` (empty
for 0-d); ``compression`` is ``False``, ``gzip`` or a numcodecs name; ``order`` is ``C`` (``F`` is
honoured when reading). The legacy ``gzip`` key wins over ``compression`` when present.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..config import string2bool
from ..errors import NotARawArray, ReservedMetadataKey
from .codecs import GZIP, check_codec

RESERVED_KEYS = ("dtype", "shape", "compression", "order")
DESCR_KEY = "dtype-descr"  # structured dtypes: numpy's descr as JSON (0.4.0 ignores it)
UNCOMPRESSED_SPELLINGS = frozenset({"false", "none", ""})
GZIP_LIMIT = 2**31


@dataclass(frozen=True)
class ArraySpec:
    """What a raw array object holds: enough to allocate the result and decode the body."""

    dtype: np.dtype
    shape: tuple[int, ...]
    order: str = "C"
    compression: str | None = None

    @property
    def nbytes(self) -> int:
        return int(math.prod(self.shape)) * self.dtype.itemsize

    @property
    def fortran(self) -> bool:
        """Whether the body's byte order differs from C order (F order with 2+ non-trivial axes)."""
        return self.order == "F" and sum(1 for d in self.shape if d > 1) > 1 and self.nbytes > 0


def has_array_metadata(meta: Mapping[str, str] | None) -> bool:
    return bool(meta) and "dtype" in meta and "shape" in meta  # type: ignore[operator]


def parse_shape(text: str) -> tuple[int, ...]:
    text = text.strip().strip("()[]")
    if not text:
        return ()
    dims = tuple(int(d) for d in text.split(",") if d.strip())
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in shape {text!r}")
    return dims


def parse_compression(meta: Mapping[str, str]) -> str | None:
    """The codec an object's body uses; ``None`` for a raw body."""
    if "gzip" in meta:  # legacy writers: the flag wins
        return GZIP if string2bool(meta["gzip"]) else None
    value = str(meta["compression"]).strip()
    if value.lower() in UNCOMPRESSED_SPELLINGS:
        return None
    return check_codec(value)


def spec_from_metadata(meta: Mapping[str, str] | None, name: str) -> ArraySpec:
    """Parse an object's user metadata; ``ValueError`` naming the object and what is wrong."""
    meta = {k.lower(): v for k, v in (meta or {}).items()}
    missing = [k for k in ("dtype", "shape") if k not in meta]
    if "compression" not in meta and "gzip" not in meta:
        missing.append("compression")
    if missing:
        raise NotARawArray(f"{name} is not a raw array: its metadata lacks {', '.join(missing)} "
                         f"(has: {', '.join(sorted(meta)) or 'nothing'})")
    try:
        dtype = np.dtype(meta["dtype"])
    except TypeError as exc:
        raise ValueError(f"{name}: metadata dtype {meta['dtype']!r} is not a numpy dtype") from exc
    dtype = structured_dtype(meta, dtype, name)
    if dtype.hasobject:
        raise ValueError(f"{name}: dtype {meta['dtype']!r} holds Python objects and cannot be read as bytes")
    try:
        shape = parse_shape(meta["shape"])
    except ValueError as exc:
        raise ValueError(f"{name}: metadata shape {meta['shape']!r} is not a list of sizes") from exc
    order = str(meta.get("order", "C")).strip().upper() or "C"
    if order not in ("C", "F"):
        raise ValueError(f"{name}: metadata order {meta['order']!r} is neither C nor F")
    try:
        compression = parse_compression(meta)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    return ArraySpec(dtype=dtype, shape=shape, order=order, compression=compression)


def metadata_from_spec(spec: ArraySpec) -> dict[str, str]:
    """The four strings 0.4.0 writes, in its key order (plus ``dtype-descr`` for structured dtypes)."""
    meta = {
        "dtype": spec.dtype.str,
        "shape": ",".join(str(d) for d in spec.shape),
        "compression": spec.compression if spec.compression else "False",
        "order": spec.order,
    }
    if spec.dtype.fields is not None:
        meta[DESCR_KEY] = json.dumps(np.lib.format.dtype_to_descr(spec.dtype), separators=(",", ":"))
    return meta


def _descr(obj: object) -> object:
    """JSON's lists back into the tuples of a numpy ``descr`` (fields, titles, sub-array shapes)."""
    if isinstance(obj, list):
        return [tuple(_descr(part) if isinstance(part, list) and i == 1 else tuple(part) if isinstance(part, list)
                      else part for i, part in enumerate(field)) if isinstance(field, list) else field
                for field in obj]
    return obj


def structured_dtype(meta: Mapping[str, str], plain: np.dtype, name: str) -> np.dtype:
    """The full structured dtype of ``dtype-descr`` when it matches the stored record size, else ``plain``.

    0.4.0 stores a structured array's ``dtype.str`` (``|V12``): the record bytes, no fields. We keep
    that (0.4.0 reads ours as void records) and carry the fields in ``dtype-descr``, which 0.4.0
    ignores.
    """
    text = meta.get(DESCR_KEY)
    if not text or plain.kind != "V":
        return plain
    try:
        full = np.lib.format.descr_to_dtype(_descr(json.loads(text)))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"{name}: metadata {DESCR_KEY} is not a numpy dtype description: {exc}") from exc
    if full.itemsize != plain.itemsize:
        raise ValueError(f"{name}: metadata {DESCR_KEY} describes {full.itemsize}-byte records but dtype "
                         f"{plain.str} has {plain.itemsize}")
    return full


def resolve_compression(compression: object, nbytes: int, small_array: str = "gzip",
                        large_array: str = "Zstd", do_compression: bool = True,
                        gzip_flag: object = None) -> str | None:
    """0.4.0's choice of codec from the ``compression=`` argument (and deprecated ``gzip=``).

    ``True`` (the default) picks ``small_array`` up to 2 GiB and ``large_array`` above, refusing
    gzip there; ``False``/``None`` mean no compression; a string names the codec.
    """
    if gzip_flag is not None:
        compression = GZIP if string2bool(gzip_flag) else False
    if compression is None or compression is False:
        return None
    if compression is True:
        if not do_compression:
            return None
        choice = small_array if nbytes <= GZIP_LIMIT else large_array
        if choice == GZIP and nbytes > GZIP_LIMIT:
            raise ValueError("compression: gzip does not support arrays over 2 GB; "
                             "set [compression] large_array to Zstd")
        return check_codec(choice)
    if isinstance(compression, str):
        if compression.strip().lower() in UNCOMPRESSED_SPELLINGS:
            return None
        return check_codec(compression)
    raise TypeError(f"compression must be True, False, None or a codec name, not {type(compression).__name__}")


def metadata_value(value: object) -> str:
    """User metadata values are strings on the wire; others are stored as ``str(value)``, as 0.4.0 did."""
    return value if isinstance(value, str) else str(value)


def validate_extra_metadata(extra: Mapping[str, object]) -> dict[str, str]:
    """Extra keyword arguments become user metadata: string values, no clash with the four keys."""
    out: dict[str, str] = {}
    for key, value in extra.items():
        if key.lower() in RESERVED_KEYS or key.lower() == "gzip":
            raise ReservedMetadataKey(f"metadata key {key!r} is reserved for the array's own description")
        out[key] = metadata_value(value)
    return out
