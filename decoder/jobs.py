"""How many processes ``fmt`` decodes one file with when not told (``-j 0``), and the cores
there are: kept apart from ``decoder.parallel`` so a one-process run never imports it."""
from __future__ import annotations

import os
import stat

__all__ = ["AUTO_MIN_BYTES", "default_jobs", "usable_cores", "max_jobs", "jobs_option"]

#: inputs this large are decoded by one process per core when the output is a file
AUTO_MIN_BYTES = 16 << 20


def default_jobs(output: str | None, size: int) -> int:
    """The number of processes ``fmt`` uses when not told: one per core (the cores this
    process may run on) for a large input written to a regular file (or one to be made), else
    one: standard output, pipes and devices such as /dev/null get one process."""
    if output in (None, "-") or size < AUTO_MIN_BYTES:
        return 1
    try:
        if not stat.S_ISREG(os.stat(output).st_mode):
            return 1
    except OSError:
        pass                                     # not there yet: a file to be made
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: processes per core ``-j`` may ask for: more only adds processes waiting for a core, each
#: holding its own memory
JOBS_PER_CORE = 4


def max_jobs() -> int:
    """The most processes ``fmt -j`` may ask for: JOBS_PER_CORE for each usable core."""
    return JOBS_PER_CORE * usable_cores()


def jobs_option(text: str) -> int:
    """``-j N`` as an argparse type: 0 (one per core when it pays: ``default_jobs``) or a whole
    number from 1 to ``max_jobs()``, else a usage error naming the range."""
    import argparse

    try:
        jobs = int(text)
    except ValueError:
        jobs = -1
    if not 0 <= jobs <= max_jobs():
        raise argparse.ArgumentTypeError(
            f"{text}: expected a whole number of processes from 1 to {max_jobs()} "
            f"({JOBS_PER_CORE} for each core this process may run on), or 0 for one per core "
            f"when it pays")
    return jobs
