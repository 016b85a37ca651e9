"""The ``ccfs`` command (click): mount, umount, refresh, refs, demo, server. Errors are one line and a non-zero exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from click.core import ParameterSource

from . import clickoptions, mountoptions
from .commands import COMMANDS
from .flags import cli_flag
from .mount import MountError, MountRequest, fuse_max_read, mount, unmount
from .mountoptions import mount_options
from .refs_cli import refs_command
from .target import parse_target


def parse_size(text: str) -> int:
    """``512M``, ``1G``, ``4096`` -> bytes (``mountoptions.parse_size``), a bad size as click's error."""
    try:
        return mountoptions.parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


#: ``command`` with a click option for each row of ``mountoptions.TABLE``, in the table's order
table_options = clickoptions.table_options(mountoptions.TABLE)


#: FUSE options ``-o`` passes on to libfuse (mount options and the high-level library's)
FUSE_OPTIONS = frozenset({
    "allow_other", "allow_root", "default_permissions", "auto_unmount", "nodev", "nosuid", "dev", "suid", "exec",
    "noexec", "atime", "noatime", "kernel_cache", "auto_cache", "noforget", "remember", "entry_timeout",
    "negative_timeout", "attr_timeout", "ac_attr_timeout", "use_ino", "readdir_ino", "debug", "max_read",
})
#: FUSE options ccfs sets itself, and what to use instead
FUSE_SET_BY_CCFS = {
    "fsname": "ccfs sets it (ccfs:TARGET)", "subtype": "ccfs sets it (ccfs)",
    "ro": "ccfs mounts are read-only unless given --rw", "rw": "use --rw",
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
        try:
            fuse_max_read({name: item.partition("=")[2]} if name == "max_read" else {})
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="-o") from None


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
@table_options
def mount_command(target: str, mountpoint: str, **given: Any) -> None:
    """Mount TARGET (BUCKET[/PREFIX], s3://BUCKET/PREFIX or a local directory) read-only at MOUNTPOINT."""
    check_fuse_options(given["fuse_options"])
    options = mount_options(given)
    context = click.get_current_context()
    named = {name for name in given if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)}
    try:  # an option that needs another is refused in the face's words (--rw, or -o read_write for mount(8))
        mountoptions.check(options, named, context.obj if callable(context.obj) else mountoptions.flag_of)
    except mountoptions.NeedsOption as exc:
        raise click.UsageError(str(exc)) from None
    except mountoptions.OptionError as exc:
        raise click.BadParameter(str(exc), param_hint=mountoptions.BY_NAME[exc.name].flags[0]) from None
    log_file: str | None = given["log_file"]
    foreground: bool = given["foreground"]
    face = click.get_current_context().obj  # mount.fuse.ccfs passes how it names options (-o name=...)
    try:
        request = MountRequest(
            target=parse_target(target), mountpoint=os.path.abspath(mountpoint),
            options=options, endpoint_url=given["endpoint_url"], profile=given["profile"],
            region=given["region"], addressing_style=given["addressing_style"], fuse_options=given["fuse_options"],
            log_file=os.path.abspath(log_file) if log_file else None, log_level=given["log_level"],
            fast_paths=not given["no_fast_paths"], spell=face if callable(face) else cli_flag)
        mount(request, foreground=foreground)
    except (MountError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not foreground:
        click.echo(f"mounted {request.target} on {request.mountpoint}")


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
