"""OpenTraceFromBufferStream / ProcessTraceAddBufferToBufferStream (reference pages
OpenTraceFromBufferStream and PETW_BUFFER_COMPLETION_CALLBACK): buffers in the order
ProcessTrace produced them (header first), completion exactly once, after the buffer is done."""
from __future__ import annotations

import threading
from collections import Counter

import pytest

from wpptrace.decoder import api
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.ordering import buffer_streams
from wpptrace.decoder import parse_buffer
from wpptrace.decoder.consumer_types import (ETW_BUFFER_HEADER, ETW_OPEN_TRACE_OPTIONS,
                                      ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP, EVENT_TRACE_LOGFILE)
from wpptrace.winerror import (ERROR_BAD_FORMAT, ERROR_CANCELLED, ERROR_CTX_CLOSE_PENDING,
                               ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER, ERROR_NOACCESS,
                               ERROR_NOT_SUPPORTED, ERROR_SUCCESS, Win32Error)

from .api_helpers import PATIENCE, buffers_of, collect, identity


def _code(call) -> int:
    with pytest.raises(Win32Error) as info:
        call()
    return info.value.winerror


def _stream(buffers, log, options=None, close_after=True):
    """Feed ``buffers`` to a buffer-stream trace and process them; completions and events
    go to ``log`` in the order they happen."""
    options = options or ETW_OPEN_TRACE_OPTIONS()
    started = threading.Event()

    def on_event(record):
        log.append(("event", record))
        started.set()

    options.EventCallback = on_event
    handle = api.OpenTraceFromBufferStream(
        options, lambda buf, ctx: log.append(("done", buf, ctx)), "completion-context")
    for buf in buffers:
        assert api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf)) == ERROR_SUCCESS
    worker = threading.Thread(target=lambda: log.append(("rc", api.ProcessTrace([handle]))))
    worker.start()
    if close_after:
        assert started.wait(PATIENCE)      # ProcessTrace is running: the close is pending
        assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
    worker.join(PATIENCE)
    assert not worker.is_alive()
    return handle


def test_a_stream_of_a_files_buffers_replays_the_file(corpus_file):
    """The buffers a file session gives its BufferCallback, fed to a buffer stream, give the
    same events in the same order (one processor stream); each buffer is completed exactly
    once, with the object that was added and the completion context, after its events."""
    path = corpus_file("wppemitter-sample.etl")
    buffers = buffers_of(path)
    expected, _, _ = collect(path)
    log = []
    _stream(buffers, log)
    assert log[-1] == ("rc", ERROR_SUCCESS)
    events = [entry[1] for entry in log if entry[0] == "event"]
    assert [identity(e) for e in events] == [identity(e) for e in expected]
    done = [entry for entry in log if entry[0] == "done"]
    assert [d[1] for d in done] == buffers and all(d[1] is b for d, b in zip(done, buffers))
    assert all(d[2] == "completion-context" for d in done)
    # "after the buffer is done with": completion k follows every event of buffers 0..k
    sizes = [len(parse_buffer(b, 8, header_buffer=i == 0)[0]) for i, b in enumerate(buffers)]
    for k, entry in enumerate(done):
        before = sum(1 for e in log[:log.index(entry)] if e[0] == "event")
        assert before == sum(sizes[:k + 1])


