"""0.4.0's ``cottoncandy.utils``: its constants and helper functions, for scripts that import them.

The library does not use this module; it keeps 0.4.0's names and behaviour (``string2bool('None')``
is ``None``, ``get_keys`` asserts it found keys) so that ``from cottoncandy.utils import ...`` keeps
working. The size constants are read from ``cottoncandy.options.config`` on first access (0.4.0 read
them at import), in bytes as 0.4.0 had them.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any
from urllib.parse import unquote

import numpy as np

from . import options
from .config import environ_keys, passwd_s3fs_keys

MB = 2**20

#: constant name -> (section, option, multiplier) in 0.4.0's options.cfg
_SIZES: dict[str, tuple[str, str, int]] = {
    "MIN_MPU_SIZE": ("upload_settings", "min_mpu_size", MB),
    "MAX_PUT_SIZE": ("upload_settings", "max_put_size", MB),
    "MAX_MPU_SIZE": ("upload_settings", "max_mpu_size_TB", MB * MB),
    "MAX_MPU_PARTS": ("upload_settings", "max_mpu_parts", 1),
    "MPU_THRESHOLD": ("upload_settings", "mpu_use_threshold", MB),
    "MPU_CHUNKSIZE": ("upload_settings", "mpu_chunksize", MB),
    "DASK_CHUNKSIZE": ("upload_settings", "dask_chunksize", MB),
    "THREADS": ("basic", "threads", 1),
}
_STRINGS: dict[str, tuple[str, str]] = {
    "SEPARATOR": ("basic", "path_separator"),
    "DEFAULT_ACL": ("basic", "default_acl"),
    "MANDATORY_BUCKET_PREFIX": ("basic", "mandatory_bucket_prefix"),
    "ISBOTO_VERBOSE": ("login", "verbose_boto"),
}


def __getattr__(name: str) -> Any:
    if name in _SIZES:
        section, option, unit = _SIZES[name]
        return int(options.config.get(section, option)) * unit
    if name in _STRINGS:
        return options.config.get(*_STRINGS[name])
    raise AttributeError(f"module 'cottoncandy.utils' has no attribute {name!r}")


def _separator() -> str:
    return str(__getattr__("SEPARATOR"))


def sanitize_metadata(metadict: dict[str, Any]) -> dict[str, Any]:
    """The same dictionary with lower-case keys (S3 returns metadata names lower-cased)."""
    return {key.lower(): value for key, value in metadict.items()}


def pathjoin(a: str, *p: str) -> str:
    """Join path parts with the separator; an absolute part discards what came before it."""
    separator = _separator()
    path = a
    for b in p:
        if b.startswith(separator):
            path = b
        elif path == "" or path.endswith(separator):
            path += b
        else:
            path += separator + b
    return path


def string2bool(mstring: object) -> bool | None:
    """0.4.0's exact rule: a few spellings of true are ``True``, ``'None'`` is ``None``, all else ``False``."""
    if mstring in ["True", "true", "tru", "t", "y", "yes", "1"]:
        return True
    if mstring == "None":
        return None
    return False


def bytes2human(nbytes: int) -> str:
    """A byte count as 0.4.0 printed it (``'10.00MB'``, ``'1.24GB'``)."""
    if nbytes == 0:
        return "0.00B"
    mapper = {0: "B", 10: "KB", 20: "MB", 30: "GB", 40: "TB", 50: "PB", 60: "EB", 70: "ZB"}
    exps = np.array(sorted(mapper))
    exp_closest = int(exps[np.abs(exps - np.log2(nbytes)).argmin()])
    if np.log10(nbytes / 2.0**exp_closest) < 0:
        exp_closest -= 10
    return f"{nbytes / 2.0**exp_closest:0.2f}{mapper[exp_closest]}"


def get_object_size(boto_s3_object: Any) -> float:
    """Size in MB of a boto3 ``s3.Object`` (it is loaded: one HEAD)."""
    boto_s3_object.load()
    return float(boto_s3_object.meta.data["ContentLength"] / 2.0**20)


