"""Every option of ``ccfs mount``, declared once: ``TABLE`` makes the click options of ``ccfs mount``
(``ccfs.clickoptions``), the ``-o`` names of mount(8)'s helper (``ccfs.fstab``) and
``MountOptions``, the mount's settings (``mount_options``); its store rows (``STORE_OPTIONS``) are also
the options of every other command that opens a store (``ccfs ls``, ``cp`` ...).

Why one table (issue 24 item 4): the option list was written three times (click decorators, the
helper's list of names, the dataclass), and each copy drifted -- a uid the kernel takes as "no id",
``-o fsname`` passed twice to libfuse, an option libfuse refused. A row here says everything about
one option: its name (``--cache-size``, ``-o cache_size=`` or ``-o cache-size=``), its typed parser
with its range, its default (for a ``MountOptions`` field: the field's own default, so a default is
written once), its help, whether the helper takes it, and which ``MountOptions`` field it sets
(``None``: the mount request's, such as ``--endpoint-url``). Adding an option is adding a row.

Parsers know nothing of click: they take the text (or an already-typed value, as a default) and
return the value, or raise ``ValueError`` whose message the faces put after the option's name
(``'--uid': '4294967296' is not between 0 and 4294967294``; ``-o uid=4294967296: ...``). Checks
across options (``check``) raise ``OptionError`` naming one option. Nothing here needs a kernel.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cottoncandy.cache.metadata import DEFAULT_LIMIT as DEFAULT_METADATA_LIMIT
from cottoncandy.config import ADDRESSING_STYLES
from cottoncandy.writes.settings import RENAME_FOLDER_LIMIT, WRITE_CODECS, WriteSettings

MiB = 2**20
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
#: the largest size on disk an option takes (1 EiB: more than any file system here holds)
DISK_MAX = 2**60
#: the largest uid or gid (2**32 - 1 is the kernel's "no id")
OWNER_MAX = 2**32 - 2


@dataclass(frozen=True)
class MountOptions:
    """What the mounted filesystem is told (``CcFilesystem``); the fields an option sets are named in
    ``TABLE``, the others (read-ahead tuning, threads) keep their defaults here."""

    cache_size: int = 512 * MiB
    block_size: int = 256 * 1024
    read_ahead: int = 128 * 1024
    metadata_ttl: float = 300.0
    attr_ttl: float = 1.0
    #: read-ahead of one stream: at most this much, as its tuning decides from its fetches
    #: (``cottoncandy.cache.tuning``), starting from ``first_prefetch`` in runs of ``prefetch_run``
    max_prefetch: int = 128 * MiB
    first_prefetch: int = 64 * MiB
    prefetch_run: int = 8 * MiB
    adaptive_prefetch: bool = True
    fetch_threads: int = 16
    cache_dir: str | None = None
    cache_dir_size: int = 16 * 2**30
    #: changes to the tree through a ``--rw`` mount (``cottoncandy.writes.tree_changes``): ``rm``/``rmdir``
    #: only with ``allow_delete``; a folder rename copies at most ``rename_folder_limit`` objects (EXDEV
    #: beyond); ``last_writer_wins``: writes are unconditional (no If-None-Match/If-Match: no EEXIST/ESTALE)
    allow_delete: bool = False
    rename_folder_limit: int = RENAME_FOLDER_LIMIT
    last_writer_wins: bool = False
    #: HEAD answers kept on disk (``cache.metadata``): under ``cache_dir``, else the user's cache folder
    metadata_cache: bool = True
    metadata_cache_size: int = DEFAULT_METADATA_LIMIT
    #: READs as synchronous requests, so any signal to a reader interrupts its read (at a cost in
    #: sequential throughput: the kernel keeps one READ in flight per reader instead of several)
    interruptible_reads: bool = False
    #: owner and group shown for every file and folder (``None``: the daemon's), and permission
    #: bits taken away from 0555 (folders) and 0444 (files)
    uid: int | None = None
    gid: int | None = None
    umask: int = 0
    #: writes through the mount (``cottoncandy.writes``): off (EROFS) unless ``--rw``; the codec a
    #: written ``.npy`` array is stored with (``none``: raw bytes, readable by range)
    rw: bool = False
    write_compression: str = "none"
    #: memory one folder's listing may take (``cottoncandy.storage.answers``: estimated per entry);
    #: a bigger folder fails with EFBIG. ``None``: a quarter of ``cache_size``, at least 16 MiB
    listing_memory: int | None = None
    #: bytes all files staged on disk for writing may hold (``cottoncandy.writes.staging``): ENOSPC beyond
    write_cache_size: int = 16 * 2**30


class OptionError(ValueError):
    """A value refused by a check across options; ``name`` is the option the message is about."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


