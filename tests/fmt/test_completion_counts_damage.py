"""fmt's completion line and summary file count what a damaged file lost.

Regression: only the warnings (and "N more problems not listed") said a file was damaged;
the completion line and the --summary file (tracefmt's FmtSum layout) counted neither
damaged records nor skipped buffers, where ``wpptrace dump``'s summary did. Both now say
them when they are not 0, in lines of their own kind (an undamaged file's are tracefmt's),
the same with -j 1 and -j 2.
"""
from __future__ import annotations

import struct
import uuid

import etlgen
from fmthelp import run_fmt_capture

GUID = uuid.UUID("6e2f1a00-3c4d-4e5f-9071-8293a4b5c6d7")
SIZE = 1024
CLEAN_LINE = ("Processing completed   Buffers: {}, Events: {}, EventsLost: 0 :: Format Errors: 0, "
              "Unknowns: 0")


def _runs(tmp_path, damage) -> dict[int, tuple[int, str, str]]:
    """The file damaged by ``damage`` (a bytearray changed in place) formatted with -j 1 and
    -j 2 (-v, --summary): per run, the exit code, the completion line and the summary."""
    etlgen.write_tmf(tmp_path, GUID, "v=%10!d!", [("v", "ItemLong")])
    path = tmp_path / "damaged.etl"
    etlgen.write_messages(path, [(GUID, 10, i.to_bytes(4, "little"), 1, 2, 0, etlgen.T0 + i * 10,
                                  etlgen.FLAGS_CORPUS) for i in range(700)], buffer_size=SIZE)
    data = bytearray(path.read_bytes())
    damage(data)
    path.write_bytes(bytes(data))
    runs = {}
    for jobs in (1, 2):
        out, summary = tmp_path / f"out{jobs}.txt", tmp_path / f"sum{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(tmp_path)], output=str(out),
                                             summary=str(summary), verbose=True, jobs=jobs,
                                             cache=False)
        done = [line for line in err.splitlines() if line.startswith("Processing completed")]
        totals = [line for line in summary.read_text().splitlines()
                  if line.startswith("Total ")]
        runs[jobs] = (code, done, totals)
    assert runs[2] == runs[1]
    return runs[1]


def test_an_undamaged_files_lines_are_tracefmts(tmp_path):
    code, done, totals = _runs(tmp_path, lambda data: None)
    assert code == 0
    buffers = (tmp_path / "damaged.etl").stat().st_size // SIZE
    assert done == [CLEAN_LINE.format(buffers, 701)]
    assert [t.split()[1] for t in totals] == ["Buffers", "Events", "Events", "Format", "Formats"]


def test_damaged_records_are_counted(tmp_path):
    def damage(data):
        for b in range(1, 6):                 # the first record of 5 data buffers: its marker
            data[b * SIZE + 0x48 + 2:b * SIZE + 0x48 + 4] = b"\xee\xee"

    code, done, totals = _runs(tmp_path, damage)
    assert code == 1
    assert len(done) == 1 and done[0].endswith(" :: Damaged Records: 5, Skipped Buffers: 0")
    assert "Total Records Damaged   5" in totals
    assert not any(t.startswith("Total Buffers Skipped") for t in totals)


def test_skipped_buffers_are_counted(tmp_path):
    def damage(data):                         # two data buffers' headers zeroed, records kept
        for b in (3, 4):
            data[b * SIZE:b * SIZE + 0x48] = bytes(0x48)

    code, done, totals = _runs(tmp_path, damage)
    assert code == 1
    assert len(done) == 1 and done[0].endswith(" :: Damaged Records: 0, Skipped Buffers: 2")
    assert "Total Buffers Skipped   2" in totals


def test_both_counts_are_said_in_one_order(tmp_path):
    """The completion line said damaged records then skipped buffers, the summary file the
    other way round: both say them in the completion line's order."""
    def damage(data):
        data[1 * SIZE + 0x48 + 2:1 * SIZE + 0x48 + 4] = b"\xee\xee"
        data[3 * SIZE:3 * SIZE + 0x48] = bytes(0x48)

    code, done, totals = _runs(tmp_path, damage)
    assert code == 1
    assert done[0].endswith(" :: Damaged Records: 1, Skipped Buffers: 1")
    assert totals[-2:] == ["Total Records Damaged   1", "Total Buffers Skipped   1"]
