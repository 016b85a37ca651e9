"""What the API mixins (``api_files``, ``api_arrays``) need from the interface that hosts them.

``CloudInterface`` is assembled from mixins, as 0.4.0's interface was; each mixin uses a few
attributes only the interface has. ``InterfaceHost`` names them, so the type checker checks every
use in the mixins and checks that ``CloudInterface`` provides them. At run time the mixins are
plain classes (``MixinBase`` is ``object``): the protocol costs nothing and changes no MRO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .config import Settings
from .storage.base import ObjectStore


class StoreOpener(Protocol):
    """An account: opens the store of another bucket (``cp(..., source_bucket=...)``)."""

    def store(self, bucket: str) -> ObjectStore: ...


class InterfaceHost(Protocol):
    """The interface as its mixins see it (the mixins never rebind these)."""

    settings: Settings
    verbose: bool

    @property
    def store(self) -> ObjectStore: ...

    @property
    def account(self) -> StoreOpener: ...

    def _encode_choice(self) -> dict[str, Any]: ...


if TYPE_CHECKING:
    MixinBase = InterfaceHost
else:
    MixinBase = object
