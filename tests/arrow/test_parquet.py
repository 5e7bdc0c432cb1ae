"""Parquet and Arrow IPC output (``wpptrace fmt -f parquet|arrow``, ``decoder.to_arrow``): read
back with pyarrow and with DuckDB, the rows hold the same messages, texts and typed arguments
as ``wpptrace fmt -f jsonl``, for the real findneedle captures and a generated 50k-event trace
of real driver TMFs; unknown and format-error messages are rows, flagged."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from arrowhelp import arrow_rows, comparable, fmt, jsonl_rows

from wpptrace.decoder import to_arrow
from wpptrace.decoder.arrow import SCHEMA

CAPTURES = ["wppemitter-sample.etl", "wppenum-sample.etl", "wppstr-sample.etl",
            "wpptypes-sample.etl"]


def _jsonl(files, tmf_dirs):
    code, out, err = fmt(files, tmf_dirs, "jsonl")
    assert code == 0, err
    return jsonl_rows(out)


def _parquet(files, tmf_dirs, path, **options):
    code, out, err = fmt(files, tmf_dirs, "parquet", str(path), **options)
    assert code == 0, err
    assert out == ""
    return path


def _duckdb_rows(path) -> list[dict]:
    """The rows as DuckDB's own Parquet reader reads them (handed over as Arrow)."""
    rel = duckdb.connect().sql(f"SELECT * FROM read_parquet('{path}')")
    to_arrow_table = getattr(rel, "to_arrow_table", None) or rel.arrow    # DuckDB 2 / 1
    rows = to_arrow_table().to_pylist()
    for r in rows:           # instants: checked against filetime in SQL
        r["timestamp"] = None
    return rows


@pytest.mark.parametrize("name", CAPTURES)
def test_corpus_capture_parquet_equals_jsonl(name, fmt_data, tmp_path):
    files, tmf = [fmt_data / name], [fmt_data / "tmf"]
    expected = _jsonl(files, tmf)
    path = _parquet(files, tmf, tmp_path / "out.parquet")
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA)
    assert comparable(arrow_rows(table.to_pylist())) == comparable(expected)
    assert comparable(arrow_rows(_duckdb_rows(path))) == comparable(expected)
    assert [r[5] for r in expected] == ["header"] + ["ok"] * (len(expected) - 1)


def test_corpus_captures_merged(fmt_data, tmp_path):
    """Four captures merged by time in one output; the etl column names each row's file."""
    files, tmf = [fmt_data / n for n in CAPTURES], [fmt_data / "tmf"]
    expected = _jsonl(files, tmf)
    table = pq.read_table(_parquet(files, tmf, tmp_path / "all.parquet"))
    assert comparable(arrow_rows(table.to_pylist())) == comparable(expected)
    by_file = table.group_by("etl").aggregate([("text", "count")]).to_pylist()
    assert {r["etl"].rsplit("/", 1)[-1]: r["text_count"] for r in by_file} == {
        "wppemitter-sample.etl": 46, "wppenum-sample.etl": 3, "wppstr-sample.etl": 5,
        "wpptypes-sample.etl": 6}
    ts = table.column("timestamp").to_pylist()
    assert ts == sorted(ts)


def test_duckdb_query_on_arguments(fmt_data, tmp_path):
    """The query docs/analytics.md shows: one argument by name, across messages."""
    path = _parquet([fmt_data / "wppemitter-sample.etl"], [fmt_data / "tmf"], tmp_path / "e.parquet")
    rows = duckdb.sql(f"""
        SELECT a.int AS id, text
        FROM read_parquet('{path}'), UNNEST(args) AS t(a)
        WHERE a.type = 'ItemLong' AND a.name = 'i' AND a.int >= 28
        ORDER BY timestamp""").fetchall()
    assert [r[0] for r in rows] == [28, 28, 29]
    assert rows[-1][1] == "WppEmitter work item id=29 status=0x1d phase=startup provider=WppEmitter"


