"""A file cut inside a buffer's events counts what the cut lost, once, in every output.

Regression: a cut inside a record was counted (the walker's partial record), but a cut on a
record boundary lost every record after it and counted nothing: the completion line had no
Damaged Records, with -j 1 and -j 2 and in every format. The records past the file's end are
now one damaged record; a cut inside a record is still one (not two), and a cut in the
unused end of the last buffer loses nothing and counts nothing.

wppemitter-sample.etl: 8 KiB buffers; buffer 1 (at 0x2000) holds 45 48-byte messages from
0x48 to FilledBytes 0x8b8.
"""
from __future__ import annotations

import io

import pytest

from fmthelp import run_fmt_capture
from wpptrace.decoder.etlfile import EtlFile

BUFFER1 = 0x2000
FIRST = 0x48                 # the first record of buffer 1, in the buffer
RECORD = 48
FILLED = 0x8b8
#: cut offsets in buffer 1 and the damaged records they must count
CUTS = {
    "before the first record": (FIRST, 1),
    "on a record boundary": (FIRST + 3 * RECORD, 1),
    "inside a record": (FIRST + 3 * RECORD + 20, 1),
    "2 bytes into a record": (FIRST + 3 * RECORD + 2, 1),
    "inside the last record": (FILLED - 4, 1),
    "in the unused end": (FILLED + 100, 0),
    "at FilledBytes": (FILLED, 0),
}


def _cut(tmp_path, fmt_data, at: int):
    path = tmp_path / "cut.etl"
    path.write_bytes((fmt_data / "wppemitter-sample.etl").read_bytes()[:BUFFER1 + at])
    return path


def _completion(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Processing completed")]


@pytest.mark.parametrize("where", list(CUTS))
@pytest.mark.parametrize("output_format", ["text", "parquet"])
def test_the_cut_is_counted_once(tmp_path, fmt_data, fmt_tmf, where, output_format):
    if output_format == "parquet":
        pytest.importorskip("pyarrow")
    at, damaged = CUTS[where]
    path = _cut(tmp_path, fmt_data, at)
    lines = {}
    jobs_taken = (1, 2) if output_format == "text" else (1,)    # (-j: text outputs)
    for jobs in jobs_taken:
        out = tmp_path / f"out{jobs}.{output_format}"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(fmt_tmf)], output=str(out),
                                             output_format=output_format, verbose=True,
                                             jobs=jobs, cache=False)
        assert code == 1, err            # the truncation is reported whatever it lost
        lines[jobs] = _completion(err)
    assert all(lines[jobs] == lines[1] for jobs in jobs_taken)
    assert len(lines[1]) == 1
    if damaged:
        assert lines[1][0].endswith(f" :: Damaged Records: {damaged}, Skipped Buffers: 0")
    else:
        assert "Damaged" not in lines[1][0]


@pytest.mark.parametrize("where", list(CUTS))
def test_the_reader_counts_it_by_path_and_file_object(tmp_path, fmt_data, where):
    at, damaged = CUTS[where]
    path = _cut(tmp_path, fmt_data, at)
    by_path = EtlFile(path).scan()
    by_object = EtlFile(io.BytesIO(path.read_bytes()), name=str(path)).scan()
    assert by_path.damaged == by_object.damaged == damaged
    assert by_path.records == by_object.records


def test_the_lost_events_are_said_with_their_offset(tmp_path, fmt_data):
    at = FIRST + 3 * RECORD
    etl = EtlFile(_cut(tmp_path, fmt_data, at))
    etl.scan()
    said = [issue for issue in etl.errors if "past its end are lost" in issue.message]
    assert len(said) == 1
    assert said[0].offset == BUFFER1 + at
    assert f"{FILLED:#x}" in said[0].message
