"""Trace sessions: log-file modes, clocks, flush timer, QUERY/FLUSH/UPDATE/STOP, real time."""
from __future__ import annotations

import datetime
import errno
import os
import subprocess
import sys
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession, subscribe_realtime
from wpptrace.winerror import Win32Error

PATIENCE = 20.0     # seconds a loaded machine may take; waits end as soon as the data is there

L = P._lib
GUID = uuid.UUID("0badf00d-1234-5678-9abc-def012345678")
FILETIME_UNIX = 116444736000000000


def filetime_now() -> int:
    return time.time_ns() // 100 + FILETIME_UNIX


def test_sequential_header_is_finalised_on_stop(tmp_path, session_name):
    path = tmp_path / "seq.etl"
    t0 = filetime_now()
    with TraceSession(session_name, path, BufferSize=8, MaximumBuffers=64,
                      LogFileMode=P.EVENT_TRACE_USE_GLOBAL_SEQUENCE) as s:
        for i in range(3000):
            P.TraceMessage(s.handle, 0x2B, GUID, 10, i.to_bytes(4, "little"))
        q = s.query()
        assert (q.BufferSize, q.LoggerName, q.LogFileName) == (8, session_name, str(path))
        assert q.NumberOfBuffers >= q.FreeBuffers and q.LoggerThreadId > 0
    final = s.final
    c = etlcheck.read(path)
    h = c.header
    assert path.stat().st_size == h["BuffersWritten"] * 8192 == final.BuffersWritten * 8192
    assert h["BuffersWritten"] == 1 + len(c.buffers) and final.EventsLost == h["EventsLost"] == 0
    assert t0 <= h["StartTime"] <= h["EndTime"] <= filetime_now()
    assert h["Version"] == b"\x0a\x00\x01\x05" and h["ReservedFlags"] == 1 and h["PerfFreq"] == 10**7
    assert h["LogFileMode"] == P.EVENT_TRACE_FILE_MODE_SEQUENTIAL | P.EVENT_TRACE_USE_GLOBAL_SEQUENCE
    assert (c.logger_name, c.logfile_name) == (session_name, str(path))
    assert h["header_pid"] == os.getpid()
    assert sorted(b["sequence"] for b in c.buffers) == list(range(1, len(c.buffers) + 1))
    # per-processor buffers (the default mode) and a thread the scheduler may move between
    # processors: logging order is ProcessTrace (time) order, not file order
    ordered = etlcheck.time_order(c)
    # the header event's raw time is the instant of StartTime: events convert to wall clock
    first = ordered[0]
    as_filetime = h["StartTime"] + (first.timestamp - h["header_systemtime"]) * 10**7 // h["PerfFreq"]
    assert h["StartTime"] <= as_filetime <= h["EndTime"]
    numbers = [int.from_bytes(m.args, "little") for m in ordered]
    assert numbers == list(range(3000))
    seqs = [m.sequence for m in ordered]
    assert seqs == list(range(seqs[0], seqs[0] + 3000))      # global sequence: consecutive
    assert len(etlcheck.dissect_messages(path)) == 3000


def test_local_sequence_starts_at_one_per_session(tmp_path, session_name):
    for run in range(2):
        path = tmp_path / f"local{run}.etl"
        with TraceSession(f"{session_name}{run}", path, LogFileMode=P.EVENT_TRACE_USE_LOCAL_SEQUENCE) as s:
            for _ in range(5):
                P.TraceMessage(s.handle, P.TRACE_MESSAGE_SEQUENCE | P.TRACE_MESSAGE_TIMESTAMP, None, 1)
        assert [m.sequence for m in etlcheck.time_order(etlcheck.read(path))] == [1, 2, 3, 4, 5]


def test_sequence_item_without_sequence_mode_is_zero(tmp_path, session_name):
    path = tmp_path / "noseq.etl"
    with TraceSession(session_name, path) as s:
        P.TraceMessage(s.handle, P.TRACE_MESSAGE_SEQUENCE, None, 1)
    assert [m.sequence for m in etlcheck.read(path).messages] == [0]