def test_buffers_come_out_of_processtrace_in_an_order_a_stream_accepts(corpus_file):
    """powershell.etl: 8 processor streams flushed out of order. ProcessTrace hands out the
    header buffer first, then each processor's buffers in sequence order; the stream
    accepts them and, as they are all queued when ProcessTrace starts, merges them by time
    into exactly the file's delivery order."""
    path = corpus_file("powershell.etl")
    buffers = buffers_of(path)
    headers = [ETW_BUFFER_HEADER.from_buffer(b) for b in buffers]
    assert headers[0].BufferType == 4
    with EtlFile(path) as etl:
        assert len(buffers) == len(etl.buffer_index())
        file_order = [(i.processor, i.sequence) for i in etl.buffer_index()[1:]]
    per_processor = {}
    for h in headers[1:]:
        per_processor.setdefault(h.ClientContext.ProcessorIndex, []).append(h.SequenceNumber)
    assert all(seqs == sorted(seqs) for seqs in per_processor.values())
    assert [(h.ClientContext.ProcessorIndex, h.SequenceNumber) for h in headers[1:]] != file_order
    log = []
    _stream(buffers, log)
    expected, _, _ = collect(path)
    events = [entry[1] for entry in log if entry[0] == "event"]
    assert [identity(e) for e in events] == [identity(e) for e in expected]
    assert sum(1 for entry in log if entry[0] == "done") == len(buffers)


def test_out_of_order_buffers_are_refused_and_not_completed(corpus_file):
    buffers = buffers_of(corpus_file("powershell.etl"))
    completions = []
    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(),
                                           lambda buf, ctx: completions.append(buf), None)
    try:
        # a data buffer before the header buffer
        assert _code(lambda: api.ProcessTraceAddBufferToBufferStream(
            handle, buffers[1], len(buffers[1]))) == ERROR_INVALID_PARAMETER
        api.ProcessTraceAddBufferToBufferStream(handle, buffers[0], len(buffers[0]))
        # a second header buffer
        assert _code(lambda: api.ProcessTraceAddBufferToBufferStream(
            handle, buffers[0], len(buffers[0]))) == ERROR_INVALID_PARAMETER
        api.ProcessTraceAddBufferToBufferStream(handle, buffers[1], len(buffers[1]))
        # the same processor's buffer again (sequence not increasing)
        assert _code(lambda: api.ProcessTraceAddBufferToBufferStream(
            handle, buffers[1], len(buffers[1]))) == ERROR_INVALID_PARAMETER
        # a later buffer of the same processor, then an earlier one
        proc = ETW_BUFFER_HEADER.from_buffer(buffers[1]).ClientContext.ProcessorIndex
        same = [b for b in buffers[2:]
                if ETW_BUFFER_HEADER.from_buffer(b).ClientContext.ProcessorIndex == proc]
        assert len(same) >= 2
        api.ProcessTraceAddBufferToBufferStream(handle, same[1], len(same[1]))
        assert _code(lambda: api.ProcessTraceAddBufferToBufferStream(
            handle, same[0], len(same[0]))) == ERROR_INVALID_PARAMETER
    finally:
        assert api.CloseTrace(handle) == ERROR_SUCCESS
    # accepted buffers (header, buffers[1], same[1]) completed once each at close; refused none
    assert completions == [buffers[0], buffers[1], same[1]]
    assert [id(c) for c in completions] == [id(buffers[0]), id(buffers[1]), id(same[1])]


def test_buffers_never_processed_are_completed_once_at_close(corpus_file):
    buffers = buffers_of(corpus_file("wppstr-sample.etl"))
    completions = Counter()
    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(),
                                           lambda buf, ctx: completions.update([id(buf)]), None)
    for buf in buffers:
        api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf))
    assert not completions
    assert api.CloseTrace(handle) == ERROR_SUCCESS
    assert completions == Counter(id(b) for b in buffers)


def test_a_stopped_processtrace_completes_the_buffer_it_was_in(corpus_file):
    """An event callback exception aborts ProcessTrace mid-buffer: that buffer is done with
    (completed), the rest are completed at CloseTrace; each exactly once."""
    buffers = buffers_of(corpus_file("wppemitter-sample.etl"))
    completions = []

    def fail(record):
        raise RuntimeError("stop")

    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(EventCallback=fail),
                                           lambda buf, ctx: completions.append(buf), None)
    for buf in buffers:
        api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf))
    with pytest.raises(Win32Error):
        api.ProcessTrace([handle])
    assert completions == buffers[:1]
    assert api.CloseTrace(handle) == ERROR_SUCCESS
    assert completions == buffers


