"""Raw-array metadata (the four ``x-amz-meta-*`` strings of 0.4.0) <-> an ``ArraySpec``.

Rules from docs/FORMAT.md section 1: ``dtype`` is ``dtype.str``; ``shape`` joins dims with ``,`` (empty
for 0-d); ``compression`` is ``False``, ``gzip`` or a numcodecs name; ``order`` is ``C`` (``F`` is
honoured when reading). The legacy ``gzip`` key wins over ``compression`` when present.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import DEFAULTS_0_4_0, string2bool
from ..errors import NotARawArray, ReservedMetadataKey
from .codecs import GZIP, check_codec, max_decoded_size
from .keys import DESCR_KEY, GZIP_FLAG, RESERVED_KEYS

MAX_DESCR_TEXT = 8192  # S3 caps all user metadata at 2 KB; the local backend's sidecars are larger
#: what ``compression`` may say of a raw body (``False`` is what 0.4.0 writes, and so do we)
UNCOMPRESSED_SPELLINGS = frozenset({"false", "none", ""})
#: how every face shows a raw body's compression (``ccfs info``, the mount's xattr, notebook views):
#: one word, not the wire's ``False``
UNCOMPRESSED_LABEL = "none"
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
    def compression_label(self) -> str:
        """The codec as people are shown it: its name, or ``none`` (:data:`UNCOMPRESSED_LABEL`)."""
        return self.compression or UNCOMPRESSED_LABEL

    @property
    def fortran(self) -> bool:
        """Whether the body's byte order differs from C order (F order with 2+ non-trivial axes)."""
        return self.order == "F" and sum(1 for d in self.shape if d > 1) > 1 and self.nbytes > 0

    @property
    def row_bytes(self) -> int:
        """Bytes of one index along the outermost axis of the stored order (a C-order row; the last
        axis for F order): the unit a body is cut in without splitting a row. 0 for 0-d and empty arrays."""
        if not self.shape or not self.nbytes:
            return 0
        return self.nbytes // self.shape[-1 if self.fortran else 0]


def has_array_metadata(meta: Mapping[str, str] | None) -> bool:
    return bool(meta) and "dtype" in meta and "shape" in meta  # type: ignore[operator]


# --- untrusted metadata -> ArraySpec ---------------------------------------------------------
# Metadata is written by whoever can write the bucket. Every reader (library, mount, CLI) goes
# through ``spec_for_body``: each field is checked and bounded before anything is allocated or
# requested, and any problem is a ``ValueError`` naming the object and the field.

#: longest dtype text accepted; 0.4.0 writes ``dtype.str`` (``<f8``, ``|V6``, ``<M8[ns]``: < 16 chars)
MAX_DTYPE_TEXT = 64
#: numpy 2's NPY_MAXDIMS (numpy 1 allows 32); also bounds the shape text below
MAX_NDIM = 64
MAX_SHAPE_TEXT = MAX_NDIM * 21
#: numpy indexes bytes with a signed 64-bit integer
MAX_NBYTES = 2**63 - 1