def test_circular_file_keeps_the_newest_buffers(tmp_path, session_name):
    path = tmp_path / "circ.etl"
    # 64 KB file of 4 KB buffers: header + 15 data slots
    with TraceSession(session_name, path, BufferSize=4, MaximumFileSize=64, MaximumBuffers=64,
                      LogFileMode=P.EVENT_TRACE_FILE_MODE_CIRCULAR | P.EVENT_TRACE_USE_KBYTES_FOR_SIZE
                      | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        for i in range(4000):                     # 4000 x 16 B = ~16 buffers of 4 KB per 250 events
            P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, i.to_bytes(8, "little"))
    assert path.stat().st_size == 64 * 1024
    c = etlcheck.read(path)
    assert c.header["BuffersWritten"] == 16 and len(c.buffers) == 15
    assert s.final.BuffersWritten > 16          # QUERY counts every buffer written
    seqs = [b["sequence"] for b in c.buffers]
    assert sorted(seqs) == list(range(max(seqs) - 14, max(seqs) + 1))
    ordered = etlcheck.stream_order(c)[0]
    values = [int.from_bytes(m.args, "little") for m in ordered]
    assert values == list(range(values[0], 4000))          # the newest events, none torn
    times = [m.timestamp for m in ordered]
    assert times == sorted(times)
    # dissect walks the file in slot order: the same records, oldest slot first after the wrap
    assert sorted(d["raw_time"] for d in etlcheck.dissect_messages(path)) == times


def test_sequential_maximum_file_size_counts_lost_buffers(tmp_path, session_name):
    path = tmp_path / "max.etl"
    with TraceSession(session_name, path, BufferSize=4, MaximumFileSize=16, MaximumBuffers=64,
                      LogFileMode=P.EVENT_TRACE_USE_KBYTES_FOR_SIZE | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        for i in range(2000):
            P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, i.to_bytes(8, "little"))
    c = etlcheck.read(path)
    assert path.stat().st_size == 16 * 1024 and len(c.buffers) == 3
    assert s.final.LogBuffersLost > 0 and c.header["BuffersLost"] == s.final.LogBuffersLost
    values = [int.from_bytes(m.args, "little") for m in c.messages]
    assert values == list(range(len(values)))               # the oldest ones, in order
    assert [d["payload"][8:] for d in etlcheck.dissect_messages(path)] == [m.args for m in c.messages]


