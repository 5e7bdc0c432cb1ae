"""Damaged files through the whole API: truncated and byte-flipped copies of real captures
either fail to open with a Win32Error or deliver events (both callback shapes) and report
the damage; never another exception, never a hang."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace.decoder import api
from wpptrace.decoder.consumer_types import (ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE,
                                      PROCESS_TRACE_MODE_EVENT_RECORD)
from wpptrace.winerror import ERROR_CTX_CLOSE_PENDING, ERROR_SUCCESS, Win32Error

from .api_helpers import buffers_of

SOURCES = ("wppemitter-sample.etl", "powershell.etl", "lxcore_kernel.etl")


def _run(path, mode) -> int:
    try:
        handle = api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(path), ProcessTraceMode=mode,
                                                   EventCallback=lambda e: repr(e)))
    except Win32Error:
        return -1
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
        return len(api.GetTraceIssues(handle))
    finally:
        api.CloseTrace(handle)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=12))
def test_damaged_copies_never_break_the_api(corpus_file, tmp_path, source, cut, flips):
    data = bytearray(corpus_file(source).read_bytes())
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    data = data[:max(1, int(cut * len(data)))]
    path = tmp_path / "damaged.etl"
    path.write_bytes(bytes(data))
    for mode in (PROCESS_TRACE_MODE_EVENT_RECORD, 0):
        _run(path, mode)


@pytest.mark.parametrize("source", SOURCES)
def test_damaged_buffers_fed_to_a_stream_are_refused_or_read(corpus_file, source):
    """A byte changed in a streamed buffer (header or records) gets the buffer refused
    (Win32Error) or read, with the damage reported; ProcessTrace still ends cleanly."""
    buffers = buffers_of(corpus_file(source))
    size = len(buffers[1])
    for offset in list(range(0, 0x48, 3)) + list(range(0x48, size, max(1, size // 40))):
        events, closes = [], []
        box = {}

        def on_event(record):
            events.append(repr(record))
            if not closes:      # close at once: what is queued is still delivered
                closes.append(api.CloseTrace(box["handle"]))

        handle = box["handle"] = api.OpenTraceFromBufferStream(
            ETW_OPEN_TRACE_OPTIONS(EventCallback=on_event))
        for i, buf in enumerate(buffers[:3]):
            damaged = bytearray(buf)
            if i == 1:
                damaged[offset] ^= 0xFF
            try:
                api.ProcessTraceAddBufferToBufferStream(handle, bytes(damaged), len(damaged))
            except Win32Error:
                pass
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
        assert closes == [ERROR_CTX_CLOSE_PENDING]
        assert events          # at least the header buffer's records
