"""Compiled message programs shared by the processes of a fmt -j run: the table across a
fork, its records, and decoders that take their programs from another one's records print
the bytes a decoder that compiles every message prints."""
from __future__ import annotations

import os
import threading

import pytest
from fmthelp import row_lines, run_fmt_capture

from wpptrace import tmf
from wpptrace.decoder import parallel
from wpptrace.decoder._hazmat import ProgramTable
from wpptrace.decoder.engine import FileSource, record_view
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.program_share import RECORD, ProgramShare, SharedRecord, unpack
from wpptrace.decoder.wpp import WppDecoder

import golden_traces  # the rendering tests' deterministic traces (on the path by conftest)

GUID = bytes(range(16))
MODE = ProgramShare.mode((False, "text", False))


def _lines(path, tmf_dir, share=None, output="text"):
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.share_programs(share)
    with EtlFile(str(path)) as etl:
        lines = row_lines(decoder, etl, output)
    return decoder, lines


def _counted_rows(decoder):
    """The summary's rows as a loop over the messages makes them (the renderer's rows added
    to the messages' counts first), sorted."""
    decoder._make_installed()
    decoder._sync_native_counts()
    return sorted(("" if e.guid is None else str(e.guid), e.component, e.name.strip(), e.count)
                  for e in decoder._entries.values() if e.count)


def test_a_slot_is_claimed_once_and_read_by_all():
    table = ProgramTable(16, 4096)
    slot, state = table.claim(GUID, 5)
    assert state == table.MINE
    assert table.claim(GUID, 5) == (slot, table.CLAIMED)
    assert table.record(slot) is None                      # not published yet
    other, state = table.claim(GUID, 6)
    assert state == table.MINE and other != slot
    assert table.publish(slot, b"program of 5")
    assert table.claim(GUID, 5) == (slot, table.READY)
    assert table.record(slot) == b"program of 5"
    table.refuse(other)
    assert table.claim(GUID, 6) == (other, table.REFUSED) and table.record(other) is None
    table.close()


def test_a_forked_process_sees_the_table():
    table = ProgramTable(64, 1 << 16)
    mine, _state = table.claim(GUID, 1)
    pid = os.fork()
    if pid == 0:                                   # the child: claims, publishes, reads ours
        status = 1
        try:
            slot, state = table.claim(GUID, 2)
            if state == table.MINE and table.publish(slot, b"from the child") and \
                    table.claim(GUID, 1) == (mine, table.CLAIMED):
                status = 0
        finally:
            os._exit(status)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    slot, state = table.claim(GUID, 2)
    assert state == table.READY and table.record(slot) == b"from the child"
    table.close()


def test_a_full_table_and_a_full_arena_leave_messages_to_their_process():
    table = ProgramTable(8, 10)
    slots = {table.claim(GUID, n)[0] for n in range(8)}
    assert len(slots) == 8
    assert table.claim(GUID, 8) == (-1, table.FULL)         # every slot taken
    assert all(table.claim(GUID, n)[1] == table.CLAIMED for n in range(8))
    first, second = table.claim(GUID, 0)[0], table.claim(GUID, 1)[0]
    assert table.publish(first, b"0123456789")               # the arena's 10 bytes
    assert not table.publish(second, b"x")                   # no room: refused
    assert table.claim(GUID, 1)[1] == table.REFUSED
    with pytest.raises(ValueError):
        ProgramTable(12, 10)                                 # not a power of 2
    table.close()


def test_records_round_trip_and_damaged_ones_are_not_used():
    share = ProgramShare(16, 4096)
    record = SharedRecord("Comp", "Name", True, None, 0, b"\x01blob", b"deco")
    slot, state = share.claim(GUID, 1)
    assert state == share.table.MINE
    share.publish(slot, MODE, record)
    assert share.wait(slot, MODE) == record
    assert share.wait(slot, ProgramShare.mode((False, "csv", False))) is None   # another form
    assert (share.compiled, share.installed) == (1, 0)          # the decoder counts installs
    unknown = SharedRecord("Unknown", " 12", False, "Unknown( 12): GUID=...", -1, b"u", None)
    slot, _state = share.claim(GUID, 2)
    share.publish(slot, MODE, unknown)
    assert share.wait(slot, MODE) == unknown
    data = share.table.record(slot)
    assert unpack(data, MODE) == unknown
    assert unpack(data[:-1], MODE) is None                   # cut short
    assert unpack(data[:RECORD.size - 1], MODE) is None
    assert unpack(data + b"x", MODE) is None
    bad = bytearray(data)
    bad[RECORD.size] = 0xFF                                  # not UTF-8
    assert unpack(bytes(bad), MODE) is None
    assert ProgramShare.mode((False, "columns", False)) is None
    share.close()


def test_a_record_that_does_not_come_in_time_is_given_up():
    share = ProgramShare(16, 4096)
    slot, _state = share.claim(GUID, 1)                      # claimed, never published
    assert share.wait(slot, MODE, seconds=0.01) is None
    later, _state = share.claim(GUID, 2)
    record = SharedRecord("C", "N", False, None, -1, b"b", None)
    timer = threading.Timer(0.05, share.publish, (later, MODE, record))
    timer.start()
    assert share.wait(later, MODE, seconds=10) == record   # published while it waited
    timer.join()
    share.close()