@pytest.mark.parametrize("clock", [1, 2, 3])
def test_clock_types(tmp_path, session_name, clock):
    path = tmp_path / "clock.etl"
    t0 = filetime_now()
    with TraceSession(session_name, path, ClientContext=clock) as s:
        time.sleep(0.02)
        P.TraceMessage(s.handle, 0x2B, GUID, 1, b"x")
    t1 = filetime_now()
    c = etlcheck.read(path)
    h = c.header
    assert h["ReservedFlags"] == clock and h["CpuSpeedInMHz"] > 0
    (m,) = c.messages
    ticks = m.timestamp - h["header_systemtime"]
    converted = h["StartTime"] + (ticks * 10 // h["CpuSpeedInMHz"] if clock == 3 else ticks)
    assert t0 + 150_000 <= converted <= t1 + 10_000         # 20 ms after start, within 1 ms
    if clock == 2:
        assert abs(m.timestamp - filetime_now()) < 10**8    # raw values are FILETIMEs
    (d,) = etlcheck.dissect_messages(path)
    delta = d["timestamp"] - datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
    got = (delta.days * 86400 + delta.seconds) * 10**7 + delta.microseconds * 10
    assert abs(got - converted) < 100                         # dissect converts the same way (µs)


def test_flush_timer_writes_without_stop(tmp_path, session_name):
    path = tmp_path / "timer.etl"
    with TraceSession(session_name, path, FlushTimer=50, LogFileMode=P.EVENT_TRACE_USE_MS_FLUSH_TIMER) as s:
        P.TraceMessage(s.handle, 0x2B, GUID, 1, b"tick")
        deadline = time.monotonic() + 120   # generous for a loaded machine; ends when written
        while etlcheck.read(path).header["BuffersWritten"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        c = etlcheck.read(path)                    # readable while the session runs
        assert [m.args for m in c.messages] == [b"tick"]
        s.properties.FlushTimer = 0
        P.ControlTrace(s.handle, None, s.properties, P.EVENT_TRACE_CONTROL_UPDATE)
        assert s.query().FlushTimer == 0


def test_flush_and_update(tmp_path, session_name):
    path = tmp_path / "flush.etl"
    with TraceSession(session_name, path, MaximumBuffers=8) as s:
        P.TraceMessage(s.handle, 0x2B, GUID, 1, b"one")
        q = P.ControlTrace(0, session_name, None, P.EVENT_TRACE_CONTROL_FLUSH)
        assert q.BuffersWritten == 2
        assert [m.args for m in etlcheck.read(path).messages] == [b"one"]
        q.MaximumBuffers = 64
        assert P.ControlTrace(s.handle, None, q, P.EVENT_TRACE_CONTROL_UPDATE).MaximumBuffers == 64
        P.ControlTrace(s.handle, None, None, P.EVENT_TRACE_CONTROL_FLUSH)      # nothing new: no empty buffer
        assert s.query().BuffersWritten == 2
    assert s.final.BuffersWritten == 2 and len(etlcheck.read(path).buffers) == 1


def test_no_per_processor_buffering_uses_one_stream(tmp_path, session_name):
    import threading
    path = tmp_path / "one.etl"
    with TraceSession(session_name, path, BufferSize=4, MaximumBuffers=128,
                      LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING | P.EVENT_TRACE_USE_LOCAL_SEQUENCE) as s:
        def work():
            for i in range(2000):
                P.TraceMessage(s.handle, 0x2B, GUID, 1, i.to_bytes(4, "little"))
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
    c = etlcheck.read(path)
    assert {b["processor"] for b in c.buffers} == {0} and len(c.messages) == 6000
    assert len(etlcheck.dissect_messages(path)) == 6000
    ordered = etlcheck.stream_order(c)[0]
    assert [m.timestamp for m in ordered] == sorted(m.timestamp for m in ordered)


def test_realtime_with_file(tmp_path, session_name):
    path = tmp_path / "rt.etl"
    with TraceSession(session_name, path, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE | P.EVENT_TRACE_FILE_MODE_SEQUENTIAL) as s:
        sub = subscribe_realtime(session_name)
        header = sub.get(PATIENCE)
        assert header[0x36] == 4 and len(header) == sub.buffer_size          # header buffer first
        for i in range(10):
            P.TraceMessage(s.handle, 0x2B, GUID, 5, bytes([i]))
        s.flush()
        sub.sync(PATIENCE)                 # the flushed buffers are here (the host is another process)
        delivered = []
        while (data := sub.get(0)) is not None:
            delivered.append(data)
        assert delivered and all(d[0x36] == 0 for d in delivered) and not sub.closed
        got = sorted(m["args"] for d in delivered for m in etlcheck.buffer_messages(d))
        assert got == [bytes([i]) for i in range(10)]
    assert sub.closed                      # stopped and drained, without another get()
    assert sub.get(1.0) is None and sub.closed
    size = len(delivered[0])
    on_disk = path.read_bytes()
    assert [on_disk[size * k:size * (k + 1)] for k in range(1, 1 + len(delivered))] == delivered
    sub.close()


def test_realtime_buffers_wait_for_the_first_consumer_up_to_maximum_buffers(session_name):
    """Buffers flushed while nobody consumes wait for the first consumer (after the header
    buffer), up to MaximumBuffers; beyond that they count in RealTimeBuffersLost."""
    with TraceSession(session_name, None, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE,
                      MinimumBuffers=2, MaximumBuffers=4) as s:
        for i in range(6):
            P.TraceMessage(s.handle, 0x2B, GUID, 1, bytes([i]))
            s.flush()
        assert s.query().RealTimeBuffersLost == 2
        with subscribe_realtime(session_name) as sub:
            assert sub.get(PATIENCE)[0x36] == 4
            waited = [m["args"] for _ in range(4) for m in etlcheck.buffer_messages(sub.get(PATIENCE))]
            assert waited == [b"\0", b"\1", b"\2", b"\3"]
            P.TraceMessage(s.handle, 0x2B, GUID, 1, b"live")
            s.flush()
            assert [m["args"] for m in etlcheck.buffer_messages(sub.get(PATIENCE))] == [b"live"]
        assert s.query().RealTimeBuffersLost == 2


def test_subscribe_to_missing_session_fails():
    with pytest.raises(Win32Error) as err:
        subscribe_realtime("no-such-session-" + uuid.uuid4().hex)
    assert err.value.winerror == L.ERROR_WMI_INSTANCE_NOT_FOUND


def _wide_properties(path):
    """(block, props, size): an EVENT_TRACE_PROPERTIES with room for a UTF-16 logger name at
    ``size`` and ``path`` as its UTF-16 log file name, for the wide (W) calls."""
    from wpptrace.provider._hazmat import ffi

    size = ffi.sizeof("EVENT_TRACE_PROPERTIES")
    block = ffi.new("char[]", size + 4096)
    props = ffi.cast("EVENT_TRACE_PROPERTIES *", block)
    props.Wnode.BufferSize = size + 4096
    props.LogFileMode = P.EVENT_TRACE_FILE_MODE_SEQUENTIAL
    props.LoggerNameOffset = size
    props.LogFileNameOffset = size + 1024
    wide_path = str(path).encode("utf-16-le") + b"\0\0"
    ffi.memmove(block + size + 1024, wide_path, len(wide_path))
    return block, props, size


def test_wide_api_and_non_ascii_names(tmp_path):
    """StartTraceW / ControlTraceW with UTF-16 names (code points of 1 to 4 UTF-8 bytes); the file
    header carries them as UTF-16."""
    from wpptrace.provider._hazmat import ffi

    name = "Sitzung-Überwachung-€-𝄞-" + uuid.uuid4().hex[:6]
    path = tmp_path / "wide-ä.etl"
    block, props, size = _wide_properties(path)
    wide_name = ffi.new("uint16_t[]", list(memoryview(name.encode("utf-16-le")).cast("H")) + [0])
    handle = ffi.new("uint64_t *")
    assert L.StartTraceW(handle, wide_name, props) == 0
    P.TraceMessage(handle[0], 0x2B, GUID, 1, b"wide")
    assert L.ControlTraceW(0, wide_name, props, P.EVENT_TRACE_CONTROL_QUERY) == 0
    stored = ffi.unpack(ffi.cast("char *", block) + size, len(name.encode("utf-16-le")))
    assert stored.decode("utf-16-le") == name
    assert L.ControlTraceW(handle[0], ffi.NULL, props, P.EVENT_TRACE_CONTROL_STOP) == 0
    c = etlcheck.read(path)
    assert (c.logger_name, c.logfile_name) == (name, str(path))
    assert [m.args for m in c.messages] == [b"wide"]


def test_wide_names_with_unpaired_surrogates_become_replacement_characters(tmp_path):
    """A UTF-16 name with a lone high and a lone low surrogate names the session whose name has
    U+FFFD in their places (as the TMF renderer writes them), never invalid UTF-8."""
    from wpptrace.provider._hazmat import ffi

    tag = uuid.uuid4().hex[:6]
    given, named = f"Lone-\ud800-x-\udc00-{tag}", f"Lone-\ufffd-x-\ufffd-{tag}"

    def wide(text):
        units = memoryview(text.encode("utf-16-le", "surrogatepass")).cast("H")
        return ffi.new("uint16_t[]", [*units, 0])
    block, props, size = _wide_properties(tmp_path / "lone.etl")
    handle = ffi.new("uint64_t *")
    assert L.StartTraceW(handle, wide(given), props) == 0
    try:
        assert L.ControlTraceW(0, wide(named), props, P.EVENT_TRACE_CONTROL_QUERY) == 0
        stored = ffi.unpack(ffi.cast("char *", block) + size, len(named.encode("utf-16-le")))
        assert stored.decode("utf-16-le") == named
    finally:
        assert L.ControlTraceW(handle[0], ffi.NULL, props, P.EVENT_TRACE_CONTROL_STOP) == 0
    assert etlcheck.read(tmp_path / "lone.etl").logger_name == named


def test_update_switches_to_a_new_log_file(tmp_path, session_name):
    first, second = tmp_path / "first.etl", tmp_path / "second.etl"
    with TraceSession(session_name, first, LogFileMode=P.EVENT_TRACE_USE_LOCAL_SEQUENCE) as s:
        for i in range(3):
            P.TraceMessage(s.handle, 0x2B, GUID, 1, bytes([i]))
        props = s.query()
        props.LogFileName = str(second)
        assert P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE).LogFileName == str(second)
        for i in range(3, 5):
            P.TraceMessage(s.handle, 0x2B, GUID, 1, bytes([i]))
        bad = s.query()
        bad.LogFileName = str(tmp_path / "missing" / "third.etl")
        with pytest.raises(Win32Error) as err:
            P.ControlTrace(s.handle, None, bad, P.EVENT_TRACE_CONTROL_UPDATE)
        assert err.value.winerror == L.ERROR_BAD_PATHNAME and s.query().LogFileName == str(second)
    a, b = etlcheck.read(first), etlcheck.read(second)
    assert [m.args for m in etlcheck.time_order(a)] == [b"\0", b"\1", b"\2"]
    assert [m.args for m in etlcheck.time_order(b)] == [b"\3", b"\4"]
    assert [m.sequence for m in etlcheck.time_order(b)] == [4, 5]               # the session's sequence goes on
    assert sorted(buf["sequence"] for buf in b.buffers) == list(range(1, len(b.buffers) + 1))
    assert (a.logfile_name, b.logfile_name) == (str(first), str(second))
    assert a.header["StartTime"] == b.header["StartTime"] and len(etlcheck.dissect_messages(second)) == 2


_FULL_DISK_APP = r"""
import resource, signal, sys
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # past the limit a write fails with EFBIG
failed = 0
s = TraceSession(sys.argv[1], sys.argv[2], BufferSize=4, MinimumBuffers=64, MaximumBuffers=64,
                 LogFileMode=P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC
                 | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING)
# (a private session: this process writes its file) the limit once the session runs
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
for i in range(5000):
    try:
        P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, i.to_bytes(8, "little"))
    except OSError:
        failed += 1
try:
    s.stop()
    said = "ERROR_SUCCESS"
except OSError as exc:
    said = exc.name
print(failed, s.final.LogBuffersLost, s.final.BuffersWritten, said, s.stopped)
"""


def test_a_file_that_cannot_grow_counts_its_buffers_lost(tmp_path, session_name):
    """The session's file stops growing (a full disk; here the process's file size limit, so
    every write past 64 KiB fails with EFBIG): the buffers that cannot be written are counted
    in LogBuffersLost and in the file's header, TraceMessage goes on succeeding, and what was
    written before stays readable. STOP stops the session and says that its file is incomplete
    (ERROR_FILE_TOO_LARGE, as the errno table of ``winerror`` names EFBIG; the final counters
    filled in all the same)."""
    path = tmp_path / "full.etl"
    res = subprocess.run([sys.executable, "-c", _FULL_DISK_APP, session_name, str(path)],
                         capture_output=True, text=True, timeout=PATIENCE)
    assert res.returncode == 0, res.stderr
    failed, lost, written, said, stopped = res.stdout.split()
    failed, lost, written = int(failed), int(lost), int(written)
    assert failed == 0 and (said, stopped) == ("ERROR_FILE_TOO_LARGE", "True")
    c = etlcheck.read(path)
    assert path.stat().st_size == 64 * 1024 and len(c.buffers) == 15 and written == 16
    values = [int.from_bytes(m.args, "little") for m in c.messages]
    assert values == list(range(len(values)))               # the oldest ones, in order
    per_buffer = len(values) // 15                          # one thread, one size: all alike
    assert lost == -(-5000 // per_buffer) - 15               # every buffer not written
    assert c.header["BuffersLost"] == lost and c.header["BuffersWritten"] == written


_PRIVATE = P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING


def _fail_writes(error: int = errno.ENOSPC) -> None:
    """Every write of a .etl file by this process fails from now on (private sessions: this
    process writes their files)."""
    L.wpptrace_debug_fail_file_writes(0, 1 << 30, error)


def _restore_writes() -> None:
    L.wpptrace_debug_fail_file_writes(0, 0, 0)


@pytest.mark.parametrize("error", ["ERROR_DISK_FULL", "ERROR_WRITE_FAULT"])
def test_a_private_sessions_stop_says_its_file_could_not_be_flushed_to_the_disk(tmp_path, session_name, error):
    """Every buffer of a private session's file is written, but its flush to the disk fails
    (seen only at fdatasync or close): STOP stops the session and says why its file is
    incomplete, as a hosted session's STOP does."""
    s = TraceSession(session_name, tmp_path / "unflushed.etl", BufferSize=4, LogFileMode=_PRIVATE)
    L.wpptrace_debug_fail_file_flushes(1, getattr(L, error))
    try:
        with pytest.raises(Win32Error) as raised:
            s.stop()
    finally:
        L.wpptrace_debug_fail_file_flushes(0, 0)
    assert raised.value.winerror == getattr(L, error)
    assert raised.value.properties.LogFileName == str(tmp_path / "unflushed.etl")


def test_a_with_block_exception_is_not_replaced_by_an_incomplete_file(tmp_path, session_name):
    """The block raised and the file cannot be completed either: the block's exception goes on,
    the file's failure added to it as a note; the session is stopped all the same."""
    path = tmp_path / "failing.etl"
    try:
        with pytest.raises(KeyError) as raised:
            with TraceSession(session_name, path, BufferSize=4, LogFileMode=_PRIVATE) as s:
                P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"lost")
                _fail_writes()
                raise KeyError("the block's own")
    finally:
        _restore_writes()
    assert raised.value.__notes__ == [
        f"wpptrace: stopping session {session_name!r} also failed: its log file {path} is "
        f"incomplete: 1 buffers could not be written (ERROR_DISK_FULL)"]
    assert s.stopped and s.final.LogBuffersLost == 1


def test_a_with_block_that_succeeded_raises_for_an_incomplete_file(tmp_path, session_name):
    path = tmp_path / "failing.etl"
    try:
        with pytest.raises(Win32Error) as raised:
            with TraceSession(session_name, path, BufferSize=4, LogFileMode=_PRIVATE) as s:
                P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"lost")
                _fail_writes()
    finally:
        _restore_writes()
    assert raised.value.name == "ERROR_DISK_FULL" and raised.value.properties.LogBuffersLost == 1
    assert s.stopped and s.final.LogBuffersLost == 1