class NeedsOption(OptionError):
    """Option ``name`` was given without option ``needed``, which it needs (a row's ``needs``); the
    faces say it in one line, each in its own words: ``--allow-delete needs --rw``,
    ``-o allow_delete needs -o read_write``."""

    def __init__(self, name: str, needed: str, spell: Callable[[str], str]):
        super().__init__(name, f"{spell(name)} needs {spell(needed)}")
        self.needed = needed


# --- parsers ---------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    """``512M``, ``1G``, ``1GiB``, ``4096`` -> bytes (ASCII digits only); ``ValueError`` otherwise."""
    match = re.fullmatch(r"\s*([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 4096, 64M, 1G)")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def show_size(size: int) -> str:
    """4096 -> ``4K``; 1073741824 -> ``1G`` (whole units only, else bytes)."""
    for unit in ("T", "G", "M", "K"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)


def physical_memory() -> int:
    """The machine's memory (bytes); 2**62 where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - every Linux says
        return 2**62


@dataclass(frozen=True)
class Size:
    """A size within ``[low, high]`` bytes; ``memory``: at most the machine's memory as well;
    ``between``: one message for both ends ("must be between 4K and 64M")."""

    low: int = 0
    high: int = DISK_MAX
    memory: bool = False
    between: bool = False
    metavar = "size"

    def __call__(self, value: Any) -> int:
        size = value if isinstance(value, int) and not isinstance(value, bool) else parse_size(value)
        high = min(self.high, physical_memory()) if self.memory else self.high
        if self.between and not self.low <= size <= high:
            raise ValueError(f"must be between {show_size(self.low)} and {show_size(high)}")
        if size < self.low:
            raise ValueError(f"{value!r} is less than {show_size(self.low)}")
        if size > high:
            where = "this machine's memory" if self.memory and high < self.high else show_size(high)
            raise ValueError(f"{value!r} is more than {where} ({show_size(high)})")
        return size

    def show(self, value: int) -> str:
        return show_size(value)


@dataclass(frozen=True)
class Seconds:
    """A finite number of seconds, 0 or more (at most a year): ``nan``, ``inf``, ``1e400`` are not."""

    high: float = 366 * 86400.0
    metavar = "seconds"

    def __call__(self, value: Any) -> float:
        text = str(value).strip()
        if not re.fullmatch(r"[-+]?[0-9]{1,20}(?:\.[0-9]{0,20})?|[-+]?\.[0-9]{1,20}", text):
            raise ValueError(f"{value!r} is not a number of seconds (examples: 0, 1.5, 300)")
        seconds = float(text)
        if seconds < 0:
            raise ValueError("must be 0 or more seconds")
        if seconds > self.high or not math.isfinite(seconds):
            raise ValueError(f"{value!r} is more than a year ({self.high:.0f} seconds)")
        return seconds

    def show(self, value: float) -> str:
        return str(value)


@dataclass(frozen=True)
class Owner:
    """A uid or gid: ASCII digits, 0 to 2**32-2 (the helper looks a name up first: ``kind``)."""

    kind: str = "user"
    metavar = "id"

    def __call__(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"[0-9]{1,20}", text, re.ASCII):
                raise ValueError(f"{value!r} is not a number in ASCII digits 0-9")
            number = int(text)
        if not 0 <= number <= OWNER_MAX:
            raise ValueError(f"{value!r} is not between 0 and {OWNER_MAX}")
        return number

    def show(self, value: int) -> str:
        return str(value)


@dataclass(frozen=True)
class Octal:
    """Permission bits in octal (``022``, ``027``)."""

    metavar = "octal"

    def __call__(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not re.fullmatch(r"0?[0-7]{1,3}", str(value).strip()):
            raise ValueError(f"{value!r} is not an octal mode such as 022 or 027")
        return int(str(value).strip(), 8)

    def show(self, value: int) -> str:
        return format(value, "o")


@dataclass(frozen=True)
class Count:
    """A whole number of things, ``low`` or more, in ASCII digits."""

    low: int = 0
    metavar = "n"

    def __call__(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif re.fullmatch(r"[0-9]{1,18}", str(value).strip(), re.ASCII):
            number = int(str(value).strip())
        else:
            raise ValueError(f"{value!r} is not a whole number in ASCII digits 0-9")
        if number < self.low:
            raise ValueError(f"{value!r} is less than {self.low}")
        return number

    def show(self, value: int) -> str:
        return str(value)


@dataclass(frozen=True)
class Choice:
    """One of ``choices``, any case, given back as spelled here."""

    choices: tuple[str, ...]

    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.choices) + "]"

    def __call__(self, value: Any) -> str:
        for choice in self.choices:
            if str(value).lower() == choice.lower():
                return choice
        listed = ", ".join(repr(c) for c in self.choices)
        raise ValueError(f"{value!r} is not one of {listed}.")

    def show(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class Text:
    """Any text (a URL, a profile or region name); ``path``: a path (``resolve``: made absolute with
    symlinks resolved, where the caller runs, before the daemon changes to /)."""

    metavar_text: str = "text"
    path: bool = False
    resolve: bool = False

    @property
    def metavar(self) -> str:
        return self.metavar_text

    def __call__(self, value: Any) -> str:
        text = os.fspath(value) if self.path else str(value)
        return os.path.realpath(text) if self.resolve else text

    def show(self, value: str) -> str:
        return value


Parser = Size | Seconds | Owner | Octal | Count | Choice | Text


# --- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One option of ``ccfs mount`` (see the module)."""

    #: the parameter's name: ``--cache-size`` is ``cache_size``; ``-o cache_size=``/``-o cache-size=``
    name: str
    help: str
    #: the value's parser; ``None``: a flag, which takes no value
    parse: Parser | None = None
    #: the ``MountOptions`` field it sets (``None``: the request's); ``invert``: a flag setting it False
    field: str | None = None
    invert: bool = False
    #: the default (``None`` for a field: the field's default; for others: no default)
    default: Any = None
    #: taken by mount.fuse.ccfs as ``-o NAME[=VALUE]`` (``False``: the helper decides, or passes it on)
    fstab: bool = True
    #: the command line's spellings when not ``--name-with-dashes`` (``-f``, ``-o``)
    spellings: tuple[str, ...] = ()
    envvar: str | None = None
    multiple: bool = False
    #: the option (by name) without which this one means nothing: given alone, the mount is refused
    #: naming both (``check``), instead of the option being ignored quietly
    needs: str | None = None

    @property
    def is_flag(self) -> bool:
        return self.parse is None

    @property
    def flags(self) -> tuple[str, ...]:
        """The command line's spellings of it (``--cache-size``)."""
        return self.spellings or ("--" + self.name.replace("_", "-"),)

    def default_value(self) -> Any:
        """The default as a typed value: the row's, else its field's (``None``: no default)."""
        if self.default is not None or self.field is None:
            return self.default
        value = _FIELD_DEFAULTS[self.field]
        return (not value) if self.invert else value

    def default_text(self) -> Any:
        """The default as the command line shows it (``512M``, ``300.0``), or the flag's ``False``."""
        value = self.default_value()
        if value is None or self.parse is None:
            return value
        return self.parse.show(value)