def test_bad_arguments(corpus_file):
    buffers = buffers_of(corpus_file("wppstr-sample.etl"))
    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS())
    file_handle = api.OpenTrace(
        EVENT_TRACE_LOGFILE(LogFileName=str(corpus_file("wppstr-sample.etl"))))
    try:
        add = api.ProcessTraceAddBufferToBufferStream
        assert _code(lambda: add(handle, 12345, 8)) == ERROR_INVALID_PARAMETER
        assert _code(lambda: add(handle, buffers[0], 0x47)) == ERROR_INVALID_PARAMETER
        assert _code(lambda: add(handle, buffers[0], len(buffers[0]) + 1)) == \
            ERROR_INVALID_PARAMETER
        assert _code(lambda: add(handle, b"\0" * 0x20, 0x20)) == ERROR_INVALID_PARAMETER
        assert _code(lambda: add(file_handle, buffers[0], len(buffers[0]))) == \
            ERROR_INVALID_HANDLE
        assert _code(lambda: add(0, buffers[0], len(buffers[0]))) == ERROR_INVALID_HANDLE
        assert _code(lambda: api.OpenTraceFromBufferStream(None)) == ERROR_INVALID_PARAMETER
    finally:
        api.CloseTrace(handle)
        api.CloseTrace(file_handle)
    assert _code(lambda: api.ProcessTraceAddBufferToBufferStream(
        handle, buffers[0], len(buffers[0]))) == ERROR_INVALID_HANDLE


def test_raw_timestamp_option(corpus_file):
    path = corpus_file("wppstr-sample.etl")
    buffers = buffers_of(path)
    log = []
    _stream(buffers, log, ETW_OPEN_TRACE_OPTIONS(
        ProcessTraceModes=ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP))
    events = [entry[1] for entry in log if entry[0] == "event"]
    with EtlFile(path) as etl:
        assert events[0].EventHeader.TimeStamp == etl.header.header_timestamp
        assert collect(path)[0][0].EventHeader.TimeStamp == etl.header.start_time


def test_compressed_on_disk_buffers_are_accepted(corpus):
    """Raw buffers of a compressed Windows file (MS-XCA payload, flag 0x40) are expanded by
    the stream: the events equal those of the decoder's own reading of the same buffers."""
    path = corpus / "etl" / "microsoft__perfview" / "net.4.5.2.x64.etl"
    with EtlFile(path) as etl, open(path, "rb") as raw_file:
        index = etl.buffer_index()
        chosen = [index[0]] + [stream[0] for stream in buffer_streams(etl)[:2]]
        assert all(info.compressed for info in chosen[1:])
        raw = []
        for info in chosen:
            raw_file.seek(info.file_offset)
            raw.append(raw_file.read(info.size_on_disk))
        expected = sum(len([r for r in etl.read_buffer(info).records() if r.kind != "unknown"])
                       for info in chosen)
    log = []
    _stream(raw, log)
    events = [entry[1] for entry in log if entry[0] == "event"]
    assert len(events) == expected > 100
    assert [entry[1] for entry in log if entry[0] == "done"] == raw


def test_a_raising_completion_callback_is_reported_and_every_buffer_still_completed(corpus_file):
    buffers = buffers_of(corpus_file("wppemitter-sample.etl"))
    boom = ValueError("completion failed")
    calls = []

    def on_complete(buf, ctx):
        calls.append(buf)
        raise boom

    # during ProcessTrace: ERROR_NOACCESS with the callback's exception as the cause
    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(), on_complete, None)
    api.ProcessTraceAddBufferToBufferStream(handle, buffers[0], len(buffers[0]))
    with pytest.raises(Win32Error) as info:
        api.ProcessTrace([handle])
    assert info.value.winerror == ERROR_NOACCESS and info.value.__cause__ is boom
    assert calls == buffers[:1]
    assert api.CloseTrace(handle) == ERROR_SUCCESS
    # during CloseTrace: the handle is closed anyway and every buffer was completed once
    calls.clear()
    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(), on_complete, None)
    for buf in buffers:
        api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf))
    with pytest.raises(Win32Error) as info:
        api.CloseTrace(handle)
    assert info.value.winerror == ERROR_NOACCESS and info.value.__cause__ is boom
    assert calls == buffers
    assert _code(lambda: api.CloseTrace(handle)) == ERROR_INVALID_HANDLE


