"""Regression: the header line of a file whose first buffer header is junk.

When buffer 0's WMI_BUFFER_HEADER is no buffer header (a BufferType past the known ones) but
the log-file header record's facts were read, the header event is made from those facts and
nothing is taken from the junk: its processor is 0, in fmt's rows and in the per-record path
alike. (Found by fuzz_fmt_damage: the per-record reference took the junk's ProcessorIndex.)
"""
from __future__ import annotations

from fmthelp import reference_lines, row_lines

from wpptrace import tmf
from wpptrace.decoder._hazmat import BUFFER_HEADER
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.wpp import WppDecoder


def test_the_header_line_takes_no_processor_from_a_junk_buffer_header(fmt_data, tmp_path):
    data = bytearray((fmt_data / "wppemitter-sample.etl").read_bytes())
    BUFFER_HEADER.pack_into(data, 0, BufferType=9, ProcessorIndex=2)
    damaged = tmp_path / "junk-first-buffer.etl"
    damaged.write_bytes(bytes(data))
    tmfset = tmf.load(str(fmt_data / "tmf"))
    for form in ("text", "csv", "jsonl"):
        with EtlFile(damaged) as etl:
            assert etl.header_read
            fast = row_lines(WppDecoder(tmfset, utc=True), etl, form)
        with EtlFile(damaged) as etl:
            slow = reference_lines(WppDecoder(tmfset, utc=True), etl, form)
        assert fast == slow
        header = fast[0]
        if form == "text":
            assert header.startswith("[0]") and header.endswith("[Header]EventTrace")
        elif form == "csv":
            assert header.startswith("Header,Header,") and ",0,[0]" in header   # processor, line
        else:
            assert '"status":"header"' in header and '"processor":0,' in header
