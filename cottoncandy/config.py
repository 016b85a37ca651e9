"""Settings: cottoncandy's ``options.cfg`` merged over its defaults, and the call's own arguments.

Two files are read, the second overriding the first: 0.4.0's own, in appdirs' ``user_data_dir``
(``~/.local/share/cottoncandy/options.cfg`` or ``$XDG_DATA_HOME/cottoncandy``; on macOS
``~/Library/Application Support/cottoncandy/``), then ``$XDG_CONFIG_HOME/cottoncandy/options.cfg``
(by default ``~/.config/cottoncandy/options.cfg``). Unlike 0.4.0 we read them when an interface is
made (not at import) and never write them. Values the user did not set fall back to boto3's own chain
(environment, ``~/.aws/*``, ``AWS_ENDPOINT_URL``). Secrets never appear in ``repr``.
"""

from __future__ import annotations

import configparser
import os
import secrets
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from .printable import without_userinfo

MB = 2**20

#: What 0.4.0 writes into its options.cfg on first import (its defaults; sizes in MB). Not ours
#: (those are ``Settings``' fields): a value in 0.4.0's file equal to these counts as not set.
DEFAULTS_0_4_0: dict[str, dict[str, str]] = {
    "login": {
        "access_key": "False",
        "secret_key": "False",
        "endpoint_url": "https://s3.amazonaws.com/",
        "verbose_boto": "False",
    },
    "basic": {
        "default_acl": "authenticated-read",
        "default_bucket": "",
        "mandatory_bucket_prefix": "",
        "force_bucket_creation": "False",
        "path_separator": "/",
        "signature_version": "",
        "threads": "4",
    },
    "upload_settings": {
        "mpu_use_threshold": "200",
        "mpu_chunksize": "100",
        "dask_chunksize": "100",
        "min_mpu_size": "5",
        "max_put_size": "5000",
        "max_mpu_size_tb": "5",
        "max_mpu_parts": "10000",
    },
    "download_settings": {"mpd_use_threshold": "100", "mpd_chunksize": "100"},
    "compression": {"do_compression": "True", "small_array": "gzip", "large_array": "Zstd"},
}

#: botocore's retry modes (``[basic] retry_mode`` of options.cfg)
RETRY_MODES = frozenset({"standard", "adaptive", "legacy"})
#: how bucket names are addressed (botocore's ``s3.addressing_style``): ``path`` (``host/BUCKET/key``),
#: ``virtual`` (``BUCKET.host/key``), ``auto`` (botocore's choice)
ADDRESSING_STYLES = ("auto", "path", "virtual")


def checked_addressing_style(value: object, where: str = "addressing_style") -> str | None:
    """``value`` as an addressing style (``None`` for none given); ``ValueError`` naming ``where`` else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    style = str(value).strip().lower()
    if style not in ADDRESSING_STYLES:
        raise ValueError(f"{where} = {value!r}: give one of {', '.join(ADDRESSING_STYLES)}")
    return style

TRUE_STRINGS = frozenset({"true", "tru", "t", "y", "yes", "1"})


def string2bool(value: object) -> bool:
    """cottoncandy's truthiness for config and metadata strings."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_STRINGS


def is_unset(value: object) -> bool:
    """0.4.0 spells 'not given' as ``False``, ``'False'``, ``None`` or an empty string."""
    return value is None or value is False or (isinstance(value, str) and value.strip() in ("", "False"))


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "cottoncandy" / "options.cfg"


def legacy_config_path(platform: str = sys.platform) -> Path:
    """Where cottoncandy 0.4.0 keeps ``options.cfg``: appdirs' ``user_data_dir('cottoncandy', 'cottoncandy')``."""
    home = os.path.expanduser("~")
    if platform == "darwin":
        base = os.path.join(home, "Library", "Application Support", "cottoncandy")
    elif platform.startswith("win"):
        local = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        base = os.path.join(local, "cottoncandy", "cottoncandy")
    else:
        base = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share"), "cottoncandy")
    return Path(base) / "options.cfg"


