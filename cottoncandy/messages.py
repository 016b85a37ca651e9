"""Messages for people: each is a log record under ``cottoncandy.*``, and printed as 0.4.0 did when verbose.

0.4.0 printed its messages on stdout (``Current bucket: b``, ``uploaded arrays in "x"``...), and
scripts and notebooks written against it read them there, so ``verbose=True`` still prints those
lines unchanged. The log record (level INFO, on the calling module's logger) is emitted either way,
so an application that configures ``logging`` sees every message; it then passes ``verbose=False``
to have them once. Output a call exists for (``search``, ``show_objects``, ``ls(verbose=True)``) is
printed, not logged: it is the result, not a message.
"""

from __future__ import annotations

import logging


def say(log: logging.Logger, message: str, verbose: bool) -> None:
    """Log ``message`` at INFO on ``log``; print it too when ``verbose`` (0.4.0's stdout line)."""
    log.info("%s", message)
    if verbose:
        print(message)
