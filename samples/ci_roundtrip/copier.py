"""A small file copier instrumented as a WPP provider (the code under test)."""
import logging

from wpptrace.provider.tracing import Provider

trace = Provider("Copier", flags=("IO", "CHECK"))
IO, CHECK = trace.flags.IO, trace.flags.CHECK
log = logging.getLogger("copier")


def copy(data: bytes, name: str) -> int:
    trace.info(IO, "read %d bytes from %s", len(data), name)
    if not data:
        trace.warning(CHECK, "%s is empty", name)
    log.info("copied %s", name)
    return len(data)
