"""Message records installed in bulk (decoder/csrc/program_records.c): many records' programs
registered in one C call, from fmt's program cache or from another ``fmt -j`` process's
records. A decoder that installs them prints, counts and summarises exactly as one that
compiles every message; a record that cannot serve leaves its message to be compiled."""
from __future__ import annotations

import uuid

import pytest
from fmthelp import row_lines

from wpptrace import tmf
from wpptrace.decoder import _hazmat
from wpptrace.decoder._hazmat import NO_RECORD, install_records
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.program_cache import ProgramCache
from wpptrace.decoder.program_share import ProgramShare, SharedRecord, pack
from wpptrace.decoder.wpp import WppDecoder, mark_counts
from wpptrace.decoder.wpp_rows import RowView
from wpptrace.tmf.native import NativeRenderer, encode


TEXT = ProgramShare.mode((False, "text", False))
CSV = ProgramShare.mode((False, "csv", False))


def _blob(text: str = "x") -> bytes:
    return encode([], [("lit", text)], None, prefix=False)


def _record(mode: bytes = TEXT, component: str = "Comp", name: str = "Name", unknown=None,
            prefix_program: int = -1, blob: bytes | None = None, decoration=None) -> bytes:
    return pack(mode, SharedRecord(component, name, True, unknown, prefix_program,
                                   _blob() if blob is None else blob, decoration))


def test_records_install_in_one_call_and_those_that_cannot_serve_are_marked():
    renderer = NativeRenderer()
    good = _record(unknown="Unknown( 1): GUID=...")
    damaged = bytearray(_record())
    damaged[12] += 1                                     # a length that does not add up
    records = [good, NO_RECORD, _record(mode=CSV), _record(prefix_program=5),
               _record(name="a\0b"), _record(blob=b"\xff" * 40), bytes(damaged),
               _record(component="Other", name="Two"),
               _record(decoration=b"not for the text form")]
    programs, flags, texts = install_records(renderer, records, TEXT, 3)
    texts = texts.split("\0")[:-1]
    installed = [k for k, program in enumerate(programs) if program >= 0]
    assert installed == [0, 7]
    assert programs[7] > programs[0] >= 0
    assert flags[0] == _hazmat.ETL.PRECORD_HAS_PREFIX | _hazmat.ETL.PRECORD_UNKNOWN
    assert flags[7] == _hazmat.ETL.PRECORD_HAS_PREFIX
    assert texts == ["Comp", "Name", "Unknown( 1): GUID=...", "Other", "Two", ""]
    # a record with the renderer's own prefix program is taken
    assert list(install_records(renderer, [_record(prefix_program=3)], TEXT, 3)[0]) != [-1]


def test_a_record_cut_short_is_refused_alone():
    renderer = NativeRenderer()
    good = _record()
    programs, _flags, joined = install_records(renderer, [good, good[:-1], good + b"x", good],
                                              TEXT, -1)
    assert programs[0] >= 0 and list(programs[1:3]) == [-1, -1] and programs[3] > programs[0]
    assert joined.split("\0")[:-1] == ["Comp", "Name", "", "Comp", "Name", ""]


def test_records_of_a_shared_table_install_where_they_lie():
    renderer = NativeRenderer()
    share = ProgramShare(16, 4096)
    try:
        slots = []
        for number, record in enumerate([_record(name="A"), None, _record(mode=CSV)]):
            slot, _state = share.claim(bytes(16), number)
            if record is not None:
                share.table.publish(slot, record)
            slots.append(slot)
        programs, _flags, joined = share.table.install(renderer, slots + [-1], TEXT, -1)
        assert programs[0] >= 0 and list(programs[1:]) == [-1, -1, -1]
        assert joined == "Comp\0A\0\0"
    finally:
        share.close()


def test_key_infos_are_the_key_ids_keys(driver):
    path, tmf_dir = driver
    view = RowView()
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    with EtlFile(str(path)) as etl:
        from wpptrace.decoder.engine import FileSource

        for _batch in decoder.format(FileSource(etl).ordered(view), view, "text"):
            pass
    tables = view.tables
    n = tables.key_count()
    assert n > 100
    assert tables.key_infos(0, n) == [tables.key_info(key) for key in range(n)]
    assert tables.key_infos(5, 9) == [tables.key_info(key) for key in range(5, 9)]
    assert tables.key_infos(n, n) == []
    with pytest.raises(IndexError):
        tables.key_infos(n - 1, n + 1)


