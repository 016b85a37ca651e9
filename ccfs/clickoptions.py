"""Click options made from rows of the option table (``ccfs.mountoptions``): ``ccfs mount``'s every row,
and the store rows (``STORE_OPTIONS``: endpoint, profile, region, addressing style) of every command that
opens a store (``ls``, ``cp``, ``get``, ``refs`` ...).

Why here, apart from ``ccfs.cli``: ``cli`` imports the commands, and the commands need the same options;
a row's help, parser (its ``ValueError`` shown as click's one-line error naming the option), default and
environment variable are then written once, in the table, for every face.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from . import mountoptions


class TableType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on; we allow 8.1
    """A ``mountoptions`` parser as a click type: its ``ValueError`` is click's one-line error
    naming the option (``Invalid value for '--uid': '4294967296' is not between 0 and ...``)."""

    def __init__(self, parse: mountoptions.Parser):
        self.parse = parse
        self.name = parse.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        """A choice's values as they are spelled (``[auto|path|virtual]``); else click's ``SIZE``."""
        return self.name if self.name.startswith("[") else None

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        if isinstance(self.parse, mountoptions.Text) and self.parse.path:
            from click.shell_completion import CompletionItem

            return [CompletionItem(incomplete, type="dir" if self.parse.resolve else "file")]
        return []


def table_options(rows: Iterable[mountoptions.Option]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator giving a command a click option for each of ``rows``, in their order."""
    listed = tuple(rows)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(listed):
            kwargs: dict[str, Any] = {"help": option.help or None}
            if option.is_flag:
                kwargs["is_flag"] = True
            else:
                assert option.parse is not None
                kwargs.update(type=TableType(option.parse), multiple=option.multiple)
                default = option.default_text()
                if default is not None:
                    kwargs.update(default=default, show_default=True)
            if option.envvar:
                kwargs["envvar"] = option.envvar
            command = click.option(*option.flags, option.name, **kwargs)(command)
        return command

    return decorate
