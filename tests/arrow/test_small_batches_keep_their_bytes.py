"""A record batch of a few rows holds memory for its rows, not the room its C buffers grew to.

Regression: the C column buffers start at 64 KiB each, and a batch took them over as they
were; with ``--batch-rows 1`` (or a live session's small batches) every batch kept some
1.4 MB of address space for a few bytes of values, and a Parquet row group holds all of its
batches until it is encoded: the thousand one-row batches of a small trace took 1.4 GB of
address space, and ``fmt -f parquet`` and ``-f arrow`` aborted (``std::bad_alloc``) under a
2 GB limit.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import uuid

import etlgen

from wpptrace.decoder import to_arrow

GUID = uuid.UUID("7b1c2d3e-4f50-4162-8374-a5b6c7d8e9f0")


def test_small_batches_keep_their_bytes(tmp_path):
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc_usable_size.restype = ctypes.c_size_t
    libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
    (tmp_path / f"{GUID}.tmf").write_text(
        f"{GUID} T // SRC=t.c\n#typev t_c1 10 \"%0v=%10!d!\" //   FUNC=f\n"
        "{\nv, ItemLong -- 10\n}\n", encoding="ascii")
    etl = tmp_path / "small.etl"
    etlgen.write_messages(etl, [(GUID, 10, k.to_bytes(4, "little"), 1, 2, 0, etlgen.T0 + k,
                                 etlgen.FLAGS_CORPUS) for k in range(3)])
    batches = list(to_arrow(str(etl), tmf=str(tmp_path), batch_rows=1))
    assert [b.num_rows for b in batches] == [1, 1, 1, 1]
    for batch in batches[1:]:                   # the messages' rows (C's buffers)
        for column in ("cpu", "pid", "tid", "number", "sequence"):
            data = batch.column(column).buffers()[1]
            assert data.size == batch.column(column).type.bit_width // 8
            assert libc.malloc_usable_size(data.address) < 1024, column