def _run(path, tmf_dir, cache, output="text"):
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.use_cache(cache)
    with EtlFile(str(path)) as etl:
        lines = row_lines(decoder, etl, output)
    return decoder, lines


@pytest.mark.parametrize("output", ["text", "csv", "jsonl"])
def test_installed_entries_are_the_compiled_ones(driver, tmp_path, output):
    """Entries installed from the cache's records (in bulk) hold what the entries of
    messages compiled one by one hold; the lines, count marks and summary are the same, and
    the messages are in the same order (an installed one keyed by its GUID's bytes)."""
    path, tmf_dir = driver
    mode = ProgramShare.mode((False, "text" if output == "text" else output, False))
    made = ProgramCache(str(tmp_path), bytes(32))
    first, expected = _run(path, tmf_dir, made, output)
    cache = ProgramCache(str(tmp_path), bytes(32))
    cache._records = dict(made._added)
    assert len(cache.records) > 1000 and mode is not None
    second, lines = _run(path, tmf_dir, cache, output)
    assert lines == expected
    assert not cache._added                           # nothing compiled: all installed
    assert second.summary_rows() == first.summary_rows()
    assert mark_counts(second.count_marks()) == mark_counts(first.count_marks())
    assert second.plain_message_keys() == first.plain_message_keys()
    assert second.counters == first.counters
    # printing made an entry only for the messages whose rows Python printed
    made = [e for e in second._entries.values() if type(e) is not int]
    assert len(made) < len(second._entries) // 2
    second._make_installed()
    installed = [e for e in second._entries.values() if type(e).__name__ == "_SharedEntry"]
    assert len(installed) == len(cache.records)
    assert all(e in installed for e in made if e.guid != first._header_entry().guid)
    assert mark_counts(second.count_marks()) == mark_counts(first.count_marks())
    references = dict(zip(first.plain_message_keys(), first._entries.values()))
    for key, entry in zip(second.plain_message_keys(), second._entries.values()):
        reference = references[key]
        for name in ("guid", "number", "component", "name", "has_prefix", "unknown", "count"):
            assert getattr(entry, name) == getattr(reference, name), (entry.guid, entry.number, name)
        assert (entry.program is None) == (reference.program is None)
    # a message resolved from the TMFs when something asks for more than printing needs
    entry = installed[0]
    assert entry.format == first._entry(entry.guid, entry.number).format


def test_an_entry_made_before_its_record_gets_its_program_and_keeps_its_count(driver, tmp_path):
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    first, expected = _run(path, tmf_dir, made)
    key = next(k for k in first.message_keys() if k != ("header", 0))
    cache = ProgramCache(str(tmp_path), bytes(32))
    cache._records = dict(made._added)
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.use_cache(cache)
    decoder.add_message_counts({key: 5})              # another process's rows of it, first
    before = decoder._entry(*key)
    with EtlFile(str(path)) as etl:
        assert row_lines(decoder, etl) == expected
    assert decoder._entry(*key) is before and before.program is not None
    counts = {(row.event_type, row.guid): row.count for row in decoder.summary_rows()}
    want = {(row.event_type, row.guid): row.count for row in first.summary_rows()}
    name = (before.name.strip(), str(key[0]))
    assert counts.pop(name) == want.pop(name) + 5
    assert counts == want


def _installed(driver, tmp_path, output="text"):
    """(a decoder that compiled every message, one that installed them all from its records,
    the lines both printed)."""
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    first, expected = _run(path, tmf_dir, made, output)
    cache = ProgramCache(str(tmp_path), bytes(32))
    cache._records = dict(made._added)
    second, lines = _run(path, tmf_dir, cache, output)
    assert lines == expected and not cache._added
    return first, second, lines


