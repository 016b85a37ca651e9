"""cottoncandy: numpy arrays in S3 (or a local directory), compatible with cottoncandy 0.4.0."""

from __future__ import annotations

from dataclasses import replace
from posixpath import join as pathjoin  # 0.4.0's utils.pathjoin: '/'-joining whatever the platform
from typing import Any

from .config import load_settings
from .interface import CloudInterface, InterfaceObject
from .storage.registry import open_account

__version__ = "0.5.0.dev0"


def get_interface(bucket_name: str | None = None, ACCESS_KEY: Any = False, SECRET_KEY: Any = False,  # noqa: N803
                  endpoint_url: Any = False, force_bucket_creation: bool | None = None, verbose: bool = True,
                  backend: str = "s3", **kwargs: Any) -> CloudInterface:
    """An interface to one bucket of S3 (``backend='s3'``), one local directory (``backend='local'``)
    or one in-memory bucket of this process (``backend='memory'``; see ``storage.registry``).

    Credentials and endpoint: arguments first, then ``options.cfg`` (see ``config``), then boto3's
    chain (environment, ``~/.aws/*``, ``AWS_ENDPOINT_URL``). ``kwargs``: ``profile``, ``region``
    (or 0.4.0's ``region_name``), ``aws_session_token``, ``config``, a botocore ``Config`` whose
    settings (timeouts, signature version, ...) win over ours, as 0.4.0 passed it to boto3, and
    ``block_cache_dir`` (downloads share ``ccfs mount --cache-dir``'s disk block cache; opt-in).
    ``show_buckets=True`` prints every bucket of the account, as 0.4.0 did whenever ``verbose`` (one
    ListBuckets call, which many accounts deny or answer with thousands of names); ``verbose`` alone
    prints the current bucket.
    """
    settings = load_settings(ACCESS_KEY, SECRET_KEY, endpoint_url, profile=kwargs.pop("profile", None),
                             region=kwargs.pop("region", None) or kwargs.pop("region_name", None))
    show_buckets = bool(kwargs.pop("show_buckets", False))
    extra = {"boto_config": kwargs.pop("config", None), "session_token": kwargs.pop("aws_session_token", None),
             "block_cache_dir": kwargs.pop("block_cache_dir", None)}
    settings = replace(settings, **{k: v for k, v in extra.items() if v is not None})
    if kwargs:
        raise TypeError(f"get_interface() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    if bucket_name is None:
        bucket_name = settings.default_bucket
    if force_bucket_creation is None:
        force_bucket_creation = settings.force_bucket_creation
    account = open_account(backend, settings)
    return CloudInterface(bucket_name, account, settings, backend=backend, verbose=verbose,
                          force_bucket_creation=force_bucket_creation, show_buckets=show_buckets)


def get_browser(bucket_name: str | None = None, ACCESS_KEY: Any = False, SECRET_KEY: Any = False,  # noqa: N803
                endpoint_url: Any = False, verbose: bool = False, backend: str = "s3", **kwargs: Any) -> Any:
    """A tab-completing browser of a bucket: ``b = cc.get_browser('my_bucket'); b.proj.<TAB>``."""
    return get_interface(bucket_name, ACCESS_KEY, SECRET_KEY, endpoint_url, verbose=verbose, backend=backend,
                         **kwargs).get_browser()


#: 0.4.0's module-level names, read from its options.cfg on first access (0.4.0 read them at import)
_LEGACY_CONFIG = {
    "ACCESS_KEY": ("login", "access_key"),
    "SECRET_KEY": ("login", "secret_key"),
    "ENDPOINT_URL": ("login", "endpoint_url"),
    "DEFAULT_SIGNATURE_VERSION": ("basic", "signature_version"),
    "default_bucket": ("basic", "default_bucket"),
}


def __getattr__(name: str) -> Any:
    """0.4.0's ``cc.options``, ``cc.utils``, ``cc.get_keys``, ``cc.string2bool`` and config constants,
    loaded when a script first asks for them, so ``import cottoncandy`` reads no file."""
    import importlib

    if name in ("options", "utils"):
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("get_keys", "string2bool"):
        return getattr(importlib.import_module(f"{__name__}.utils"), name)
    if name in _LEGACY_CONFIG:
        return importlib.import_module(f"{__name__}.options").config.get(*_LEGACY_CONFIG[name])
    if name == "force_bucket_creation":
        utils = importlib.import_module(f"{__name__}.utils")
        return utils.string2bool(importlib.import_module(f"{__name__}.options").config.get(
            "basic", "force_bucket_creation"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CloudInterface", "InterfaceObject", "__version__", "get_browser", "get_interface", "pathjoin"]
