"""The ``ccfs`` command (click): mount, umount, refresh, refs, demo, server. Errors are one line and a non-zero exit."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from .commands import COMMANDS
from .filesystem import MountOptions
from .flags import cli_flag
from .mount import MountError, MountRequest, mount, unmount
from .refs_cli import refs_command
from .target import parse_target

UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """``512M``, ``1G``, ``1GiB``, ``4096`` -> bytes (ASCII digits only)."""
    match = re.fullmatch(r"\s*([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size (examples: 4096, 64M, 1G)")
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


#: the largest size on disk an option takes (1 EiB: more than any file system here holds)
DISK_MAX = 2**60


class SizeType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on; we allow 8.1
    """A size within ``[low, high]`` bytes; ``memory``: at most the machine's memory as well."""

    name = "size"

    def __init__(self, low: int = 0, high: int = DISK_MAX, memory: bool = False):
        self.low, self.high, self.memory = low, high, memory

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        size = value if isinstance(value, int) else parse_size(value)
        if size < self.low:
            self.fail(f"{value!r} is less than {show_size(self.low)}", param, ctx)
        high = min(self.high, physical_memory()) if self.memory else self.high
        if size > high:
            where = "this machine's memory" if self.memory and high < self.high else show_size(high)
            self.fail(f"{value!r} is more than {where} ({show_size(high)})", param, ctx)
        return size


SIZE = SizeType()


class SecondsType(click.ParamType):  # type: ignore[type-arg]
    """A finite number of seconds, 0 or more (at most a year)."""

    name = "seconds"
    HIGH = 366 * 86400.0

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = str(value).strip()
        if not re.fullmatch(r"[-+]?[0-9]{1,20}(?:\.[0-9]{0,20})?|[-+]?\.[0-9]{1,20}", text):
            self.fail(f"{value!r} is not a number of seconds (examples: 0, 1.5, 300)", param, ctx)
        seconds = float(text)
        if seconds < 0:
            self.fail("must be 0 or more seconds", param, ctx)
        if seconds > self.HIGH:
            self.fail(f"{value!r} is more than a year ({self.HIGH:.0f} seconds)", param, ctx)
        return seconds


SECONDS = SecondsType()

#: the largest uid or gid (2**32 - 1 is the kernel's "no id")
OWNER_MAX = 2**32 - 2


class OwnerType(click.ParamType):  # type: ignore[type-arg]
    """A uid or gid: ASCII digits, 0 to 2**32-2."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"[0-9]{1,20}", text, re.ASCII):
                self.fail(f"{value!r} is not a number in ASCII digits 0-9", param, ctx)
            number = int(text)
        if not 0 <= number <= OWNER_MAX:
            self.fail(f"{value!r} is not between 0 and {OWNER_MAX}", param, ctx)
        return number


OWNER = OwnerType()

#: FUSE options ``-o`` passes on to libfuse (mount options and the high-level library's)
FUSE_OPTIONS = frozenset({
    "allow_other", "allow_root", "default_permissions", "auto_unmount", "nodev", "nosuid", "dev", "suid", "exec",
    "noexec", "atime", "noatime", "kernel_cache", "auto_cache", "noforget", "remember", "entry_timeout",
    "negative_timeout", "attr_timeout", "ac_attr_timeout", "use_ino", "readdir_ino", "debug", "max_read",
})
#: FUSE options ccfs sets itself, and what to use instead
FUSE_SET_BY_CCFS = {
    "fsname": "ccfs sets it (ccfs:TARGET)", "subtype": "ccfs sets it (ccfs)",
    "ro": "ccfs mounts are always read-only", "rw": "ccfs mounts are always read-only",
    "uid": "use --uid", "gid": "use --gid", "umask": "use --umask",
}


def check_fuse_options(options: Sequence[str]) -> None:
    """``-o`` items that libfuse takes and ccfs does not set itself; anything else is refused by name."""
    for item in (part.strip() for option in options for part in option.split(",")):
        if not item:
            continue
        name = item.partition("=")[0]
        if name in FUSE_SET_BY_CCFS:
            raise click.BadParameter(f"{item}: {FUSE_SET_BY_CCFS[name]}", param_hint="-o")
        if name not in FUSE_OPTIONS:
            known = ", ".join(sorted(FUSE_OPTIONS))
            raise click.BadParameter(f"{item}: not a FUSE option ccfs knows (known: {known})", param_hint="-o")


class OctalType(click.ParamType):  # type: ignore[type-arg]
    name = "octal"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        if not re.fullmatch(r"0?[0-7]{1,3}", str(value).strip()):
            self.fail(f"{value!r} is not an octal mode such as 022 or 027", param, ctx)
        return int(str(value).strip(), 8)


OCTAL = OctalType()


def called_by_mount_fuse(argv: list[str], commands: Mapping[str, click.Command]) -> bool:
    """Whether ``ccfs`` was run as fuse3's generic helper runs a ``fuse.ccfs`` mount when
    ``/sbin/mount.fuse.ccfs`` is not there: ``ccfs SOURCE MOUNTPOINT -o OPTIONS`` (it always passes
    ``-o``), SOURCE not one of our commands."""
    from .fstab import UsageError, parse_argv

    if not argv or argv[0].startswith("-") or argv[0] in commands or not any(a.startswith("-o") for a in argv):
        return False
    try:
        parse_argv(argv)
    except UsageError:
        return False
    return True


class Ccfs(click.Group):
    """The ``ccfs`` group, which also takes mount.fuse's call of a ``fuse.ccfs`` mount (``called_by_mount_fuse``)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if called_by_mount_fuse(argv, self.commands):
            from .fstab import main as helper

            return helper(argv, prog="ccfs")
        return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args=windows_expand_args,
                            **extra)


