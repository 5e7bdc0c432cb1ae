"""Option values the remote commands (``wpptrace collect``, ``wpptrace relay``) read alike."""
from __future__ import annotations

import math
from typing import Optional

__all__ = ["seconds"]


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
