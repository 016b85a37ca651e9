"""0.4.0's ``cottoncandy.options`` module, for scripts that read ``cc.options.config`` or ``userdir``.

0.4.0 read (and on first import wrote) its ``options.cfg`` when this module was imported. Here
``config`` is built on first access, from 0.4.0's defaults with the user's files over them (the same
files and order as ``cottoncandy.config``), and nothing is ever written. The settings the library
itself uses come from ``cottoncandy.config``; this module only answers scripts that look inside.
"""

from __future__ import annotations

import configparser
from typing import Any

from .config import DEFAULTS_0_4_0, config_path, environ_keys, legacy_config_path, legacy_keys, passwd_s3fs_keys

#: where 0.4.0 keeps its files (appdirs' ``user_data_dir('cottoncandy', 'cottoncandy')``)
userdir = str(legacy_config_path().parent)
usercfg = str(legacy_config_path())
_config: configparser.ConfigParser | None = None


def get_config() -> configparser.ConfigParser:
    """0.4.0's defaults alone (what its ``get_config`` returned before reading the user's file)."""
    config = configparser.ConfigParser()
    config.read_dict(DEFAULTS_0_4_0)
    config.read_dict({"extensions": {"ccgroup": "grp, ccg", "ccdataset": "arr, dar, rarr, ccd"},
                      "gdrive": {"secrets": "client_secrets.json", "credentials": "credentials.txt"}})
    return config


def _load() -> configparser.ConfigParser:
    config = get_config()
    for path in (legacy_config_path(), config_path()):
        try:
            config.read(path)
        except configparser.Error:
            continue  # a broken file is ignored here as in ``cottoncandy.config``
    return config


def get_key_from_s3fs() -> tuple[str, str] | None:
    """The keys of ``~/.passwd-s3fs`` (its first ``ACCESS:SECRET`` line), if present."""
    return passwd_s3fs_keys()


def get_key_from_environ() -> tuple[str, str] | None:
    """``AWS_ACCESS_KEY``/``AWS_SECRET_KEY`` from the environment, if both are set."""
    return environ_keys()


def get_keys() -> tuple[str, str] | None:
    """0.4.0's key search: ``~/.passwd-s3fs`` first, then the environment; ``None`` when neither has keys."""
    return legacy_keys()


def __getattr__(name: str) -> Any:
    global _config
    if name == "config":
        if _config is None:
            _config = _load()
        return _config
    raise AttributeError(f"module 'cottoncandy.options' has no attribute {name!r}")
