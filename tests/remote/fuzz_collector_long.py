#!/usr/bin/env python3
"""Long fuzzing run of the collector (the default test run does the same briefly).

    python3 tests/remote/fuzz_collector_long.py [--examples N]

Starts a collector, sends it hypothesis-made conversations (fuzz_frames.conversation:
every header field free or nearly right, after a valid opening, real buffers with bytes
changed, cuts anywhere), each on its own connection; every conversation must be closed by
the collector within 10 s and nothing may be logged as an internal error. At the end an
honest relay must still deliver a whole session.
"""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if "WPPTRACE_RUNTIME_DIR" not in os.environ:   # a runtime directory of its own, removed at its end
    os.environ["WPPTRACE_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="wpprt-fuzz-")
    atexit.register(shutil.rmtree, os.environ["WPPTRACE_RUNTIME_DIR"], ignore_errors=True)

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from fuzz_frames import conversation  # noqa: E402
from remote_helpers import TracedSession, data_buffers  # noqa: E402
from test_hostile_input import _converse, _internal_errors, _Records, _replay  # noqa: E402

from wpptrace.remote import Collector  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20000)
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="fuzz-collector-"))
    with TracedSession(work, "fuzz", buffer_kb=8) as session:
        session.log(3000, size=40)
    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    buffers = [data[i:i + size] for i in range(0, len(data), size)]
    header, rest = buffers[0], buffers[1:]

    records = _Records()
    logging.getLogger("wpptrace.remote").addHandler(records)
    collector = Collector(("127.0.0.1", 0), output_dir=str(work / "c"), timeout=1.0,
                          handshake_timeout=1.0, resume_window=0.5).start()
    collector.log = records
    print(f"collector on {collector.address}, {args.examples} conversations", flush=True)

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def property_(data):
        _converse(collector.address, data.draw(conversation(size, header, rest[:8])))
        assert not _internal_errors(collector)

    try:
        property_()
        relay = _replay(collector.address, (header, rest))
        source = next(s for s in collector.sources if s.source_id == relay.source_id)
        assert data_buffers(source.path) == rest and source.lost == 0
    finally:
        collector.stop()
    print(f"ok: {collector.protocol_errors} connections closed for bad frames, "
          f"{len(collector.sources)} sources seen, no internal error", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