_STOPPED_AT_EXIT_APP = r"""
import sys
import wpptrace.provider as P
from wpptrace.provider import api
from wpptrace.provider.sessions import TraceSession
mode = P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING
if sys.argv[1] == "TraceSession":
    handle = TraceSession(sys.argv[2], sys.argv[3], BufferSize=4, LogFileMode=mode).handle
else:
    props = api.EVENT_TRACE_PROPERTIES(BufferSize=4, LogFileMode=mode | P.EVENT_TRACE_FILE_MODE_SEQUENTIAL,
                                       LogFileName=sys.argv[3])
    handle = api.StartTrace(sys.argv[2], props)
P.TraceMessage(handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"lost")
P._lib.wpptrace_debug_fail_file_writes(0, 1 << 30, 28)     # ENOSPC: a full disk
print("exiting")                                           # the session is stopped at exit
"""


@pytest.mark.parametrize("started_by", ["TraceSession", "StartTrace"])
def test_a_session_stopped_at_exit_with_an_incomplete_file_says_so_once(tmp_path, session_name, started_by):
    """A private session left running is stopped when the process exits; its file cannot be
    completed: one line on stderr names it, and the process exits as it would have."""
    path = tmp_path / "at-exit.etl"
    res = subprocess.run([sys.executable, "-c", _STOPPED_AT_EXIT_APP, started_by, session_name, str(path)],
                         capture_output=True, text=True, timeout=PATIENCE)
    assert res.returncode == 0 and res.stdout == "exiting\n", res
    assert res.stderr.splitlines() == [
        f"wpptrace: session {session_name!r} stopped at exit, but its log file {path} is incomplete: "
        f"1 buffers could not be written (ERROR_DISK_FULL)"]