def test_buffers_of_a_compressed_file_are_handed_out_expanded(corpus):
    """A compressed file's BufferCallback gets plain buffers (flag 0x40 cleared, BufferSize =
    their length, records intact); a stream accepts them as they are."""
    path = corpus / "etl" / "microsoft__perfview" / "net.4.5.2.x86.etl"
    seen = []

    def on_buffer(buf, size, info, ctx):
        seen.append(bytes(buf))
        return len(seen) < 4

    handle = api.OpenTraceFromFile(str(path), ETW_OPEN_TRACE_OPTIONS(BufferCallback=on_buffer))
    try:
        assert api.ProcessTrace([handle]) == ERROR_CANCELLED
    finally:
        api.CloseTrace(handle)
    with EtlFile(path) as etl:
        by_key = {(i.processor, i.sequence): i for i in etl.buffer_index()}
        for buf in seen[1:]:
            h = ETW_BUFFER_HEADER.from_buffer(buf)
            info = by_key[(h.ClientContext.ProcessorIndex, h.SequenceNumber)]
            assert info.compressed and not h.BufferFlag & 0x40
            assert h.BufferSize == len(buf) == info.saved_offset
            assert buf[0x48:] == etl.read_buffer(info).data[0x48:]
    log = []
    _stream(seen, log)
    assert sum(1 for entry in log if entry[0] == "done") == 4


def test_buffer_reference_counting_is_not_supported_on_streams(corpus_file):
    kept = []

    def keep(buf, size, info, ctx):
        assert api.ProcessTraceBufferIncrementReference(info.TraceHandle, buf) == ERROR_SUCCESS
        kept.append(buf)
        return True

    handle = api.OpenTraceFromFile(str(corpus_file("wppstr-sample.etl")),
                                   ETW_OPEN_TRACE_OPTIONS(BufferCallback=keep))
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(handle)
    assert len(kept) == 2 and all(api.ProcessTraceBufferDecrementReference(b) == ERROR_SUCCESS
                                  for b in kept)
    stream = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS())
    try:
        assert _code(lambda: api.ProcessTraceBufferIncrementReference(stream, kept[0])) == \
            ERROR_NOT_SUPPORTED
    finally:
        api.CloseTrace(stream)


def test_a_compressed_buffer_claiming_a_huge_size_is_refused(corpus_file):
    """SavedOffset is the uncompressed size of a compressed buffer: more than
    MAX_ETW_BUFFER_SIZE (16 MiB) is damage, refused before any allocation."""
    buffers = buffers_of(corpus_file("wppstr-sample.etl"))
    forged = bytearray(buffers[1])
    forged[0x34:0x36] = (int.from_bytes(forged[0x34:0x36], "little") | 0x40).to_bytes(2, "little")
    forged[0x04:0x08] = (0xFFFFFFF0).to_bytes(4, "little")
    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS())
    try:
        api.ProcessTraceAddBufferToBufferStream(handle, buffers[0], len(buffers[0]))
        with pytest.raises(Win32Error) as info:
            api.ProcessTraceAddBufferToBufferStream(handle, bytes(forged), len(forged))
        assert info.value.winerror == ERROR_BAD_FORMAT and "MAX_ETW_BUFFER_SIZE" in str(info.value)
    finally:
        api.CloseTrace(handle)


