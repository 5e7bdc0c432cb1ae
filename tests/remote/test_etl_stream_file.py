"""The session core's writer for received buffers (wpptrace_etl_stream_*): the header buffer
as sent with this file's totals, data buffers appended, checks before anything is written."""
from __future__ import annotations

import os
import stat

import pytest
from remote_helpers import TracedSession, data_buffers, descriptor_of, disk_full_under, header

from wpptrace._core import ffi, lib
from wpptrace.remote.etlstream import EtlStreamFile
from wpptrace.winerror import Win32Error


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    d = tmp_path_factory.mktemp("recorded")
    with TracedSession(d, "etlstream", buffer_kb=8) as session:
        session.log(500, size=40)
    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_a_received_stream_becomes_the_same_file_with_its_own_totals(tmp_path, recorded):
    path = tmp_path / "copy.etl"
    f = EtlStreamFile(path, recorded[0])
    for buf in recorded[1:]:
        f.write(buf)
    assert f.buffers == len(recorded)
    f.set_lost(7, 3)
    f.close(end_time=1)                 # before StartTime: written as StartTime
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert data_buffers(path) == recorded[1:]
    h = header(path)
    assert (h.buffers_written, h.events_lost, h.buffers_lost) == (len(recorded), 7, 3)
    assert h.end_time == h.start_time
    assert h.log_file_mode & lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
    assert not h.log_file_mode & lib.EVENT_TRACE_FILE_MODE_CIRCULAR


def test_an_unfinished_stream_keeps_end_time_zero_and_is_readable_meanwhile(tmp_path, recorded):
    path = tmp_path / "open.etl"
    f = EtlStreamFile(path, recorded[0])
    f.write(recorded[1])
    h = header(path)                    # read while still open: the header is current
    assert h.buffers_written == 2 and h.end_time == 0
    f.close()
    assert header(path).end_time == 0


def test_an_existing_file_is_never_written_over(tmp_path, recorded):
    path = tmp_path / "kept.etl"
    path.write_bytes(b"precious")
    with pytest.raises(Win32Error) as info:
        EtlStreamFile(path, recorded[0])
    assert info.value.name == "ERROR_ALREADY_EXISTS"
    assert path.read_bytes() == b"precious"


@pytest.mark.parametrize("what, make, error", [
    ("a data buffer", lambda r: r[1], "ERROR_BAD_FORMAT"),
    ("a short buffer", lambda r: r[0][:256], "ERROR_BAD_LENGTH"),
    ("another BufferSize", lambda r: (4096).to_bytes(4, "little") + r[0][4:], "ERROR_BAD_FORMAT"),
    ("a record too small", lambda r: _patched(r[0], "SYSTEM_TRACE_HEADER", "Size", 0x20), "ERROR_BAD_FORMAT"),
])
def test_a_header_buffer_is_checked_before_the_file_is_made(tmp_path, recorded, what, make, error):
    path = tmp_path / "bad.etl"
    with pytest.raises(Win32Error) as info:
        EtlStreamFile(path, make(recorded))
    assert info.value.name == error
    assert not path.exists()


def test_data_buffers_must_have_the_stream_size(tmp_path, recorded):
    f = EtlStreamFile(tmp_path / "sizes.etl", recorded[0])
    with pytest.raises(Win32Error) as info:
        f.write(recorded[1][:4096])
    assert info.value.name == "ERROR_BAD_LENGTH"
    with pytest.raises(Win32Error) as info:
        f.write(recorded[0])
    assert info.value.name == "ERROR_BAD_FORMAT"
    f.close()
    assert header(tmp_path / "sizes.etl").buffers_written == 1


def _patched(buffer: bytes, ctype: str, field: str, value: int) -> bytes:
    """``buffer`` with one field of the header buffer's first record changed."""
    out = bytearray(buffer)
    base = ffi.sizeof("WMI_BUFFER_HEADER")
    if ctype != "SYSTEM_TRACE_HEADER":
        base += ffi.sizeof("SYSTEM_TRACE_HEADER")
    off = base + ffi.offsetof(ctype, field)
    size = ffi.sizeof(dict(ffi.typeof(ctype).fields)[field].type)
    out[off:off + size] = value.to_bytes(size, "little")
    return bytes(out)