def get_fileobject_size(file_object: Any) -> int:
    """Byte size of a seekable file object (left at position 0, as 0.4.0 left it)."""
    file_object.seek(0, 2)
    nbytes = int(file_object.tell())
    file_object.seek(0)
    return nbytes


def get_key_from_s3fs() -> tuple[str, str] | None:
    return passwd_s3fs_keys()


def get_key_from_environ() -> tuple[str, str] | None:
    return environ_keys()


def get_keys() -> tuple[str, str]:
    """Keys from ``~/.passwd-s3fs`` or ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY``; ``AssertionError`` when
    neither has them, as in 0.4.0."""
    result = passwd_s3fs_keys() or environ_keys()
    assert result is not None, "no keys in ~/.passwd-s3fs or AWS_ACCESS_KEY/AWS_SECRET_KEY"
    return result


def objects2names(objects: Iterable[Any]) -> list[str]:
    """The unquoted keys of boto3 objects."""
    return [unquote(t.key) for t in objects]


def unquote_names(object_names: Iterable[str]) -> list[str]:
    return [unquote(t) for t in object_names]


def print_objects(object_list: list[Any]) -> None:
    """Print name, date and size in MB of boto3 object summaries, one per line."""
    object_names = objects2names(object_list)
    if object_names:
        maxlen = max(map(len, object_names))
        dates = [t.last_modified.astimezone().strftime("%Y/%m/%d (%H:%M:%S)") for t in object_list]
        width = min(maxlen + 3, 70)
        sizes = [round(t.meta.data["Size"] / 2.0**20, 1) for t in object_list]
        print("\n".join(f"{name[-100:]: <{width}} {date} {size}M"
                        for name, date, size in zip(object_names, dates, sizes, strict=True)))