def shown(value: object, limit: int = 64) -> str:
    """``repr`` of an untrusted value, cut short (errors and logs stay one readable line)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def parse_dtype(value: object, name: str, field: str = "dtype") -> np.dtype:
    """A numpy dtype from untrusted text; ``ValueError`` naming ``name`` for anything else.

    Refused: non-strings, overlong text, anything ``np.dtype`` rejects (it raises TypeError,
    ValueError, SyntaxError, RecursionError... on hostile strings), dtypes holding Python objects
    (also inside structured fields), sub-array dtypes (they change the shape) and empty items.
    """
    if not isinstance(value, str):
        raise ValueError(f"{name}: metadata {field} {shown(value)} is not a dtype string")
    if len(value) > MAX_DTYPE_TEXT:
        raise ValueError(f"{name}: metadata {field} is {len(value)} characters long, not a dtype "
                         f"(at most {MAX_DTYPE_TEXT})")
    try:
        dtype = np.dtype(value)
    except Exception as exc:  # noqa: BLE001 - numpy's parser raises many kinds on hostile text
        raise ValueError(f"{name}: metadata {field} {shown(value)} is not a numpy dtype "
                         f"({type(exc).__name__})") from None
    if dtype.hasobject:
        raise ValueError(f"{name}: metadata {field} {shown(value)} holds Python objects; arrays of objects are "
                         "never read from a bucket")
    if dtype.subdtype is not None:
        raise ValueError(f"{name}: metadata {field} {shown(value)} is a sub-array dtype, not an element type")
    if dtype.itemsize == 0:
        raise ValueError(f"{name}: metadata {field} {shown(value)} has no size")
    return dtype


def parse_shape(text: object, name: str = "array", field: str = "shape") -> tuple[int, ...]:
    """Dimensions joined by ``,`` (``()``/``[]`` around them tolerated, empty for 0-d), bounded."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: metadata {field} {shown(text)} is not a list of sizes")
    if len(text) > MAX_SHAPE_TEXT:
        raise ValueError(f"{name}: metadata {field} is {len(text)} characters long (at most {MAX_SHAPE_TEXT})")
    body = text.strip().strip("()[]")
    pieces = [d.strip() for d in body.split(",")] if body else []
    if pieces and not pieces[-1]:
        pieces.pop()  # ``(7,)``: Python's tuple spelling
    if len(pieces) > MAX_NDIM:
        raise ValueError(f"{name}: metadata {field} has {len(pieces)} dimensions (at most {MAX_NDIM})")
    dims = []
    for piece in pieces:
        if not piece.isascii() or not piece.isdigit():
            raise ValueError(f"{name}: metadata {field} {shown(text)} is not a list of sizes "
                             f"({shown(piece)} is not a non-negative integer)")
        dims.append(int(piece))
    return tuple(dims)


def check_size(dtype: np.dtype, shape: tuple[int, ...], name: str) -> int:
    """The array's byte count; ``ValueError`` when numpy could not even address it."""
    nonzero = math.prod(d for d in shape if d) * dtype.itemsize
    if nonzero > MAX_NBYTES:
        raise ValueError(f"{name}: metadata shape {shape} of {dtype.str} is more than numpy can address")
    return int(math.prod(shape)) * dtype.itemsize


def parse_compression(meta: Mapping[str, str]) -> str | None:
    """The codec an object's body uses; ``None`` for a raw body."""
    if GZIP_FLAG in meta:  # legacy writers: the flag wins
        return GZIP if string2bool(meta[GZIP_FLAG]) else None
    value = str(meta["compression"]).strip()
    if value.lower() in UNCOMPRESSED_SPELLINGS:
        return None
    return check_codec(value)


def spec_from_metadata(meta: Mapping[str, str] | None, name: str) -> ArraySpec:
    """Parse an object's user metadata; ``ValueError`` naming the object and what is wrong.

    Checks the fields alone; readers use ``spec_for_body``, which also checks them against the body.
    """
    meta = {str(k).lower(): v for k, v in (meta or {}).items()}
    missing = [k for k in ("dtype", "shape") if k not in meta]
    if "compression" not in meta and GZIP_FLAG not in meta:
        missing.append("compression")
    if missing:
        raise NotARawArray(f"{name} is not a raw array: its metadata lacks {', '.join(missing)} "
                         f"(has: {shown(', '.join(sorted(meta)), 200) if meta else 'nothing'})")
    dtype = structured_dtype(meta, parse_dtype(meta["dtype"], name), name)
    shape = parse_shape(meta["shape"], name)
    check_size(dtype, shape, name)
    order = str(meta.get("order", "C")).strip().upper() or "C"
    if order not in ("C", "F"):
        raise ValueError(f"{name}: metadata order {shown(meta['order'])} is neither C nor F")
    try:
        compression = parse_compression(meta)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    return ArraySpec(dtype=dtype, shape=shape, order=order, compression=compression)