def test_arrow_stream_on_stdout_and_python_api(fmt_data):
    """``-f arrow`` writes an IPC stream to stdout; ``to_arrow`` yields the same batches."""
    name = fmt_data / "wpptypes-sample.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace", "fmt", str(name), "-p",
                           str(fmt_data / "tmf"), "-f", "arrow"], capture_output=True, check=True)
    streamed = pa.ipc.open_stream(proc.stdout).read_all()
    run = to_arrow(name, tmf=fmt_data / "tmf", batch_rows=2)
    batches = list(run)
    assert all(isinstance(b, pa.RecordBatch) and b.num_rows <= 2 for b in batches)
    assert pa.Table.from_batches(batches).to_pylist() == streamed.to_pylist()
    assert run.counters.messages == 5 and run.issues.num_rows == 0
    assert comparable(arrow_rows(streamed.to_pylist())) == comparable(
        _jsonl([name], [fmt_data / "tmf"]))
    types = {a["name"]: a for r in streamed.to_pylist() for a in r["args"]}
    assert types["(int)-1000"]["int"] == -1000
    assert types["(void*)(ULONG_PTR)0x7ff012345678ULL"]["int"] == 0x7FF012345678
    assert types["&g"] == {"name": "&g", "type": "ItemGuid", "int": None, "float": None,
                           "str": "11223344-5566-7788-99aa-bbccddeeff00"}
    assert types["(NTSTATUS)0xC0000022L"]["int"] == 0xC0000022


def test_all_records_adds_header_fields_of_other_records(fmt_data, tmp_path):
    path = _parquet([fmt_data / "wpptypes-sample.etl"], [fmt_data / "tmf"], tmp_path / "a.parquet",
                    all_records=True)
    rows = pq.read_table(path).to_pylist()
    others = [r for r in rows if r["status"] == "record"]
    # the capture's first buffer holds a system and two perfinfo records (fmt counts 3 non-WPP)
    assert [r["kind"] for r in others] == ["system", "perfinfo", "perfinfo"]
    assert all(r["text"] is None for r in others)
    # a perfinfo record logs no process or thread id: null, not 0 (PID 0 is a process)
    assert [(r["pid"] is not None, r["tid"] is not None) for r in others] == \
        [(True, True), (False, False), (False, False)]
    assert len(rows) == 6 + len(others)


def test_unknown_and_format_error_messages_are_flagged(fmt_data, tmp_path):
    """A message without a TMF entry and one whose argument bytes are too short are rows with
    status unknown / format-error (the error says why), in their places."""
    import etlgen

    known = uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea")    # number 10: (int, int, int64)
    stranger = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
    good = (42).to_bytes(4, "little") + (7).to_bytes(4, "little") + (5).to_bytes(8, "little")
    ts = etlgen.T0
    messages = [(known, 10, good, 0x10, 0x20, 0, ts + 10),
                (stranger, 3, b"\x01\x02", 0x10, 0x20, 0, ts + 20),
                (known, 10, good[:5], 0x10, 0x20, 1, ts + 30),
                (known, 10, good, 0x10, 0x20, 1, ts + 40)]
    etl = tmp_path / "flagged.etl"
    etlgen.write_messages(etl, messages)
    expected = _jsonl([etl], [fmt_data / "tmf"])
    table = pq.read_table(_parquet([etl], [fmt_data / "tmf"], tmp_path / "f.parquet"))
    got = arrow_rows(table.to_pylist())
    assert comparable(got) == comparable(expected)
    assert [r[5] for r in got] == ["header", "ok", "unknown", "format-error", "ok"]
    assert "No Format Information found" in got[2][15]
    assert got[3][17] and "argument" in got[3][17]


def test_generated_50k_events_parquet_equals_jsonl(bench_fmt, tmp_path):
    """50k events of the real driver messages (strings, pointers, status codes, doubles; the
    mix cycles through all of its 4,096 picks), arguments unique per event, in record batches
    of at most 12,500 rows: Parquet read back by pyarrow and by DuckDB equals JSON Lines."""
    etl = tmp_path / "big.etl"
    bench_fmt.generate(etl, 50_000)
    tmf = [bench_fmt.TMF_DIR]
    expected = comparable(_jsonl([etl], tmf))
    assert len(expected) == 50_001
    path = _parquet([etl], tmf, tmp_path / "big.parquet", batch_rows=12_500)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 50_001
    table = pq.read_table(path)
    assert comparable(arrow_rows(table.to_pylist())) == expected
    del table
    assert comparable(arrow_rows(_duckdb_rows(path))) == expected
    # DuckDB reads the instants exactly as the filetime column says
    off = duckdb.sql(f"""SELECT count(*) FROM read_parquet('{path}')
        WHERE epoch_ns(timestamp::TIMESTAMP_NS) <> (filetime - 116444736000000000) * 100
           OR timestamp IS NULL""").fetchall()[0][0]
    assert off == 0


