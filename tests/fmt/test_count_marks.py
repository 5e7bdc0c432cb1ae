"""A decoder's per-message count marks (``fmt -j`` takes one after every window): cheap to
take, yet exact whichever path counted the rows (the C renderer, or Python), and a decoder
goes back to one exactly."""
from __future__ import annotations

import marshal

from fmthelp import row_lines

from wpptrace import tmf
from wpptrace.decoder.engine import FileSource
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.wpp import WppDecoder, mark_counts
from wpptrace.decoder.wpp_rows import RowView


def _summary(decoder) -> list[int]:
    return [row.count for row in decoder.summary_rows()]


def _messages(decoder, etl) -> int:
    """Decode the file through Python (the "messages" output), a mark after each batch:
    each is the counts so far (the summary's)."""
    view = RowView()
    decoded = batches = 0
    for batch in decoder.format(FileSource(etl).ordered(view), view, "messages"):
        decoded, batches = decoded + len(batch), batches + 1
        assert [n for n in mark_counts(decoder.count_marks()) if n] == _summary(decoder)
    assert batches > 1
    return decoded


def test_marks_follow_both_paths_and_restore_exactly(driver):
    path, tmf_dir = driver
    decoder = WppDecoder(tmf.load(tmf_dir), utc=True)
    with EtlFile(str(path)) as etl:
        lines = row_lines(decoder, etl)                      # counted by the C renderer
        first = decoder.count_marks()
        once = _summary(decoder)
        assert sum(once) == len(lines) and [n for n in mark_counts(first) if n] == once
        assert decoder.count_marks() == first                # nothing counted since: the same

        # counted by Python (the header counted, not handed out)
        assert _messages(decoder, etl) == len(lines) - 1
        second = decoder.count_marks()
        assert second[:2] != first[:2]                       # Python's counts: made again
        assert mark_counts(second) == [2 * n for n in mark_counts(first)]

        row_lines(decoder, etl)                              # the renderer again
        third = marshal.loads(marshal.dumps(decoder.count_marks()))   # as a worker sends it
        assert mark_counts(third) == [3 * n for n in mark_counts(first)]

        decoder.restore_counts(first)
        assert _summary(decoder) == once and mark_counts(decoder.count_marks()) == mark_counts(first)
        row_lines(decoder, etl)
        assert [n for n in mark_counts(decoder.count_marks()) if n] == [2 * n for n in once]
        assert _summary(decoder) == [2 * n for n in once]
