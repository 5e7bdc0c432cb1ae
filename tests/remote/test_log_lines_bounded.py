"""Sources that come and go by the thousand do not write lines each at the log's usual
levels: past a number of lines about sources in a minute, the others go to the debug level,
counted, and the count is said (as refusals past the connection limits are)."""
from __future__ import annotations

import logging
import uuid

from remote_helpers import HandRelay, delivered_by_hand

from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_DISK_FULL, Win32Error

SOURCES = 12


def test_lines_about_sources_past_the_bound_go_to_debug_and_are_counted(recorded, tmp_path,
                                                                        caplog, monkeypatch):
    head, _ = recorded
    monkeypatch.setattr(collector_module, "_SOURCE_LINES_SAID", 5, raising=False)
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        for n in range(SOURCES):
            delivered_by_hand(collector.address, head, session=f"short{n}")
        assert collector.wait_for(lambda ss: len(ss) == SOURCES and all(s.closed for s in ss))
    about = [r for r in caplog.records if "@hand" in r.getMessage()]
    said = [r for r in about if r.levelno >= logging.INFO]
    unsaid = [r for r in about if r.levelno == logging.DEBUG]
    assert len(said) == 5 and len(unsaid) >= 2 * SOURCES - 5    # (connected, summary ...)
    notes = [r.getMessage() for r in caplog.records
             if r.levelno == logging.WARNING and "lines about sources" in r.getMessage()]
    assert notes == ["5 lines about sources said in 60 s: more go to the debug level until "
                     "that time is over, counted",
                     f"{len(unsaid)} more lines about sources went to the debug level since "
                     f"they were last said"]


FAILING = 30


def test_sources_whose_disk_fails_stay_within_the_bound(recorded, tmp_path, caplog,
                                                        monkeypatch):
    """A full disk fails every source at once: each one's failure, the loss counts its file's
    header could not take and its summary (file incomplete) are lines about sources like the
    others, bounded and counted."""
    head, buffers = recorded
    monkeypatch.setattr(collector_module, "_SOURCE_LINES_SAID", 5, raising=False)

    class FullDisk(collector_module.EtlStreamFile):
        def write(self, buffer):
            raise Win32Error(ERROR_DISK_FULL, f"writing a buffer: {self.path}")

        def set_lost(self, events_lost, buffers_lost):
            raise Win32Error(ERROR_DISK_FULL, f"the header: {self.path}")
    monkeypatch.setattr(collector_module, "EtlStreamFile", FullDisk)
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        for n in range(FAILING):
            (told,) = delivered_by_hand(collector.address, head, buffers[:1],
                                        session=f"full{n}", end=False)
            assert told[0] == P.FrameType.ERROR
        assert collector.wait_for(lambda ss: len(ss) == FAILING and all(s.closed for s in ss))
        assert collector.write_failures == FAILING
        assert all(s.file_error.startswith("writing it failed: ERROR_DISK_FULL")
                   for s in collector.sources)
    paths = {s.path for s in collector.sources}
    about = [r for r in caplog.records if "@hand" in r.getMessage()]
    incomplete = [r for r in about if "may be incomplete" in r.getMessage()]
    about = [r for r in about if r not in incomplete]
    said = [r for r in about if r.levelno >= logging.INFO]
    unsaid = [r for r in about if r.levelno == logging.DEBUG]
    for kind in ("closed: cannot write", "cannot update the header's loss counts"):
        # (each kind of line is there, past the bound as debug)
        assert sum(kind in r.getMessage() for r in unsaid) >= FAILING - 5, kind
    assert len(said) == 5
    # files that may be incomplete have a bound of their own, and those past it are counted
    # and named (the first of them) in an error of its own
    assert [r.levelno for r in incomplete] == [logging.ERROR] * 5 + [logging.DEBUG] * (FAILING - 5)
    notes = [r.getMessage() for r in caplog.records
             if r.levelno >= logging.WARNING and "@hand" not in r.getMessage()]
    assert notes[:2] == ["5 lines about sources said in 60 s: more go to the debug level until "
                         "that time is over, counted",
                         f"{len(unsaid)} more lines about sources went to the debug level since "
                         f"they were last said"]
    assert len(notes) == 3
    _assert_incomplete_counted(notes[2], FAILING - 5, paths, incomplete[5:])