def check_body_size(spec: ArraySpec, body_size: int, name: str) -> None:
    """Refuse a body that cannot hold ``spec``'s array, before anything is allocated for it.

    An uncompressed body must be exactly the array's size. A compressed body can decode to at
    most ``Codec.max_ratio`` times its size (a property of each codec's format, see there):
    metadata claiming more is forged, and is refused instead of allocating what it claims.
    """
    if spec.compression is None:
        if body_size != spec.nbytes:
            raise ValueError(f"{name}: body is {body_size} bytes but a {spec.dtype.str} array of shape "
                             f"{spec.shape} needs {spec.nbytes} (truncated or not this array)")
        return
    limit = max_decoded_size(spec.compression, body_size)
    if spec.nbytes > limit:
        raise ValueError(f"{name}: metadata claims a {spec.dtype.str} array of shape {spec.shape} "
                         f"({spec.nbytes} bytes), but a {body_size}-byte {spec.compression} body decodes to "
                         f"at most {limit} bytes (forged or damaged metadata)")


def spec_for_body(meta: Mapping[str, str] | None, body_size: int, name: str) -> ArraySpec:
    """The one gate from an object's untrusted metadata and body size to an ``ArraySpec``."""
    spec = spec_from_metadata(meta, name)
    check_body_size(spec, body_size, name)
    return spec


def metadata_from_spec(spec: ArraySpec) -> dict[str, str]:
    """The four strings 0.4.0 writes, in its key order (plus ``dtype-descr`` for structured dtypes)."""
    meta = {
        "dtype": spec.dtype.str,
        "shape": ",".join(str(d) for d in spec.shape),
        "compression": spec.compression if spec.compression else "False",
        "order": spec.order,
    }
    if spec.dtype.fields is not None:
        meta[DESCR_KEY] = descr_text(spec.dtype)
    return meta


def _descr(obj: Any) -> Any:
    """JSON's lists back into the tuples of a numpy ``descr`` (fields, titles, sub-array shapes)."""
    if isinstance(obj, list):
        return [tuple(_descr(part) if isinstance(part, list) and i == 1 else tuple(part) if isinstance(part, list)
                      else part for i, part in enumerate(field)) if isinstance(field, list) else field
                for field in obj]
    return obj


def descr_text(dtype: np.dtype) -> str:
    """A structured dtype's full description (numpy's ``descr``) as compact JSON."""
    return json.dumps(np.lib.format.dtype_to_descr(dtype), separators=(",", ":"))


def parse_descr(text: object, name: str, field: str = DESCR_KEY) -> np.dtype:
    """A structured dtype from an untrusted ``descr`` in JSON; ``ValueError`` naming ``name`` and ``field``.

    Refused: non-strings, text over MAX_DESCR_TEXT, anything json/numpy reject, and anything but a
    record type: a top-level sub-array (``"(2,)<f8"`` is 16 bytes too, but would turn each element
    into two and change the array's shape), a plain scalar, Python objects (also inside fields),
    empty records.
    """
    if not isinstance(text, str) or len(text) > MAX_DESCR_TEXT:
        raise ValueError(f"{name}: metadata {field} is not a dtype description of at most "
                         f"{MAX_DESCR_TEXT} characters")
    try:
        full = np.lib.format.descr_to_dtype(_descr(json.loads(text)))
    except Exception as exc:  # noqa: BLE001 - untrusted: json/numpy raise many kinds (RecursionError too)
        raise ValueError(f"{name}: metadata {field} is not a numpy dtype description "
                         f"({type(exc).__name__})") from None
    if full.hasobject or full.itemsize == 0:
        raise ValueError(f"{name}: metadata {field} describes Python objects or empty records; "
                         "arrays of objects are never read from a bucket")
    if full.fields is None or full.subdtype is not None:
        raise ValueError(f"{name}: metadata {field} {shown(text)} is not a structured (record) dtype")
    return full


