"""``mount.fuse.ccfs``: mount(8)'s helper, so ``mount -t fuse.ccfs BUCKET /mnt -o OPTIONS`` and
/etc/fstab lines (``BUCKET /mnt fuse.ccfs endpoint_url=...,cache_size=1G,_netdev 0 0``) work.

mount(8) runs ``mount.fuse.ccfs SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS] [-t fuse.ccfs]``
and waits for it: the helper is ``ccfs mount`` (which returns once the kernel has the mount, the
daemon in the background), its options translated here. mount(8)'s own options (``rw``,
``noauto``, ``_netdev``, ``nofail``, ``x-systemd.*``, ...) are dropped: they are for mount(8) and
systemd, not for us. ``ccfs mount``'s flags are written with underscores or dashes
(``endpoint_url=URL``, ``cache-size=1G``, ``no_fast_paths``); anything else is a FUSE option
(``allow_other``, ``default_permissions``).
"""

from __future__ import annotations

import grp
import pwd
import sys
from typing import Any, NoReturn

#: options for mount(8), the kernel's generic mount flags, or systemd: not passed on
GENERIC = frozenset({
    "rw", "ro", "auto", "noauto", "_netdev", "user", "users", "nouser", "owner", "group", "nofail", "defaults",
    "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "atime", "noatime", "relatime",
    "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime", "silent",
    "loud", "mand", "nomand", "iversion", "noiversion", "dirsync", "bind", "remount",
})
GENERIC_PREFIXES = ("x-", "comment=", "helper=")
#: ``ccfs mount``'s options the helper does not take: it decides itself (mount(8) waits for it), and
#: ``-o`` items that are not ours are FUSE's (``ccfs mount -o``)
NOT_FROM_HELPER = frozenset({"foreground", "fuse_options"})


def _ccfs_mount_options() -> tuple[frozenset[str], frozenset[str]]:
    """(options with a value, flags) of ``ccfs mount``, as ``-o`` names: read from the command itself,
    so an option is declared once (``ccfs.cli.mount_command``) and the helper takes it by that name."""
    import click

    from .cli import mount_command

    valued: set[str] = set()
    flags: set[str] = set()
    for param in mount_command.params:
        if not isinstance(param, click.Option) or param.name is None or param.name in NOT_FROM_HELPER:
            continue
        (flags if param.is_flag else valued).add(param.name)
    return frozenset(valued), frozenset(flags)


#: ``ccfs mount`` options that take a value, and flags (that take none)
VALUED, FLAGS = _ccfs_mount_options()
#: how mount(8) calls the helper, as errors show it
USAGE = "SOURCE MOUNTPOINT [-o OPTION[=VALUE],...]"


class UsageError(ValueError):
    """Arguments mount(8) would not have given, or an option that cannot be used."""


def _owner(kind: str, value: str) -> str:
    """``uid=``/``gid=`` as a number; a user or group name is looked up."""
    if value.isascii() and value.isdigit():  # a number (``ccfs mount`` checks its range)
        return value
    try:
        return str(pwd.getpwnam(value).pw_uid if kind == "uid" else grp.getgrnam(value).gr_gid)
    except KeyError:
        raise UsageError(f"-o {kind}={value}: no such {'user' if kind == 'uid' else 'group'}") from None


def translate_options(options: str) -> list[str]:
    """``-o`` options of mount(8) as ``ccfs mount`` arguments (FUSE ones as one ``-o``)."""
    args: list[str] = []
    fuse: list[str] = []
    for item in (part.strip() for part in options.split(",")):
        if not item or item in GENERIC or item.startswith(GENERIC_PREFIXES):
            continue
        name, has_value, value = item.partition("=")
        flag = name.replace("-", "_")
        if flag in VALUED:
            if not has_value or not value:
                raise UsageError(f"-o {name} needs a value (-o {name}=...)")
            if flag in ("uid", "gid"):
                value = _owner(flag, value)
            args += ["--" + flag.replace("_", "-"), value]
        elif flag in FLAGS:
            if has_value:
                raise UsageError(f"-o {name} takes no value")
            args.append("--" + flag.replace("_", "-"))
        else:
            fuse.append(item)
    if fuse:
        args += ["-o", ",".join(fuse)]
    return args


def parse_argv(argv: list[str]) -> tuple[str, str, str, bool]:
    """(source, mountpoint, options, fake) from mount(8)'s calling convention."""
    positional: list[str] = []
    options: list[str] = []
    fake = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "-t", "-N"):
            if i + 1 >= len(argv):
                raise UsageError(f"{arg} needs a value")
            if arg == "-o":
                options.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("-o") and len(arg) > 2:
            options.append(arg[2:])
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            if set(letters) - set("sfnvi"):
                raise UsageError(f"unknown flag {arg}")
            fake = fake or "f" in letters
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 2:
        count = len(positional)
        raise UsageError(f"needs SOURCE and MOUNTPOINT, not {count} argument{'s' if count != 1 else ''}")
    return positional[0], positional[1], ",".join(options), fake


def given_items(options: str) -> dict[str, str]:
    """``ccfs mount`` parameter (``cache_size``) -> the ``-o`` item that set it, as written (``cache-size=1G``)."""
    given: dict[str, str] = {}
    for item in (part.strip() for part in options.split(",")):
        flag = item.partition("=")[0].replace("-", "_")
        if flag in VALUED or flag in FLAGS:
            given[flag] = item
    return given


def explain(exc: Any, given: dict[str, str]) -> str:
    """A ``click`` error of ``ccfs mount`` in the helper's words: a bad value names its ``-o`` item."""
    import click

    if isinstance(exc, click.BadParameter):
        hint = exc.param_hint if isinstance(exc.param_hint, str) else ""
        flag = exc.param.name if exc.param is not None and exc.param.name else hint.lstrip("-").replace("-", "_")
        where = f"-o {given[flag]}: " if flag in given else "-o " if hint == "-o" else ""
        return f"{where}{exc.message.rstrip('.')}"
    return str(exc.format_message())


def fail(prog: str, message: str, usage: bool = False) -> NoReturn:
    """One line on stderr (mount(8) shows it) and status 1; a usage error ends with the helper's usage."""
    print(f"{prog}: {message}" + (f"; usage: {prog} {USAGE}" if usage else ""), file=sys.stderr)
    sys.exit(1)


def main(argv: list[str] | None = None, prog: str = "mount.fuse.ccfs") -> None:
    """The console script: translate, then run ``ccfs mount`` (which returns once mounted).

    Every error is one line naming ``-o`` items, never ``ccfs mount``'s flags or its usage: the helper's
    caller (mount(8), /etc/fstab) wrote ``-o`` options."""
    import click

    from .cli import main as ccfs
    from .flags import helper_option

    try:
        source, mountpoint, options, fake = parse_argv(sys.argv[1:] if argv is None else argv)
        args = ["mount", source, mountpoint, *translate_options(options)]
    except UsageError as exc:
        fail(prog, str(exc), usage=True)
    if fake:  # mount -f: do everything but the mount
        return
    try:  # ``obj``: the mount's advice names options as -o items (``-o endpoint_url=URL``)
        ccfs.main(args=args, prog_name=prog, standalone_mode=False, obj=helper_option)
    except click.UsageError as exc:  # a bad value (BadParameter) or option: what mount(8) was given
        fail(prog, explain(exc, given_items(options)), usage=True)
    except click.ClickException as exc:  # the mount failed: why
        fail(prog, exc.format_message())
    except click.Abort:
        fail(prog, "interrupted")


if __name__ == "__main__":  # pragma: no cover
    main()
