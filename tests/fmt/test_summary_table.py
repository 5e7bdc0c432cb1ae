"""The FmtSum table's rows, made in two steps (``prepare_summary``, which a ``fmt -j`` process
calls while it waits for its workers, then ``summary_table``): the rows a plain loop over the
messages makes, whatever messages were met or counted between the two, for messages compiled
here and for messages installed from records (kept in columns, no entry made)."""
from __future__ import annotations

import uuid

import pytest
from fmthelp import row_lines

from wpptrace import tmf
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.program_cache import ProgramCache
from wpptrace.decoder import wpp
from wpptrace.decoder.wpp import WppDecoder


def _loop_rows(decoder) -> list[tuple]:
    """The summary's rows as a loop over the messages' entries makes them (every entry made,
    the renderer's rows added to their counts first), sorted."""
    decoder._make_installed()
    decoder._sync_native_counts()
    return sorted(("" if e.guid is None else str(e.guid), e.component, e.name.strip(), e.count)
                  for e in decoder._entries.values() if e.count)


def _decoded(path, tmf_dir, cache=None) -> WppDecoder:
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    if cache is not None:
        decoder.use_cache(cache)
    with EtlFile(str(path)) as etl:
        row_lines(decoder, etl, "text")
    return decoder


def _waiting(decoder) -> int:
    """Installed messages without an entry."""
    return sum(type(value) is int for value in decoder._entries.values())


def _decoders(driver, tmp_path, installed: bool):
    """A maker of decoders that decoded the driver's file: from the TMFs alone, or
    (``installed``) with a program cache another run filled, most of its messages then
    installed and waiting for their entry."""
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    if installed:
        _decoded(path, tmf_dir, made)

    def decoded() -> WppDecoder:
        if not installed:
            return _decoded(path, tmf_dir)
        cache = ProgramCache(str(tmp_path), bytes(32))
        cache._records = dict(made._added)
        decoder = _decoded(path, tmf_dir, cache)
        assert _waiting(decoder) > len(decoder._entries) // 2
        return decoder

    return decoded