_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(MountOptions)}

KiB = 2**10
#: the store's options (the mount request's): every command that opens a store takes them too
#: (``ccfs.clickoptions``; their names are ``registry.StoreOptions``'s)
STORE_OPTIONS: tuple[Option, ...] = (
    Option("endpoint_url", "S3-compatible endpoint (default: AWS).", Text("url"), envvar="AWS_ENDPOINT_URL"),
    Option("profile", "Profile of ~/.aws/credentials to use.", Text("profile"), envvar="AWS_PROFILE"),
    Option("region", "AWS region of the bucket.", Text("region")),
    Option("addressing_style", "How bucket names reach the endpoint: path (HOST/BUCKET/KEY), virtual "
                               "(BUCKET.HOST/KEY) or auto (botocore's choice) [default: the profile's "
                               "s3.addressing_style, else path].", Choice(ADDRESSING_STYLES)),
)
TABLE: tuple[Option, ...] = (
    *STORE_OPTIONS,
    Option("foreground", "Stay in the foreground (logs to stderr).", fstab=False, spellings=("--foreground", "-f")),
    # memory and blocks
    Option("cache_size", "Memory for cached blocks.", Size(low=16 * KiB, memory=True), field="cache_size"),
    Option("block_size", "Bytes per cached block (the least a random read fetches).",
           Size(low=4 * KiB, high=64 * MiB, between=True), field="block_size"),
    Option("read_ahead", "Largest kernel READ (kernel read-ahead of the mount; raising it needs root).",
           Size(low=4 * KiB, high=64 * MiB), field="read_ahead"),
    # changes to the tree through a --rw mount (``cottoncandy.writes.tree_changes``)
    Option("allow_delete", "Let rm and rmdir delete objects through a --rw mount (default: EACCES).",
           field="allow_delete", needs="read_write"),
    Option("rename_folder_limit", "Most objects a folder rename copies server-side; beyond, EXDEV (mv then copies "
                                  "file by file).", Count(), field="rename_folder_limit", needs="read_write"),
    Option("last_writer_wins", "Write without conditions: a file created or changed meanwhile by another writer "
                               "is overwritten (default: EEXIST/ESTALE, where the store honours conditions).",
           field="last_writer_wins", needs="read_write"),
    # how long answers are trusted
    Option("metadata_ttl", "Seconds to trust cached folder listings (new and removed names).", Seconds(),
           field="metadata_ttl"),
    Option("attr_ttl", "Seconds to trust a file's size and version before the next stat/open/read asks again.",
           Seconds(), field="attr_ttl"),
    # on disk
    Option("cache_dir", "Keep fetched blocks on disk here, across mounts and shared by mounts (default: no disk "
                        "block cache; large decoded arrays spill to a temporary folder).",
           Text("directory", path=True, resolve=True), field="cache_dir"),
    Option("cache_dir_size", "Limit of --cache-dir (blocks, least recently used evicted, plus this mount's spills).",
           Size(), field="cache_dir_size"),
    Option("metadata_cache_size", "Limit of the HEAD answers kept on disk (in --cache-dir/metadata, else "
                                  "$XDG_CACHE_HOME/ccfs/metadata): a remount lists unchanged folders with no HEAD.",
           Size(), field="metadata_cache_size"),
    Option("no_metadata_cache", "Keep no HEAD answers on disk.", field="metadata_cache", invert=True),
    Option("interruptible_reads", "Any signal ends a read waiting on S3 at once (not only a fatal one); slower "
                                  "sequential reads.", field="interruptible_reads"),
    # writes (``cottoncandy.writes``; docs/SEMANTICS.md "Writes"). ``-o read_write`` in fstab: mount(8)
    # hands every helper ``rw`` unless ``ro`` is asked, so ``rw`` cannot be the opt-in
    Option("read_write", "Let files be written through the mount (np.save, cp): default read-only (EROFS).",
           field="rw", spellings=("--rw",)),
    Option("write_compression", "Codec of arrays written as NAME.npy through a --rw mount (none: raw, read by "
                                "range; gzip: upload_raw_array's indexed blocks, read by block).",
           Choice(WRITE_CODECS), field="write_compression", needs="read_write"),
    # the daemon
    Option("log_file", "Log file (background default: none).", Text("file", path=True)),
    Option("log_level", "Least severity logged.", Choice(("DEBUG", "INFO", "WARNING", "ERROR")), default="INFO"),
    Option("fuse_options", "Extra FUSE options, e.g. -o allow_other.", Text("option"), fstab=False,
           spellings=("-o",), multiple=True),
    Option("no_fast_paths", "Only public boto3/mfusepy APIs (as CCFS_FAST_PATHS=0): slower listings and reads."),
    # what files look like
    Option("uid", "Owner shown for every file and folder (default: yours).", Owner("user"), field="uid"),
    Option("gid", "Group shown for every file and folder (default: yours).", Owner("group"), field="gid"),
    Option("umask", "Permission bits taken from 0555 (folders) and 0444 (files), in octal, e.g. 027.", Octal(),
           field="umask"),
    Option("write_cache_size", "Disk for files a --rw mount stages (written out of order, opened O_RDWR, "
                               "appended): under --cache-dir, else a private temporary folder; ENOSPC beyond.",
           Size(low=MiB), field="write_cache_size", needs="read_write"),
)
BY_NAME: Mapping[str, Option] = {option.name: option for option in TABLE}
#: which options show their default in ``--help`` (those with one, flags aside)
SHOWN_DEFAULTS = frozenset(o.name for o in TABLE if not o.is_flag and o.default_value() is not None)


