"""A file whose session never stopped says so.

A session whose writer was killed leaves a file that decodes up to its last flushed buffer,
its end missing. The writer leaves TRACE_LOGFILE_HEADER.EndTime 0 until a clean stop
(docs/unclean-stop.md); ``wpptrace dump`` and ``wpptrace fmt -v`` report such a file with
"the session did not stop cleanly: the last N ms may be missing", N being the longest time
one processor's last written buffer covered (from the flush before it).
"""
from __future__ import annotations

import io
import json
import pathlib
import signal
import struct
import subprocess
import sys
import textwrap
import uuid

import pytest

import dec_etlgen as gen
import wpptrace.provider as P
from wpptrace.decoder.etlfile import EtlFile

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
SIZE = 4096
SECOND = 10_000_000                                # raw ticks of the built files' 10 MHz clock
END_TIME = 0x48 + 0x20 + 0x10                      # TRACE_LOGFILE_HEADER.EndTime in the file


def built(flushes: list[tuple[int, float]], end_time: int | None = 0) -> bytes:
    """A file whose data buffers (processor, flush time in s after the start) hold one message
    each; EndTime as given (None: as a stopped session writes it)."""
    first = gen.logfile_header_record(SIZE, len(flushes) + 1, 2)
    out = [gen.buffer([first], SIZE, 0, 0, 0, buffer_type=4, flag=0x21)]
    for seq, (processor, at) in enumerate(flushes, 1):
        ts = gen.T0 + int(at * SECOND)
        out.append(gen.buffer([gen.message(seq, G, ts - 1)], SIZE, seq, processor, flush_ts=ts))
    data = bytearray(b"".join(out))
    if end_time is not None:
        struct.pack_into("<q", data, END_TIME, end_time)
    return bytes(data)


def unclean(data: bytes) -> int | None:
    with EtlFile(io.BytesIO(data), name="x.etl") as etl:
        return etl.unclean_stop()


def test_the_estimate_is_the_longest_span_of_a_last_buffer():
    # processor 0 wrote at 1 s and 3 s (its last buffer covered 2 s), processor 1 at 2.5 s
    # (2.5 s since the start): the last 2500 ms may be missing
    assert unclean(built([(0, 1.0), (1, 2.5), (0, 3.0)])) == 2500
    assert unclean(built([(0, 0.25), (0, 0.5), (0, 0.6)])) == 250


def test_nothing_written_after_the_start():
    assert unclean(built([])) == -1
    # and the page that tells the readers' answers says so
    page = " ".join((pathlib.Path(__file__).resolve().parents[2] / "docs" / "unclean-stop.md")
                    .read_text(encoding="utf-8").split())
    assert "-1 for one that did not stop and holds no data buffer" in page


def test_stopped_and_damaged_headers_make_no_claim(corpus):
    assert unclean(built([(0, 1.0)], end_time=None)) is None
    broken = bytearray(built([(0, 1.0)]))
    broken[0x48:0x4C] = b"\x12\x34\x56\x78"             # the header record's marker
    broken[0x48 + 0x20:0x48 + 0x24] = b"\0\0\0\0"       # and its BufferSize: header invalid
    assert unclean(bytes(broken)) is None
    for path in sorted(corpus.rglob("*.etl")):          # every real Windows file: stopped
        with EtlFile(path) as etl:
            assert etl.unclean_stop() is None, path


KILLED = textwrap.dedent("""
    import os, sys, time, uuid
    import wpptrace.provider as P
    from wpptrace.provider.sessions import TraceSession
    s = TraceSession(sys.argv[2], sys.argv[1], BufferSize=4,
                     LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING)
    for i in range(400):
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, i.to_bytes(4, "little"))
    s.flush()
    P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, b"lost")
    os.kill(os.getpid(), 9)
""")


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wpptrace.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def unclean_name():
    """The name of a session whose writer is killed: stopped at the end (its host runs on)."""
    name = "unclean-" + uuid.uuid4().hex
    yield name
    try:
        P.ControlTrace(0, name, None, P.EVENT_TRACE_CONTROL_STOP)
    except P.Win32Error:
        pass


def test_a_killed_writers_file_is_reported_by_dump_and_fmt(tmp_path, unclean_name):
    path = tmp_path / "killed.etl"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(path), unclean_name], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    with EtlFile(path) as etl:
        missing = etl.unclean_stop()
    assert missing is not None and missing >= 0
    notice = f"{path}: the session did not stop cleanly: the last {missing} ms may be missing"

    dump = cli("dump", "--summary-only", path)
    assert dump.returncode == 0                         # a notice, not damage
    assert dump.stderr.splitlines() == [f"wpptrace dump: {notice}"]
    summary = json.loads(cli("dump", "--summary-only", "--json", path).stdout)["summary"]
    assert (summary["stopped_cleanly"], summary["missing_ms"]) == (False, missing)
    assert summary["records"] == 401                    # the header and the flushed messages

    verbose = cli("fmt", "-v", path, "-p", tmp_path, "-o", tmp_path / "out.txt")
    assert verbose.returncode == 0 and verbose.stderr.splitlines()[-1] == notice
    quiet = cli("fmt", path, "-p", tmp_path, "-o", tmp_path / "out.txt")
    assert "did not stop cleanly" not in quiet.stderr


def test_a_stopped_sessions_file_has_no_notice(corpus_file):
    capture = corpus_file("wppstr-sample.etl")
    proc = cli("dump", "--summary-only", capture)
    assert proc.returncode == 0 and proc.stderr == ""
    summary = json.loads(cli("dump", "--summary-only", "--json", capture).stdout)["summary"]
    assert "stopped_cleanly" not in summary
