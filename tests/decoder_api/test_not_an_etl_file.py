"""A file that is no .etl at all (a script, random bytes) is refused by OpenTrace with
ERROR_BAD_FORMAT and one line naming the file, the offset and what was expected there; the
command-line readers say that line and exit 1. A real trace whose first buffer header alone
is junk still opens (its damage counted)."""
from __future__ import annotations

import random

import pytest

from wpptrace.cli import main
from wpptrace.decoder import api
from wpptrace.decoder._hazmat import BUFFER_HEADER
from wpptrace.decoder.consumer_types import EVENT_TRACE_LOGFILE, PROCESS_TRACE_MODE_EVENT_RECORD
from wpptrace.winerror import ERROR_BAD_FORMAT, ERROR_SUCCESS, Win32Error

SCRIPT = ("#!/usr/bin/env python3\n"
          "from wpptrace.decoder.api import OpenTrace\n"
          "print('this is a script, not a trace')\n") * 4


def _no_traces(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(7).randbytes(100_000))
    return [script, noise]


def _open(path):
    return api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(path), EventRecordCallback=repr,
                                             ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD))


def test_opentrace_refuses_a_file_that_is_no_trace(tmp_path):
    for path in _no_traces(tmp_path):
        with pytest.raises(Win32Error) as caught:
            _open(path)
        err = caught.value
        assert err.winerror == ERROR_BAD_FORMAT and err.offset == 0
        text = str(err)
        assert "\n" not in text and str(path) in text
        assert "not an .etl file" in text and "WMI_BUFFER_HEADER" in text


@pytest.mark.parametrize("command", ["dump", "fmt"])
def test_the_readers_say_one_line_and_exit_1(tmp_path, capsys, corpus, command):
    tmf_dir = next((corpus / "tmf").rglob("*.tmf")).parent
    tmf = ["--no-cache", "-p", str(tmf_dir)] if command == "fmt" else []
    for path in _no_traces(tmp_path):
        rc = main([command, *tmf, str(path)])
        out, err = capsys.readouterr()
        assert rc == 1, (out, err)
        assert out == ""                       # no counts read from a header that is none
        lines = err.splitlines()
        assert len(lines) == 1 and "ERROR_BAD_FORMAT" in lines[0] and str(path) in lines[0]
        assert "not an .etl file" in lines[0]


def test_a_trace_with_a_junk_first_buffer_header_still_opens(corpus_file, tmp_path):
    data = bytearray(corpus_file("wppemitter-sample.etl").read_bytes())
    BUFFER_HEADER.pack_into(data, 0, BufferType=0x7A7A)
    path = tmp_path / "junk-buffer-header.etl"
    path.write_bytes(bytes(data))
    handle = _open(path)
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
        assert api.GetTraceIssues(handle)
    finally:
        api.CloseTrace(handle)