def _more(decoder) -> None:
    """Messages and counts that come after: another process's counts (by plain key and by
    UUID key, to a message met here and to one met only there), a row key of a GUID no TMF
    knows, a message met as a record, an installed message's entry made."""
    keys = [key for key in decoder._entries if key != ("header", 0)]
    plain = decoder.plain_message_keys()
    decoder.add_plain_message_counts(plain[-3:], [5, 0, 6])
    stranger = uuid.UUID(int=0x1234 << 64 | 5)
    decoder.add_message_counts({keys[0]: 4, (stranger, 7): 3})
    decoder._raw_entry(stranger.bytes_le, 8).count = 2
    decoder._entry(stranger, 9).count = 1
    guid_le, number = plain[len(plain) // 2]
    decoder._raw_entry(guid_le, number).count += 7


def _check(decoder, unprepared) -> None:
    decoder.prepare_summary()
    waiting = _waiting(decoder)
    assert len(decoder._summary_made[0]) == len(decoder._entries) > 1000
    _more(decoder)
    rows = decoder.summary_table()
    assert len(decoder._summary_made[0]) == len(decoder._entries)
    assert _waiting(decoder) == max(waiting - 1, 0)   # no entry made but the one read
    assert ("00000000-0000-1234-0000-000000000005", "Unknown", "7", 3) in rows
    assert ("00000000-0000-1234-0000-000000000005", "Unknown", "8", 2) in rows
    _more(unprepared)                                 # all in one step: the same rows
    assert unprepared.summary_table() == rows
    assert sorted(rows) == _loop_rows(decoder)


def test_rows_made_before_and_after_more_messages_are_the_loops_rows(driver):
    path, tmf_dir = driver
    _check(_decoded(path, tmf_dir), _decoded(path, tmf_dir))


def test_installed_messages_rows_come_from_their_columns(driver, tmp_path):
    """Messages installed from fmt's program cache: their rows without their entries made,
    the same rows as a loop over their entries."""
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    _decoded(path, tmf_dir, made)

    def installed() -> WppDecoder:
        cache = ProgramCache(str(tmp_path), bytes(32))
        cache._records = dict(made._added)
        decoder = _decoded(path, tmf_dir, cache)
        assert not cache._added and _waiting(decoder) > len(decoder._entries) // 2
        return decoder

    _check(installed(), installed())


def test_messages_installed_in_one_batch_without_rows(driver, tmp_path):
    """Every message installed at once and no row printed (their columns in one run): their
    counts are the ones given, their texts the compiled messages'."""
    path, tmf_dir = driver
    made = ProgramCache(str(tmp_path), bytes(32))
    compiled = _decoded(path, tmf_dir, made)
    cache = ProgramCache(str(tmp_path), bytes(32))
    cache._records = dict(made._added)
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    decoder.use_cache(cache)
    decoder._row_printer()
    keys = list(cache._records)
    assert all(type(value) is int for value in decoder._cached_entries(keys))
    decoder.prepare_summary()
    decoder.add_plain_message_counts(keys, list(range(len(keys))))
    assert _waiting(decoder) == len(keys) == len(decoder._entries) > 1000
    texts = {(e.guid.bytes_le, e.number): (str(e.guid), e.component, e.name.strip())
             for e in compiled._entries.values() if e.guid != compiled._header_entry().guid}
    want = [(*texts[key], n) for n, key in enumerate(keys) if n]
    assert decoder.summary_table() == want
    # a message with an entry may keep in its column a program of an older renderer (one
    # made for another output form since): not read
    decoder._installed_entry(1)
    decoder._installed_programs[1] = 1 << 30
    assert decoder.summary_table() == want and _waiting(decoder) == len(keys) - 1


@pytest.mark.parametrize("installed", [False, True])
def test_counts_kept_from_prepare_take_the_counts_added_after(driver, tmp_path, installed):
    """``prepare_summary`` keeps the messages' counts (a fmt -j parent, its windows decoded);
    the counts another process adds after (``add_plain_message_counts``) are added to them
    too, so the table's counts are not made again: the rows are those of a decoder given the
    same counts without it, and a loop's."""
    decoded = _decoders(driver, tmp_path, installed)

    decoder, unprepared = decoded(), decoded()
    decoder.prepare_summary()
    plain = [key for key in decoder.plain_message_keys() if key != ("header", 0)]
    assert plain == [key for key in unprepared.plain_message_keys() if key != ("header", 0)]
    counts = [n % 7 for n in range(len(plain))]
    for each in (decoder, unprepared):
        assert each.add_plain_message_counts(plain, counts) == []
        assert each.add_plain_message_counts(plain[:5], [1, 2, 3, 0, 4]) == []
    assert decoder._kept_summary_counts() is not None       # added to, not dropped
    rows = decoder.summary_table()
    assert rows == unprepared.summary_table()
    assert sorted(rows) == _loop_rows(decoder)


@pytest.mark.parametrize("ints", [[False] * 3 + [True] * 40 + [False] * 2,
                                  [True, False] * 20 + [True]])
def test_parts_come_back_in_the_messages_order(ints):
    """Values of messages with an entry and of installed ones merged back in order: by runs
    (few) or one by one (interleaved)."""
    made = [k for k, installed in enumerate(ints) if not installed]
    installed = [k for k, installed in enumerate(ints) if installed]
    into = ([], ["x"])
    wpp._in_order(ints, (made, [-k for k in made]), (installed, [-k for k in installed]), into)
    assert into == (list(range(len(ints))), ["x", *(-k for k in range(len(ints)))])


@pytest.mark.parametrize("more", [False, True])
def test_rows_printed_before_their_counts_are_the_tables_rows(driver, more):
    """``prepared_summary`` after ``prepare_summary`` (the rows printed but for their counts):
    the rows of ``summary_table``, with more counts added since; none once more messages
    were met (then the table's)."""
    from wpptrace.decoder.output import Summary, summary_text

    path, tmf_dir = driver
    decoder, unprepared = _decoded(path, tmf_dir), _decoded(path, tmf_dir)
    decoder.prepare_summary()
    keys = decoder.plain_message_keys()
    for one in (decoder, unprepared):
        one.add_plain_message_counts(keys[:3], [5, 0, 6])
        if more:
            _more(one)
    body = decoder.prepared_summary()
    if more:
        assert body is None
        return
    assert decoder.prepared_summary() is None         # (once)
    summary = Summary(files=["a.etl"])
    assert summary_text(summary, body=body) == summary_text(summary, unprepared.summary_table())
    assert len(body.splitlines()) == len(_loop_rows(decoder)) > 1000


@pytest.mark.parametrize("more", [False, True])
def test_rows_made_ahead_are_kept_unless_messages_were_met_since(driver, more):
    """``prepare_summary_rows`` (fmt -j's parent, before its last windows) makes the rows but
    their counts; ``prepare_summary`` then keeps them, or makes them again when messages were
    met since (``more``); either way the body is the table's, with the counts of the rows
    decoded between the two."""
    from wpptrace.decoder.output import Summary, summary_text

    path, tmf_dir = driver
    decoder, unprepared = _decoded(path, tmf_dir), _decoded(path, tmf_dir)
    decoder.prepare_summary_rows()
    ahead = decoder._summary_rows
    keys = decoder.plain_message_keys()
    for one in (decoder, unprepared):
        one.add_plain_message_counts(keys[:3], [5, 0, 6])
        if more:
            one._raw_entry(uuid.UUID(int=0x1234 << 64 | 5).bytes_le, 8).count = 2
    decoder.prepare_summary()
    assert (decoder._summary_rows is ahead) == (not more)
    body = decoder.prepared_summary()
    summary = Summary(files=["a.etl"])
    assert summary_text(summary, body=body) == summary_text(summary, unprepared.summary_table())


@pytest.mark.parametrize("installed", [False, True])
def test_messages_found_ahead_take_the_counts_they_would_take(driver, tmp_path, installed):
    """``find_plain_messages`` (fmt -j's parent, for a worker's keys while it waits) gives
    ``add_plain_message_counts`` the messages it would find itself: the same counts added as
    by a decoder given none, for a key not met when they were found and met since, and for an
    installed message whose entry was made since. A place found stays; a key of no message is
    looked up again once messages were met since (and, asked not to, left as it is)."""
    decoded = _decoders(driver, tmp_path, installed)

    decoder, given_none = decoded(), decoded()
    stranger = (uuid.UUID(int=0x1234 << 64 | 5).bytes_le, 8)
    keys = [key for key in decoder.plain_message_keys() if key != ("header", 0)] + [stranger]
    first_installed = next(k for k, key in enumerate(keys) if type(decoder._entries.get(key)) is int) \
        if installed else None
    ahead = decoder.find_plain_messages(keys[:-2])
    ahead = decoder.find_plain_messages(keys, ahead)
    assert ahead.at[-1] == -1 and len(ahead.at) == len(keys)
    for each in (decoder, given_none):     # met or made since
        each._raw_entry(*stranger)
        if installed:
            each._installed_entry(each._entries[keys[first_installed]])
    counts = [n % 7 + 1 for n in range(len(keys))]
    assert decoder.add_plain_message_counts(keys, counts, ahead) == []
    assert given_none.add_plain_message_counts(keys, counts) == []
    assert decoder.summary_table() == given_none.summary_table()
    assert sorted(decoder.summary_table()) == _loop_rows(decoder)
    later = keys + [(stranger[0], 9)]
    now = decoder.find_plain_messages(later)
    assert now.at[-1] == -1 and list(now.at[:-1]) == list(decoder.find_plain_messages(keys).at)
    assert -1 not in now.at[:-1]
    decoder._raw_entry(stranger[0], 9)                                     # met since
    assert decoder.find_plain_messages(later, now, again=False).at[-1] == -1   # (left for later)
    looked = []

    class Looked(dict):
        def get(self, key, default=None):
            looked.append(key)
            return super().get(key, default)

    decoder._raw_entries = Looked(decoder._raw_entries)
    assert decoder.find_plain_messages(later, now).at[-1] == len(decoder._entries) - 1
    assert looked == [later[-1]]                                            # that key's alone
    assert list(now.at[:-1]) == list(decoder.find_plain_messages(keys).at)    # the others stay


def test_counts_after_a_mark_come_from_its_parts(driver, monkeypatch):
    """The summary's counts right after a ``count_marks`` (fmt -j's parent, its last window
    decoded) come from that mark's parts, no entry read again; once a count changed since, from
    the entries: the loop's counts either way."""
    path, tmf_dir = driver
    decoder, fresh = _decoded(path, tmf_dir), _decoded(path, tmf_dir)
    want = fresh._summary_counts()
    decoder.count_marks()
    real = wpp._COUNT_PARTS

    def unread(*_args):
        raise AssertionError("an entry read")

    monkeypatch.setattr(wpp, "_COUNT_PARTS", unread)
    assert decoder._summary_counts() == want
    monkeypatch.setattr(wpp, "_COUNT_PARTS", real)
    keys = decoder.plain_message_keys()
    for each in (decoder, fresh):
        each.add_message_counts({keys[0]: 4})
    assert decoder._summary_counts() == fresh._summary_counts() != want
    assert sorted(decoder.summary_table()) == _loop_rows(decoder)



def test_places_in_the_kept_counts_found_ahead_take_the_counts(driver):
    """With the summary's counts kept (a fmt -j parent at its wait), the messages of another
    process's keys are found ahead as their places in the messages' order, kept while they
    hold and found for the keys that come after; the counts are added by those places: the
    rows of a decoder that keeps none, and a loop's (a message given twice: both its counts)."""
    path, tmf_dir = driver
    decoder, fresh = _decoded(path, tmf_dir), _decoded(path, tmf_dir)
    decoder.prepare_summary()
    order = {key: k for k, key in enumerate(decoder.plain_message_keys())}
    plain = [key for key in decoder.plain_message_keys() if key != ("header", 0)]
    ahead = decoder.find_plain_messages(plain[:100])
    assert list(ahead.at) == [order[key] for key in plain[:100]]
    keys = plain + plain[:2]
    ahead = decoder.find_plain_messages(keys, ahead)
    assert list(ahead.at) == [order[key] for key in keys]
    counts = [n % 5 for n in range(len(plain))] + [3, 4]
    for each in (decoder, fresh):
        assert each.add_plain_message_counts(keys, counts, ahead if each is decoder else None) == []
    assert decoder._kept_summary_counts() is not None       # added to, not dropped
    assert decoder._summary_counts() == fresh._summary_counts()
    assert sorted(decoder.summary_table()) == _loop_rows(decoder)


@pytest.mark.parametrize("installed", [False, True])
def test_counts_of_another_process_are_added_without_a_message_touched(driver, tmp_path, monkeypatch,
                                                                       installed):
    """Another process's counts (fmt -j's parent, its worker's at the end) are added by the
    places found ahead with no message's count set one by one (they are kept apart until
    something reads the entries' counts): the summary is that of a decoder given them before
    its table was prepared, and the entries hold them once read (a loop's rows; going back to
    a mark taken after them gives them back)."""
    decoded = _decoders(driver, tmp_path, installed)
    decoder, given_before = decoded(), decoded()
    plain = [key for key in decoder.plain_message_keys() if key != ("header", 0)]
    keys = plain + plain[:3]
    counts = [n % 4 for n in range(len(plain))] + [2, 0, 5]
    assert given_before.add_plain_message_counts(keys, counts) == []
    given_before.prepare_summary()
    decoder.prepare_summary()
    ahead = decoder.find_plain_messages(keys)
    real = wpp._Entry.__dict__["count"]

    def not_set(entry, value):
        raise AssertionError(f"the count of {entry.number} set")

    monkeypatch.setattr(wpp._Entry, "count", property(real.__get__, not_set))
    waiting = _waiting(decoder)
    assert decoder.add_plain_message_counts(keys, counts, ahead) == []
    assert _waiting(decoder) == waiting
    table = decoder.summary_table()
    monkeypatch.undo()
    assert table == given_before.summary_table()
    marks = decoder.count_marks()
    assert sorted(table) == _loop_rows(decoder)
    decoder.add_plain_message_counts(keys, counts)
    decoder.restore_counts(marks)
    assert decoder.summary_table() == table