def read_user_config(path: Path | None = None) -> configparser.ConfigParser:
    """What the user set (no defaults): 0.4.0's file, then ours over it (or just ``path`` when given).

    0.4.0 writes its file full of its defaults on first import, and its bundled ``appdirs`` puts it
    at ``~/.config/cottoncandy/options.cfg`` on Linux: the path of ours. So in every file a value
    equal to 0.4.0's written default counts as not set (an ACL, an endpoint, 4 threads or 100 MB
    parts are only used when the user chose them; a user who wants exactly those values spells them
    differently, e.g. ``threads = 04``).
    """
    parser = configparser.ConfigParser()
    if path is not None:
        if path.is_file():
            parser.read(path)
        return parser
    for found in (legacy_config_path(), config_path()):
        if found.is_file():
            _merge_user_choices(parser, found)
    return parser


def _merge_user_choices(parser: configparser.ConfigParser, path: Path) -> None:
    """The options of ``path`` that are not 0.4.0's written defaults, over what ``parser`` holds."""
    read = configparser.ConfigParser()
    try:
        read.read(path)
    except configparser.Error:
        if path != config_path():
            return  # 0.4.0's file, unreadable: nothing of it is used
        raise
    for section in read.sections():
        for option, value in read.items(section, raw=True):
            if DEFAULTS_0_4_0.get(section, {}).get(option) == value.strip():
                continue
            if not parser.has_section(section):
                parser.add_section(section)
            parser.set(section, option, value)


