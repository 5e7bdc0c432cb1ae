"""Regression: an MSF directory of many streams is kept in a few bytes a stream.

The reader kept a Python tuple (size, pages) per stream: 1,000,000 empty streams in a 4 MB file
took 116 MB, where the module promises memory bounded by the file. Sizes and page-list starts
are now 32-bit numbers: what reading the directory allocates stays within a few times its size.
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
    assert peak < 5 * len(image)            # (a tuple a stream: 18 times the image)
    assert msf.num_streams == STREAMS + 2
    assert msf.stream_size(0) == 0 and msf.stream_size(STREAMS) is None and not msf.has_stream(STREAMS)
    assert msf.stream(STREAMS + 1).data == b"last stream"
    assert msf.stream(7).data == b""