def test_update_to_a_new_file_says_the_old_one_could_not_be_completed(tmp_path, session_name):
    """A buffer of the first file could not be written (a full disk); UPDATE switches to a new
    file all the same, and says that the old one is incomplete (ERROR_DISK_FULL, its properties,
    naming the new file, filled in); the session goes on in the new file."""
    first, second = tmp_path / "first.etl", tmp_path / "second.etl"
    with TraceSession(session_name, first, BufferSize=4, LogFileMode=_PRIVATE) as s:
        P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"\0")
        _fail_writes()
        try:
            s.flush()
        finally:
            _restore_writes()
        props = s.query()
        props.LogFileName = str(second)
        with pytest.raises(Win32Error) as raised:
            P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE)
        assert raised.value.name == "ERROR_DISK_FULL"
        assert raised.value.properties is props and props.LogFileName == str(second)
        assert raised.value.old_file_error.name == "ERROR_DISK_FULL" and raised.value.new_file_error is None
        P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"\1")
    assert s.final.LogBuffersLost == 1 and s.final.LogFileName == str(second)
    assert [m.args for m in etlcheck.read(second).messages] == [b"\1"]
    assert etlcheck.read(first).messages == []


def test_a_header_rewrite_that_failed_while_running_leaves_a_complete_file_complete(tmp_path, session_name):
    """The header rewritten after a buffer could not be written once (a transient EIO); every
    buffer was, and so was the last header at STOP: the file is complete, STOP says so."""
    path = tmp_path / "repaired.etl"
    with TraceSession(session_name, path, BufferSize=4, LogFileMode=_PRIVATE) as s:
        P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"\0")
        L.wpptrace_debug_fail_file_writes(1, 1, errno.EIO)    # the buffer written, the header after it not
        try:
            s.flush()
        finally:
            _restore_writes()
    assert s.final.LogBuffersLost == 0
    c = etlcheck.read(path)
    assert [m.args for m in c.messages] == [b"\0"] and c.header["BuffersWritten"] == 2
    assert c.header["EndTime"] != 0