@dataclass(frozen=True)
class Settings:
    """Everything the layers below the interface need, resolved once. Picklable, secret-free repr."""

    endpoint_url: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    region: str | None = None
    default_acl: str | None = None
    signature_version: str | None = None
    verbose_boto: bool = False
    threads: int = 8
    mpu_threshold: int = 64 * MB
    mpu_chunksize: int = 16 * MB
    download_part_size: int = 16 * MB
    dask_chunksize: int = 100 * MB
    min_mpu_size: int = 5 * MB
    max_mpu_parts: int = 10000
    max_mpu_size: int = 5 * 2**40
    do_compression: bool = True
    small_array: str = "gzip"
    large_array: str = "Zstd"
    mandatory_bucket_prefix: str = ""
    path_separator: str = "/"
    default_bucket: str = ""
    force_bucket_creation: bool = False
    #: take the fast paths of ``cottoncandy.fastpaths`` (signed HEAD/GET/LIST); also off with ``CCFS_FAST_PATHS=0``
    fast_paths: bool = True
    #: attempts per request (the first included) and botocore's retry mode (``standard``,
    #: ``adaptive``, ``legacy``); ``None``: ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE``, the profile's
    #: ``max_attempts``/``retry_mode`` in ``~/.aws/config``, else botocore's standard mode
    max_attempts: int | None = None
    retry_mode: str | None = None
    #: opt-in: downloads of uncompressed raw arrays go through this folder's disk block cache, the one
    #: ``ccfs mount --cache-dir`` keeps (``[download_settings] block_cache_dir`` in options.cfg, or
    #: ``get_interface(block_cache_dir=...)``); at most ``block_cache_size`` bytes of blocks
    block_cache_dir: str | None = None
    block_cache_size: int = 16 * 2**30
    #: keep HEAD answers on local disk and reuse them while a LIST shows the same version
    #: (``cache.metadata``; the mount's and ``ccfs ls -l``'s); also off with ``CCFS_METADATA_CACHE=0``
    metadata_cache: bool = True
    #: a botocore ``Config`` given to ``get_interface(config=...)``, merged over ours
    boto_config: object = field(default=None, repr=False, compare=False)
    #: ``ADDRESSING_STYLES``; ``None``: a ``config=``'s or the profile's ``s3.addressing_style``, else
    #: ``path`` with an endpoint (``endpoint_url``) and botocore's ``auto`` without (``s3.client_config``)
    addressing_style: str | None = None

    def __repr__(self) -> str:
        """The dataclass's repr without credentials, and without a password in the endpoint's URL."""
        shown = []
        for f in fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name == "endpoint_url" and isinstance(value, str):
                value = without_userinfo(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickles carry no secret: the non-secret settings (``shareable``) and, when these settings
        hold credentials or a botocore ``Config``, a token naming them in this process (``remember``).
        Unpickled here or in a forked child they are these settings again, keys included; anywhere
        else the same settings without keys (that process's own credential chain finds them)."""
        private = any(getattr(self, name) is not None for name in PRIVATE_SETTINGS)
        return _unpickled_settings, (shareable(self), remember(self) if private else None)



#: Settings with their credentials, by token, for stores rebuilt from a spec in this process
_LIVE: dict[str, Settings] = {}


def remember(settings: Settings) -> str:
    """A token naming ``settings`` in this process (and its forked children), for ``recall``.

    Pickled dask graphs carry the token, never the keys: unpickled here or in a forked worker they
    find the interface's own credentials; in any other process the token is unknown and the
    worker's own credential chain (environment, ``~/.aws``) is used.
    """
    for token, known in _LIVE.items():
        if known is settings:
            return token
    # random, not id()/pid: another process (a container's pid 1, a reused id) must never find
    # unrelated settings under a token it happens to share
    token = secrets.token_hex(16)
    _LIVE[token] = settings
    return token


def recall(token: object, endpoint_url: str | None = None, profile: str | None = None,
           region: str | None = None) -> Settings | None:
    """The settings ``token`` names in this process, only if they are for the same endpoint,
    profile and region as the spec that carried it (else ``None``: the worker's own chain)."""
    settings = _LIVE.get(str(token)) if token else None
    if settings is None or (settings.endpoint_url, settings.profile, settings.region) != (
            endpoint_url, profile, region):
        return None
    return settings


#: Settings that never leave this process: credentials, and a botocore ``Config`` (its proxy URLs
#: may hold passwords); a worker gets them only through ``recall``
PRIVATE_SETTINGS = frozenset({"access_key", "secret_key", "session_token", "boto_config"})


def shareable(settings: Settings) -> tuple[tuple[str, object], ...]:
    """Every non-secret setting, as hashable pairs, for a store spec sent to worker processes."""
    return tuple((f.name, getattr(settings, f.name)) for f in fields(Settings) if f.name not in PRIVATE_SETTINGS)


def _unpickled_settings(pairs: tuple[tuple[str, object], ...], token: str | None) -> Settings:
    """``Settings.__reduce__``'s other half: the settings ``token`` names here, if they are the ones
    pickled, else the pickled settings without credentials."""
    rebuilt = from_shareable(pairs)
    known = _LIVE.get(str(token)) if token else None
    if known is not None and shareable(known) == shareable(rebuilt):
        return known
    return rebuilt


def from_shareable(pairs: tuple[tuple[str, object], ...]) -> Settings:
    """The settings ``shareable`` described, with no credentials (the worker's own chain finds them).
    Names this version does not know (a client of another version) are ignored."""
    known = {f.name for f in fields(Settings)} - PRIVATE_SETTINGS
    return Settings(**{name: value for name, value in pairs if name in known})  # type: ignore[arg-type]


def _mb(parser: configparser.ConfigParser, section: str, option: str) -> int | None:
    if parser.has_option(section, option):
        return int(float(parser.get(section, option)) * MB)
    return None


def passwd_s3fs_keys() -> tuple[str, str] | None:
    """The keys of ``~/.passwd-s3fs`` (its first line, ``ACCESS:SECRET``), if present."""
    passwd = Path(os.path.expanduser("~")) / ".passwd-s3fs"
    if passwd.is_file():
        line = passwd.read_text().strip().splitlines()[:1]
        if line and ":" in line[0]:
            access, secret = line[0].split(":", 1)
            return access.strip(), secret.strip()
    return None


def environ_keys() -> tuple[str, str] | None:
    """0.4.0's variables ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY`` (not boto3's ``AWS_ACCESS_KEY_ID``), if both are set."""
    env_access, env_secret = os.environ.get("AWS_ACCESS_KEY"), os.environ.get("AWS_SECRET_KEY")
    if env_access and env_secret:
        return env_access, env_secret
    return None


def legacy_keys() -> tuple[str, str] | None:
    """0.4.0's own key sources, used only when boto3's chain finds nothing: ``~/.passwd-s3fs``, then
    ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY``."""
    return passwd_s3fs_keys() or environ_keys()


def load_settings(
    access_key: object = False,
    secret_key: object = False,
    endpoint_url: object = False,
    *,
    profile: str | None = None,
    region: str | None = None,
    config_file: Path | None = None,
    addressing_style: str | None = None,
) -> Settings:
    """Resolve settings: call arguments > options.cfg (what the user set) > boto3's chain > defaults.

    ACLs: none is sent unless the user's options.cfg sets ``default_acl`` (new AWS buckets refuse
    ACLs; 0.4.0 always sent ``authenticated-read``).
    """
    user = read_user_config(config_file)

    def user_value(section: str, option: str) -> str | None:
        if user.has_option(section, option):
            value = user.get(section, option)
            return None if is_unset(value) else value
        return None

    endpoint = None if is_unset(endpoint_url) else str(endpoint_url)
    if endpoint is None:
        from_file = user_value("login", "endpoint_url")
        # 0.4.0 writes AWS's global endpoint as its default; treat it as "use boto3's choice"
        if from_file and from_file.rstrip("/") != "https://s3.amazonaws.com":
            endpoint = from_file
    access = None if is_unset(access_key) else str(access_key)
    secret = None if is_unset(secret_key) else str(secret_key)
    if access is None and secret is None:
        access, secret = user_value("login", "access_key"), user_value("login", "secret_key")

    kwargs: dict[str, object] = {
        "endpoint_url": endpoint,
        "access_key": access,
        "secret_key": secret,
        "profile": profile,
        "region": region,
        "default_acl": user_value("basic", "default_acl"),
        "signature_version": user_value("basic", "signature_version"),
        "verbose_boto": string2bool(user_value("login", "verbose_boto") or False),
        "mandatory_bucket_prefix": user_value("basic", "mandatory_bucket_prefix") or "",
        "path_separator": user_value("basic", "path_separator") or "/",
        "default_bucket": user_value("basic", "default_bucket") or "",
        "force_bucket_creation": string2bool(user_value("basic", "force_bucket_creation") or False),
    }
    attempts = user_value("basic", "max_attempts")
    if attempts:
        if not attempts.strip().isdigit() or int(attempts) < 1:
            raise ValueError(f"options.cfg [basic] max_attempts = {attempts!r}: give a whole number of attempts, "
                             "1 or more")
        kwargs["max_attempts"] = int(attempts)
    mode = user_value("basic", "retry_mode")
    if mode and mode.strip() not in RETRY_MODES:
        raise ValueError(f"options.cfg [basic] retry_mode = {mode!r}: give one of {', '.join(sorted(RETRY_MODES))}")
    kwargs["retry_mode"] = mode.strip() if mode else None
    kwargs["addressing_style"] = checked_addressing_style(
        addressing_style or user_value("basic", "addressing_style"),
        "addressing_style" if addressing_style else "options.cfg [basic] addressing_style")
    threads = user_value("basic", "threads")
    if threads:
        kwargs["threads"] = max(1, int(threads))
    for option, name in (
        ("mpu_use_threshold", "mpu_threshold"),
        ("mpu_chunksize", "mpu_chunksize"),
        ("dask_chunksize", "dask_chunksize"),
        ("min_mpu_size", "min_mpu_size"),
    ):
        value = _mb(user, "upload_settings", option)
        if value is not None:
            kwargs[name] = value
    if user.has_option("upload_settings", "max_mpu_parts"):
        kwargs["max_mpu_parts"] = int(user.get("upload_settings", "max_mpu_parts"))
    if user.has_option("upload_settings", "max_mpu_size_tb"):
        kwargs["max_mpu_size"] = int(float(user.get("upload_settings", "max_mpu_size_tb")) * 2**40)
    if user.has_option("compression", "do_compression"):
        kwargs["do_compression"] = string2bool(user.get("compression", "do_compression"))
    for option in ("small_array", "large_array"):
        codec = user_value("compression", option)
        if codec:
            kwargs[option] = codec
    block_cache_dir = user_value("download_settings", "block_cache_dir")
    if block_cache_dir:
        kwargs["block_cache_dir"] = os.path.expanduser(block_cache_dir)
    size = _mb(user, "download_settings", "block_cache_size_mb")
    if size is not None:
        kwargs["block_cache_size"] = size
    return Settings(**kwargs)  # type: ignore[arg-type]
