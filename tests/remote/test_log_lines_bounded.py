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
    about = [r for r in caplog.records if "@hand" in r.getMessage()]
    said = [r for r in about if r.levelno >= logging.INFO]
    unsaid = [r for r in about if r.levelno == logging.DEBUG]
    kinds = ("closed: cannot write", "cannot update the header's loss counts",
             "may be incomplete")
    for kind in kinds:              # (each kind of line is there, past the bound as debug)
        assert sum(kind in r.getMessage() for r in unsaid) >= FAILING - 5, kind
    assert len(said) == 5
    notes = [r.getMessage() for r in caplog.records
             if r.levelno >= logging.WARNING and "@hand" not in r.getMessage()]
    assert notes == ["5 lines about sources said in 60 s: more go to the debug level until "
                     "that time is over, counted",
                     f"{len(unsaid)} more lines about sources went to the debug level since "
                     f"they were last said"]


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