@pytest.mark.parametrize("error", [errno.EACCES, errno.EBADF, errno.EROFS, errno.EIO])
def test_a_file_write_failure_at_stop_is_a_write_fault(tmp_path, session_name, error):
    """Whatever made a write of the open file fail (short of a full disk), STOP says
    ERROR_WRITE_FAULT: ERROR_ACCESS_DENIED or ERROR_INVALID_HANDLE would tell a caller that
    nothing was stopped."""
    try:
        with pytest.raises(Win32Error) as raised:
            with TraceSession(session_name, tmp_path / "fault.etl", BufferSize=4, LogFileMode=_PRIVATE) as s:
                P.TraceMessage(s.handle, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"lost")
                _fail_writes(error)
    finally:
        _restore_writes()
    assert raised.value.name == "ERROR_WRITE_FAULT" and s.stopped and s.final.LogBuffersLost == 1


_FULL_TABLE_CHILD = """
import sys, uuid
import wpptrace.provider as P
from wpptrace.provider._hazmat import lib
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error
mode = P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING
x = TraceSession(sys.argv[1], sys.argv[2], BufferSize=4, LogFileMode=mode)
filled = 0
try:
    for _ in range(1024):
        P.EnableTrace(True, 0, 4, uuid.uuid4(), x.handle)
        filled += 1
except Win32Error:
    pass
# the first registration starts this process's endpoint, which copies the registry's enables:
# no room for the other process's
P.RegisterTraceGuids(lambda code, context, buffer: 0, None, uuid.UUID(sys.argv[3]))
print(filled, lib.wpptrace_enables_dropped(), flush=True)
"""


