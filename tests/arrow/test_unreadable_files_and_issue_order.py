"""An input that cannot be read at all is left out by every API alike, with one text: ``wpptrace
fmt`` says ``FILE: cannot read: offset 0x0: ... (ERROR_BAD_FORMAT)`` and decodes the other
files; ``to_arrow`` (which raised, returning nothing) and ``decode_range`` (whose row had no
offset and the Win32 code's generic text about loading a program) give the same rows and one
issue row: the file, the offset, the same reason. The issues of a run are in file order, as
fmt's warnings are (a run meets the buffer index's problems before its records')."""
from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from arrowhelp import fmt

from wpptrace.decoder import load_tmf, to_arrow
from wpptrace.decoder.arrow import decode_range

NOT_A_TRACE = ("cannot read: expected a 72-byte WMI_BUFFER_HEADER, the file has 24 bytes "
               "(ERROR_BAD_FORMAT)")


@pytest.fixture
def garbage(tmp_path):
    path = tmp_path / "garbage.etl"
    path.write_bytes(b"hello world, not a trace")
    return path


def test_to_arrow_leaves_an_unreadable_file_out_as_fmt_does(garbage, fmt_data, tmp_path):
    good, tmf = fmt_data / "wppemitter-sample.etl", fmt_data / "tmf"
    missing = tmp_path / "missing.etl"
    run = to_arrow([garbage, good, missing], tmf=tmf)
    table = run.read_all()
    assert set(table.column("etl").to_pylist()) == {str(good)}
    assert run.issues.to_pylist() == [
        {"etl": str(garbage), "offset": 0, "message": NOT_A_TRACE},
        {"etl": str(missing), "offset": None,
         "message": "cannot read: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"}]
    assert str(run.errors[0]) == f"{garbage}: offset 0x0: {NOT_A_TRACE}"
    assert str(run.errors[1]).startswith(f"{missing}: cannot read: ")

    out = tmp_path / "out.parquet"              # fmt -f parquet: the same rows, the same reasons
    code, _stdout, err = fmt([garbage, good, missing], [tmf], "parquet", str(out))
    assert code == 1
    assert err.splitlines() == [
        f"wpptrace fmt: error: {garbage}: cannot read: offset 0x0: {NOT_A_TRACE[len('cannot read: '):]}",
        f"wpptrace fmt: error: {run.errors[1]}"]
    assert pq.read_table(out).to_pylist() == table.to_pylist()


def test_to_arrow_with_no_readable_input_raises_the_error_fmt_reports(garbage, fmt_data, tmp_path):
    """No input readable at all: fmt exits 1 with an error and ``to_arrow`` raises the first
    input's Win32Error (the file named) instead of an empty run; ``decode_range`` (a fleet's
    partition) still gives its issue row (above)."""
    from wpptrace._cliutil import input_problem
    from wpptrace.winerror import Win32Error

    missing, tmf = tmp_path / "missing.etl", fmt_data / "tmf"
    code, _stdout, err = fmt([garbage, missing], [tmf], "parquet", str(tmp_path / "out.parquet"))
    assert code == 1
    with pytest.raises(Win32Error) as raised:
        to_arrow([garbage, missing], tmf=tmf)
    assert (raised.value.name, raised.value.filename) == ("ERROR_BAD_FORMAT", str(garbage))
    assert err.splitlines()[0] == f"wpptrace fmt: error: {input_problem(str(garbage), raised.value)}"
    with pytest.raises(Win32Error, match="ERROR_FILE_NOT_FOUND"):
        to_arrow(missing, tmf=tmf)


def test_decode_range_gives_the_same_issue_row(garbage, fmt_data):
    table, issues = decode_range(str(garbage), None, load_tmf(fmt_data / "tmf"))
    assert table.num_rows == 0
    assert issues.to_pylist() == [{"etl": str(garbage), "offset": 0, "message": NOT_A_TRACE}]


def test_issues_are_in_file_order_as_fmt_lists_them(bench_fmt, tmp_path):
    """Garbage inside a data buffer (met decoding its records) before a buffer header
    overwritten further on (met reading the buffer index, first)."""
    path = tmp_path / "damaged.etl"
    bench_fmt.generate(path, 6_000)
    data = bytearray(path.read_bytes())
    data[2 * 65536 + 20_000: 2 * 65536 + 20_096] = b"\xa5" * 96
    data[4 * 65536: 4 * 65536 + 0x30] = b"\x00" * 0x30
    path.write_bytes(bytes(data))
    run = to_arrow(path, tmf=str(bench_fmt.TMF_DIR))
    run.read_all()
    met = [issue.offset for issue in run.errors]
    assert met != sorted(met)                  # (the order they are met in: not the file's)
    issues = [(r["offset"], r["message"]) for r in run.issues.to_pylist()]
    assert [offset for offset, _ in issues] == sorted(met)
    _code, _stdout, err = fmt([path], [bench_fmt.TMF_DIR], "jsonl", str(tmp_path / "out.jsonl"))
    warned = [(int(m[1], 16), m[2]) for m in
              re.finditer(rf"^wpptrace fmt: warning: {re.escape(str(path))}: offset (0x[0-9a-f]+): "
                          r"(.*)$", err, re.M)]
    assert issues == warned
    _table, ranged = decode_range(str(path), None, load_tmf(str(bench_fmt.TMF_DIR)))
    assert [(r["offset"], r["message"]) for r in ranged.to_pylist()] == issues
