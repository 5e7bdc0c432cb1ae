"""Buffers of real Windows captures, as a BufferCallback of OpenTraceFromFile hands them out
(the source the OpenTraceFromBufferStream page names), relayed and collected: the collected
file decodes as the original does (our decoder, tracefmt text, dissect.etl)."""
from __future__ import annotations

import pytest
from remote_helpers import PATIENCE, decoded_text

from wpptrace.decoder import EtlFile, api, ordered_records
from wpptrace.decoder.consumer_types import ETW_OPEN_TRACE_OPTIONS
from wpptrace.remote import Collector, Relay

def _buffers_of(path) -> list[bytes]:
    buffers = []

    def on_buffer(buffer, size, info, context):
        buffers.append(bytes(buffer[:size]))

    handle = api.OpenTraceFromFile(str(path), ETW_OPEN_TRACE_OPTIONS(BufferCallback=on_buffer))
    try:
        api.ProcessTrace([handle])
    finally:
        api.CloseTrace(handle)
    return buffers


def _records(path) -> list[tuple]:
    with EtlFile(str(path)) as f:
        return [(r.kind, r.event_id, r.timestamp, bytes(r.user_data)) for r in ordered_records(f)]


def _header(path):
    with EtlFile(str(path)) as f:
        return f.header


def _dissect(path) -> int:
    from dissect.etl.etl import ETL

    with open(path, "rb") as fh:
        return sum(1 for _ in ETL(fh))


@pytest.mark.parametrize("name", ["wppemitter-sample.etl",
                                  "WindowsUpdate.20251008.140245.443.8.etl", "powershell.etl"])
def test_windows_buffers_from_a_buffer_callback_are_collected_as_a_valid_file(tmp_path, name,
                                                                              corpus_file):
    original = corpus_file(name)
    buffers = _buffers_of(original)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path)) as collector:
        relay = Relay(collector.address, buffer_size=len(buffers[0]), name=original.stem).start()
        for buf in buffers:
            assert relay.add(buf)
        relay.finish()
        assert relay.wait(PATIENCE) and relay.outcome == "ended"
        assert collector.wait_for(lambda ss: ss and ss[0].closed, PATIENCE)
        (source,) = collector.sources
    assert source.buffers == len(buffers) - 1 and source.lost == 0
    collected, expected = _records(source.path), _records(original)
    # the log-file header record carries this file's totals; every other record is the same
    assert collected[0][:3] == expected[0][:3] and collected[1:] == expected[1:]
    a, b = _header(source.path), _header(original)
    for fact in ("start_time", "pointer_size", "buffer_size", "logger_name", "perf_freq",
                 "number_of_processors", "boot_time"):
        assert getattr(a, fact) == getattr(b, fact), fact
    assert a.buffers_written == len(buffers) and a.buffers_lost == 0 and a.end_time
    assert _dissect(source.path) == _dissect(original)
    if name.startswith("wpp"):
        tmf = original.parent / "tmf"
        assert decoded_text(source.path, tmf) == decoded_text(original, tmf)