def test_an_installed_message_gets_its_entry_in_its_place_when_read(driver, tmp_path):
    """An installed message has no entry until something reads one; then that one entry,
    found by its UUID or its GUID bytes, in the message's place: the keys, marks and summary
    do not move."""
    import uuid

    _first, second, _lines = _installed(driver, tmp_path)
    keys, marks, summary = second.message_keys(), second.count_marks(), second.summary_table()
    places = [k for k, value in enumerate(second._entries.values()) if type(value) is int]
    assert len(places) > len(keys) // 2
    for k in (places[0], places[len(places) // 2], places[-1]):
        guid_le, number = keys[k]
        entry = second._entry(uuid.UUID(bytes_le=guid_le), number)
        assert type(entry).__name__ == "_SharedEntry" and entry.program is not None
        assert entry.guid == uuid.UUID(bytes_le=guid_le) and entry.number == number
        assert list(second._entries.values())[k] is entry
        assert second._raw_entry(guid_le, number) is entry
        assert second._entry(entry.guid, number) is entry
    assert second.message_keys() == keys
    assert mark_counts(second.count_marks()) == mark_counts(marks)
    assert sorted(second.summary_table()) == sorted(summary)
    second._make_installed()
    assert all(type(value) is not int for value in second._entries.values())
    assert second.message_keys() == keys and sorted(second.summary_table()) == sorted(summary)


def test_counts_reach_installed_messages_without_making_their_entries(driver, tmp_path):
    """Another process's counts added by plain keys to messages installed here: counted in
    their columns, no entry made; by UUID keys (their entries made) and going back to a mark:
    the same counts as the messages' entries would hold."""
    first, second, _lines = _installed(driver, tmp_path)
    marks = second.count_marks()
    once = mark_counts(marks)
    plain = second.plain_message_keys()
    waiting = sum(type(value) is int for value in second._entries.values())
    assert second.add_plain_message_counts(plain, once) == []
    assert sum(type(value) is int for value in second._entries.values()) == waiting
    assert mark_counts(second.count_marks()) == [2 * n for n in once]
    twice = {(g, e, t): 2 * n for g, e, t, n in first.summary_table()}
    assert {(g, e, t): n for g, e, t, n in second.summary_table()} == twice
    first_keys = [(uuid.UUID(bytes_le=g), n) if isinstance(g, bytes) else (g, n) for g, n in plain]
    second.add_message_counts(dict(zip(first_keys, once)))       # by UUID: the same messages
    assert mark_counts(second.count_marks()) == [3 * n for n in once]
    second.restore_counts(marks)
    assert mark_counts(second.count_marks()) == once
    assert sorted(second.summary_table()) == sorted(first.summary_table())


def test_counts_of_messages_met_only_elsewhere_install_their_records(driver, tmp_path, monkeypatch):
    """Counts another process gives of messages this one never met (fmt -j's merge): the
    ones the program cache has a record of are installed from it with their counts, no
    entry made (no TMF entry read); the summary is the one a process that met them all
    makes."""
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    first, _lines = _run(path, tmf_dir, made)
    cache = ProgramCache(str(tmp_path), bytes(32))
    cache._records = dict(made._added)
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.use_cache(cache)
    decoder._row_printer()
    plain, counts = first.plain_message_keys(), mark_counts(first.count_marks())
    k = next(k for k, key in enumerate(plain) if key != ("header", 0))
    made = decoder._entry(uuid.UUID(bytes_le=plain[k][0]), plain[k][1])   # one made by its UUID
    assert decoder._raw_entry(*plain[k]) is made                           # is the rows path's

    def resolve(_self, entry):
        raise AssertionError(f"entry of {entry.guid} #{entry.number} made")

    monkeypatch.setattr(WppDecoder, "_resolve", resolve)
    left = decoder.add_plain_message_counts(plain, counts)
    assert left == [(("header", 0), 1)]                 # the log header has no record
    decoder.add_message_counts(dict(left))
    decoder._sync_native_counts()                       # (the entries' counts brought up to date)
    assert made.count == counts[k]
    assert sum(type(value) is int for value in decoder._entries.values()) == len(cache._records) - 1 > 1000
    assert sorted(decoder.summary_table()) == sorted(first.summary_table())
    monkeypatch.undo()
    counted = dict(zip(decoder.plain_message_keys(), mark_counts(decoder.count_marks())))
    assert counted == dict(zip(first.plain_message_keys(), mark_counts(first.count_marks())))


def test_a_new_printer_makes_the_installed_messages_entries(driver, tmp_path):
    """Another output form (a new renderer: the installed programs are the old one's): the
    installed messages' entries are made, their counts kept, their programs made anew."""
    path, tmf_dir = driver
    first, second, _lines = _installed(driver, tmp_path)
    with EtlFile(str(path)) as etl:
        expected = row_lines(first, etl, "csv")
        assert row_lines(second, etl, "csv") == expected
    assert all(type(value) is not int for value in second._entries.values())
    assert sorted(second.summary_table()) == sorted(first.summary_table())
    assert mark_counts(second.count_marks()) == mark_counts(first.count_marks())


def test_records_that_cannot_serve_are_compiled(driver, tmp_path):
    """Half the records damaged: those messages are compiled (and their records made again),
    the others installed; the same lines."""
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    _first, expected = _run(path, tmf_dir, made)
    records = dict(made._added)
    damaged = {key: (record[:-1] if k % 2 else record) for k, (key, record) in enumerate(records.items())}
    cache = ProgramCache(str(tmp_path), bytes(32))
    cache._records = damaged
    _second, lines = _run(path, tmf_dir, cache)
    assert lines == expected
    assert set(cache._added) == {key for k, key in enumerate(records) if k % 2}
    assert all(cache._added[key] == records[key] for key in cache._added)


def test_ready_slots_are_found_without_claiming_anything():
    share = ProgramShare(16, 4096)
    table = share.table
    try:
        ready, _state = share.claim(bytes(16), 1)
        table.publish(ready, _record())
        claimed, _state = share.claim(bytes(16), 2)           # claimed, not published yet
        refused, _state = share.claim(bytes(16), 3)
        table.refuse(refused)
        keys = [(bytes(16), 1), (bytes(16), 2), (bytes(16), 3), (bytes(16), 4), (b"\1" * 16, 1)]
        assert table.ready(keys) == [ready, -1, -1, -1, -1]
        assert table.ready([]) == []
        assert share.claim(bytes(16), 4)[1] == table.MINE     # looked at, not claimed
        assert share.claim(bytes(16), 2) == (claimed, table.CLAIMED)
    finally:
        share.close()


def test_a_decoder_installs_what_another_published_in_one_call(driver):
    """A second decoder of a ProgramShare finds every message READY: all installed, none
    claimed or compiled; the same lines, summary and count marks."""
    path, tmf_dir = driver
    share = ProgramShare()
    try:
        first = WppDecoder(tmf.load(tmf_dir), utc=True)
        first.share_programs(share)
        with EtlFile(str(path)) as etl:
            expected = row_lines(first, etl)
        compiled = share.compiled
        second = WppDecoder(tmf.load(tmf_dir), utc=True)
        second.share_programs(share)
        with EtlFile(str(path)) as etl:
            assert row_lines(second, etl) == expected
        assert share.compiled == compiled and share.installed == compiled
        assert second.summary_rows() == first.summary_rows()
        assert mark_counts(second.count_marks()) == mark_counts(first.count_marks())
    finally:
        share.close()


def test_the_record_head_python_packs_is_the_one_c_reads():
    """program_share packs a record's head; program_records.c reads it at fixed offsets: one
    size (PRECORD_HEAD) and one set of flags for both."""
    from wpptrace.decoder.program_share import RECORD

    assert RECORD.size == _hazmat.ETL.PRECORD_HEAD
    record = SharedRecord("Comp", "Name", True, "unknown line", -1, _blob(), b"decoration")
    data = pack(TEXT, record)
    assert data[:4] == TEXT and int.from_bytes(data[4:8], "little") == (
        _hazmat.ETL.PRECORD_HAS_PREFIX | _hazmat.ETL.PRECORD_UNKNOWN | _hazmat.ETL.PRECORD_DECORATED)
