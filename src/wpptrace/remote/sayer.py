"""Log lines that may come by the thousand (a flood of connections, sources that come and go
or fail all at once), said within a bound: the first of a kind in each period at their level,
the others on a debug line each, counted; the count is said in one line as the period ends.
"""
from __future__ import annotations

import collections
import logging
import threading
from typing import Optional

__all__ = ["Sayer"]


class Sayer:
    """Says lines to ``log``: in each period, the first ``first`` of each kind at their level,
    the others on a debug line each, counted. ``full``: a warning said when a kind's ``first``
    lines of the period are used up (None: none). ``counted()`` ends the period (the caller
    calls it at the end of each, and at the stop, and says what it returns): every kind is
    news again. Any thread."""

    def __init__(self, log: logging.Logger, first: int, full: Optional[str] = None):
        self._log = log
        self._first = first
        self._full = full
        self._said: collections.Counter[str] = collections.Counter()
        self._unsaid: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()   # (the collector's files' writers say lines too)

    def say(self, level: int, msg: str, *args, kind: str = "") -> bool:
        """Say the line at ``level`` if the period's bound of its kind allows, else at the debug
        level, counted; True if it was said at ``level``."""
        with self._lock:                # (decided under it, logged outside it)
            said = self._said[kind] < self._first
            if said:
                self._said[kind] += 1
                full = self._said[kind] == self._first
            else:
                self._unsaid[kind] += 1
        if not said:
            self._log.debug(msg, *args)
            return False
        self._log.log(level, msg, *args)
        if full and self._full is not None:
            self._log.warning("%s", self._full)
        return True

    def counted(self) -> collections.Counter[str]:
        """The lines sent to the debug level in the period now ended, by kind (empty if
        none)."""
        with self._lock:
            unsaid, self._unsaid = self._unsaid, collections.Counter()
            self._said.clear()
        return unsaid
