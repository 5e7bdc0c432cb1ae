"""Compiled message programs shared by the processes of a fmt -j run: the table across a
fork, its records, and decoders that take their programs from another one's records print
the bytes a decoder that compiles every message prints."""
from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
import threading
import time
import uuid

import pytest
from fmthelp import row_lines, run_fmt_capture

from wpptrace import tmf
from wpptrace.decoder import parallel, program_share
from wpptrace.decoder._hazmat import ProgramTable
from wpptrace.decoder.engine import FileSource, record_view
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.program_cache import ProgramCache
from wpptrace.decoder.program_share import (MEET_SECONDS, RECORD, ProgramShare,
                                            SharedRecord, pack_parts, shares_of, unpack)
from wpptrace.decoder.wpp import WppDecoder
from wpptrace.decoder.wpp_rows import RowView

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


def test_a_guids_messages_lie_together_in_the_table():
    """A run's processes touch the table a page at a time (a page fault each, in every
    process): one TMF file's messages take neighbouring slots, not one page each."""
    table = ProgramTable(1 << 15, 4096)
    for k in range(8):
        guid = uuid.UUID(int=0x1234_5678_9ABC_DEF0 * (k + 1)).bytes_le
        slots = sorted(table.claim(guid, number)[0] for number in range(1, 61))
        assert len(set(slots)) == 60
        assert slots[-1] - slots[0] < 120, slots          # 48-byte slots: two or three pages
    table.close()


@pytest.mark.parametrize("guids, numbers", [(50, 60), (100, 100), (20, 1000)])
def test_guids_with_many_messages_keep_to_their_places(guids, numbers):
    """Each message has a place (its number's within a block of the table): many TMF files
    with many messages, the table up to 61% full, still find most at their places, not
    pushed along past other files' messages (a lookup walks every slot it is pushed past)."""
    table = ProgramTable(1 << 15, 4096)
    keys = [(uuid.UUID(int=(k + 1) * 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835 % (1 << 128)).bytes_le, n)
            for k in range(guids) for n in range(numbers)]
    slots = [table.claim(*key) for key in keys]
    assert all(state == table.MINE for _slot, state in slots)
    assert len({slot for slot, _state in slots}) == len(keys)
    home = sum(slot % 64 == n % 64 for (slot, _state), (_g, n) in zip(slots, keys))
    assert home > 0.5 * len(keys), home
    assert all(table.claim(*key) == (slot, table.CLAIMED) for key, (slot, _s) in zip(keys, slots))
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


@pytest.mark.parametrize("record", [
    SharedRecord("Comp", "Name", True, None, 0, b"\x01blob", None),
    SharedRecord("Unknown", " 12", False, "Unknown( 12): GUID=...", -1, b"u", None),
    SharedRecord("Kompo\u00dfant", "N\u00e4me \u2713", True, None, 3, b"\x00\xffprog", b"deco\x00"),
    SharedRecord("", "", False, "", -1, b"", b""),
])
@pytest.mark.parametrize("mode", [MODE, ProgramShare.mode((True, "jsonl", True))])
def test_a_record_laid_out_in_the_table_is_the_one_pack_parts_makes(record, mode):
    """``publish_parts`` lays a record out in the table from its fields: the bytes
    ``pack_parts`` makes (what the program cache keeps and ``precord_install`` reads)."""
    table = ProgramTable(16, 4096)
    slot, state = table.claim(GUID, 1)
    assert state == table.MINE
    assert table.publish_parts(slot, mode, *record)
    assert table.state(slot) == table.READY
    assert table.record(slot) == pack_parts(mode, *record)
    assert unpack(table.record(slot), mode) == record
    table.close()