def mount_options(values: Mapping[str, Any]) -> MountOptions:
    """``MountOptions`` from parsed option values by name: each row with a field sets it (a flag
    with ``invert`` to its opposite); fields without a row, or a row not given, keep their defaults."""
    fields: dict[str, Any] = {}
    for option in TABLE:
        if option.field is None or option.name not in values:
            continue
        value = values[option.name]
        fields[option.field] = (not value) if option.invert else value
    return MountOptions(**fields)


def write_settings(options: MountOptions) -> WriteSettings:
    """What the writer of a ``--rw`` mount is told: a quarter of ``--cache-size`` for the bytes of
    files being written (``cottoncandy.writes.memory``), the codec of written arrays, and what
    changes to the tree may do (``writes.tree_changes``: deletes, folder renames, conditions)."""
    codec = None if options.write_compression == "none" else options.write_compression
    return WriteSettings(memory=options.cache_size // 4, compression=codec, allow_delete=options.allow_delete,
                         rename_folder_limit=options.rename_folder_limit, last_writer_wins=options.last_writer_wins,
                         journal_folder=options.cache_dir)


def flag_of(name: str) -> str:
    """How ``ccfs mount`` spells the option ``name`` (``read_write`` -> ``--rw``)."""
    return BY_NAME[name].flags[0]


def check(options: MountOptions, given: Collection[str] = (), spell: Callable[[str], str] = flag_of) -> None:
    """Checks across options (``OptionError`` naming the option to change). ``given``: the names of the
    options the user gave (a value equal to the default counts); each of them whose row ``needs``
    another that is off is refused (``NeedsOption``: ``--allow-delete needs --rw``; ``spell``: the
    face's name of an option, ``-o read_write`` for mount(8)'s helper)."""
    for name in sorted(given):
        option = BY_NAME.get(name)
        if option is None or option.needs is None:
            continue
        needed = BY_NAME[option.needs]
        on = getattr(options, needed.field) if needed.field is not None else needed.name in given
        if not ((not on) if needed.invert else on):
            raise NeedsOption(name, needed.name, spell)
    if options.cache_size < 4 * options.block_size:
        raise OptionError("cache_size", "must hold at least 4 blocks")


def fstab_option(item_name: str) -> Option | None:
    """The row an ``-o`` item names (``cache-size`` or ``cache_size``), if the helper takes it."""
    option = BY_NAME.get(item_name.replace("-", "_"))
    return option if option is not None and option.fstab else None
