"""A damaged log-file header record still gives its header line, the damage reported.

ProcessTrace delivers every file's log-file header event first, made from the header facts
OpenTrace read, and tracefmt prints it as the "EventTrace" line (docs/tmf-format.md §6.2).
When the header record's marker is damaged, the record walk skips the record, but the header
facts are still read from its payload: fmt prints the header line from them, in every output
form, and reports the damage on stderr (exit code 1) as for any other damage.
"""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from fmthelp import reference_lines, row_lines, run_fmt_capture

from wpptrace.decoder import parallel
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.wpp import WppDecoder
from wpptrace.tmf import load


#: the summary's count of the damaged header record (counted once)
_COUNTED = "Total Records Damaged   1"


@pytest.fixture
def emitter(fmt_data, header_record):
    """The real wppemitter capture (45 messages) and a copy whose header record's marker
    flags byte is zeroed."""
    return header_record.marker_zeroed(fmt_data / "wppemitter-sample.etl")


@pytest.mark.parametrize("output_format", ["text", "csv", "jsonl"])
def test_the_header_line_is_printed_from_the_facts_read(emitter, fmt_data, tmp_path,
                                                        output_format):
    real, damaged = emitter
    runs = {}
    for path in (real, damaged):
        summary = tmp_path / f"{path.stem}.sum"
        code, out, err = run_fmt_capture(path, tmf_dirs=[str(fmt_data / "tmf")], utc=True,
                                         output_format=output_format, summary=str(summary))
        table = [line for line in summary.read_text().splitlines()[2:]
                 if not line.startswith("Elapsed")]
        runs[path] = code, out, err, table
    code, out, err, table = runs[damaged]
    # the header record's fields are intact: the same line as the intact file's, and counted
    # (as the header, and as one damaged record)
    assert (out, [row for row in table if row != _COUNTED]) == runs[real][1:4:2]
    assert "Total Events  Processed 49" in table and any("Header" in row for row in table)
    assert _COUNTED in table
    first = out.splitlines()[1 if output_format == "csv" else 0]
    assert "EventTrace" in first
    if output_format == "jsonl":
        assert json.loads(first)["status"] == "header"
    assert code == 1 and runs[real][0] == 0
    assert "offset 0x48: expected the log-file header record" in err
    # reported once: the walk skips the record it stands for, counted as one damaged record
    assert err.count("\n") == 1


def test_a_header_record_wholly_zeroed_gives_the_line_of_what_is_left(fmt_data, tmp_path,
                                                                      header_record):
    """Its thread, process and raw time zeroed too (its whole SYSTEM_TRACE_HEADER): the line
    holds them as read, its time the session's StartTime (the header record's time is the
    clock's origin)."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    whole = header_record.system_header()
    data[whole.start:whole.stop] = bytes(len(whole))
    damaged = tmp_path / "zeroed.etl"
    damaged.write_bytes(bytes(data))
    code, out, err = run_fmt_capture(damaged, tmf_dirs=[str(fmt_data / "tmf")], utc=True)
    _code, intact, _err = run_fmt_capture(real, tmf_dirs=[str(fmt_data / "tmf")], utc=True)
    time = intact.split("::", 1)[1].split(" ", 1)[0]
    assert out.splitlines()[0] == f"[0]0000.0000::{time} [Header]EventTrace"
    assert len(out.splitlines()) == len(intact.splitlines()) == 46
    assert code == 1 and "found marker 0x00000000" in err


def test_rows_and_records_agree_on_the_made_header(emitter, fmt_data):
    """The formatting loop's lines are the ones each record formatted on its own gives."""
    _real, damaged = emitter
    tmfset = load(str(fmt_data / "tmf"))
    for output in ("text", "csv", "jsonl"):
        lines = {}
        for each in (row_lines, reference_lines):
            with EtlFile(damaged) as etl:
                lines[each] = each(WppDecoder(tmfset, utc=True), etl, output)
        assert lines[row_lines] == lines[reference_lines]
        assert len(lines[row_lines]) == 46 and "EventTrace" in lines[row_lines][0]


def test_parquet_has_the_header_row(emitter, fmt_data, tmp_path):
    real, damaged = emitter
    tables = {}
    for path in (real, damaged):
        out = tmp_path / f"{path.stem}.parquet"
        run_fmt_capture(path, tmf_dirs=[str(fmt_data / "tmf")], output_format="parquet",
                        output=str(out))
        tables[path] = pq.read_table(out).to_pylist()
    assert tables[damaged] == [dict(row, etl=str(damaged)) for row in tables[real]]
    assert tables[damaged][0]["status"] == "header"