@pytest.mark.parametrize("output", ["text", "csv", "jsonl"])
def test_a_decoder_printing_from_records_prints_the_same_bytes(driver, output):
    """One decoder compiles and publishes every message; a second installs them all from the
    records; both print what a decoder without a share prints, and the second resolves a
    message from the TMFs only when asked for more than printing needs."""
    path, tmf_dir = driver
    _plain, expected = _lines(path, tmf_dir, output=output)
    share = ProgramShare()
    first, lines = _lines(path, tmf_dir, share, output)
    assert lines == expected
    compiled = share.compiled
    assert compiled > 1000 and share.installed == 0
    second, lines = _lines(path, tmf_dir, share, output)
    assert lines == expected
    assert share.compiled == compiled and share.installed == compiled
    assert second.summary_rows() == first.summary_rows() == _plain.summary_rows()
    for decoder in (_plain, first, second):
        assert sorted(decoder.summary_table()) == _counted_rows(decoder)
    entries = [e for e in second._entries.values() if type(e).__name__ == "_SharedEntry"]
    assert len(entries) == compiled
    # printed from the record alone (rows the renderer left to Python resolved their entry)
    pending = [entry for entry in entries if entry._resolver is not None]
    assert len(pending) > compiled // 2
    for entry in pending[:50]:
        reference = _plain._entries[(entry.guid, entry.number)]
        assert entry.message == reference.message               # resolved on first read
        assert entry.format == reference.format and entry.markers == reference.markers
        assert (entry.formatter is None) == (reference.formatter is None)
        assert entry._resolver is None
    share.close()


def test_records_for_another_prefix_program_are_compiled_here(driver):
    """A record whose blob calls a prefix program this process does not have is not used."""
    path, tmf_dir = driver
    _plain, expected = _lines(path, tmf_dir)
    share = ProgramShare()
    messages = tmf.load(tmf_dir).messages()
    for message in messages:
        slot, state = share.claim(message.guid.bytes_le, message.number)
        assert state == share.table.MINE
        share.publish(slot, MODE, SharedRecord("X", "Y", True, None, 7, b"not a program", None))
    decoder, lines = _lines(path, tmf_dir, share)
    assert lines == expected and share.installed == 0
    share.close()


def test_damaged_records_are_compiled_here(driver):
    path, tmf_dir = driver
    _plain, expected = _lines(path, tmf_dir)
    share = ProgramShare()
    for message in tmf.load(tmf_dir).messages():
        slot, _state = share.claim(message.guid.bytes_le, message.number)
        share.table.publish(slot, b"\x00" * RECORD.size)    # lengths that do not add up
    _decoder, lines = _lines(path, tmf_dir, share)
    assert lines == expected and share.installed == 0
    share.close()


def test_jobs_compile_each_message_once(tmp_path, corpus, monkeypatch):
    """fmt -j 2 on a trace whose messages come back all along: each message is compiled by
    one of the two processes, the other installs it; the output is the bytes -j 1 prints."""
    etls, tmfs = golden_traces.build("repeat", tmp_path, corpus)
    path, tmf_dir = etls[0], tmfs[0]
    counts = []

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        counts.append(result)
        return result

    real = parallel.decode_parallel
    monkeypatch.setattr(parallel, "decode_parallel", counting)
    outputs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[tmf_dir], output=str(out), utc=True, jobs=jobs,
                                             cache=False)   # every message compiled by one of the two
        assert code == 0, err
        outputs[jobs] = out.read_bytes()
    assert outputs[2] == outputs[1]
    [run] = counts
    per_process, redone_from = run.shares, run.redone_from
    assert redone_from is None
    with EtlFile(str(path)) as etl:
        used = {(r.message_guid, r.event_id) for items, _keys in FileSource(etl).ordered(record_view)
                for r in items if r.message_guid is not None}
    assert len(per_process) == 2 and len(used) > 100
    assert sum(compiled for compiled, _installed in per_process) == len(used)
    assert sum(installed for _compiled, installed in per_process) > 0


def test_jobs_without_shared_memory_compile_in_each_process(tmp_path, corpus, monkeypatch):
    """No shared mapping to be had: each process compiles what it prints; the same bytes."""
    etls, tmfs = golden_traces.build("repeat", tmp_path, corpus)
    counts = []
    real = parallel.decode_parallel
    monkeypatch.setattr(parallel, "decode_parallel", lambda *a, **k: counts.append(real(*a, **k)))
    outputs = {}
    for jobs in (1, 2):
        if jobs == 2:
            def refused(*_args, **_kwargs):
                raise OSError(12, "Cannot allocate memory")
            monkeypatch.setattr("wpptrace.decoder.program_share.ProgramTable", refused)
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(etls[0], tmf_dirs=tmfs, output=str(out), utc=True, jobs=jobs,
                                             cache=False)
        assert code == 0, err
        outputs[jobs] = out.read_bytes()
    assert outputs[2] == outputs[1]
    assert [(run.shares, run.redone_from) for run in counts] == [([(0, 0), (0, 0)], None)]  # nothing shared, nothing failed