def _header_buffer_32(size: int) -> bytes:
    """A header buffer whose log-file header record was written by a 32-bit logger."""
    buf = bytearray(b"\xff" * size)
    bh = ffi.new("WMI_BUFFER_HEADER *")
    rec = ffi.new("SYSTEM_TRACE_HEADER *")
    lh = ffi.new("TRACE_LOGFILE_HEADER32 *")
    names = "s32\0\0".encode("utf-16-le")
    record = ffi.sizeof(rec[0]) + ffi.sizeof(lh[0]) + len(names)
    used = ffi.sizeof(bh[0]) + (record + 7) // 8 * 8
    bh.BufferSize, bh.SavedOffset, bh.FilledBytes = size, used, used
    bh.BufferType, bh.State = lib.ETW_BUFFER_TYPE_HEADER, lib.ETW_BUFFER_STATE_FLUSH
    rec.HeaderType, rec.Flags, rec.Size = lib.TRACE_HEADER_TYPE_SYSTEM32, 0xC0, record
    rec.Version = lib.SYSTEM_TRACE_VERSION
    lh.BufferSize, lh.PointerSize, lh.NumberOfProcessors = size, 4, 1
    lh.LogFileMode, lh.MaximumFileSize = lib.EVENT_TRACE_FILE_MODE_CIRCULAR, 8
    lh.StartTime, lh.PerfFreq, lh.ReservedFlags = 133_000_000_000_000_000, 10_000_000, 1
    lh.MajorVersion, lh.ProviderVersion = 10, 19041
    parts = [bytes(ffi.buffer(bh)), bytes(ffi.buffer(rec)), bytes(ffi.buffer(lh)), names]
    data = b"".join(parts)
    buf[:len(data)] = data
    buf[len(data):used] = bytes(used - len(data))
    return bytes(buf)


def test_a_32_bit_loggers_header_gets_its_totals_at_the_32_bit_offsets(tmp_path):
    path = tmp_path / "s32.etl"
    f = EtlStreamFile(path, _header_buffer_32(4096))
    f.set_lost(11, 12)
    f.close(end_time=133_000_000_100_000_000)
    h = header(path)
    assert h.pointer_size == 4 and h.buffers_written == 1
    assert (h.events_lost, h.buffers_lost, h.end_time) == (11, 12, 133_000_000_100_000_000)
    assert h.maximum_file_size == 0
    assert h.log_file_mode == lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL



def test_a_close_that_cannot_write_the_last_header_says_so(tmp_path, recorded):
    path = tmp_path / "full.etl"
    f = EtlStreamFile(path, recorded[0])
    f.write(recorded[1])
    disk_full_under(path)
    with pytest.raises(Win32Error) as info:
        f.close(end_time=1)
    assert info.value.name == "ERROR_DISK_FULL"
    assert "closing the file" in str(info.value) and str(path) in str(info.value)
    assert f.closed
    f.close()                                   # once closed, closing again does nothing
    assert header(path).end_time == 0           # the EndTime never reached the file


@pytest.mark.parametrize("target, expected", [
    ("/dev/full", "ERROR_DISK_FULL"),           # ENOSPC
    ("pipe", "ERROR_WRITE_FAULT"),              # any other failure of the write (ESPIPE)
])
def test_a_buffer_that_cannot_be_written_says_why_as_a_close_would(tmp_path, recorded, target,
                                                                   expected):
    """A failed write is worded as a failed close is: the disk is full, or the write failed
    (never "the path is invalid": the file is open)."""
    path = tmp_path / "full.etl"
    f = EtlStreamFile(path, recorded[0])
    f.write(recorded[1])
    if target == "pipe":
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.dup2(write_end, descriptor_of(path))
        os.close(write_end)
    else:
        disk_full_under(path)
    with pytest.raises(Win32Error) as info:
        f.write(recorded[2])
    assert info.value.name == expected
    assert "writing a buffer" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(Win32Error) as info:
        f.close(end_time=1)
    assert info.value.name == expected