@click.group(cls=Ccfs, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cottoncandy-ccfs")
def main() -> None:
    """ccfs: numpy arrays in S3, mounted as .npy files, and the cottoncandy command line."""


@main.command("mount")
@click.argument("target")
@click.argument("mountpoint", type=click.Path(file_okay=False, readable=False))  # a dead mount: our own check says so
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="S3-compatible endpoint (default: AWS).")
@click.option("--profile", envvar="AWS_PROFILE", help="Profile of ~/.aws/credentials to use.")
@click.option("--region", help="AWS region of the bucket.")
@click.option("--foreground", "-f", is_flag=True, help="Stay in the foreground (logs to stderr).")
@click.option("--cache-size", type=SizeType(low=16 * 2**10, memory=True), default="512M", show_default=True,
              help="Memory for cached blocks.")
@click.option("--block-size", type=SIZE, default="256K", show_default=True,
              help="Bytes per cached block (the least a random read fetches).")
@click.option("--read-ahead", type=SizeType(low=4 * 2**10, high=64 * 2**20), default="128K", show_default=True,
              help="Largest kernel READ (kernel read-ahead of the mount; raising it needs root).")
@click.option("--metadata-ttl", type=SECONDS, default=300.0, show_default=True,
              help="Seconds to trust cached folder listings (new and removed names).")
@click.option("--attr-ttl", type=SECONDS, default=1.0, show_default=True,
              help="Seconds to trust a file's size and version before the next stat/open/read asks again.")
@click.option("--cache-dir", type=click.Path(file_okay=False, resolve_path=True),
              help="Keep fetched blocks on disk here, across mounts and shared by mounts (default: no disk "
                   "block cache; large decoded arrays spill to a temporary folder).")
@click.option("--cache-dir-size", type=SIZE, default="16G", show_default=True,
              help="Limit of --cache-dir (blocks, least recently used evicted, plus this mount's spills).")
@click.option("--metadata-cache-size", type=SIZE, default="256M", show_default=True,
              help="Limit of the HEAD answers kept on disk (in --cache-dir/metadata, else "
                   "$XDG_CACHE_HOME/ccfs/metadata): a remount lists unchanged folders with no HEAD.")
@click.option("--no-metadata-cache", is_flag=True, help="Keep no HEAD answers on disk.")
@click.option("--interruptible-reads", is_flag=True,
              help="Any signal ends a read waiting on S3 at once (not only a fatal one); slower sequential reads.")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Log file (background default: none).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="INFO", show_default=True)
@click.option("-o", "fuse_options", multiple=True, help="Extra FUSE options, e.g. -o allow_other.")
@click.option("--no-fast-paths", "no_fast_paths", is_flag=True,
              help="Only public boto3/mfusepy APIs (as CCFS_FAST_PATHS=0): slower listings and reads.")
