"""A small Python application instrumented as a WPP provider (samples/python_app/README.md).

It "indexes" a few files: trace calls with flags and levels as a driver would make them, plus an
ordinary ``logging`` call site that reaches the same trace through one ``WppHandler``.

``python3 samples/python_app/app.py [--out DIR]`` runs it inside an in-process trace session,
writes ``DIR/app.etl`` and the TMF files, then decodes the capture with ``wpptrace fmt``.
"""
from __future__ import annotations

import argparse
import hashlib
import ipaddress
import logging
import os
import sys
import uuid

from wpptrace.provider.logging_handler import WppHandler
from wpptrace.provider.tracing import TRACE_LEVEL_WARNING, Provider

trace = Provider("PyIndexer", guid="9e0f6b1c-4a7d-4c52-b1e3-2f8d6a5c7b90", flags=("SCAN", "NET", "LOG"))
SCAN, NET = trace.flags.SCAN, trace.flags.NET
log = logging.getLogger("indexer")

FILES = {"readme.txt": b"hello wpp\n", "data.bin": bytes(range(256)) * 4, "empty.dat": b""}


def index_file(name: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    trace.info(SCAN, "indexed %s: %u bytes, sha256 %.16s", name, len(data), digest)
    if not data:
        trace.warning(SCAN, "%s is empty (status %!STATUS!)", name, 0xC0000011)  # STATUS_END_OF_FILE
    return digest


def publish(peer: str, port: int, count: int) -> None:
    trace.verbose(NET, "connecting to %!IPADDR!:%!PORT!", peer, port)
    session_id = uuid.UUID(int=0x1234)
    trace.info(NET, "session %!GUID! published %d entries, ok=%!bool!", session_id, count, True)
    trace.log(TRACE_LEVEL_WARNING, NET, "peer answered %!HRESULT!", 0x800704C7)  # ERROR_CANCELLED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the sample inside a trace session and decode it")
    parser.add_argument("--out", default="python_app_out", help="directory for app.etl and the TMF files")
    args = parser.parse_args(argv)
    from wpptrace.provider import api

    os.makedirs(args.out, exist_ok=True)
    etl = os.path.join(args.out, "app.etl")
    handler = WppHandler(provider=trace, flag=trace.flags.LOG)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    props = api.EVENT_TRACE_PROPERTIES(BufferSize=4, MinimumBuffers=2, MaximumBuffers=8, LogFileMode=1,
                                       LogFileName=etl)
    session = api.StartTrace("PyIndexerSession", props)
    try:
        api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)  # all flags, TRACE_LEVEL_VERBOSE
        for name, data in FILES.items():
            index_file(name, data)
        publish(str(ipaddress.IPv4Address("192.0.2.7")), 8443, len(FILES))
        log.info("indexed %d files in %.3f s", len(FILES), 0.042)
    finally:
        api.ControlTrace(session, None, None, 1)  # EVENT_TRACE_CONTROL_STOP
    tmf_dir = os.path.join(args.out, "tmf")
    trace.write_tmf(tmf_dir)       # the same bytes as: wpptrace tmf gen samples/python_app/app.py
    handler.write_tmf(tmf_dir)     # the logging call sites' messages
    from wpptrace.cli import main as wpptrace
    return wpptrace(["fmt", etl, "-p", tmf_dir])


if __name__ == "__main__":
    sys.exit(main())
