"""Regression: an MSF directory of many streams is kept in a few bytes a stream.

The reader kept a Python tuple (size, pages) per stream: 1,000,000 empty streams in a 4 MB file
took 116 MB, where the module promises memory bounded by the file. Sizes and page-list starts
are now 32-bit numbers: what reading the directory allocates stays within three times its size,
as msf.py promises (an array allocated at its size, no third copy of the directory's bytes).
"""
from __future__ import annotations

import tracemalloc

from wpptrace.tmf.pdb.msf import MsfFile

STREAMS = 1_000_000


def test_a_directory_of_a_million_empty_streams_costs_a_few_bytes_each(msf_tools):
    image = msf_tools.build_msf([b""] * STREAMS + [None, b"last stream"])
    tracemalloc.start()
    try:
        msf = MsfFile(image)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # what msf.py promises: three times the directory (its bytes, a size and a page-list start a
    # stream), plus its ~1,000 page numbers and their owners while read (~72 KB)
    assert peak < 3 * msf.directory_bytes + 100_000   # (a tuple a stream: 18 times the directory)
    assert msf.num_streams == STREAMS + 2
    assert msf.stream_size(0) == 0 and msf.stream_size(STREAMS) is None and not msf.has_stream(STREAMS)
    assert msf.stream(STREAMS + 1).data == b"last stream"
    assert msf.stream(7).data == b""