@pytest.mark.parametrize("record", [
    SharedRecord("Comp", "Name", True, None, 0, b"\x01blob", None),
    SharedRecord("Kompo\u00dfant", "N\u00e4me \u2713", False, "Unknown( 12): GUID=...", -1, b"\x00\xff",
                 b"deco\x00"),
])
def test_a_record_published_with_the_next_key_claimed_in_one_call(record):
    """``publish_claim`` lays the record out as ``publish_parts`` does and claims the next
    key in the same call: that key's (slot, state) as ``claim`` gives it; no next key: (-1,
    FULL)."""
    table = ProgramTable(64, 4096)
    slot = table.claim(GUID, 1)[0]
    mode = int.from_bytes(MODE, "little")
    following, state = table.publish_claim(slot, mode, *record, GUID, 2)
    assert table.record(slot) == pack_parts(MODE, *record)
    assert state == table.MINE and following not in (-1, slot)
    assert table.claim(GUID, 2) == (following, table.CLAIMED)
    assert table.publish_claim(following, mode, *record, GUID, 1) == (slot, table.READY)
    assert table.record(following) == pack_parts(MODE, *record)
    last = table.claim(GUID, 3)[0]
    assert table.publish_claim(last, mode, *record, None, 0) == (-1, table.FULL)
    assert table.state(last) == table.READY
    table.close()


def test_a_record_published_with_no_room_still_claims_the_next_key():
    record = SharedRecord("Comp", "Name", True, None, 0, b"\x01blob", None)
    table = ProgramTable(8, 8)
    slot = table.claim(GUID, 0)[0]
    following, state = table.publish_claim(slot, int.from_bytes(MODE, "little"), *record, GUID, 1)
    assert table.state(slot) == table.REFUSED and table.record(slot) is None
    assert state == table.MINE and table.claim(GUID, 1) == (following, table.CLAIMED)
    table.close()


def test_a_program_registered_and_published_with_the_next_key_claimed_in_one_call():
    """``add_publish_claim`` registers the blob with the renderer, lays out the record
    ``pack_parts`` makes (no Unknown line, no decoration) and claims the next key; a blob the
    renderer refuses is refused (no process waits for its record), the next key left alone."""
    from wpptrace.tmf.native import NativeRenderer, encode

    renderer = NativeRenderer()
    blob = encode([], [("lit", "x")], None, prefix=False)
    table = ProgramTable(64, 4096)
    slot = table.claim(GUID, 1)[0]
    program, following, state = table.add_publish_claim(renderer, slot, int.from_bytes(MODE, "little"),
                                                        "Comp", "Name", True, -1, blob, GUID, 2)
    assert program >= 0 and renderer.add(blob) == program + 1
    assert table.record(slot) == pack_parts(MODE, "Comp", "Name", True, None, -1, blob, None)
    assert state == table.MINE and table.claim(GUID, 2) == (following, table.CLAIMED)
    third = table.claim(GUID, 3)[0]
    assert table.add_publish_claim(renderer, third, int.from_bytes(MODE, "little"), "Comp", "Name",
                                   False, -1, b"\xff" * 40, GUID, 4) == (-1, -1, table.FULL)
    assert table.state(third) == table.REFUSED
    assert table.claim(GUID, 4)[1] == table.MINE
    table.close()


_AFTER_CLOSE = """
from wpptrace.decoder._hazmat import ProgramTable
from wpptrace.tmf.native import NativeRenderer

guid = bytes(16)
table = ProgramTable(16, 4096)
table.close()
table.close()                                       # a second close does nothing
calls = {
    "claim": lambda: table.claim(guid, 1), "state": lambda: table.state(0),
    "publish": lambda: table.publish(0, b"x"),
    "publish_parts": lambda: table.publish_parts(0, b"mode", "C", "N", False, None, -1, b"", None),
    "publish_claim": lambda: table.publish_claim(0, 0, "C", "N", False, None, -1, b"", None, guid, 2),
    "add_publish_claim": lambda: table.add_publish_claim(NativeRenderer(), 0, 0, "C", "N", False, -1,
                                                         b"", guid, 2),
    "refuse": lambda: table.refuse(0), "record": lambda: table.record(0),
    "ready": lambda: table.ready([(guid, 1)]), "post": lambda: table.post(0, [(guid, 1)]),
    "posted": lambda: table.posted(0), "has_posted": lambda: table.has_posted(0),
    "shares": lambda: table.shares(1, 1), "meet": lambda: table.meet(table.AGREED),
    "install": lambda: table.install(NativeRenderer(), [0], b"mode", -1),
}
for name, call in calls.items():
    try:
        call()
    except ValueError as exc:
        print(name, exc)
    else:
        print(name, "returned")
"""