def _assert_incomplete_counted(line: str, count: int, paths: set, unsaid: list) -> None:
    """``line`` says ``count`` more files may be incomplete, naming the first of them (whose
    own lines went to the debug level): at most 5 of ``paths``."""
    head = f"{count} more files may be incomplete since they were last said (first: "
    assert line.startswith(head) and line.endswith(")"), line
    named = line[len(head):-1].removesuffix(", ...").split(", ")
    assert len(named) == min(count, 5) and set(named) <= paths, named
    assert line.endswith(", ...)") == (count > 5)
    assert all(n in r.getMessage() for n, r in zip(named, unsaid))


def test_files_that_fail_as_the_collector_stops_are_counted_past_the_bound(recorded, tmp_path,
                                                                        caplog, monkeypatch):
    """Files closed by the stop whose close fails (a full disk) may be incomplete: past the
    bound their lines go to the debug level, and an error says how many and which, after the
    closes the stop waits for."""
    head, buffers = recorded
    monkeypatch.setattr(collector_module, "_SOURCE_LINES_SAID", 2, raising=False)

    class CloseFails(collector_module.EtlStreamFile):
        def close(self, end_time=0):
            super().close(end_time)
            raise Win32Error(ERROR_DISK_FULL, f"closing: {self.path}")
    monkeypatch.setattr(collector_module, "EtlStreamFile", CloseFails)
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    hands = []
    try:
        with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
            for n in range(OPEN):
                hand = HandRelay(collector.address, len(head), f"open{n}")
                hands.append(hand)
                assert hand.answer()[0] == P.FrameType.WELCOME
                hand.header(head)
                hand.buffer(1, buffers[0])
            assert collector.wait_for(lambda ss: len(ss) == OPEN and all(s.path for s in ss))
    finally:
        for hand in hands:
            hand.close()
    paths = {s.path for s in collector.sources}
    incomplete = [r for r in caplog.records if "may be incomplete" in r.getMessage()
                  and "@hand" in r.getMessage()]
    assert [r.levelno for r in incomplete] == [logging.ERROR] * 2 + [logging.DEBUG] * (OPEN - 2)
    # (closes that settle before the stop's count are in it, the others in the line after)
    counted = [r for r in caplog.records if "more files may be incomplete" in r.getMessage()]
    assert counted and all(r.levelno == logging.ERROR for r in counted)
    unsaid = incomplete[2:]
    for r in counted:
        count = int(r.getMessage().split()[0])
        _assert_incomplete_counted(r.getMessage(), count, paths, unsaid[:count])
        unsaid = unsaid[count:]
    assert unsaid == []                 # every one counted, once


OPEN = 8


def test_connections_refused_one_by_one_stay_within_the_bound(recorded, tmp_path, caplog,
                                                              monkeypatch):
    """Relays refused for what they are (an ended stream's id here; a failed TLS handshake,
    a certificate not allowed...) come back by the thousand too: their lines are lines about
    connections like the others, bounded and counted."""
    head, _ = recorded
    monkeypatch.setattr(collector_module, "_SOURCE_LINES_SAID", 5, raising=False)
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    ended = uuid.uuid4()
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        delivered_by_hand(collector.address, head, session="ended", source_id=ended)
        for _ in range(SOURCES):
            hand = HandRelay(collector.address, len(head), "ended", source_id=ended)
            try:
                assert hand.answer()[0] == P.FrameType.ERROR
            finally:
                hand.close()
        assert collector.connections_refused == SOURCES
    refused = [r for r in caplog.records if "refused: this stream already ended" in r.getMessage()]
    assert len(refused) == SOURCES
    said = [r for r in caplog.records if r.levelno >= logging.INFO
            and ("@hand" in r.getMessage() or "refused" in r.getMessage())]
    assert len(said) == 5, [r.getMessage() for r in said]
    notes = [r.getMessage() for r in caplog.records if "lines about sources" in r.getMessage()]
    assert notes[-1] == (f"{len(refused) + 3 - 5} more lines about sources went to the debug "
                         f"level since they were last said")
