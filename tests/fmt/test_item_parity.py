"""tracefmt parity on two item types real captures use, end to end: the provider core writes the
.etl, the TMF is written in the syntax tracepdb gives the corpus driver TMFs.

* ``ItemHexDump`` (tracepdb's spelling for a ``WppBinary(...)`` argument) decodes like
  ``ItemHEXDump``: USHORT byte count, then the bytes; item words compare ignoring case.
* ``ItemFlagsEnum`` resolved through ``#enumv`` prints the names of the set bits joined by
  " | " and the value in parentheses (``FlagRead | FlagExec(0x5)``); one bit, no bit and
  unnamed bits follow the ItemSetLong rendering.
"""
from __future__ import annotations

import struct
import uuid

from fmthelp import run_fmt_capture

import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession

GUID = uuid.UUID("5b8c6f3e-2d41-3a9c-7e15-0c4d2b6a9f81")
WPP_FLAGS = (P.TRACE_MESSAGE_SEQUENCE | P.TRACE_MESSAGE_GUID | P.TRACE_MESSAGE_TIMESTAMP
             | P.TRACE_MESSAGE_SYSTEMINFO)

TMF = f"""// PDB:  Parity.pdb
// PDB:  Last Updated :2025-04-28:18:52:26:152 (UTC) [Tracepdb]
{GUID} Parity // SRC=Device.c MJ= MN=
#typev Device_c210 10 "%0 [%!FUNC!]Report %10!d! bytes=%11!s! status=%12!s!" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACE_DEVICE FUNC=Device_Report
{{
ReportId, ItemLong -- 10
WppBinary(Buffer,Length), ItemHexDump -- 11
ntStatus, ItemNTSTATUS -- 12
}}
#typev Device_c233 11 "%0 [%!FUNC!]Access %10!s! mode=%11!d!" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_DEVICE FUNC=Device_Open
{{
access, ItemFlagsEnum(_ACCESS_FLAGS) -- 10
mode, ItemLong -- 11
}}
{GUID} Parity
#enumv _ACCESS_FLAGS
{{
FlagRead,0x1
FlagWrite,0x2
FlagExec,0x4
FlagAll,0x7
}}
"""


def _hexdump(data: bytes) -> bytes:
    return struct.pack("<H", len(data)) + data


# (number, arguments, the expected text after "[Parity]")
MESSAGES = [
    (10, [struct.pack("<i", 7), _hexdump(bytes([0x01, 0xAB, 0xFF, 0x00])), struct.pack("<I", 0)],
     " [Device_Report]Report 7 bytes=01 AB FF 00 status=STATUS_SUCCESS"),
    (10, [struct.pack("<i", 8), _hexdump(b""), struct.pack("<I", 0xC0000022)],
     " [Device_Report]Report 8 bytes= status=0xc0000022(STATUS_ACCESS_DENIED)"),
    (11, [struct.pack("<I", 5), struct.pack("<i", -1)], " [Device_Open]Access FlagRead | FlagExec(0x5) mode=-1"),
    (11, [struct.pack("<I", 2), struct.pack("<i", 0)], " [Device_Open]Access FlagWrite(0x2) mode=0"),
    (11, [struct.pack("<I", 0), struct.pack("<i", 0)], " [Device_Open]Access (0x0) mode=0"),
    (11, [struct.pack("<I", 0x11), struct.pack("<i", 0)], " [Device_Open]Access FlagRead | 4(0x11) mode=0"),
    (11, [struct.pack("<I", 7), struct.pack("<i", 0)], " [Device_Open]Access FlagAll(0x7) mode=0"),
]


def test_hexdump_and_flags_enum_from_a_provider_written_trace(tmp_path):
    tmf = tmp_path / f"{GUID}.tmf"
    tmf.write_text(TMF, encoding="ascii")
    path = tmp_path / "parity.etl"
    with TraceSession(f"wpptrace-parity-{uuid.uuid4().hex[:8]}", path,
                      LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL) as s:
        for number, args, _text in MESSAGES:
            P.TraceMessage(s.handle, WPP_FLAGS, GUID, number, *args)
    for fmt in ("text", "jsonl"):
        code, out, err = run_fmt_capture(path, tmf_dirs=[str(tmp_path)], utc=True, output_format=fmt)
        assert code == 0, err
        assert "failed" not in out and "unknown item type" not in out
    code, out, err = run_fmt_capture(path, tmf_dirs=[str(tmp_path)], utc=True)
    texts = [line.split("[Parity]", 1)[1] for line in out.splitlines()[1:]]
    assert texts == [m[2] for m in MESSAGES]