def test_a_closed_table_refuses_every_call():
    """A call after ``close`` said cffi's "initializer for ctype 'struct pshare_table *' must
    be a cdata pointer": each says the table is closed (ValueError), in a process of its own
    so that a call reaching C without a table fails the test, not the run."""
    done = subprocess.run([sys.executable, "-c", _AFTER_CLOSE], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    said = [line.split(" ", 1) for line in done.stdout.splitlines()]
    assert [name for name, _ in said] == ["claim", "state", "publish", "publish_parts", "publish_claim",
                                          "add_publish_claim", "refuse", "record", "ready", "post",
                                          "posted", "has_posted", "shares", "meet", "install"]
    assert {text for _, text in said} == {"the shared program table is closed"}


def _file_keys(path) -> list[tuple[bytes, int]]:
    """The message keys (GUID bytes_le, number) of ``path``'s records, in the order the rows
    path first meets them."""
    view = RowView()
    with EtlFile(str(path)) as etl:
        for _rows, _keys in FileSource(etl).ordered(view):
            pass
    return [view.tables.key_info(k) for k in range(view.tables.key_count())]


def test_a_decoder_claims_each_next_message_as_it_publishes_one(driver, monkeypatch):
    """Messages compiled one after another are claimed in the calls that publish them: one
    claim call of its own for the first only; the records are those a lone decoder caches."""
    path, tmf_dir = driver
    keys = _file_keys(path)
    assert len(keys) > 2
    claims = []
    real = ProgramTable.claim

    def claim(self, guid_le, number):
        claims.append((guid_le, number))
        return real(self, guid_le, number)

    monkeypatch.setattr(ProgramTable, "claim", claim)
    share = ProgramShare()
    share.met = True
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder._row_printer((False, "text", False))
    decoder.share_programs(share)
    entries = decoder._shared_entries(keys)
    assert share.compiled == len(keys) and entries.count(None) == 0
    assert claims == keys[:1]
    alone = WppDecoder(tmf.load(tmf_dir), utc=True)
    alone._row_printer((False, "text", False))
    for key in keys:
        entry, record = alone._compiled_entry(key, MODE)
        slot, state = real(share.table, *key)
        assert state == share.table.READY and share.table.record(slot) == record
    share.close()




@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_a_csv_or_jsonl_decoder_publishes_through_publish_claim(driver, monkeypatch, form):
    """Where a message's program is registered apart (csv, jsonl), each record is published
    with the next message claimed in one ``publish_claim`` call (``add_publish_claim`` is the
    text path's): one claim call of its own for the first only, and each record in the table
    is the bytes ``pack_parts`` makes of the entry a lone decoder compiles."""
    path, tmf_dir = driver
    keys = _file_keys(path)
    assert len(keys) > 2
    calls = {"claim": [], "publish_claim": 0, "add_publish_claim": 0}
    real_claim, real_publish, real_add = (ProgramTable.claim, ProgramTable.publish_claim,
                                          ProgramTable.add_publish_claim)

    def claim(self, guid_le, number):
        calls["claim"].append((guid_le, number))
        return real_claim(self, guid_le, number)

    def publish_claim(self, *args):
        calls["publish_claim"] += 1
        return real_publish(self, *args)

    def add_publish_claim(self, *args):
        calls["add_publish_claim"] += 1
        return real_add(self, *args)

    monkeypatch.setattr(ProgramTable, "claim", claim)
    monkeypatch.setattr(ProgramTable, "publish_claim", publish_claim)
    monkeypatch.setattr(ProgramTable, "add_publish_claim", add_publish_claim)
    printer_mode = (False, form, False)
    mode = ProgramShare.mode(printer_mode)
    share = ProgramShare()
    share.met = True
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder._row_printer(printer_mode)
    decoder.share_programs(share)
    entries = decoder._shared_entries(keys)
    assert share.compiled == len(keys) and entries.count(None) == 0
    assert calls == {"claim": keys[:1], "publish_claim": len(keys), "add_publish_claim": 0}
    alone = WppDecoder(tmf.load(tmf_dir), utc=True)
    alone._row_printer(printer_mode)
    for key in keys:
        entry, _record = alone._compiled_entry(key, mode)
        blob, decoration = alone._program_code(entry)
        slot, state = real_claim(share.table, *key)
        assert state == share.table.READY
        assert share.table.record(slot) == pack_parts(mode, entry.component, entry.name, entry.has_prefix,
                                                      entry.unknown, alone._prefix_id() if entry.has_prefix
                                                      else -1, blob, decoration)
    share.close()

@pytest.mark.parametrize("failing", ["entry", "program", "cache"])
def test_a_decoder_failing_between_claim_and_publish_leaves_no_key_claimed(driver, monkeypatch, tmp_path,
                                                                          failing):
    """An error while a decoder compiles the messages it claimed (the third one's entry, its
    program the renderer refuses, the second one's cache write with the third claimed ahead)
    reaches the caller with each key this process held claimed and did not publish refused:
    another process reads REFUSED at once and compiles the message itself, not waiting."""
    path, tmf_dir = driver
    keys = _file_keys(path)
    assert len(keys) > 3
    share = ProgramShare()
    share.met = True
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder._row_printer((False, "text", False))
    decoder.share_programs(share)
    if failing == "entry":
        real_entry = decoder._raw_entry
        decoder._raw_entry = lambda guid, number: (real_entry(guid, number) if (guid, number) != keys[2]
                                                   else 1 / 0)
    elif failing == "program":
        real_blob = decoder._message_blob
        decoder._message_blob = lambda entry, noprefix: (
            b"\xff" * 40 if (entry.guid_le, entry.number) == keys[2] else real_blob(entry, noprefix))
    else:
        cache = ProgramCache(str(tmp_path), bytes(32))
        real_add = cache.add

        def add(guid, number, record):
            if (guid, number) == keys[1]:
                raise OSError("no room")
            real_add(guid, number, record)

        cache.add = add
        decoder.use_cache(cache)
    with pytest.raises(ZeroDivisionError if failing == "entry" else
                       ValueError if failing == "program" else OSError):
        decoder._shared_entries(keys)
    table = share.table
    states = [table.claim(*key)[1] for key in keys[:4]]
    assert states == [table.READY, table.READY, table.REFUSED, table.MINE]
    assert share.settle(table.claim(*keys[2])[0], 60) == table.REFUSED
    share.close()

def test_a_record_laid_out_with_no_room_is_refused():
    record = SharedRecord("Comp", "Name", True, None, 0, b"\x01blob", None)
    size = len(pack_parts(MODE, *record))
    table = ProgramTable(8, size + 5)
    first, second = table.claim(GUID, 0)[0], table.claim(GUID, 1)[0]
    assert table.publish_parts(first, MODE, *record)           # fits
    assert not table.publish_parts(second, MODE, *record)      # no room: refused
    assert table.claim(GUID, 1)[1] == table.REFUSED
    assert table.record(second) is None
    assert table.record(first) == pack_parts(MODE, *record)    # the first one left whole
    table.close()


def test_a_decoder_publishes_the_records_it_would_cache(driver, tmp_path):
    """The records a decoder publishes are those it adds to its program cache when it
    compiles alone; with no room left in the table its messages are refused for the others
    (each compiles them), and its cache still gets their records."""
    path, tmf_dir = driver
    plain, expected = _lines(path, tmf_dir)
    share = ProgramShare()
    cache = ProgramCache(str(tmp_path), bytes(32))
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.share_programs(share)
    decoder.use_cache(cache)
    with EtlFile(str(path)) as etl:
        assert row_lines(decoder, etl, "text") == expected
    keys = [(m.guid.bytes_le, m.number) for m in tmf.load(tmf_dir).messages()]
    published = 0
    for key in keys:
        slot, state = share.table.claim(*key)
        if state != share.table.READY:
            continue
        _entry, packed = plain._compiled_entry(key, MODE)
        assert share.table.record(slot) == packed == cache._added[key]
        published += 1
    assert published > 1000
    share.close()

    full = ProgramShare(arena=64)                     # not one record fits
    cache = ProgramCache(str(tmp_path), bytes(32))
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.share_programs(full)
    decoder.use_cache(cache)
    with EtlFile(str(path)) as etl:
        assert row_lines(decoder, etl, "text") == expected
    assert full.compiled > 1000 and len(cache._added) > 1000
    for key, record in cache._added.items():
        slot, state = full.table.claim(*key)
        assert state == full.table.REFUSED
        assert record == plain._compiled_entry(key, MODE)[1]
    full.close()


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


def test_posts_are_read_by_every_process_and_the_meeting_is_decided_once():
    table = ProgramTable(16, 4096)
    assert table.posted(0) is None and table.posted(1) is None
    keys = [(GUID, 5), (bytes(16), 70000)]
    pid = os.fork()
    if pid == 0:
        os._exit(0 if table.post(1, keys) else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert table.posted(1) == keys                         # posted across the fork
    assert table.post(0, []) and table.posted(0) == []
    assert not table.post(1, [(GUID, 6)]) and table.posted(1) == keys   # once each
    assert not table.post(table.POSTERS, [])               # no place for that process
    assert table.meet(table.AGREED) == table.AGREED
    assert table.meet(table.ABANDONED) == table.AGREED    # decided by the first
    table.close()


# A process of the run whose post in the map is damaged (its keys' place and number written
# by that process, read by all): each line is (post_offset, post_count) as left in the map.
_DAMAGED_POST = r"""
import struct, sys
from wpptrace.decoder._hazmat import offsetof
from wpptrace.decoder.program_share import ProgramShare
at_offset, at_count = offsetof("pshare_head", "post_offset"), offsetof("pshare_head", "post_count")
for line in sys.stdin:
    offset, count = map(int, line.split())
    share = ProgramShare(16, 4096, processes=2)
    table = share.table
    struct.pack_into("<Q", table._map, at_offset + 8, offset)
    struct.pack_into("<I", table._map, at_count + 4, count)
    print(table.posted(1), table.has_posted(1), flush=True)
    met = share.share_out([(bytes(range(16)), 7)])       # process 0's post, then the meeting
    print(met is not None, table.shares(2, 1) is not None, flush=True)
    share.close()
"""


def test_a_post_that_does_not_lie_in_the_arena_is_not_posted():
    """Every process of a run reads the others' posts from the map: a post whose keys do not
    lie inside the arena (a damaged map) is taken as not posted (so the meeting is not held),
    never read wherever its place points, nor a room made for its count."""
    arena = 4096
    posts = [(1 << 40, 3 + 1),               # far past the arena
             (arena - 19, 1 + 1),            # one byte past its end
             (0, 0xFFFFFFFF),                # more keys than the arena holds
             ((1 << 64) - 8, 1 + 1),         # its end wraps around
             (arena - 20, 1 + 1),            # the last key of the arena: read
             (arena, 0 + 1)]                 # no keys, at the arena's end: read
    done = subprocess.run([sys.executable, "-c", _DAMAGED_POST], capture_output=True, text=True,
                          input="".join(f"{offset} {count}\n" for offset, count in posts), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["None False", "False False"] * 4 + [
        f"[({bytes(16)!r}, 0)] True", "True True", "[] True", "True True"]


# A process of the run whose map's head is damaged before it ends (every byte between the
# magic and the meeting, where the sizes the table was made with were kept): what the table
# does then, one line an action.
_DAMAGED_HEAD = r"""
import struct
from wpptrace.decoder._hazmat import offsetof
from wpptrace.decoder.program_share import ProgramShare
share = ProgramShare(16, 4096, processes=2)
table = share.table
key = (bytes(range(16)), 7)
slot, state = table.claim(*key)
print(state == table.MINE, table.publish(slot, b"record"), table.record(slot), flush=True)
table._map[8:offsetof("pshare_head", "meeting")] = b"\xff" * (offsetof("pshare_head", "meeting") - 8)
struct.pack_into("<Q", table._map, offsetof("pshare_head", "post_offset") + 8, 1 << 36)
struct.pack_into("<I", table._map, offsetof("pshare_head", "post_count") + 4, 3 + 1)
print(table.posted(1), table.has_posted(1), flush=True)
print(table.claim(*key) == (slot, table.READY), table.record(slot), table.ready([key]) == [slot], flush=True)
other, state = table.claim(bytes(16), 70000)           # a slot of the table as it was made
print(0 <= other < 16, state == table.MINE, table.publish(other, b"no room"), table.record(other),
      table.state(other) == table.REFUSED, flush=True)
print(table.state(1 << 40) == table.FULL, table.record(1 << 40), flush=True)
share.close()
"""


def test_the_bounds_of_the_table_are_not_read_from_the_shared_map():
    """Every process of a run writes the map: the sizes a slot, record or post is checked
    against are the ones this process made the table with, not numbers kept in the map."""
    done = subprocess.run([sys.executable, "-c", _DAMAGED_HEAD], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    assert done.stdout.splitlines() == ["True True b'record'", "None False", "True b'record' True",
                                        "True True False None True", "True None"]


def _guid(k: int) -> bytes:
    return k.to_bytes(16, "little")


def test_shares_are_whole_guids_given_out_alike_in_every_process():
    first = [(_guid(g), n) for g in range(12) for n in range(g + 1)]
    second = [(_guid(g), n) for g in range(6, 20) for n in range(0, 2 * g, 2)]
    posts = [first, second, []]
    shares = shares_of(posts)
    assert shares[2] == []                                 # it posted none: it takes none
    assert sorted(shares[0] + shares[1]) == sorted(set(first + second))   # each key once
    assert not {g for g, _n in shares[0]} & {g for g, _n in shares[1]}    # whole GUIDs
    # the same in any process: the posts' order and repeats do not move it
    assert shares_of([second[::-1], first + first[:5], []]) == shares
    file = program_share._FILE_WEIGHT
    weights = [len({key for key in share}) + file * len({g for g, _n in share}) for share in shares[:2]]
    assert abs(weights[0] - weights[1]) <= 20 + file        # the heaviest GUID at most
    assert shares_of([first, []]) == [sorted(set(first)), []]


def _random_posts(rng, processes):
    guids = [bytes(rng.randrange(256) for _ in range(16)) for _ in range(rng.randrange(1, 30))]
    guids.append(guids[0][:15] + bytes([guids[0][15] ^ 1]))            # a GUID next to another
    posts = []
    for _k in range(processes):
        if rng.random() < 0.15:
            posts.append([])                                           # it posted none
            continue
        keys = [(rng.choice(guids), rng.choice((rng.randrange(64), rng.randrange(1 << 32))))
                for _ in range(rng.randrange(0, 200))]
        posts.append(keys + rng.sample(keys, len(keys) // 4))           # repeats
    return posts


def test_shares_made_in_the_table_are_shares_of_the_posts():
    """``ProgramTable.shares`` (in C, from the posts in the table) gives out what
    ``shares_of`` gives out, key for key, whatever the posts (repeats, keys posted by
    several processes, processes that posted none, equal weights); None until all posted."""
    rng = random.Random(11)
    for _round in range(200):
        processes = rng.randrange(1, 5)
        posts = _random_posts(rng, processes)
        table = ProgramTable(16, 1 << 16)
        for k, keys in enumerate(posts[:-1]):
            assert table.post(k, keys)
        assert table.shares(processes, program_share._FILE_WEIGHT) is None   # one to come
        assert table.post(processes - 1, posts[-1])
        shares = table.shares(processes, program_share._FILE_WEIGHT)
        assert shares == shares_of(posts)
        guids = {id(guid): guid for share in shares for guid, _n in share}
        assert len(guids) == len({guid for share in shares for guid, _n in share})   # one object each
        table.close()


def test_a_meeting_nobody_else_comes_to_is_abandoned():
    """One process waits MEET_SECONDS at most for the others' posts, then each compiles
    what it needs itself (first come, first compiled), the one that comes late too."""
    share = ProgramShare(64, 1 << 16, processes=2)
    keys = [(GUID, 1), (GUID, 2)]
    began = time.monotonic()
    assert share.share_out(keys) is None
    assert time.monotonic() - began >= MEET_SECONDS
    assert share.share_out(keys) is None                   # once a run
    late = copy.copy(share)                                # the other process's view
    late.join(1)
    assert late.share_out([(GUID, 3)]) is None             # all posted, but it was abandoned
    assert share.table.meet(share.table.AGREED) == share.table.ABANDONED
    one = ProgramShare(64, 1 << 16)                        # one process: no meeting at all
    assert one.share_out(keys) is None and one.table.posted(0) is None
    share.close()
    one.close()


def test_a_process_waiting_for_the_others_does_its_first_work_meanwhile():
    """The first process at the meeting does what it would do after it (the first compile's
    imports) while the others come, once; one that finds everybody there waits for nobody."""
    share = ProgramShare(64, 1 << 16, processes=2)
    other = copy.copy(share)
    other.join(1)
    done = []

    def meanwhile():                         # the other comes while this one works
        done.append("first")
        assert other.table.post(1, [(GUID, 3)])

    shares = share.share_out([(GUID, 1), (GUID, 2)], meanwhile)
    assert done == ["first"]
    assert shares == shares_of([[(GUID, 1), (GUID, 2)], [(GUID, 3)]])
    share.close()
    late = ProgramShare(64, 1 << 16, processes=2)      # the other came first this time
    assert late.table.post(1, [(GUID, 3)])
    assert late.share_out([(GUID, 1)], lambda: done.append("second")) is not None
    assert done == ["first"]                 # all there: nothing to do while waiting
    late.close()


def test_what_fails_while_waiting_does_not_end_the_meeting():
    """The work done while waiting is work done ahead (its own path meets a failure again and
    reports it there): the meeting goes on."""
    share = ProgramShare(64, 1 << 16, processes=2)
    other = copy.copy(share)
    other.join(1)

    def meanwhile():
        assert other.table.post(1, [(GUID, 3)])
        raise ImportError("a module of the renderer cannot be imported")

    assert share.share_out([(GUID, 1)], meanwhile) == shares_of([[(GUID, 1)], [(GUID, 3)]])
    assert share.table.meet(share.table.ABANDONED) == share.table.AGREED
    share.close()


def test_a_process_slow_to_come_waits_as_much_longer_for_the_others():
    """A process that took 0.4 s to reach the meeting (a slow machine, a profiler) waits a
    quarter of that for the others, not MEET_SECONDS."""
    share = ProgramShare(64, 1 << 16, processes=2)
    share.made -= 0.4
    began = time.monotonic()
    assert share.share_out([(GUID, 1)]) is None
    assert time.monotonic() - began >= 0.1 > MEET_SECONDS
    share.close()


def _guid_int(guid_le: bytes) -> int:
    return uuid.UUID(bytes_le=guid_le).int


def _loaded_guids(tmfset, listed: set) -> set:
    """The GUIDs whose TMF files the set has read."""
    return listed - set(tmfset._pending)


def test_processes_meeting_read_each_tmf_file_once_for_their_first_messages(driver, monkeypatch):
    """Two processes whose first windows need overlapping sets of messages from the same
    TMF files: after their meeting each has read the files of its share of the GUIDs only,
    compiled each message of both sets once, and printed the other's from its records."""
    monkeypatch.setattr(program_share, "MEET_SECONDS", 60)   # both come, however busy the machine
    monkeypatch.setattr(program_share, "WAIT_SECONDS", 60)
    path, tmf_dir = driver
    plain = WppDecoder(tmf.load(tmf_dir), utc=True)
    with EtlFile(str(path)) as etl:
        expected = row_lines(plain, etl)
    keys = _file_keys(path)
    assert len(keys) > 1000
    firsts = (keys[: 2 * len(keys) // 3], keys[len(keys) // 3:])   # a third in both
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder._row_printer(plain._printer_mode)
    listed = set(decoder.tmfset._pending)
    # (steal off: which process ends first, and takes from the other, varies)
    share = ProgramShare(processes=2, steal=False)
    decoder.share_programs(share)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            share.join(1)
            entries = decoder._shared_entries(firsts[1])
            report = (f"{share.compiled} {sum(1 for e in entries if e is not None)} "
                      + " ".join(str(g) for g in sorted(_loaded_guids(decoder.tmfset, listed))))
            os.write(write_fd, report.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    entries = decoder._shared_entries(firsts[0])
    with os.fdopen(read_fd, "rb") as pipe:
        report = pipe.read().decode().split()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    other_compiled, other_entries = int(report[0]), int(report[1])
    other_read = {int(g) for g in report[2:]}
    read = _loaded_guids(decoder.tmfset, listed)
    assert share.table.meet(share.table.ABANDONED) == share.table.AGREED
    assert read and other_read and not read & other_read            # no file read twice
    assert read | other_read == {_guid_int(g) for g, _n in keys} & listed
    assert share.compiled + other_compiled == len(keys)             # each message once
    assert None not in entries and other_entries == len(firsts[1])
    mine = [key for key in firsts[0] if _guid_int(key[0]) in read]
    assert 0 < len(mine) < len(firsts[0])
    assert share.installed == len(firsts[0]) - len(mine)            # the rest from records
    with EtlFile(str(path)) as etl:                                 # and it prints the same
        assert row_lines(decoder, etl) == expected
    share.close()


def test_a_process_done_with_its_share_takes_the_rest_of_the_others_from_their_end(driver, monkeypatch):
    """Another process posted its first messages and began its share (it claimed the first
    ones), then stopped: this one compiles its own share, then the other's from the end back
    to the first one claimed, and waits only for the ones it needs that are left."""
    monkeypatch.setattr(program_share, "WAIT_SECONDS", 0.2)
    path, tmf_dir = driver
    keys = _file_keys(path)
    firsts = (keys[:len(keys) // 2], keys[len(keys) // 2:])
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder._row_printer((False, "text", False))
    share = ProgramShare(processes=2)
    decoder.share_programs(share)
    table = share.table
    assert table.post(1, firsts[1])
    theirs = shares_of([firsts[0], firsts[1]])[1]
    begun = theirs[:10]
    for key in begun:                      # what the other claimed before it stopped
        assert table.claim(*key)[1] == table.MINE
    began = time.monotonic()
    entries = decoder._shared_entries(firsts[0])
    assert share.compiled == len(keys) - len(begun)
    waited = [key for key in firsts[0] if key in begun]
    assert entries.count(None) == 0 and len(waited) > 0
    assert time.monotonic() - began >= 0.2      # waited for those, then compiled them itself
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
        reference = _plain._entry(entry.guid, entry.number)
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
