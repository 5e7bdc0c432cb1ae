"""Every real corpus .etl (kernel, manifest, TraceLogging, compressed, 32-bit; no WPP) runs through
fmt without a failure: every record is counted (the same number dissect.etl iterates, computed
here in the same run) and, having no TraceMessage record, skipped."""
from __future__ import annotations

import pytest
from dissect.etl import ETL
from fmthelp import run_fmt_capture

FILES = [
    "airbus-cert__etl-parser/ShutdownPerfDiagLogger.etl",   # system logger, 17k records
    "microsoft__perfview/smallEtlFile.etl",                 # compressed, 32-bit pointers
    "microsoft__perfview/SelfDescribingSingleEvent.etl",    # compressed
    "jtmoon79__super-speedy-syslog-searcher/WindowsUpdate.20251008.140245.443.8.etl",  # lost events
    "microsoft__krabsetw/powershell.etl",
]


@pytest.mark.parametrize("name", FILES)
def test_non_wpp_files_are_counted_and_skipped(name, corpus, tmp_path):
    path = corpus / "etl" / name
    with open(path, "rb") as fh:
        expected = sum(1 for _ in ETL(fh))
    summary = tmp_path / "s.sum"
    code, out, err = run_fmt_capture(path, summary=str(summary), noprefix=True)
    assert code == 0, err
    assert out.splitlines() == ["EventTrace"]  # only the log-file header line
    text = summary.read_text()
    assert f"Total Events  Processed {expected}\n" in text
    assert "Total Formats Unknown   0\n" in text