def _stopping_stream(buffers, stop_on_buffer=None, fail_on_buffer=None, fail_on_event=None):
    """A stream of ``buffers`` whose first ProcessTrace stops: its BufferCallback returns FALSE
    (``stop_on_buffer``) or raises (``fail_on_buffer``) on that call (1-based), or its event
    callback raises on that event (``fail_on_event``). Returns (first rc or error code, events
    of the first run, completions after it, events of a second run, completions at the end);
    the second run closes the handle when it reaches the last buffer (or, if it never does,
    the test does after waiting), so it delivers what is queued and returns."""
    events, completions, calls = [], [], []
    second = threading.Event()

    def on_buffer(buf, size, info, ctx):
        calls.append(1)
        if not second.is_set():
            if len(calls) == stop_on_buffer:
                return False
            if len(calls) == fail_on_buffer:
                raise RuntimeError("stop")
        elif bytes(buf) == buffers[-1]:
            assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
        return True

    def on_event(record):
        events.append(identity(record))
        if not second.is_set() and len(events) == fail_on_event:
            raise RuntimeError("stop")

    handle = api.OpenTraceFromBufferStream(
        ETW_OPEN_TRACE_OPTIONS(BufferCallback=on_buffer, EventCallback=on_event),
        lambda buf, ctx: completions.append(buf), None)
    for buf in buffers:
        api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf))
    try:
        rc = api.ProcessTrace([handle])
    except Win32Error as exc:
        rc = exc.winerror
    first, completed_first = list(events), list(completions)
    second.set()
    worker = threading.Thread(target=api.ProcessTrace, args=([handle],))
    worker.start()
    worker.join(PATIENCE)
    if worker.is_alive():       # the last buffer never came
        assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
        worker.join(PATIENCE)
    assert not worker.is_alive()
    assert _code(lambda: api.CloseTrace(handle)) == ERROR_INVALID_HANDLE   # closed by the run
    return rc, first, completed_first, events[len(first):], completions


_SEVEN = "WindowsUpdate.20251008.140245.443.8.etl"      # a header and 6 data buffers, 1 processor


@pytest.mark.parametrize("how", ["false", "raises"])
def test_a_bufferCallback_stop_keeps_the_buffers_not_yet_started(corpus_file, how):
    """A BufferCallback that returns FALSE (or raises) after buffer 2 stops ProcessTrace: only
    buffers 1 and 2 are completed; the 5 buffers it had taken from the queue but not started
    stay queued, in order, for the next ProcessTrace, which delivers their events."""
    path = corpus_file(_SEVEN)
    buffers = buffers_of(path)
    assert len(buffers) == 7
    expected = [identity(e) for e in collect(path)[0]]
    stop = {"false": {"stop_on_buffer": 2}, "raises": {"fail_on_buffer": 2}}[how]
    rc, first, completed_first, second, completions = _stopping_stream(buffers, **stop)
    assert rc == {"false": ERROR_CANCELLED, "raises": ERROR_NOACCESS}[how]
    header_and_one = len(parse_buffer(buffers[0], 8, header_buffer=True)[0]) + \
        len(parse_buffer(buffers[1], 8, header_buffer=False)[0])
    assert first == expected[:header_and_one]
    assert completed_first == buffers[:2]
    assert second == expected[header_and_one:]
    assert completions == buffers and all(c is b for c, b in zip(completions, buffers))


def test_an_event_callback_failure_loses_only_the_rest_of_its_buffer(corpus_file):
    """An event callback raising in buffer 3 stops ProcessTrace inside it: buffers 1-3 are
    completed (3's remaining events are lost, as Windows does); buffers 4-7 stay queued."""
    path = corpus_file(_SEVEN)
    buffers = buffers_of(path)
    expected = [identity(e) for e in collect(path)[0]]
    sizes = [len(parse_buffer(b, 8, header_buffer=i == 0)[0]) for i, b in enumerate(buffers)]
    before_third = sum(sizes[:2])
    rc, first, completed_first, second, completions = _stopping_stream(
        buffers, fail_on_event=before_third + 3)
    assert rc == ERROR_NOACCESS
    assert first == expected[:before_third + 3]
    assert completed_first == buffers[:3]
    assert second == expected[sum(sizes[:3]):]
    assert completions == buffers
