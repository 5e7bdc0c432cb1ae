"""A file of thousands of processor streams of a buffer each formats in time linear in its size.

A buffer whose processor number is damaged is read as its own stream, and a header may name
thousands of processors, so a file can hold as many streams as buffers. The merge once looked
at every stream for each window it took (a window ends at the earliest batch end, so about one
per buffer), and the row printer pointed every slot of the view (one per stream) for each
chunk: streams x buffers. A 4 MB file of 4,096 one-record 1 KiB buffers, one processor each,
took 6.8 s of CPU to format against 0.5 s for the same records on two processors, and 64 MB
of them would take half an hour. The work is counted here as the Python lines the merge and
the printer run (deterministic, unlike time): four times the streams may cost about four times
the lines, not sixteen.
"""
from __future__ import annotations

import struct
import sys
import uuid

import dec_etlgen as gen
from wpptrace.decoder import _hazmat, ordering
from wpptrace.decoder.messages import format_file
from wpptrace.decoder.ordering import merge

G = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
TMF = f"""{G} findneedle // SRC=t.c
#typev t_c1 10 "%0id=%10!d!" //   FUNC=f
{{
i, ItemLong -- 10
}}
"""


def _lines_run(files: tuple[str, ...], work) -> int:
    """Line events in the code of ``files`` while ``work()`` runs."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename in files else None

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def _interleaved(streams: int) -> list:
    """One batch of one key per stream, keys interleaved: every window takes one item."""
    return [iter([(range(s << 32, (s << 32) + 1), [s])]) for s in range(streams)]


def test_merge_of_many_one_item_streams_is_linear():
    small = _lines_run((ordering.__file__,), lambda: list(merge(_interleaved(500))))
    big = _lines_run((ordering.__file__,), lambda: list(merge(_interleaved(2000))))
    assert big < 6 * small, (small, big)
    items = [r for refs, _keys in merge(_interleaved(2000)) for r in refs]
    assert items == [s << 32 for s in range(2000)]


def _one_buffer_per_processor(path, processors: int) -> None:
    streams = [(p, 1, [gen.message(10, G, 1000 + p, struct.pack("<i", p), tid=p + 1)])
               for p in range(processors)]
    path.write_bytes(gen.etl_file(streams, buffer_size=1024, processors=processors))


def test_formatting_many_processor_streams_is_linear(tmp_path):
    (tmp_path / f"{G}.tmf").write_text(TMF, encoding="ascii")
    counts = {}
    for processors in (300, 1200):
        path = tmp_path / f"p{processors}.etl"
        _one_buffer_per_processor(path, processors)
        lines: list[str] = []
        counts[processors] = _lines_run(
            (ordering.__file__, _hazmat.__file__),
            lambda: lines.extend(format_file(path, tmf=str(tmp_path), noprefix=True)))
        assert lines[1:] == [f"id={p}" for p in range(processors)]
    assert counts[1200] < 6 * counts[300], counts


def test_arrow_columns_of_many_processor_streams_are_linear(tmp_path):
    """The same for the Arrow columns (``-f arrow`` / ``-f parquet``; pyarrow comes with the
    test extra): each chunk once made the slots' pointer sizes and file numbers over every
    slot of the view."""
    from wpptrace.decoder import arrow

    (tmp_path / f"{G}.tmf").write_text(TMF, encoding="ascii")
    counts = {}
    for processors in (300, 1200):
        path = tmp_path / f"p{processors}.etl"
        _one_buffer_per_processor(path, processors)
        tables = []
        counts[processors] = _lines_run(
            (ordering.__file__, _hazmat.__file__, arrow.__file__),
            lambda: tables.append(arrow.to_arrow(str(path), str(tmp_path)).read_all()))
        [table] = tables
        assert table.column("text").to_pylist()[1:] == [f"id={p}" for p in range(processors)]
        assert set(table.column("etl").to_pylist()) == {str(path)}
    assert counts[1200] < 6 * counts[300], counts