def clean_object_name(input_function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of a method taking an object name: repeated slashes collapse, a leading one goes."""
    @wraps(input_function)
    def iremove_root(self: Any, object_name: str, *args: Any, **kwargs: Any) -> Any:
        object_name = re.sub("//+", "/", object_name)
        if object_name and object_name[0] == _separator():
            object_name = object_name[1:]
        return input_function(self, object_name, *args, **kwargs)
    return iremove_root


def remove_root(string_: str) -> str:
    """``string_`` without one leading separator."""
    return string_[1:] if string_[0] == _separator() else string_


check_digits = re.compile("[0-9]")
MAGIC_CHECK = re.compile("[*?[]")


def has_start_digit(s: str) -> bool:
    return check_digits.match(s) is not None


def has_magic(s: str) -> bool:
    """Whether ``s`` holds any glob pattern character."""
    return MAGIC_CHECK.search(s) is not None


def has_trivial_magic(s: str) -> bool:
    """Whether ``s``'s only pattern is a ``/*`` at its end (``'path/*'``)."""
    return re.match(r"[^*]*/[\*]$", s) is not None and re.search("[?[]", s) is None


def has_real_magic(s: str) -> bool:
    return has_magic(s) and not has_trivial_magic(s)


def remove_trivial_magic(s: str) -> str:
    """``xxx/*`` -> ``xxx/``; anything else unchanged."""
    if has_real_magic(s) or not has_magic(s):
        return s
    return s[:-1]


def split_uri(uri: str, pattern: str = "s3://", separator: str = "/") -> tuple[str, str]:
    """``'s3://bucket/path/to/thing'`` -> ``('bucket', 'path/to/thing')``."""
    assert pattern in uri
    parts = uri[len(pattern):].split(separator)
    return parts[0], separator.join(parts[1:])


def mk_aws_path(path: str) -> str:
    """A prefix that lists a folder: ``xxx`` -> ``xxx/``; ``/`` and ``''`` -> ``''``."""
    separator = _separator()
    if path in (separator, ""):
        return ""
    return path if path.endswith("/") else path + separator


def generate_ndarray_chunks(arr: np.ndarray, axis: int | None = None,
                            buffersize: int = 100 * MB) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Split ``arr`` into pieces of about ``buffersize`` bytes: yields (chunk coordinates, chunk).

    ``axis``: slice along that axis only; ``None``: near-isotropic chunks (0.4.0: "WIP").
    """
    shape = arr.shape
    nparts = int(np.ceil(arr.nbytes / float(buffersize)))
    assert arr.nbytes < __getattr__("MAX_MPU_SIZE")
    assert buffersize >= __getattr__("MIN_MPU_SIZE")
    assert nparts < __getattr__("MAX_MPU_PARTS")
    if axis is None:
        logsum, factor = 0.0, arr.ndim
    else:
        if axis == -1:
            axis = arr.ndim - 1
        logsum = float(np.sum([np.log(arr.shape[t]) for t in range(arr.ndim) if t != axis]))
        factor = 1
    ii = int(np.ceil(np.exp(((np.log(buffersize) - np.log(arr.itemsize)) - logsum) / factor)))
    dim_nchunks = [int(np.ceil(x / ii)) + 1 for x in shape]
    if axis is not None:
        dim_nchunks = [(t if i == axis else 1) for i, t in enumerate(dim_nchunks)]
    chunk_shapes = [ii if (axis is None or dim == axis) else arr.shape[dim] for dim in range(arr.ndim)]
    for chunk_coords in itertools.product(*(range(n) for n in dim_nchunks)):
        beg = [chunk_shapes[dim] * cc for dim, cc in enumerate(chunk_coords)]
        end = [min(chunk_shapes[dim] * (cc + 1), shape[dim]) for dim, cc in enumerate(chunk_coords)]
        yield chunk_coords, arr[tuple(slice(b, e) for b, e in zip(beg, end, strict=True))]


def read_buffered(frm: Any, to: np.ndarray, buffersize: int = 64) -> None:
    """Fill the array ``to`` (C or F contiguous) from ``frm.read``, ``buffersize`` bytes at a time."""
    nbytes_total = to.size * to.dtype.itemsize
    view = (to.T if to.flags["F_CONTIGUOUS"] else to).reshape(-1).view(np.uint8)
    for ci in range(int(np.ceil(nbytes_total / float(buffersize)))):
        start = ci * buffersize
        end = min(nbytes_total, (ci + 1) * buffersize)
        view[start:end] = np.frombuffer(frm.read(end - start), dtype=np.uint8)


class GzipInputStream:
    """Forward-only reads of a gzip stream from a file object (0.4.0's streaming reader)."""

    def __init__(self, fileobj: Any, block_size: int = 16384) -> None:
        self.BLOCK_SIZE = block_size
        self.WINDOW_BUFFER_SIZE = 16 + zlib.MAX_WBITS
        self._file = fileobj
        self._zip: Any = zlib.decompressobj(self.WINDOW_BUFFER_SIZE)
        self._offset = 0
        self._data = b""

    def _fill(self, num_bytes: int) -> None:
        if not self._zip:
            return
        while not num_bytes or len(self._data) < num_bytes:
            data = self._file.read(self.BLOCK_SIZE)
            if not data:
                self._data += self._zip.flush()
                self._zip = None
                break
            self._data += self._zip.decompress(data)

    def __iter__(self) -> GzipInputStream:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__

    def seek(self, offset: int, whence: int = 0) -> None:
        position = offset if whence == 0 else self._offset + offset if whence == 1 else None
        if position is None:
            raise OSError("Illegal argument")
        if position < self._offset:
            raise OSError("Cannot seek backwards")
        while position > self._offset:
            if not self.read(min(position - self._offset, self.BLOCK_SIZE)):
                break

    def tell(self) -> int:
        return self._offset

    def read(self, size: int = 0) -> bytes:
        self._fill(size)
        if size:
            data, self._data = self._data[:size], self._data[size:]
        else:
            data, self._data = self._data, b""
        self._offset += len(data)
        return data

    def readline(self) -> bytes:
        while self._zip and b"\n" not in self._data:
            self._fill(len(self._data) + 512)
        pos = self._data.find(b"\n") + 1
        return self.read() if pos <= 0 else self.read(pos)

    def readlines(self) -> list[bytes]:
        return list(iter(self.readline, b""))
