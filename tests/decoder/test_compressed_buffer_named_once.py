"""Regression: a problem the walk finds inside a compressed buffer names the buffer once.

It read "offset 0x400: buffer 1 (compressed, at file offset 0x400): decompressed offset
0xaa0: buffer 1: expected a record size ...": the walk's own "buffer N: " came after the
compressed buffer's prefix, which already names it.
"""
from __future__ import annotations

import io
import struct
import uuid

import dec_etlgen as gen
from dec_xpress_encoder import compress
from wpptrace.decoder.etlfile import EtlFile

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
SIZE = 4096


def test_a_compressed_buffers_walk_issue_names_the_buffer_once():
    """A damaged record inside a compressed buffer: the buffer and its file offset are said
    once, before the decompressed offset."""
    mode = 0x1 | 0x4000000                        # SEQUENTIAL | EVENT_TRACE_COMPRESSED_MODE
    first = gen.buffer([gen.logfile_header_record(SIZE, 2, 1, mode=mode)], 512, 0, 0,
                       buffer_type=4, flag=0x21)
    records = [gen.message(10 + i, G, 1000 + i) for i in range(3)]
    plain = bytearray(gen.buffer(records, SIZE, 1, 0))
    used = struct.unpack_from("<I", plain, 4)[0]
    bad = 0x48 + len(gen._pad8(records[0]))
    struct.pack_into("<H", plain, bad, 2)         # the second record's Size: below a header
    stream = compress(bytes(plain[0x48:used]))
    head = bytearray(plain[:0x48])
    struct.pack_into("<I", head, 0, 0x48 + len(stream))      # BufferSize: as stored
    struct.pack_into("<H", head, 0x34, 0x20 | 0x40)          # BufferFlag: compressed
    with EtlFile(io.BytesIO(first + bytes(head) + stream), name="c.etl") as etl:
        etl.scan()
        walk = [str(e) for e in etl.errors if "decompressed offset" in str(e)]
    assert walk and all(w.count("buffer 1") == 1 for w in walk), walk
    assert walk[0].startswith("c.etl: offset 0x200: buffer 1 (compressed, at file offset 0x200): "
                              f"decompressed offset {bad:#x}: expected"), walk