@click.option("--uid", type=OWNER, help="Owner shown for every file and folder (default: yours).")
@click.option("--gid", type=OWNER, help="Group shown for every file and folder (default: yours).")
@click.option("--umask", type=OCTAL, default="0", show_default=True,
              help="Permission bits taken from 0555 (folders) and 0444 (files), in octal, e.g. 027.")
def mount_command(target: str, mountpoint: str, **given: Any) -> None:
    """Mount TARGET (BUCKET[/PREFIX], s3://BUCKET/PREFIX or a local directory) read-only at MOUNTPOINT."""
    block_size: int = given["block_size"]
    if block_size < 4096 or block_size > 64 * 2**20:
        raise click.BadParameter("must be between 4K and 64M", param_hint="--block-size")
    check_fuse_options(given["fuse_options"])
    if given["cache_size"] < 4 * block_size:
        raise click.BadParameter("must hold at least 4 blocks", param_hint="--cache-size")
    log_file: str | None = given["log_file"]
    foreground: bool = given["foreground"]
    face = click.get_current_context().obj  # mount.fuse.ccfs passes how it names options (-o name=...)
    try:
        request = MountRequest(
            target=parse_target(target), mountpoint=os.path.abspath(mountpoint),
            options=mount_options(given), endpoint_url=given["endpoint_url"], profile=given["profile"],
            region=given["region"], fuse_options=given["fuse_options"],
            log_file=os.path.abspath(log_file) if log_file else None, log_level=given["log_level"],
            fast_paths=not given["no_fast_paths"], spell=face if callable(face) else cli_flag)
        mount(request, foreground=foreground)
    except (MountError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not foreground:
        click.echo(f"mounted {request.target} on {request.mountpoint}")


def mount_options(given: Mapping[str, Any]) -> MountOptions:
    """``MountOptions`` from ``ccfs mount``'s options: each field is set by the option of its name
    (``cache_size`` by ``--cache-size``), ``metadata_cache`` by ``--no-metadata-cache``; the
    fields without an option keep their defaults."""
    names = {f.name for f in dataclasses.fields(MountOptions)}
    values = {name: value for name, value in given.items() if name in names}
    values["metadata_cache"] = not given.get("no_metadata_cache", False)
    return MountOptions(**values)


@main.command("umount")
@click.argument("mountpoint", type=click.Path(file_okay=False, readable=False))  # a dead mount: our own check says so
def umount_command(mountpoint: str) -> None:
    """Unmount a ccfs mount."""
    try:
        unmount(mountpoint)
    except MountError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("refresh")
@click.argument("mountpoint", type=click.Path(file_okay=False, readable=False))
@click.argument("path", required=False, default="")
def refresh_command(mountpoint: str, path: str) -> None:
    """Show new uploads at once: drop the cached listings and attributes of PATH (a folder, or the
    folder holding a file) in the ccfs mount at MOUNTPOINT; of everything without PATH (as SIGHUP)."""
    from .control import RefreshError, refresh

    try:
        done = refresh(mountpoint, path)
    except RefreshError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"refreshed {os.path.join(mountpoint, done) if done else mountpoint}")


@main.command("demo")
@click.option("--keep", is_flag=True, help="Leave the mount up until Enter is pressed.")
def demo_command(keep: bool) -> None:
    """Start a local S3 endpoint with sample arrays, mount it, read them, clean up."""
    from .demo import run_demo

    try:
        run_demo(keep=keep)
    except (MountError, OSError, ValueError, ImportError) as exc:  # ImportError: no [server] extra (one line)
        raise click.ClickException(str(exc)) from None


@main.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=9000, show_default=True, help="Port to listen on (0: any free one).")
def server_command(host: str, port: int) -> None:
    """Run a local S3 endpoint (moto, in memory) in the foreground, to try the library and the mount."""
    from .demo import serve

    try:
        serve(host, port)
    except (OSError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    # stopped by Ctrl-C or SIGTERM: nothing is left to tidy (the endpoint held memory only, its socket
    # is closed), and the interpreter's teardown of moto's heap took 0.4-1 s more: leave at once
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


for _command in COMMANDS:
    main.add_command(_command)
main.add_command(refs_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
