"""Regression: which of two duplicates (same GUID and number, another format) wins depends on the
files, never on which file was read first.

A ``<guid>.tmf`` is read when its GUID is looked up, other ``*.tmf`` files on the first miss,
every file on a full listing: the first read used to win, so a lookup, a lookup after a miss and
``tmf show`` gave different messages (and ``fmt -j 1`` and ``-j 2`` different lines). Now a
directory's ``<guid>.tmf`` files rank before its other files (then by name) and an earlier
source before a later one; a key with several formats is reported once, at the one used, when
everything is parsed.
"""
from __future__ import annotations

import uuid

import wpptrace.tmf as tmf

GUID = uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d")
OTHER_GUID = uuid.UUID("0b7c4a32-1111-4222-8333-944455556666")
ENTRY = ('{guid} findneedle // SRC=WppStrEmitter.cpp MJ= MN=\n'
         '#typev WppStrEmitter_cpp27 10 "%0{text} name=%10!s!" //   LEVEL=STR_GENERAL FUNC=main\n'
         '{{\nnames[i], ItemString -- 10\n}}\n')


def _directory(path, named_text="strtrace", unnamed_text="OTHER"):
    path.mkdir()
    (path / f"{GUID}.tmf").write_text(ENTRY.format(guid=GUID, text=named_text))
    (path / "aaa.tmf").write_text(ENTRY.format(guid=GUID, text=unnamed_text))
    return path


def _format(tmfset):
    return tmfset.lookup(GUID, 10).format


def test_the_guid_file_wins_in_its_directory_whatever_is_read_first(tmp_path):
    folder = _directory(tmp_path / "d")
    looked_up = tmf.load(folder, use_environment=False)
    assert _format(looked_up) == "%0strtrace name=%10!s!"

    after_a_miss = tmf.load(folder, use_environment=False)
    assert after_a_miss.lookup(OTHER_GUID, 1) is None      # reads aaa.tmf first
    assert _format(after_a_miss) == "%0strtrace name=%10!s!"

    listed = tmf.load(folder, use_environment=False)
    assert [m.format for m in listed.messages()] == ["%0strtrace name=%10!s!"]
    assert [str(issue).splitlines()[0] for issue in listed.issues] == [
        f"{folder / f'{GUID}.tmf'}:2:1: message {GUID} number 10 has 2 different formats in its sources; "
        "this one is used (expected one format for each GUID and message number)"]
    for tmfset in (looked_up, after_a_miss):
        tmfset.load_all()
        assert [str(issue) for issue in tmfset.issues] == [str(issue) for issue in listed.issues]
        assert _format(tmfset) == "%0strtrace name=%10!s!"


def test_an_earlier_source_wins_whatever_is_read_first(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    (first / "zzz.tmf").write_text(ENTRY.format(guid=GUID, text="EARLIER"))   # named for no GUID
    _directory(second)
    for warm in (False, True):
        tmfset = tmf.load(first, second, use_environment=False)
        if warm:
            tmfset.lookup(OTHER_GUID, 1)
        assert _format(tmfset) == "%0EARLIER name=%10!s!"
        assert [m.format for m in tmfset.messages()] == ["%0EARLIER name=%10!s!"]