def structured_dtype(meta: Mapping[str, object], plain: np.dtype, name: str, field: str = DESCR_KEY) -> np.dtype:
    """The full structured dtype of ``dtype-descr`` when it matches the stored record size, else ``plain``.

    0.4.0 stores a structured array's ``dtype.str`` (``|V12``): the record bytes, no fields. We keep
    that (0.4.0 reads ours as void records) and carry the fields in ``dtype-descr``, which 0.4.0
    ignores. Dask manifests carry the same key (``field`` names where it was found).
    """
    text = meta.get(DESCR_KEY)
    if not text or plain.kind != "V":
        return plain
    full = parse_descr(text, name, field)
    if full.itemsize != plain.itemsize:
        raise ValueError(f"{name}: metadata {field} describes {full.itemsize}-byte records but dtype "
                         f"{plain.str} has {plain.itemsize}")
    return full


def dtype_token(dtype: np.dtype) -> str:
    """A dtype as text that keeps everything: ``dtype.str``, or for record types their full ``descr``
    as JSON (``dtype.str`` is ``|V12`` for those: the fields would be lost). For picklable
    descriptors (dask graphs), read back with :func:`parse_dtype_token`."""
    return descr_text(dtype) if dtype.fields is not None else dtype.str


def parse_dtype_token(text: object, name: str, field: str = "dtype") -> np.dtype:
    """The dtype of a :func:`dtype_token`, through the same checks as metadata (it travels in graphs)."""
    if isinstance(text, str) and text.startswith("["):
        return parse_descr(text, name, field)
    return parse_dtype(text, name, field)


def same_records(stored: np.dtype, expected: np.dtype) -> bool:
    """Whether bytes stored as ``stored`` read as ``expected``: equal dtypes, or the same record size
    where one side is a plain void (what 0.4.0 wrote for a structured array, fields lost)."""
    if stored == expected:
        return True
    plain_void = (stored.kind == "V" and stored.fields is None) or (expected.kind == "V" and expected.fields is None)
    return plain_void and stored.kind == expected.kind == "V" and stored.itemsize == expected.itemsize


#: 0.4.0's ``[compression]`` choices (config), the defaults of every codec choice
SMALL_ARRAY = DEFAULTS_0_4_0["compression"]["small_array"]
LARGE_ARRAY = DEFAULTS_0_4_0["compression"]["large_array"]


def resolve_compression(compression: object, nbytes: int, small_array: str = SMALL_ARRAY,
                        large_array: str = LARGE_ARRAY, do_compression: bool = True,
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
            raise ValueError(f"compression: gzip does not support arrays over 2 GB; "
                             f"set [compression] large_array to {LARGE_ARRAY}")
        return check_codec(choice)
    if isinstance(compression, str):
        if compression.strip().lower() in UNCOMPRESSED_SPELLINGS:
            return None
        return check_codec(compression)
    raise TypeError(f"compression must be True, False, None or a codec name, not {type(compression).__name__}")


def metadata_value(value: object) -> str:
    """User metadata values are strings on the wire; others are stored as ``str(value)``, as 0.4.0 did."""
    return value if isinstance(value, str) else str(value)


def string_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    """User metadata as S3 stores it: every value a string (``metadata_value``)."""
    return {key: metadata_value(value) for key, value in metadata.items()}


def validate_extra_metadata(extra: Mapping[str, object]) -> dict[str, str]:
    """Extra keyword arguments become user metadata: string values, no clash with the four keys."""
    out: dict[str, str] = {}
    for key, value in extra.items():
        if key.lower() in RESERVED_KEYS or key.lower() == GZIP_FLAG:
            raise ReservedMetadataKey(f"metadata key {key!r} is reserved for the array's own description")
        out[key] = metadata_value(value)
    return out
