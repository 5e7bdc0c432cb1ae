"""The files of a collector together hold at most ``max_total_size`` bytes: a header buffer
takes its whole buffer size in its file however few bytes carried it, so without a total any
peer could fill the disk with connections of a few hundred bytes each."""
from __future__ import annotations

import errno
import logging
import os
import struct
import uuid

from remote_helpers import HandRelay, delivered_by_hand, wait_until

from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_DISK_FULL


def _header_only(collector, head, n: int):
    """A source that sends its header buffer and END; the collector's last answer."""
    return delivered_by_hand(collector.address, head, session=f"d{n}")[-1]


def test_sources_past_the_total_are_refused_disk_full_and_counted(recorded, tmp_path,
                                                                   caplog):
    head, _ = recorded
    out = tmp_path / "c"
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(out),
                   max_total_size=3 * len(head) + len(head) // 2) as collector:
        kinds = []
        for n in range(6):
            kind, _, payload = _header_only(collector, head, n)
            kinds.append(kind if kind != P.FrameType.ERROR
                         else struct.unpack_from("<I", payload)[0])
        assert collector.disk_bytes == 3 * len(head)
        assert collector.total_full == 3
    assert kinds == [P.FrameType.ACK] * 3 + [ERROR_DISK_FULL] * 3
    assert len(os.listdir(out)) == 3
    said = [r.getMessage() for r in caplog.records if "reached the total" in r.getMessage()]
    assert len(said) == 2, said          # the first refusal, then the count at the stop
    assert said[0].startswith("d3@hand") and "(each source refused for this" in said[0]
    assert said[1] == (f"3 sources refused in all because the files of this collector "
                       f"reached the total it allows ({3 * len(head) + len(head) // 2} "
                       f"bytes)")


def test_sources_past_the_total_are_counted_in_a_warning_each_period(recorded, tmp_path, caplog,
                                                                   monkeypatch):
    """Refusals past the total that go on are not left for the stop: each period says the
    first as a warning and how many more came in one; every refusal is in one or the
    other, and the stop says them all."""
    head, _ = recorded
    monkeypatch.setattr(collector_module, "_REFUSALS_SAID_EVERY", 0.05)
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")

    def told() -> int:
        lines = [r.getMessage() for r in caplog.records if "reached the total" in r.getMessage()]
        said = sum("@hand (127.0.0.1:" in line for line in lines)
        counted = sum(int(line.split(" ", 1)[0]) for line in lines
                      if line.endswith("in the last 0.05 s") and " more sources refused " in line)
        return said + counted

    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_total_size=len(head)) as collector:
        assert _header_only(collector, head, 0)[0] == P.FrameType.ACK
        for n in range(1, 9):
            kind, _, payload = _header_only(collector, head, n)
            assert struct.unpack_from("<I", payload)[0] == ERROR_DISK_FULL
        assert collector.total_full == 8
        wait_until(lambda: told() == 8, what="every refusal said or counted")
    assert caplog.records[-1].getMessage() == (
        f"8 sources refused in all because the files of this collector reached the total it "
        f"allows ({len(head)} bytes)")


def test_a_source_whose_buffer_would_pass_the_total_is_ended_disk_full(recorded, tmp_path):
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_total_size=len(head) + 2 * len(buffers[0])) as collector:
        hand = HandRelay(collector.address, len(head), "long")
        try:
            assert hand.answer()[0] == P.FrameType.WELCOME
            hand.header(head)
            for sequence, buffer in enumerate(buffers[:3], 1):
                hand.buffer(sequence, buffer)
            answers = []
            while (answer := hand.answer()) is not None:
                answers.append(answer)
        finally:
            hand.close()
        assert collector.total_full == 1
        assert collector.wait_for(lambda ss: all(s.closed for s in ss))
        (source,) = collector.sources
    kind, _, payload = answers[-1]
    assert kind == P.FrameType.ERROR and struct.unpack_from("<I", payload)[0] == ERROR_DISK_FULL
    assert os.path.getsize(source.path) == len(head) + 2 * len(buffers[0])


def test_a_file_that_could_not_be_made_takes_nothing_of_the_total(recorded, tmp_path,
                                                                  monkeypatch):
    """A directory that refuses files for a while (the relay retrying all along) must not use
    up the total: once it takes files again, sources are written."""
    head, _ = recorded
    refusing = [True]

    class RefusedWhileBroken(collector_module.EtlStreamFile):
        def __init__(self, path, header_buffer):
            if refusing[0]:
                raise OSError(errno.EACCES, "Permission denied", path)
            super().__init__(path, header_buffer)

    monkeypatch.setattr(collector_module, "EtlStreamFile", RefusedWhileBroken)
    out = tmp_path / "c"
    with Collector(("127.0.0.1", 0), output_dir=str(out),
                   max_total_size=3 * len(head)) as collector:
        retrying = uuid.uuid4()
        for _ in range(4):
            kind, _, payload = delivered_by_hand(collector.address, head, session="r",
                                                 source_id=retrying)[-1]
            assert kind == P.FrameType.ERROR
            assert struct.unpack_from("<I", payload)[0] != ERROR_DISK_FULL
        assert collector.disk_bytes == 0
        assert collector.total_full == 0
        refusing[0] = False
        kinds = [a[0] for a in delivered_by_hand(collector.address, head, session="fresh")]
        assert kinds == [P.FrameType.ACK]       # END's ACK: written
        assert collector.disk_bytes == len(head)
    assert len(os.listdir(out)) == 1
