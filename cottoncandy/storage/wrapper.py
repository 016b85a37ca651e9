"""``WrapperStore``: a store that is another store with some of its calls changed.

Why one base: a wrapper that forwards the contract's methods by hand misses the ones the contract
gains later, which then fall back to ``ObjectStore``'s generic default instead of the wrapped
store's own (``cache_scope`` was one: the mount's probing store lost the endpoint in its cache
keys). Here every public method of ``ObjectStore`` goes to ``inner`` unless the subclass defines
it, whenever it was added to the contract; attributes a particular store adds (``client``,
``listing_memory``) are read from ``inner``. A subclass overrides only what it changes
(``cache.first_blocks.ProbingStore``: ``head``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from .base import Buffer, Listing, ObjectInfo, ObjectStore, Progress
from .conditions import WriteCondition


class WrapperStore(ObjectStore):
    """``inner``, every call forwarded unless overridden (see the module)."""

    def __init__(self, inner: ObjectStore):
        self.inner = inner
        self.bucket = inner.bucket
        self.part_size = inner.part_size
        self.concurrency = inner.concurrency
        self.capabilities = inner.capabilities

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    # the contract's abstract methods, written out so type checkers see a concrete class (the loop
    # below forwards every other public method, whenever the contract gains it)
    def head(self, key: str) -> ObjectInfo:
        return self.inner.head(key)

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        return self.inner.get_range(key, start, end, if_match)

    def open_read(self, key: str, if_match: str | None = None) -> BinaryIO:
        return self.inner.open_read(key, if_match)

    def put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None = None,
            acl: str | None = None, progress: Progress | None = None, *,
            condition: WriteCondition | None = None) -> ObjectInfo:
        return self.inner.put(key, data, metadata, acl, progress, condition=condition)

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        self.inner.copy(src, dst, condition=condition, source_etag=source_etag)

    def delete_many(self, keys: Iterable[str], *, cleanup: bool = False) -> None:
        self.inner.delete_many(keys, cleanup=cleanup)

    def delete_versions(self, versions: Mapping[str, str | None]) -> list[str]:
        return self.inner.delete_versions(versions)

    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        return self.inner.list_dir(prefix, delimiter)

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.iter_objects(prefix)

    def __getattr__(self, name: str) -> Any:  # anything a particular store adds
        if name == "inner":  # not set yet (unpickling, a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def _forwarder(name: str) -> Callable[..., Any]:
    def forward(self: WrapperStore, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"The wrapped store's ``{name}``."
    return forward


for _name, _value in list(vars(ObjectStore).items()):
    if inspect.isfunction(_value) and not _name.startswith("_") and _name not in vars(WrapperStore):
        setattr(WrapperStore, _name, _forwarder(_name))
