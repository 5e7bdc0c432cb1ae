"""Damage helpers shared by the damage tests and the long fuzz script: read a byte string
as an .etl file and list its records as comparable keys."""
from __future__ import annotations

import io

from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records
from wpptrace.winerror import Win32Error


def record_keys(data: bytes, ordered: bool = False) -> tuple[list[tuple], EtlFile | None]:
    """(buffer file offset, record offset in buffer, raw bytes) of every record, and the
    reader (None if the file could not be opened at all: less than one buffer header)."""
    try:
        etl = EtlFile(io.BytesIO(data), name="<damaged>")
    except Win32Error:
        return [], None
    if ordered:
        index = {b.index: b.file_offset for b in etl.buffer_index()}
        keys = [(index[r.buffer_index], r.offset, bytes(r.raw)) for r in ordered_records(etl)]
        return keys, etl
    keys = []
    for buf in etl.iter_buffers():              # the raw walker tuples: fast on big files
        data = buf.data
        keys += [(buf.file_offset, t[0], data[t[0]:t[0] + t[1]]) for t in buf.walk()]
        etl.account(buf)
    return keys, etl


def record_spans(data: bytes) -> list[tuple[int, int, tuple]]:
    """(file start, file end, key) of each record of an uncompressed file."""
    keys, _ = record_keys(data)
    return [(b + o, b + o + len(raw), (b, o, raw)) for b, o, raw in keys]
