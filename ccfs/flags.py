"""How each face of ccfs names the library's options when an error advises one (``OptionAdvice``).

The library says ``pass endpoint_url='URL'``; ``ccfs`` says ``pass --endpoint-url URL``; mount(8)'s
helper, whose options are ``-o`` items, says ``pass -o endpoint_url=URL``: one advice, each face's words.
"""

from __future__ import annotations

#: the command line's names for the library's options, where they are not ``--`` and the name
FLAGS = {"overwrite": "--overwrite", "recursive": "-r"}


def cli_flag(option: str, value: str | None = None) -> str:
    """``overwrite`` -> ``--overwrite``; ``endpoint_url`` with ``URL`` -> ``--endpoint-url URL``."""
    flag = FLAGS.get(option, "--" + option.replace("_", "-"))
    return flag if value is None else f"{flag} {value}"


def helper_option(option: str, value: str | None = None) -> str:
    """``mount.fuse.ccfs`` and /etc/fstab: ``endpoint_url`` with ``URL`` -> ``-o endpoint_url=URL``."""
    return f"-o {option}" if value is None else f"-o {option}={value}"
