"""Rows per record batch are checked once, by ``decoder.arrow.checked_batch_rows``, on every way
of asking for them: ``to_arrow``, ``ArrowRun``, ``ArrowBuilder`` (made or changed) and ``fmt
--batch-rows``. ``to_arrow(..., batch_rows=0)`` used to be taken as it was (ArrowRun set the
builder's value past the builder's own check): a batch of 0 rows is never full, and the
iteration made empty batches forever while its memory grew. Each check here raises or exits
before anything is read, so none of these tests iterates a run."""
from __future__ import annotations

import pytest
from arrowhelp import fmt

from wpptrace.cli import main
from wpptrace.decoder import load_tmf, to_arrow
from wpptrace.decoder.arrow import MAX_BATCH_ROWS, ArrowBuilder, ArrowRun, _Context

BAD = [0, -1, MAX_BATCH_ROWS + 1, 2.5, True, "100"]


@pytest.fixture
def capture(fmt_data):
    return fmt_data / "wpptypes-sample.etl"


@pytest.mark.parametrize("rows", BAD)
def test_to_arrow_refuses_a_batch_size_before_reading(rows, fmt_data, capture, tmp_path):
    with pytest.raises(ValueError, match=r"^batch_rows must be a whole number of rows from 1 to "
                                         r"2,147,483,647, not "):
        to_arrow(capture, tmf=fmt_data / "tmf", batch_rows=rows)
    # checked before any file is opened: a missing file is not what is reported
    with pytest.raises(ValueError, match="batch_rows"):
        to_arrow(tmp_path / "missing.etl", tmf=fmt_data / "tmf", batch_rows=rows)


@pytest.mark.parametrize("rows", [0, -1])
def test_arrow_run_and_builder_refuse_a_batch_size(rows, fmt_data, capture):
    tmfset = load_tmf(fmt_data / "tmf")
    with pytest.raises(ValueError, match="batch_rows"):
        ArrowRun([str(capture)], tmfset, batch_rows=rows)
    context = _Context(tmfset)            # a context's builder (decode_range's, reused)
    with pytest.raises(ValueError, match="batch_rows"):
        ArrowRun([str(capture)], tmfset, batch_rows=rows, context=context)
    assert context.builder.batch_rows == 65536          # left as it was
    with pytest.raises(ValueError, match="batch_rows"):
        ArrowBuilder(context.decoder, batch_rows=rows)
    with pytest.raises(ValueError, match="batch_rows"):
        context.builder.batch_rows = rows


def test_good_batch_sizes_are_taken(fmt_data, capture):
    run = to_arrow(capture, tmf=fmt_data / "tmf", batch_rows=3)
    assert [b.num_rows for b in run] == [3, 3]
    assert to_arrow(capture, tmf=fmt_data / "tmf", batch_rows=MAX_BATCH_ROWS).read_all().num_rows == 6


@pytest.mark.parametrize("form", ["parquet", "arrow"])
@pytest.mark.parametrize("rows", [0, -1])
def test_fmt_refuses_a_batch_size_as_a_usage_error(rows, form, fmt_data, capture, tmp_path):
    out = tmp_path / f"out.{form}"
    code, stdout, err = fmt([capture], [fmt_data / "tmf"], form, str(out), batch_rows=rows)
    assert code == 2 and stdout == ""
    assert err == (f"wpptrace fmt: error: --batch-rows must be a whole number of rows from 1 to "
                   f"2,147,483,647, not {rows}\n")
    assert list(tmp_path.iterdir()) == []


def test_fmt_command_line_batch_rows_0_is_refused_and_no_option_is_the_default(
        fmt_data, capture, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    args = ["fmt", str(capture), "-p", str(fmt_data / "tmf"), "-f", "parquet", "-o", str(out)]
    assert main([*args, "--batch-rows", "0"]) == 2
    assert "--batch-rows must be a whole number of rows from 1" in capsys.readouterr().err
    assert not out.exists()
    assert main(args) == 0 and out.exists()


@pytest.mark.parametrize("form", ["text", "csv", "jsonl"])
def test_batch_rows_with_a_text_format_is_a_usage_error(form, fmt_data, capture, tmp_path):
    out = tmp_path / "out.txt"
    code, stdout, err = fmt([capture], [fmt_data / "tmf"], form, str(out), batch_rows=100)
    assert code == 2 and stdout == ""
    assert err == f"wpptrace fmt: error: --batch-rows is for -f parquet and -f arrow, not -f {form}\n"
    assert not out.exists()


@pytest.mark.parametrize("form", ["text", "csv", "jsonl"])
def test_all_records_with_a_text_format_is_a_usage_error(form, fmt_data, capture, tmp_path):
    """--all-records adds rows to parquet/arrow only: with a text format it did nothing, silently."""
    out = tmp_path / "out.txt"
    code, stdout, err = fmt([capture], [fmt_data / "tmf"], form, str(out), all_records=True)
    assert code == 2 and stdout == ""
    assert err == f"wpptrace fmt: error: --all-records is for -f parquet and -f arrow, not -f {form}\n"
    assert not out.exists()


def test_fmt_command_line_all_records_with_text_is_refused(fmt_data, capture, tmp_path, capsys):
    out = tmp_path / "out.txt"
    assert main(["fmt", str(capture), "-p", str(fmt_data / "tmf"), "-o", str(out),
                 "--all-records"]) == 2
    assert capsys.readouterr().err == ("wpptrace fmt: error: --all-records is for -f parquet and "
                                       "-f arrow, not -f text\n")
    assert not out.exists()
