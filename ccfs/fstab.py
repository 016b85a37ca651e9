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

from .mountoptions import TABLE, Owner, fstab_option

#: options for mount(8), the kernel's generic mount flags, or systemd: not passed on
GENERIC = frozenset({
    "rw", "ro", "auto", "noauto", "_netdev", "user", "users", "nouser", "owner", "group", "nofail", "defaults",
    "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "atime", "noatime", "relatime",
    "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime", "silent",
    "loud", "mand", "nomand", "iversion", "noiversion", "dirsync", "bind", "remount",
})
GENERIC_PREFIXES = ("x-", "comment=", "helper=")
#: ``ccfs mount``'s options with a value and flags, as ``-o`` names, and those the helper does not
#: take (it decides itself: mount(8) waits for it; ``-o`` items not ours are FUSE's): all read from
#: the one table of ``ccfs mount``'s options (``ccfs.mountoptions``)
VALUED = frozenset(o.name for o in TABLE if o.fstab and not o.is_flag)
FLAGS = frozenset(o.name for o in TABLE if o.fstab and o.is_flag)
NOT_FROM_HELPER = frozenset(o.name for o in TABLE if not o.fstab)
#: how mount(8) calls the helper, as errors show it
USAGE = "SOURCE MOUNTPOINT [-o OPTION[=VALUE],...]"


class UsageError(ValueError):
    """Arguments mount(8) would not have given, or an option that cannot be used."""


def _owner(name: str, kind: str, value: str) -> str:
    """``uid=``/``gid=`` as a number; a user (``kind``) or group name is looked up."""
    if value.isascii() and value.isdigit():  # a number (``ccfs mount`` checks its range)
        return value
    try:
        return str(pwd.getpwnam(value).pw_uid if kind == "user" else grp.getgrnam(value).gr_gid)
    except KeyError:
        raise UsageError(f"-o {name}={value}: no such {kind}") from None


def translate_options(options: str) -> list[str]:
    """``-o`` options of mount(8) as ``ccfs mount`` arguments (FUSE ones as one ``-o``)."""
    args: list[str] = []
    fuse: list[str] = []
    for item in (part.strip() for part in options.split(",")):
        if not item or item in GENERIC or item.startswith(GENERIC_PREFIXES):
            continue
        name, has_value, value = item.partition("=")
        option = fstab_option(name)
        if option is None:
            fuse.append(item)
        elif option.parse is not None:
            if not has_value or not value:
                raise UsageError(f"-o {name} needs a value (-o {name}=...)")
            if isinstance(option.parse, Owner):
                value = _owner(name, option.parse.kind, value)
            args += [option.flags[0], value]
        else:
            if has_value:
                raise UsageError(f"-o {name} takes no value")
            args.append(option.flags[0])
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
        option = fstab_option(item.partition("=")[0])
        if option is not None:
            given[option.name] = item
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