def test_enables_withheld_from_a_forked_child_are_said_at_exit(monkeypatch, capsys):
    """Enables the core counted as withheld (a child forked in a provider callback of the copy
    bringing them, which never returned into it) are said in one line at exit, as enables
    without room are: nothing else shows the count to a person."""
    from wpptrace.provider import api

    class Counts:
        def wpptrace_enables_dropped(self) -> int:
            return 0

        def wpptrace_enables_withheld(self) -> int:
            return 2

        def wpptrace_changes_undelivered(self) -> int:
            return 0

        def wpptrace_views_refused(self) -> int:
            return 0

    monkeypatch.setattr(api, "lib", Counts())
    api._report_enables_dropped()
    assert capsys.readouterr().err.splitlines() == [
        "wpptrace: 2 enables of other processes' sessions never reached this process (forked in a "
        "provider callback that never returned into the copy bringing them): their providers stayed "
        "disabled here"]


def test_changes_no_call_delivered_are_said_at_exit(monkeypatch, capsys):
    """Registrations found owed a change a thread cancelled in a ControlCallback left them, in a
    process with no endpoint thread: one line at exit, which says they were found owed when asked
    (a later call may have delivered it since: the count only grows)."""
    from wpptrace.provider import api

    class Counts:
        def __getattr__(self, name):
            return lambda: 1 if name == "wpptrace_changes_undelivered" else 0

    monkeypatch.setattr(api, "lib", Counts())
    api._report_enables_dropped()
    assert capsys.readouterr().err.splitlines() == [
        "wpptrace: 1 provider registration of this process was found owed a change of its enable "
        "state when asked (the thread making it was cancelled in a ControlCallback, and no endpoint "
        "thread was there to deliver it; a later EnableTrace may have)"]