def test_parquet_writer_row_groups_and_codecs(bench_fmt, tmp_path):
    """Batches are joined into row groups of ``row_group_rows`` rows (the last one fewer; a
    batch is cut across groups); the arguments are snappy-compressed, the other columns zstd, times and sequence
    numbers delta-encoded; the file reads back as the batches."""
    from wpptrace.decoder.arrow import ArrowFileWriter, PARQUET_OPTIONS

    etl = tmp_path / "groups.etl"
    bench_fmt.generate(etl, 5_000)
    batches = list(to_arrow(str(etl), tmf=str(bench_fmt.TMF_DIR), batch_rows=700))
    assert len(batches) > 4
    path = tmp_path / "groups.parquet"
    with open(path, "wb") as stream:
        writer = ArrowFileWriter(stream, row_group_rows=1_000)
        for batch in batches:
            writer.write_batch(batch)
        writer.close()
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [1_000] * 5 + [1]
    codecs = {meta.row_group(0).column(j).path_in_schema: meta.row_group(0).column(j).compression
              for j in range(meta.num_columns)}
    assert set(codecs) == set(PARQUET_OPTIONS["compression"])
    assert {c for p, c in codecs.items() if p.startswith("args.")} == {"SNAPPY"}
    assert {c for p, c in codecs.items() if not p.startswith("args.")} == {"ZSTD"}
    encodings = {meta.row_group(0).column(j).path_in_schema: meta.row_group(0).column(j).encodings
                 for j in range(meta.num_columns)}
    for column in ("timestamp", "filetime", "sequence", "cpu"):    # differences, a few bits
        assert "DELTA_BINARY_PACKED" in encodings[column]
    # the same values (as JSON text: NaN arguments compare equal; dictionaries may differ)
    def values(table):
        return json.dumps(table.to_pylist(), default=str)
    assert values(pq.read_table(path)) == values(pa.Table.from_batches(batches, schema=SCHEMA))


#: in ``_beside_a_terminal``'s arguments: the pseudo-terminal (its descriptor as a stream, its path in argv)
_TERMINAL = object()


def _beside_a_terminal(argv: list, **options) -> tuple[subprocess.CompletedProcess, bytes, str]:
    """``subprocess.run(argv, **options)`` with a pseudo-terminal open, ``_TERMINAL`` standing for
    it: the run, what reached the terminal, and the terminal's path."""
    import os
    import pty

    main, terminal = pty.openpty()
    try:
        path = os.ttyname(terminal)
        options = {key: terminal if value is _TERMINAL else value for key, value in options.items()}
        proc = subprocess.run([path if arg is _TERMINAL else arg for arg in argv],
                              stdin=subprocess.DEVNULL, timeout=120, **options)
        os.set_blocking(main, False)
        try:
            shown = os.read(main, 1 << 16)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(terminal)
        os.close(main)
    return proc, shown, path


@pytest.mark.parametrize("kind", ["arrow", "parquet"])
def test_binary_through_a_descriptor_is_refused_on_a_terminal_and_written_to_a_pipe(fmt_data, kind):
    """``-f arrow -o /dev/stdout`` on a terminal wrote the binary stream to it (``-f arrow``
    alone is refused there); into a pipe it is the stream or file a reader takes."""
    name = fmt_data / "wpptypes-sample.etl"
    args = [sys.executable, "-m", "wpptrace", "fmt", str(name), "-p", str(fmt_data / "tmf"), "-f", kind]
    proc, shown, _path = _beside_a_terminal([*args, "-o", "/dev/stdout"], stdout=_TERMINAL,
                                            stderr=subprocess.PIPE)
    assert proc.returncode == 2 and shown == b""
    assert proc.stderr.decode() == (f"wpptrace fmt: error: -f {kind} writes binary: /dev/stdout is a "
                                    f"terminal; redirect it or give -o FILE\n")
    proc = subprocess.run([*args, "-o", "/dev/stdout"], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = (pa.ipc.open_stream(proc.stdout).read_all() if kind == "arrow"
             else pq.read_table(pa.BufferReader(proc.stdout)))
    assert table.num_rows == 6                # the header record and 5 messages


@pytest.mark.parametrize("kind", ["arrow", "parquet"])
def test_binary_to_a_terminal_named_as_the_output_is_refused(fmt_data, kind):
    """``-f arrow -o /dev/pts/N`` (or /dev/tty): the opened output is a terminal, refused
    before anything is written to it, as ``-o /dev/stdout`` on one is."""
    name = fmt_data / "wpptypes-sample.etl"
    proc, shown, path = _beside_a_terminal([sys.executable, "-m", "wpptrace", "fmt", str(name), "-p",
                                            str(fmt_data / "tmf"), "-f", kind, "-o", _TERMINAL],
                                           capture_output=True)
    assert proc.returncode == 2 and shown == b"" and proc.stdout == b""
    assert proc.stderr.decode() == (f"wpptrace fmt: error: -f {kind} writes binary: {path} is a "
                                    f"terminal; give -o FILE\n")
