"""Cross-check with airbus-cert etl-parser (a second, independent reader): on files it can
read (uncompressed ones), the records of every buffer but the header buffer (which
etl-parser does not walk) are the same, kind by kind."""
from __future__ import annotations

import collections

import pytest

from wpptrace.decoder.etlfile import EtlFile

ETLPARSER_KINDS = {"SystemTrace": "system", "PerfInfo": "perfinfo", "TraceRecord": "full",
                   "EventRecord": "event", "WinTrace": "message"}
FILES = ["etl/airbus-cert__etl-parser/AMSITrace.etl",
         "etl/airbus-cert__etl-parser/lxcore_kernel.etl", "etl/microsoft__krabsetw/powershell.etl",
         "etl/microsoft__perfview/primitive-types.etl",
         "etl/jtmoon79__super-speedy-syslog-searcher/waasmedic.20251005_113019_195.etl",
         "wpp/guscatalano__findneedle/wppemitter-sample.etl",
         "wpp/guscatalano__findneedle/wppstr-sample.etl"]


def etlparser_kinds(path):
    from etl.etl import IEtlFileObserver, build_from_stream

    counts: collections.Counter = collections.Counter()

    class Observer(IEtlFileObserver):
        def on_event_record(self, event):
            counts["EventRecord"] += 1

        def on_trace_record(self, event):
            counts["TraceRecord"] += 1

        def on_perfinfo_trace(self, obj):
            counts["PerfInfo"] += 1

        def on_system_trace(self, obj):
            counts["SystemTrace"] += 1

        def on_win_trace(self, obj):
            counts["WinTrace"] += 1

    build_from_stream(path.read_bytes()).parse(Observer())
    return {ETLPARSER_KINDS[k]: n for k, n in counts.items()}


@pytest.mark.parametrize("name", FILES)
def test_counts_beyond_the_header_buffer_equal_etlparser(corpus, name):
    with EtlFile(corpus / name) as etl:
        ours = collections.Counter(r.kind for r in etl.iter_records() if r.buffer_index > 0)
    assert dict(ours) == etlparser_kinds(corpus / name)
