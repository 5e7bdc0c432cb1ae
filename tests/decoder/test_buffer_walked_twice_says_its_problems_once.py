"""Regression: a buffer walked twice listed its problems twice.

A window of ``fmt -j`` first walks a buffer only for its latest time, then, when the buffer
reaches into the window, walks it again for its rows. Each walk added the buffer's problems
to ``Buffer.issues``; the read log drops a problem it already lists, but past the problems
it keeps (``MAX_ISSUES``) it only counts them, so a damaged file with many problems said
"19 more problems not listed" with -j 2 where -j 1 said 18.
"""
from __future__ import annotations

import uuid

import dec_etlgen as gen
from wpptrace.decoder.etlfile import EtlFile

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
SIZE = 4096


def test_a_buffer_walked_twice_keeps_one_list_of_its_problems(tmp_path):
    streams = [(0, 1, [gen.message(i, G, 1000 + i) for i in range(4)])]
    data = bytearray(gen.etl_file(streams, buffer_size=SIZE, processors=1))
    data[SIZE + 0x48 + 2:SIZE + 0x48 + 4] = b"\xee\xee"       # the data buffer's first record marker
    path = tmp_path / "damaged.etl"
    path.write_bytes(bytes(data))
    with EtlFile(path) as etl:
        info = [i for i in etl.buffer_index() if i.file_offset == SIZE][0]
        buf = etl.read_buffer(info)
        buf.walk(collect=False)
        once = [(issue.offset, issue.message) for issue in buf.issues]
        buf.walk(collect=True)
        assert [(issue.offset, issue.message) for issue in buf.issues] == once
        assert len(once) == 1 and "expected a record marker" in once[0][1]
