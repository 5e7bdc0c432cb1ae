"""Messages whose format string and argument list are the same share one program plan: each
prints its own prefix, GUID, name and markers; and a message's formatter and markers are
made only when something asks for more than its printed rows."""
from __future__ import annotations

import struct
import uuid

import etlgen
import fmthelp
import pytest

from wpptrace import tmf
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.prefix import DEFAULT_PREFIX, marker_values
from wpptrace.decoder.wpp import WppDecoder
from wpptrace.tmf import render

GUIDS = [uuid.UUID(f"5e1f0000-0000-4000-8000-{k:012x}") for k in range(3)]
FORMAT = '%0 [%!FUNC!] <%!LEVEL!> n=%10!d! s=%11!s!'


def _tmf_dir(tmp_path):
    """Three GUIDs (components A, B, C), each with messages 10-13 of one format and argument
    list: names, FUNC and LEVEL values differ, message 13 has no trailer at all."""
    tmp_path.mkdir()
    for k, guid in enumerate(GUIDS):
        entries = []
        for number in range(10, 14):
            trailer = "" if number == 13 else f" //   LEVEL=L{number} FUNC=F{k}_{number}"
            entries.append(f'#typev m{k}_c{number} {number} "{FORMAT}"{trailer}\n'
                           "{\nn, ItemLong -- 10\ns, ItemString -- 11\n}\n")
        (tmp_path / f"{guid}.tmf").write_text(f"{guid} {'ABC'[k]} // SRC=s{k}.c\n" + "".join(entries),
                                              encoding="ascii")
    return tmp_path


@pytest.fixture
def trace(tmp_path):
    tmf_dir = _tmf_dir(tmp_path / "tmf")
    rows = []
    for i in range(48):
        guid, number = GUIDS[i % 3], 10 + i // 3 % 4
        args = struct.pack("<i", i - 20) + b"dev%d\0" % i
        rows.append((guid, number, args, 0x10 + i, 0x20, i % 2, etlgen.T0 + 1000 * i))
    path = tmp_path / "t.etl"
    etlgen.write_messages(path, rows)
    return path, tmf_dir


@pytest.mark.parametrize("prefix", [DEFAULT_PREFIX, "%!FUNC!|%2!s!|%1!s!|%!LEVEL!: "])
def test_messages_sharing_a_plan_print_their_own_texts(trace, prefix):
    path, tmf_dir = trace
    with EtlFile(path) as etl:
        got = fmthelp.row_lines(WppDecoder(tmf.load(str(tmf_dir)), prefix=prefix), etl)
    with EtlFile(path) as etl:
        want = fmthelp.reference_lines(WppDecoder(tmf.load(str(tmf_dir)), prefix=prefix), etl)
    assert got == want and len(got) == 49
    assert "C" in got[18] and "[F2_11] <L11> n=-3 s=dev17" in got[18] and "[] <> n=-11 s=dev9" in got[10]
    plans = {id(render.native_plan(m, None)) for m in tmf.load(str(tmf_dir)).messages()}
    assert len(plans) == 1


def test_a_message_formatter_is_made_when_asked_for(trace, monkeypatch):
    path, tmf_dir = trace
    made = []
    compile_message = render.compile_message
    monkeypatch.setattr(render, "compile_message", lambda *a, **k: made.append(a[0]) or compile_message(*a, **k))
    decoder = WppDecoder(tmf.load(str(tmf_dir)))
    with EtlFile(path) as etl:
        lines = fmthelp.row_lines(decoder, etl)
    assert len(lines) == 49 and made == []       # every row printed without a formatter
    entry = decoder._entry(GUIDS[1], 12)
    assert entry.message.name == "m1_c12" and made == []
    formatter = entry.formatter                  # made now, once
    assert made == [entry.message] and formatter is render.compile_message(entry.message, decoder.tmfset)
    assert entry.markers == marker_values(entry.message, defaults=formatter.markers)
    assert entry.compile_error is None and entry.formatter is formatter and len(made) == 2
    assert [row.count for row in decoder.summary_rows() if row.event_type == "m1_c12"] == [4]
