"""Options the remote commands (``wpptrace collect``, ``wpptrace relay``) take and read
alike, and how they log."""
from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Optional

__all__ = ["seconds", "mebibytes", "add_quiet", "log_to_stderr", "pem_problem"]


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="report problems only")


def log_to_stderr(prog: str, quiet: bool) -> None:
    """Log lines to stderr as "wpptrace PROG: message" (problems only if ``quiet``)."""
    logging.basicConfig(stream=sys.stderr, format=f"wpptrace {prog}: %(message)s",
                        level=logging.WARNING if quiet else logging.INFO)


def seconds(text: str, option: str, least: Optional[float] = None) -> float:
    """A finite number of seconds above 0, or at least ``least`` if given (a write timeout
    shorter than 1 s would fail any disk that pauses, and have the collector look at its
    sources without pause). ValueError saying so, naming ``option``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if least is None:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{option} {text!r}: expected a number of seconds above 0")
    elif not (value >= least and math.isfinite(value)):
        raise ValueError(f"{option} {text!r}: expected a number of seconds, at least "
                         f"{least:g}")
    return value


def mebibytes(text: str, option: str) -> int:
    """A whole number of MiB, 1 to 1048576 (1 TiB). ValueError saying so, naming ``option``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1 << 20:
        raise ValueError(f"{option} {text!r}: expected a whole number of MiB from 1 to 1048576")
    return value


def pem_problem(exc: Exception) -> str:
    """A TLS file that could not be used (``remote.tls``'s errors), in one line naming it."""
    from wpptrace._cliutil import reason

    path = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and path is not None:
        return f"{path}: cannot read: {reason(exc, path)}"
    return str(exc)
