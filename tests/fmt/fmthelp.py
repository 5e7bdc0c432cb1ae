"""Helpers shared by the fmt tests (imported as a plain module: conftest puts this folder on sys.path)."""
from __future__ import annotations

import io


def run_fmt_capture(*files, **options):
    """Run the fmt engine in-process; returns (exit code, stdout text, stderr text)."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    out, err = io.StringIO(), io.StringIO()
    opts = FmtOptions(files=[str(f) for f in files], **options)
    code = run_fmt(opts, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def row_lines(decoder, etl) -> list[str]:
    """The formatter's lines for an open EtlFile, through the engine's compact rows."""
    from wpptrace.decoder.engine import FileSource
    from wpptrace.decoder.wpp_rows import RowView

    view = RowView()
    return [line for batch in decoder.format_rows(FileSource(etl).ordered(view), view)
            for line in batch]
