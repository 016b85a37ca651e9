"""``ccfs ls|glob|info|put|get|rm|cp``: the cottoncandy API from the shell.

Arguments are ``s3://bucket/key`` URLs or local-backend paths (``cottoncandy.urls``). Every
failure is one line on stderr and exit status 1, never a traceback. Remote keys complete in the
shell through click's completion (``eval "$(_CCFS_COMPLETE=bash_source ccfs)"``).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import click
from click.shell_completion import CompletionItem

from cottoncandy import fastpaths
from cottoncandy.arrays.inspect import describe
from cottoncandy.arrays.npy_files import save_npy_file, upload_npy_file
from cottoncandy.cache.metadata import shared_shelf
from cottoncandy.errors import NeedsOptionWarning, OptionAdvice
from cottoncandy.files import listing, transfers
from cottoncandy.files.urls import S3_SCHEME, Location, account, exactly, open_store, parse_location, parse_source
from cottoncandy.formats.raw import UNCOMPRESSED_LABEL, UNCOMPRESSED_SPELLINGS, has_array_metadata, spec_from_metadata
from cottoncandy.namespace.patterns import has_magic
from cottoncandy.printable import escape_controls, shown_name
from cottoncandy.progress import Progress
from cottoncandy.storage.base import ObjectInfo

from .clickoptions import table_options
from .flags import cli_flag
from .mountoptions import STORE_OPTIONS


def complete_url(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Buckets after ``s3://``, then the keys and folders of the level being typed (one LIST)."""
    if not incomplete.startswith(S3_SCHEME):
        return [CompletionItem(S3_SCHEME)] if S3_SCHEME.startswith(incomplete) else []
    options = store_options(ctx.params)
    options["endpoint_url"] = options["endpoint_url"] or os.environ.get("AWS_ENDPOINT_URL")
    try:
        rest = incomplete[len(S3_SCHEME):]
        if "/" not in rest:
            buckets = account("s3", **options).list_buckets()
            return [CompletionItem(f"{S3_SCHEME}{b}/") for b in buckets if b.startswith(rest)]
        bucket, _, key = rest.partition("/")
        store = open_store(Location("s3", bucket, ""), **options)
        found = store.list_dir(key)
        names = [p for p in found.prefixes] + [o.key for o in found.objects]
        return [CompletionItem(f"{S3_SCHEME}{bucket}/{name}") for name in names]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []


def store_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """The store's options (``mountoptions.STORE_OPTIONS``: endpoint, profile, region, addressing
    style) among a command's parameters, by name."""
    return {option.name: given.get(option.name) for option in STORE_OPTIONS}


