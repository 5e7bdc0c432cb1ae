"""wpptrace dump's summary told the EventsLost and BuffersLost of a log-file header it had
found damaged (its BufferSize out of range, the other fields read as they are) as facts:
"events lost 7, buffers lost 3". A damaged header's counts are unknown, and said so (fmt's
EventsLost counts only a sound header's too)."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import uuid

import dec_etlgen as gen
from wpptrace.decoder.etlfile import EtlFile

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
SIZE = 4096
HEADER = 0x48 + 0x20                   # TRACE_LOGFILE_HEADER64, after the buffer and record headers
BUFFER_SIZE_AT, BUFFERS_LOST_AT = HEADER, HEADER + 0x114


def _file(tmp_path, buffer_size: int):
    data = bytearray(gen.etl_file([(0, 1, [gen.message(10, G, 1000)])], buffer_size=SIZE,
                                  processors=1, events_lost=7))
    struct.pack_into("<I", data, BUFFERS_LOST_AT, 3)
    struct.pack_into("<I", data, BUFFER_SIZE_AT, buffer_size)
    path = tmp_path / "x.etl"
    path.write_bytes(bytes(data))
    return path


def _dump(path, *options):
    return subprocess.run([sys.executable, "-m", "wpptrace.cli", "dump", "--summary-only", *options,
                           str(path)], capture_output=True, text=True, timeout=60)


def test_a_sound_headers_lost_counts_are_told(tmp_path):
    path = _file(tmp_path, SIZE)
    with EtlFile(str(path)) as etl:
        assert (etl.header.valid, etl.header.events_lost, etl.header.buffers_lost) == (True, 7, 3)
    done = _dump(path)
    assert done.returncode == 0, done.stderr
    assert "; events lost 7, buffers lost 3; " in done.stdout
    assert json.loads(_dump(path, "--json").stdout)["summary"]["events_lost"] == 7


def test_a_damaged_headers_lost_counts_are_unknown(tmp_path):
    path = _file(tmp_path, 0x7FFFFFFF)
    with EtlFile(str(path)) as etl:      # the damaged header's other fields as they were read
        assert (etl.header.valid, etl.header.events_lost, etl.header.buffers_lost) == (False, 7, 3)
    done = _dump(path)
    assert done.returncode == 1
    assert "TRACE_LOGFILE_HEADER.BufferSize" in done.stderr
    assert ("; events lost and buffers lost unknown (the log-file header is damaged); "
            in done.stdout), done.stdout
    assert "lost 7" not in done.stdout and "lost 3" not in done.stdout
    assert json.loads(_dump(path, "--json").stdout)["summary"]["events_lost"] is None
