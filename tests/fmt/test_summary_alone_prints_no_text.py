"""fmt with nobody to read its text (``tracefmt -summaryonly``; standard output's reader gone
while a summary is asked for) printed every row anyway, half of such a run's work, and threw
the text away. The C renderer now decides each row as it does when printing it (the rows it
leaves to Python, the rows it counts) and prints none; the summary is the full run's, byte for
byte, on the corpus captures and the driver trace, in one process and with -j 2."""
from __future__ import annotations

import io
import os
import struct
import uuid

import etlgen
import pytest
from fmthelp import run_fmt_capture

from wpptrace import tmf
from wpptrace.decoder._hazmat import RowPrinter
from wpptrace.decoder.engine import FileSource
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.wpp import WppDecoder
from wpptrace.decoder.wpp_rows import RowView

CAPTURES = ("wppemitter-sample.etl", "wppenum-sample.etl", "wppstr-sample.etl",
            "wpptypes-sample.etl")
EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")


def _inputs(fmt_data, fmt_tmf, driver):
    return [(fmt_data / name, fmt_tmf) for name in CAPTURES] + [driver]


def _text(decoder: WppDecoder, path) -> bytes:
    view = RowView()
    with EtlFile(str(path)) as etl:
        return b"".join(bytes(chunk) for chunk in
                        decoder.format(FileSource(etl).ordered(view), view, "text"))


def _counts(decoder: WppDecoder) -> tuple:
    c = decoder.counters
    return (c.events, c.messages, c.formatted, c.unknown, c.format_errors, c.non_wpp, c.headers,
            decoder.summary_table())


def test_rows_are_decided_but_not_printed(fmt_data, fmt_tmf, driver):
    for path, tmfs in _inputs(fmt_data, fmt_tmf, driver):
        tmfset = tmf.load(tmfs)
        full = WppDecoder(tmfset, utc=True)
        printed = _text(full, path).splitlines(keepends=True)
        quiet = WppDecoder(tmfset, utc=True)
        quiet.text_wanted = False
        left = _text(quiet, path).splitlines(keepends=True)
        assert _counts(quiet) == _counts(full), path.name
        # only the lines Python prints are left: the log-file header's, at least
        assert left and left[0].endswith(b"EventTrace\n"), path.name
        assert len(left) < len(printed), path.name
        it = iter(printed)
        assert all(line in it for line in left), path.name      # in the full text's order


def _summary(path) -> list[str]:
    return [line for line in open(path, encoding="utf-8").read().splitlines()
            if not line.startswith("Elapsed")]


@pytest.mark.parametrize("jobs", [1, 2])
def test_summary_alone_is_the_full_runs(fmt_data, fmt_tmf, driver, tmp_path, jobs):
    for path, tmfs in _inputs(fmt_data, fmt_tmf, driver):
        options = dict(tmf_dirs=[str(tmfs)], utc=True, jobs=jobs, cache=False)
        code, _out, err = run_fmt_capture(path, output=str(tmp_path / "out.txt"),
                                          summary=str(tmp_path / "full.sum"), **options)
        alone = run_fmt_capture(path, output=os.devnull, text_wanted=False,
                                summary=str(tmp_path / "alone.sum"), **options)
        assert alone == (code, "", err), path.name
        assert _summary(tmp_path / "alone.sum") == _summary(tmp_path / "full.sum"), path.name


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory):
    """Many chunks of rows: most of them come after the reader has left."""
    path = tmp_path_factory.mktemp("alone") / "big.etl"
    etlgen.write_messages(path, ((EMITTER, 10, struct.pack("<ii", i, i), 0x10, 0x20, i & 1,
                                  etlgen.T0 + i * 100) for i in range(40_000)), buffer_size=16384)
    return path


class _ReaderLeaves(io.StringIO):
    """Standard output whose reader leaves after the first write."""

    def write(self, text: str) -> int:
        if self.tell():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize("jobs", [1, 2])
def test_reader_gone_prints_no_more_text(big_trace, fmt_tmf, tmp_path, monkeypatch, jobs):
    wanted = []
    real_print = RowPrinter.print

    def print_(self, *args, **kwargs):
        wanted.append(kwargs.get("text_wanted", True))
        return real_print(self, *args, **kwargs)

    monkeypatch.setattr(RowPrinter, "print", print_)
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    options = dict(files=[str(big_trace)], tmf_dirs=[str(fmt_tmf)], utc=True, cache=False,
                   hold_heap=False, jobs=jobs)
    err = io.StringIO()
    assert run_fmt(FmtOptions(summary=str(tmp_path / "gone.sum"), **options),
                   out=_ReaderLeaves(), err=err) == 0, err.getvalue()
    if jobs == 1:       # (with -j 2 the workers, other processes, print their windows on)
        assert wanted[0] and not wanted[-1]
        assert wanted == sorted(wanted, reverse=True)      # once gone, never printed again
    assert run_fmt(FmtOptions(summary=str(tmp_path / "full.sum"), output=str(tmp_path / "o.txt"),
                              **options), out=io.StringIO(), err=io.StringIO()) == 0
    assert _summary(tmp_path / "gone.sum") == _summary(tmp_path / "full.sum")
