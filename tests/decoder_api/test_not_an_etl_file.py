"""A file that is no .etl at all (a script, random bytes) is refused by OpenTrace with
ERROR_BAD_FORMAT and one line naming the file, the offset and what was expected there; the
command-line readers say that line and exit 1. A real trace whose first buffer header alone
is junk still opens (its damage counted)."""
from __future__ import annotations

import random
from collections import Counter

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


def _records_and_issues(path):
    """The events ProcessTrace delivers from ``path`` (Flags, ProviderId, Id of each, counted)
    and the damage it lists."""
    events = Counter()

    def count(record):
        header = record.EventHeader
        events[header.Flags, str(header.ProviderId), header.EventDescriptor.Id] += 1

    handle = api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(path), EventRecordCallback=count,
                                               ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD))
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
        return events, api.GetTraceIssues(handle)
    finally:
        api.CloseTrace(handle)


#: the classic system events' provider (EventTraceGuid): the log-file header's events
EVENT_TRACE_GUID = "68fdd900-4a3e-11d1-84f4-0000f80464e3"


@pytest.mark.parametrize("span", [(0x30, 0x100), (0, 0x100)])
@pytest.mark.parametrize("name", ["wppemitter-sample.etl", "SIH.20230422.034724.362.1.etl",
                                  "smallEtlFile.etl", "SelfDescribingSingleEvent.etl"])
def test_a_trace_whose_first_buffer_start_is_damaged_is_read_on(corpus_file, tmp_path, name, span):
    """Buffer 0's first bytes damaged (from 0x30: its BufferType, the header record's marker
    and PointerSize; from 0: its BufferSize too): the later buffers are whole, so the file is
    a trace; it is read, its damage counted (fixed-size buffers and compressed ones packed
    back to back)."""
    source = corpus_file(name)
    whole, _ = _records_and_issues(source)
    data = bytearray(source.read_bytes())
    data[span[0]:span[1]] = random.Random(1).randbytes(span[1] - span[0])
    path = tmp_path / f"damaged-{name}"
    path.write_bytes(bytes(data))
    read, issues = _records_and_issues(path)
    assert issues
    assert read and not read - whole            # only events of the file, some of them
    if name == "wppemitter-sample.etl":         # all 45 WPP messages: only buffer 0's system
        assert {provider for _, provider, _ in whole - read} == {EVENT_TRACE_GUID}   # events lost
        assert sum(read.values()) == 45


def _foreign_files(tmp_path):
    from pathlib import Path

    pdb_dir = Path(__file__).resolve().parents[1] / "data" / "pdb"
    zeros = tmp_path / "zeros.etl"
    zeros.write_bytes(bytes(65536))
    return [pdb_dir / "wpp_x64.dll", pdb_dir / "wpp_x64.pdb", zeros]


def test_opentrace_refuses_an_image_a_pdb_and_zeros(tmp_path):
    for path in _foreign_files(tmp_path):
        with pytest.raises(Win32Error) as caught:
            _open(path)
        err = caught.value
        assert err.winerror == ERROR_BAD_FORMAT and err.offset == 0, path
        assert "\n" not in str(err) and "not an .etl file" in str(err)


@pytest.mark.parametrize("command", ["dump", "fmt"])
def test_the_readers_refuse_an_image_and_a_pdb_in_one_line(tmp_path, capsys, corpus, command):
    tmf_dir = next((corpus / "tmf").rglob("*.tmf")).parent
    tmf = ["--no-cache", "-p", str(tmf_dir)] if command == "fmt" else []
    for path in _foreign_files(tmp_path):
        rc = main([command, *tmf, str(path)])
        out, err = capsys.readouterr()
        assert (rc, out) == (1, ""), err
        lines = err.splitlines()
        assert len(lines) == 1 and "ERROR_BAD_FORMAT" in lines[0] and str(path) in lines[0]
        assert "not an .etl file" in lines[0]