def test_a_forked_child_reports_the_enables_it_lacks_itself_once(tmp_path, session_name):
    """A process that dropped an enable (no room) forks; the child's table is the same copy, so
    the child's own copy of the registry drops the same enable. The child counted the parent's
    drop again (the count inherited), or, its count started at 0 but the parent's records of
    what it had counted kept, nothing: its provider stayed disabled and it never said so. Each
    process counts and says what it lacks itself, once."""
    control = uuid.uuid4()
    forks = _FULL_TABLE_CHILD + (
        "import os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child', lib.wpptrace_enables_dropped(), flush=True)\n"
        "    sys.exit(0)\n"
        "os.waitpid(pid, 0)\n")
    with TraceSession(session_name, tmp_path / "a.etl", BufferSize=4) as a:
        P.EnableTrace(True, 0, 4, control, a.handle)
        # (Python 3.12+ warns of a fork in a process with more than one thread, the endpoint's:
        # its own line on stderr, not the product's)
        res = subprocess.run([sys.executable, "-W", "ignore:This process:DeprecationWarning", "-c", forks,
                              session_name + "-x", str(tmp_path / "x.etl"), str(control)],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1024", "1", "child", "1"]
    line = ("wpptrace: this process had no room for 1 enable of other processes' sessions (it keeps 1024 "
            "at a time): its provider stayed disabled here")
    assert res.stderr.splitlines() == [line, line]      # the child's, then the parent's


def test_enables_a_process_had_no_room_for_are_reported_once_at_exit(tmp_path, session_name):
    """A process whose table of enables is full drops the enables of other processes' sessions
    it cannot keep, and counts them; nothing showed the count to a person. At exit one line on
    stderr says how many, and that their providers stayed disabled there."""
    control = uuid.uuid4()
    with TraceSession(session_name, tmp_path / "a.etl", BufferSize=4) as a:
        P.EnableTrace(True, 0, 4, control, a.handle)
        res = subprocess.run([sys.executable, "-c", _FULL_TABLE_CHILD, session_name + "-x",
                              str(tmp_path / "x.etl"), str(control)],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1024", "1"]
    assert res.stderr.splitlines() == [
        "wpptrace: this process had no room for 1 enable of other processes' sessions (it keeps 1024 "
        "at a time): its provider stayed disabled here"]
