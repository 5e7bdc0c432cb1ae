"""An independent reader of our .etl + TMF files that renders text as a Windows tool does.

It shares nothing with wpptrace's decoder: records come from dissect.etl, the TMF is read with a
few regular expressions, and the arguments are rendered with the rules of Windows' tracefmt:
ItemString is text in the ANSI code page (Windows-1252 here, as on Western-European Windows),
ItemWString UTF-16, integers through their printf spec, ItemHexDump/ItemHEXDump a USHORT count
and bytes. It handles only the items the tests use and fails loudly on any other.

Messages come in the order ProcessTrace gives them, not in file order: each processor writes
its own stream of buffers and a file holds the streams' buffers as they were flushed, so a
thread that moved to another processor has its later messages in a buffer that may come
first. As Windows does, each stream's buffers go by SequenceNumber and the streams are merged
by message timestamp.
"""
from __future__ import annotations

import heapq
import re
import struct
import uuid

_TYPEV = re.compile(r'^#typev\s+\S+\s+(\d+)\s+"(.*)"\s+//', re.M)
_ARG = re.compile(r"^.*,\s*(Item\w+)(?:\([^)]*\))?\s+--\s+(\d+)\s*$")
_INSERT = re.compile(r"%(\d+)(?:!([^!]*)!)?")
# WPP message header with TRACE_MESSAGE_SEQUENCE|GUID|TIMESTAMP|SYSTEMINFO: sequence, GUID,
# timestamp, thread id, process id; the arguments follow.
_HEADER = 4 + 16 + 8 + 4 + 4
_TIMESTAMP = 4 + 16


def read_tmf(text: str) -> dict[tuple[uuid.UUID, int], tuple[str, list[str]]]:
    """(message GUID, number) -> (format, item per insert)."""
    guid = uuid.UUID(text.splitlines()[2].split()[0])
    messages = {}
    for m in _TYPEV.finditer(text):
        block = text[m.end():].split("{", 1)[1].split("}", 1)[0]
        items = [_ARG.match(line).group(1) for line in block.strip().splitlines() if line.strip()]
        messages[(guid, int(m.group(1)))] = (m.group(2), items)
    return messages


def _take(item: str, data: bytes, pos: int) -> tuple[object, int]:
    if item == "ItemString":
        end = data.index(b"\0", pos)
        return data[pos:end].decode("cp1252", "replace"), end + 1
    if item == "ItemWString":
        end = pos
        while data[end:end + 2] != b"\0\0":
            end += 2
        return data[pos:end].decode("utf-16-le", "replace"), end + 2
    if item in ("ItemLongLong",):
        return struct.unpack_from("<q", data, pos)[0], pos + 8
    if item in ("ItemULongLong", "ItemLongLongX", "ItemLongLongXX"):
        return struct.unpack_from("<Q", data, pos)[0], pos + 8
    if item.lower() == "itemhexdump":
        (count,) = struct.unpack_from("<H", data, pos)
        return " ".join(f"{b:02X}" for b in data[pos + 2:pos + 2 + count]), pos + 2 + count
    raise NotImplementedError(item)


def _render(fmt: str, values: list[object]) -> str:
    def insert(m: re.Match) -> str:
        value = values[int(m.group(1)) - 10]
        spec = (m.group(2) or "s").replace("I64", "")
        return ("%" + spec) % value
    if fmt.startswith("%0"):
        fmt = fmt[2:]
    return _INSERT.sub(insert, fmt).replace("%%", "%")


def messages(etl_path: str, tmf_texts: list[str]) -> list[str]:
    """The text of every WPP message of the file, in ProcessTrace order."""
    from dissect.etl import ETL

    formats = {}
    for text in tmf_texts:
        formats.update(read_tmf(text))
    streams: dict[int, list[tuple[int, object]]] = {}   # processor -> [(SequenceNumber, buffer)]
    with open(etl_path, "rb") as fh:
        for buffer in ETL(fh).buffers():
            streams.setdefault(buffer.header.ProcessorIndex, []).append((buffer.header.SequenceNumber, buffer))
        merged = heapq.merge(*(_stream_messages(sorted(buffers, key=lambda b: b[0]))
                               for buffers in streams.values()), key=lambda m: m[0])
        return [_message_text(header, formats) for _, header in merged]


def _stream_messages(buffers: list[tuple[int, object]]):
    """(timestamp, header) of a processor stream's messages, in stream order."""
    for _, buffer in buffers:
        for record in buffer:
            header = record.header
            if type(header).__name__ == "MessageTraceHeader":
                yield struct.unpack_from("<q", bytes(header.payload), _TIMESTAMP)[0], header


def _message_text(header, formats) -> str:
    fmt, items = formats[(header.provider_id, header.id)]
    data, pos, values = bytes(header.payload)[_HEADER:], 0, []
    for item in items:
        value, pos = _take(item, data, pos)
        values.append(value)
    assert pos == len(data), "argument bytes left over"
    return _render(fmt, values)