def remote_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The store's options (``mountoptions.STORE_OPTIONS``, as ``ccfs mount`` takes them) and one-line
    errors for a command."""

    @table_options(STORE_OPTIONS)
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException as exc:
            exc.message = escape_controls(exc.message)  # type: ignore[misc]  # Final in click's stubs
            raise
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise click.ClickException(_one_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the promise is one line, whatever went wrong
            raise click.ClickException(f"{type(exc).__name__}: {_one_line(exc)}") from None

    return wrapper


def _one_line(exc: BaseException) -> str:
    """The message without ``[Errno N]`` noise or line breaks; advice names CLI flags, not keywords."""
    advice = getattr(exc, "advice", None)
    if isinstance(advice, OptionAdvice):
        text = advice.render(cli_flag)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    else:
        text = str(exc)
    return escape_controls(" ".join(text.split()))


def _store(location: Location, options: dict[str, Any], create: bool = False) -> Any:
    return open_store(location, **store_options(options), create=create)


def _progress(label: str) -> Progress:
    """A bar on stderr for a transfer of at least ``progress.MIN_BYTES`` array bytes (the transfer
    announces its total with ``set_total`` once it knows it)."""
    return Progress(None, label, threshold=True)


URL = click.argument("url", shell_complete=complete_url)


@click.command("ls")
@URL
@click.option("-l", "long", is_flag=True, help="Show size and date of objects.")
@remote_options
def ls_command(url: str, long: bool, **options: Any) -> None:
    """List a folder (s3://bucket/prefix) or what a pattern matches (folders and objects)."""
    location = parse_source(url)
    store = _store(location, options)
    entries = [entry for entry in listing.ls_entries(store, location.key) if _nameable(location, entry.name)]
    if not entries:
        raise click.ClickException(f"nothing found at {url}")
    if not long:
        for entry in entries:  # folders end with '/', as `aws s3 ls` marks them (PRE name/)
            click.echo(shown_name(location.url(entry.name) + ("/" if entry.folder else "")))
        return
    infos = {o.key: o for o in store.list_dir(listing.folder_prefix(location.key)).objects}
    # raw arrays' dtype and shape: HEADs, answered by the metadata cache mounts share; an object whose
    # metadata is refused (a bad local sidecar) is one line saying so, not the end of the listing
    refused: dict[str, str] = {}
    heads = listing.described(store, [infos[e.name] for e in entries if not e.folder and e.name in infos],
                              shared_shelf(store), refused)
    for entry in entries:
        if entry.folder:
            click.echo(f"{'DIR':>12}  {'':19}  {shown_name(location.url(entry.name) + '/')}")
            continue
        info = heads.get(entry.name) or infos.get(entry.name)
        if info is None and entry.name not in refused:
            try:
                info = store.head_if_exists(entry.name)
            except ValueError as exc:
                refused[entry.name] = str(exc)
        if info is None and entry.name in refused:  # its size and date: a LIST says them without metadata
            info = next((o for o in store.list_dir(entry.name).objects if o.key == entry.name), None)
        if info is not None:  # None: removed since it was listed
            when = info.last_modified.strftime("%Y-%m-%d %H:%M:%S") if info.last_modified else "-"
            note = (f"  (unreadable metadata: {escape_controls(' '.join(refused[entry.name].split()))})"
                    if entry.name in refused else _array_note(info))
            click.echo(f"{info.size:>12}  {when:19}  {shown_name(location.url(entry.name))}{note}")


def _nameable(location: Location, key: str) -> bool:
    """Whether the command line can name ``key``; a key holding a NUL cannot be typed (a shell's
    ``$'..\\x00..'`` ends at the NUL, naming another key) nor be a file: it is left out, named on stderr."""
    if "\x00" not in key:
        return True
    click.echo(f"left out {escape_controls(location.url(key))}: a key holding a NUL character can be neither "
               "typed on a command line nor a file name", err=True)
    return False


def _array_note(info: ObjectInfo) -> str:
    """``  float64 (10, 20)`` for a raw array (``  gzip`` after it when compressed); ``''`` otherwise."""
    if not has_array_metadata(info.metadata):
        return ""
    try:
        spec = spec_from_metadata(info.metadata, info.key)
    except ValueError:
        return "  (unreadable array metadata)"
    return f"  {spec.dtype} {spec.shape}" + (f" {spec.compression}" if spec.compression else "")


@click.command("glob")
@URL
@remote_options
def glob_command(url: str, **options: Any) -> None:
    """Print the objects a pattern matches: * and ? within a level, [..], ** for any depth."""
    location = parse_source(url)
    keys = [key for key in listing.glob(_store(location, options), location.key) if _nameable(location, key)]
    if not keys:
        raise click.ClickException(f"no objects match {url}")
    for key in keys:
        click.echo(shown_name(location.url(key)))


@click.command("info")
@click.argument("url", required=False, shell_complete=complete_url)
@click.option("--mount", "mountpoint", metavar="MNT", type=click.Path(file_okay=False),
              help="Instead of a URL: the fast requests the daemon of the ccfs mount at MNT had refused, by cause.")
@remote_options
def info_command(url: str | None, mountpoint: str | None, **options: Any) -> None:
    """dtype, shape, order, compression, size and ETag of an array (or what else is there);
    with --mount MNT, the fast paths of that mount's daemon."""
    if (url is None) == (mountpoint is None):
        raise click.UsageError("give a URL or --mount MNT (one of them)")
    if mountpoint is not None:
        _mount_info(mountpoint)
        return
    assert url is not None
    location = parse_source(url)
    store = _store(location, options)
    location = exactly(store, location)  # an object 'a//b' at s3://b/a//b
    fields = describe(store, location.key.rstrip("/"), folder=location.key.endswith("/"))
    width = max(len(k) for k in fields)
    click.echo(f"{'url':<{width}}  {shown_name(url)}")
    for key, value in fields.items():
        shown = ",".join(str(d) for d in value) if isinstance(value, tuple) else str(value)
        click.echo(f"{key:<{width}}  {'()' if value == () else escape_controls(shown)}")


def _mount_info(mountpoint: str) -> None:
    """``ccfs info --mount``: whether the daemon takes the fast paths, what they had refused (each such
    request asked again through boto3) and where they fell back (``cottoncandy.fastpaths``)."""
    from .control import DaemonError, fast_paths

    try:
        state = fast_paths(mountpoint)
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None
    rows = {"mount": shown_name(os.path.abspath(mountpoint)),
            "fast paths": "on" if state.get("enabled") else "off",
            "refused": fastpaths.counts_line(state.get("refused") or {}),
            "fallbacks": fastpaths.counts_line(state.get("fallbacks") or {})}
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        click.echo(f"{key:<{width}}  {escape_controls(value)}")


@click.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("url", shell_complete=complete_url)
@click.option("--compression", default=UNCOMPRESSED_LABEL, show_default=True,
              help="none (readable by range through the mount), gzip, or a numcodecs name (Zstd, LZ4...).")
@remote_options
def put_command(file: str, url: str, compression: str, **options: Any) -> None:
    """Store FILE.npy at URL as a raw array (cottoncandy's format)."""
    location = parse_location(url)
    if not location.key or location.key.endswith("/"):
        raise click.ClickException(f"{url} names no key to store the array under")
    codec: object = False if compression.strip().lower() in UNCOMPRESSED_SPELLINGS else compression
    store = _store(location, options, create=True)
    _refuse_pattern_destination(store, location, url)
    with _progress(f"put {location.key}") as progress:
        info = upload_npy_file(store, file, location.key, codec, progress.update, total=progress.set_total)
    click.echo(f"stored {shown_name(file)} at {shown_name(location.url())} ({info.size} bytes)")


@click.command("get")
@click.argument("url", shell_complete=complete_url)
@click.argument("file", type=click.Path(dir_okay=False))
@remote_options
def get_command(url: str, file: str, **options: Any) -> None:
    """Write the array at URL (raw, .npy or dask) to FILE.npy."""
    location = parse_source(url)
    store = _store(location, options)
    location = exactly(store, location)  # an object 'a//b' at s3://b/a//b
    key, folder = location.key.rstrip("/"), location.key.endswith("/")  # 'd/': the dask folder only
    info = store.head_if_exists(key) if key and not folder else None
    if info is None and has_magic(key) and next(iter(store.iter_objects(key + "/")), None) is None:
        raise click.ClickException(f"nothing stored at {url}: get takes one array, not a pattern "
                                   "(list the matches with ccfs glob)")
    with _progress(f"get {key}") as progress:
        kind = save_npy_file(store, key, file, progress.update, info, folder=folder, total=progress.set_total)
    click.echo(f"wrote {shown_name(file)} ({kind})")


@click.command("rm")
@click.argument("url", shell_complete=complete_url)
@click.option("-r", "--recursive", is_flag=True, help="Remove a folder and everything under it.")
@remote_options
def rm_command(url: str, recursive: bool, **options: Any) -> None:
    """Remove an object, a folder (-r; a trailing / means the folder only), or the objects a pattern matches.

    A key that exists is removed exactly, even if its name holds * ? [ ]; a name is a pattern only
    when no such key or folder exists.
    """
    location = parse_source(url)
    if not location.key:
        raise click.ClickException(f"refusing to remove a whole bucket or folder root: {url}")
    store = _store(location, options)
    location = exactly(store, location)  # an object 'a//b' at s3://b/a//b (never the object 'a/b')
    with warnings.catch_warnings(record=True) as caught:  # the library warns (0.4.0 went on); the CLI fails
        warnings.simplefilter("always")
        removed = transfers.remove(store, location.key, recursive)
    reasons = [w.message.advice.render(cli_flag) if isinstance(w.message, NeedsOptionWarning) else str(w.message)
               for w in caught if issubclass(w.category, UserWarning)]
    if not removed and reasons:
        raise click.ClickException(reasons[0])
    click.echo(f"removed {len(removed)} object{'s' if len(removed) != 1 else ''}")


@click.command("cp")
@click.argument("source", shell_complete=complete_url)
@click.argument("dest", shell_complete=complete_url)
@click.option("-r", "--recursive", is_flag=True, help="Copy a folder and everything under it.")
@click.option("--overwrite", is_flag=True, help="Replace objects that already exist at DEST.")
@remote_options
def cp_command(source: str, dest: str, recursive: bool, overwrite: bool, **options: Any) -> None:
    """Copy objects (with their metadata): server-side within an endpoint, streamed across backends."""
    src, dst = parse_source(source), parse_location(dest)
    if dest.endswith("/") and dst.key and not dst.key.endswith("/"):  # a local folder: copy into it
        dst = Location(dst.scheme, dst.bucket, dst.key + "/")
    src_store, dst_store = _store(src, options), _store(dst, options, create=True)
    src, dst = exactly(src_store, src), exactly(dst_store, dst)  # objects 'a//b' at s3://b/a//b
    _refuse_pattern_destination(dst_store, dst, dest)
    plan = transfers.plan_copy(src_store, src.key, dst_store, dst.key, recursive=recursive, overwrite=overwrite)
    with warnings.catch_warnings(record=True) as caught:  # an object the destination cannot hold: named below
        warnings.simplefilter("always", transfers.SkippedObject)
        done = transfers.run_copies(src_store, dst_store, plan, threads=8, skip_refused=True)
    skipped = sorted((w.message for w in caught if isinstance(w.message, transfers.SkippedObject)),
                     key=lambda message: message.key)
    for message in skipped:
        click.echo(escape_controls(str(message)), err=True)
    click.echo(f"copied {len(done)} object{'s' if len(done) != 1 else ''}")
    if skipped:
        raise click.ClickException(f"{len(skipped)} of {len(plan)} objects not copied (each named above with why)")


def _refuse_pattern_destination(store: Any, location: Location, url: str) -> None:
    """A destination with ``*``, ``?`` or ``[`` is a pattern typed by mistake (``cp x 's3://b/*'``),
    unless an object or folder of exactly that name exists (then it is that name, as for ``rm``)."""
    key = location.key
    if not has_magic(key):
        return
    if (not key.endswith("/") and store.exists(key)) or next(iter(store.iter_objects(key.rstrip("/") + "/")), None):
        return
    raise click.ClickException(f"{url} is a pattern (it holds * ? or [), not a destination: name the object or "
                               "folder to write, without wildcards")


COMMANDS = [ls_command, glob_command, info_command, put_command, get_command, rm_command, cp_command]
