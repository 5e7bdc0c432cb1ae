"""What the collector says of a source's file (after it gave up on it: its disk did not
answer within --write-timeout; or when its header cannot be updated) names the source, as
its other warnings do: several relays write at once, and a path alone may not say whose file
it was."""
from __future__ import annotations

import errno
import logging
import threading

from remote_helpers import PATIENCE, HandRelay, wait_until

from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_BUSY


def test_a_creation_given_up_on_that_fails_later_is_said_with_its_sources_label(
        recorded, tmp_path, monkeypatch, caplog):
    """The file's creation hangs past the write timeout (given up on: the relay is told
    ERROR_BUSY), then fails once the disk answers: the warning that no file was made names
    the source's label."""
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    head, _ = recorded
    stuck, release = threading.Event(), threading.Event()

    class OpenHangsThenFails(collector_module.EtlStreamFile):
        def __init__(self, path, header_buffer):
            stuck.set()
            release.wait(PATIENCE)
            raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(collector_module, "EtlStreamFile", OpenHangsThenFails)

    def said():
        return [r.getMessage() for r in caplog.records
                if "once the disk answered" in r.getMessage()]
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=0.5) as collector:
        relay = HandRelay(collector.address, len(head), "namedsource")
        try:
            assert relay.answer()[:2] == (P.FrameType.WELCOME, 0)
            relay.header(head)
            assert stuck.wait(PATIENCE)
            answer = relay.answer()
            assert answer is not None and answer[0] == P.FrameType.ERROR, answer
            assert int.from_bytes(answer[2][:4], "little") == ERROR_BUSY
        finally:
            relay.close()
            release.set()
        wait_until(lambda: said(), what="the failed creation said")
        (source,) = collector.sources
    assert source.label == "namedsource@hand"
    assert said() == [f"namedsource@hand: the creation of a file given up on failed once the "
                      f"disk answered: cannot write {source.path}: Input/output error; no "
                      f"file was made"]


def test_a_header_that_cannot_take_the_loss_counts_is_said_with_its_sources_label(
        recorded, tmp_path, monkeypatch, caplog):
    """The file's header refuses the loss counts a STATS brings: the warning names the
    source's label, then the file."""
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    head, _ = recorded

    class LossCountsFail(collector_module.EtlStreamFile):
        def set_lost(self, events_lost, buffers_lost):
            raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(collector_module, "EtlStreamFile", LossCountsFail)

    def said():
        return [r.getMessage() for r in caplog.records
                if "loss counts" in r.getMessage()]
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        relay = HandRelay(collector.address, len(head), "namedsource")
        try:
            assert relay.answer()[:2] == (P.FrameType.WELCOME, 0)
            relay.header(head)
            relay.stats(1)
            wait_until(lambda: said(), what="the failed update said")
        finally:
            relay.close()
        (source,) = collector.sources
    assert said()[0].startswith(f"namedsource@hand: {source.path}: cannot update the header's "
                                f"loss counts: ")
    assert said()[0].endswith("Input/output error")