def test_jobs_print_the_made_header_once(driver, tmp_path, monkeypatch, header_record):
    """fmt -j 2: the made header belongs to the first window only, as the record would."""
    etl, tmf_dir = driver
    _etl, damaged = header_record.marker_zeroed(etl)
    with EtlFile(damaged) as f:
        times = sorted(info.timestamp for info in f.buffer_index())
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: [None, times[len(times) // 2],
                                                                 None])
    outputs = {}
    for jobs in (1, 2):
        out, summary = tmp_path / f"out{jobs}", tmp_path / f"sum{jobs}"
        code, _stdout, err = run_fmt_capture(damaged, tmf_dirs=[tmf_dir], utc=True, jobs=jobs,
                                             output=str(out), summary=str(summary))
        assert code == 1 and "expected the log-file header record" in err
        outputs[jobs] = (out.read_text(), [line for line in summary.read_text().splitlines()
                                           if not line.startswith("Elapsed")], err)
    assert outputs[2] == outputs[1]
    text = outputs[1][0]
    assert text.count("EventTrace") == 1 and "EventTrace" in text.splitlines()[0]



@pytest.mark.parametrize("marker", [True, False], ids=["marker-zeroed", "marker-intact"])
@pytest.mark.parametrize("size", [0xFFFF, 8, 0], ids=["past-the-buffer", "short", "zero"])
def test_a_wrong_size_is_said_with_the_bytes_skipped_in_one_line(fmt_data, tmp_path, marker,
                                                                 size, header_record):
    """The record's own Size is off: its end is found past its two names (where the next
    record starts, 0x2e0), and the one line says how many bytes were skipped and where the
    records go on; the rest reads as the intact file does."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    record_size = header_record.at("Size")
    assert int.from_bytes(data[record_size:record_size + 2], "little") == 664
    data[record_size:record_size + 2] = size.to_bytes(2, "little")
    if marker:
        data[header_record.at("Flags")] = 0
    damaged = tmp_path / "size.etl"
    damaged.write_bytes(bytes(data))
    runs = {}
    for path in (real, damaged):
        summary = tmp_path / f"{path.stem}.sum"
        code, out, err = run_fmt_capture(path, tmf_dirs=[str(fmt_data / "tmf")], utc=True,
                                         summary=str(summary))
        table = [line for line in summary.read_text().splitlines()[2:]
                 if not line.startswith("Elapsed")]
        runs[path] = code, out, err, table
    code, out, err, table = runs[damaged]
    assert (out, [row for row in table if row != _COUNTED]) == (runs[real][1], runs[real][3])
    assert _COUNTED in table
    assert code == 1 and err.count("\n") == 1, err
    assert "offset 0x48: expected the log-file header record" in err
    assert f"Size {size}; its 664 bytes skipped, the records go on at 0x2e0" in err
    with EtlFile(real) as a, EtlFile(damaged) as b:
        whole, hurt = a.scan(), b.scan()
        assert (hurt.records, hurt.damaged) == (whole.records - 1, 1)



_LOGGER_NAME = "FN_WppProbe\0".encode("utf-16-le")    # the sample's LoggerName, as stored


def _scans(intact, damaged):
    """(the intact file's scan, the damaged copy's scan, the damaged copy's problems)."""
    with EtlFile(intact) as a, EtlFile(damaged) as b:
        return a.scan(), b.scan(), [str(e) for e in b.errors]


def test_a_minus_one_where_the_names_end_is_no_end_of_the_events(fmt_data, tmp_path,
                                                                  header_record):
    """The record's Size is off and its LogFileName cut short ("C"), so its end computed from
    the names falls inside the old name, where a -1 marker (FFFFFFFF) stands with no fill
    after it: no place where the records go on. The walk reads buffer 0 from the record and
    resumes where records chain again: none of buffer 0's events vanishes."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    at = header_record.system_header().start
    data[header_record.at("Size"):header_record.at("Size") + 2] = bytes(2)
    log_file_name = data.index(_LOGGER_NAME) + len(_LOGGER_NAME)
    short_name = "C\0".encode("utf-16-le")
    data[log_file_name:log_file_name + len(short_name)] = short_name
    computed_end = at + ((log_file_name + len(short_name) - at + 7) & ~7)
    data[computed_end:computed_end + 4] = b"\xff" * 4
    damaged = tmp_path / "minus-one.etl"
    damaged.write_bytes(bytes(data))
    whole, hurt, problems = _scans(real, damaged)
    assert (hurt.records, hurt.damaged) == (whole.records - 1, 1)
    assert not any("the records go on" in p for p in problems), problems


@pytest.mark.parametrize("size", [0x400, 0x2a0], ids=["past-the-events", "inside-the-next-record"])
def test_an_in_range_wrong_size_of_a_damaged_record_is_no_witness(fmt_data, tmp_path, size,
                                                                  header_record):
    """Marker damaged and Size wrong but inside the buffer: the end past the names, from
    where the records chain (0x2e0), is taken, not the Size, which would swallow buffer 0's
    records or land inside one; said in one line."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    data[header_record.at("Size"):header_record.at("Size") + 2] = size.to_bytes(2, "little")
    data[header_record.at("Flags")] = 0
    damaged = tmp_path / "in-range-size.etl"
    damaged.write_bytes(bytes(data))
    whole, hurt, problems = _scans(real, damaged)
    assert (hurt.records, hurt.damaged) == (whole.records - 1, 1)
    assert len(problems) == 1 and problems[0].endswith(
        f"Size {size}; its 664 bytes skipped, the records go on at 0x2e0"), problems


def test_names_without_an_end_give_no_end_of_the_record(fmt_data, tmp_path, header_record):
    """Size off, and no NUL ends the names before the end of the events (a file cut there):
    the record's end is not known, so it is not said to be the end of the events."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    with EtlFile(real) as etl:
        events_end = etl._first_end
    data[header_record.at("Size"):header_record.at("Size") + 2] = bytes(2)
    data[header_record.at("Flags")] = 0
    names = data.index(_LOGGER_NAME)
    data[names:events_end] = b"A\0" * ((events_end - names) // 2)
    damaged = tmp_path / "endless-names.etl"
    damaged.write_bytes(bytes(data[:events_end]))
    with EtlFile(damaged) as etl:
        assert etl.header_read and etl.header_record_end is None
        assert not any("the records go on" in str(e) for e in etl.errors)


def test_the_records_own_size_that_chains_is_taken_when_the_names_do_not_end_it(
        fmt_data, tmp_path, header_record):
    """Marker damaged and LogFileName's NUL overwritten, so the names run on into the next
    record: its own Size, from where the records chain to the end of the events, gives
    the end (one line, nothing else skipped)."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    data[header_record.at("Flags")] = 0
    at = header_record.system_header().start
    end = at + int.from_bytes(data[header_record.at("Size"):header_record.at("Size") + 2], "little")
    assert data[end - 2:end] == bytes(2)
    data[end - 2:end] = "X".encode("utf-16-le")
    damaged = tmp_path / "unended-name.etl"
    damaged.write_bytes(bytes(data))
    whole, hurt, problems = _scans(real, damaged)
    assert (hurt.records, hurt.damaged) == (whole.records - 1, 1)
    assert len(problems) == 1 and problems[0].endswith("its 664 bytes skipped, the records go on at 0x2e0")


def test_of_two_ends_that_both_chain_the_smaller_is_taken(fmt_data, tmp_path, header_record):
    """Marker damaged, and the record's own Size ends it 16 bytes before its names do, where
    a whole 16-byte record stands (written over the last characters of LogFileName, so the
    names still end at 0x2e0): the records chain to the end of the events from both ends.
    The smaller one is taken: fewer bytes are treated as the header, and the record between
    the two ends is read, not swallowed."""
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    at = header_record.system_header().start
    size_at = header_record.at("Size")
    names_end = at + int.from_bytes(data[size_at:size_at + 2], "little")
    assert names_end == 0x2e0 and data[names_end - 2:names_end] == bytes(2)
    own_end = names_end - 16
    data[size_at:size_at + 2] = (own_end - at).to_bytes(2, "little")
    # a fixed-family record of a type the decoder skips by its size (TRACE_HEADER_TYPE_TIMED),
    # whose bytes hold no NUL character, so LogFileName still runs on to its own end
    record = (16).to_bytes(2, "little") + bytes([0x0C, 0xC0]) + "LogFile".encode("utf-16-le")[:10]
    assert data[own_end:own_end + 16].count(bytes(2)) == 1      # the name's NUL, at the end
    data[own_end:own_end + 14] = record
    data[header_record.at("Flags")] = 0
    damaged = tmp_path / "two-ends.etl"
    damaged.write_bytes(bytes(data))
    whole, hurt, problems = _scans(real, damaged)
    with EtlFile(damaged) as etl:
        assert etl.header_read and etl.header_record_end == own_end
    assert (hurt.records, hurt.damaged) == (whole.records, 1)
    assert len(problems) == 1 and problems[0].endswith(
        f"its {own_end - at} bytes skipped, the records go on at {own_end:#x} (records chain "
        f"from {names_end:#x} too: the {names_end - own_end} bytes between are read as records)"), problems
