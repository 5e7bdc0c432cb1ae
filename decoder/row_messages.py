"""``DecodedMessage``s made straight from the engine's rows: the "messages" output of
``WppDecoder.format``.

Per merged chunk the C renderer prints the text of every row it can; each such row becomes a
``RowMessage`` holding only its text, its row ref and the chunk's shared state (the chunk's
buffers and row tables, the decoder's key entries). Its other fields are read from the row
when first asked for and its typed arguments decoded when first read, so a caller that wants
the text pays for one object per message. A message keeps its chunk's buffers alive. Rows
the renderer leaves to Python (format errors, argument bytes it cannot print) are decoded as
records are: a ``DecodedMessage`` over the decoder's ``WppMessage``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ._hazmat import ETL, ROW
from .messages import Args, DecodedMessage
from .wpp import HEADER, OK, UNKNOWN
from .wpp_rows import NO_TIME, ROW_FORMAT, ROW_INDEX, ROW_SIZE

__all__ = ["MessageRows", "RowMessage"]

_HAS_GUID = ETL.ETLRD_HAS_GUID
_POINTER64 = ETL.TRACE_MESSAGE_POINTER64
_POINTER_FLAGS = ETL.TRACE_MESSAGE_POINTER64 | ETL.TRACE_MESSAGE_POINTER32
(_TS, _MILLI, _KEY, _TID, _PID, _SEQ, _CPU, _PRESENT) = (
    ROW_INDEX[name] for name in ("timestamp", "milli", "key", "thread_id", "process_id",
                                 "sequence", "cpu", "present"))
_unpack = ROW_FORMAT.unpack_from


# what the typed arguments need of a row: a small tuple, not the whole row kept
_unpack_block = ROW.some("key", "payload_offset", "payload_size", "flags").unpack_from


def _no_args(buffer: bytes, offset: int, size: int) -> Args:
    return Args()


class MessageRows:
    """The "messages" output of one run of the formatting loop: ``chunk`` makes each chunk's
    messages; ``reader`` their typed arguments (one ``Args`` class per message signature)."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.args_classes: dict[tuple, type[Args]] = {}   # (names, types) -> its Args class
        # pointer size -> {entry: its reader}
        self.readers: dict[int, dict[Any, Callable[[bytes, int, int], Args]]] = {}

    def reader(self, entry: Any, pointer_size: int) -> Callable[[bytes, int, int], Args]:
        """The function making the ``Args`` of a message of ``entry`` from (buffer, offset,
        size) of its argument block, at this pointer size (made once per message)."""
        readers = self.readers.setdefault(pointer_size, {})
        read = readers.get(entry)
        if read is None:
            formatter = entry.formatter
            if formatter is None:              # Unknown: no arguments
                read = _no_args
            else:
                signature = formatter.arg_names_items()
                cls = self.args_classes.get(signature)
                if cls is None:
                    cls = self.args_classes[signature] = Args.of_signature(*signature)
                read = formatter.values_reader(pointer_size, cls)
            readers[entry] = read
        return read

    def chunk(self, text: Any, ends: list[int], items: Sequence[int],
              holes: list[tuple[int, int]], view) -> list[DecodedMessage]:
        """The messages of one chunk of the loop (the C renderer's UTF-8 ``text`` without
        prefixes, the output length after each of the ``items``, the rows it left to
        Python), the log-file header and the records that are not messages left out."""
        decoder = self.decoder
        chunk = _Chunk(self, decoder._key_entries, view)
        whole = str(text, "utf-8")
        plain = len(whole) == len(text)     # ASCII: byte offsets are character offsets
        out: list[DecodedMessage] = []
        append = out.append
        start = 0
        if plain and not holes:
            for ref, end in zip(items, ends):
                if end != start:               # else not a TraceMessage record: counted, skipped
                    append(RowMessage(chunk, ref, whole[start:end - 1]))
                    start = end
            return out
        raw = bytes(text)
        hole_rows = {row for row, _pos in holes}
        for i, (ref, end) in enumerate(zip(items, ends)):
            if i in hole_rows:
                m = decoder._row_message(ref, view)
                if m is not None and m.status != HEADER:
                    append(DecodedMessage(m))
            elif end != start:
                append(RowMessage(chunk, ref, whole[start:end - 1] if plain else
                                  str(raw[start:end - 1], "utf-8")))
                start = end
        return out


class _Chunk:
    """What the messages of one chunk share: their run, the decoder's key entries (row key
    id -> its entry) and, per engine slot, the buffer bytes, row table and source."""

    __slots__ = ("run", "entries", "datas", "blobs", "sources")

    def __init__(self, run: MessageRows, entries: list, view) -> None:
        self.run, self.entries = run, entries
        # the view's lists are refilled for the next buffers: keep this chunk's
        self.datas, self.blobs, self.sources = list(view.datas), list(view.blobs), list(view.sources)


class RowMessage(DecodedMessage):
    """A ``DecodedMessage`` of a row the C renderer printed (status "ok" or "unknown"):
    the same fields, read from the row when first used."""

    __slots__ = ("_chunk", "_ref", "_text", "_row")

    def __init__(self, chunk: _Chunk, ref: int, text: str) -> None:
        # the row stands for the base's WppMessage: unpacked and decoded when first read
        self._chunk, self._ref, self._text = chunk, ref, text
        self._row = self._args = None

    def _fields(self) -> tuple:
        row = self._row
        if row is None:
            ref = self._ref
            row = self._row = _unpack(self._chunk.blobs[ref >> 32], (ref & 0xFFFFFFFF) * ROW_SIZE)
        return row

    @property
    def _entry(self) -> Any:
        return self._chunk.entries[self._fields()[_KEY]]

    text = property(lambda self: self._text, doc="the message text, without the prefix")
    guid = property(lambda self: self._entry.guid if self._fields()[_PRESENT] & _HAS_GUID else None,
                    doc="the message GUID")
    number = property(lambda self: self._entry.number, doc="the message number")
    level_name = property(lambda self: self._entry.markers.get("LEVEL", ""),
                          doc="the TMF's LEVEL= text")
    flags = property(lambda self: self._entry.markers.get("FLAGS", ""), doc="the TMF's FLAGS= text")
    function = property(lambda self: self._entry.markers.get("FUNC", ""), doc="the TMF's FUNC= text")
    file = property(lambda self: self._entry.markers.get("FILE", ""),
                    doc="the source file the TMF names")
    _source_line = property(lambda self: self._entry.markers.get("LINE", ""))
    component = property(lambda self: self._entry.component, doc="the component (prefix %1)")
    name = property(lambda self: self._entry.name, doc="the message name (prefix %2)")
    pid = property(lambda self: self._fields()[_PID], doc="the process id")
    tid = property(lambda self: self._fields()[_TID], doc="the thread id")
    cpu = property(lambda self: self._fields()[_CPU], doc="the processor number")
    sequence = property(lambda self: self._fields()[_SEQ], doc="the sequence number (0 if none)")
    status = property(lambda self: UNKNOWN if self._entry.unknown is not None else OK,
                      doc='"ok" or "unknown"')
    error = property(lambda self: "", doc="empty: the renderer printed the arguments")

    @property
    def filetime(self) -> int | None:
        """The FILETIME of the record."""
        row = self._fields()
        if row[_MILLI] == NO_TIME:
            return None
        return self._chunk.sources[self._ref >> 32].clock.to_filetime(row[_TS])

    @property
    def args(self) -> Args:
        """The typed argument values in insert order (``args["name"]`` by TMF name)."""
        args = self._args
        if args is None:
            chunk, ref = self._chunk, self._ref
            slot = ref >> 32
            key, offset, size, flags = _unpack_block(chunk.blobs[slot], (ref & 0xFFFFFFFF) * ROW_SIZE)
            entry = chunk.entries[key]
            # buffers.message_pointer_size, inlined
            psize = ((8 if flags & _POINTER64 else 4) if flags & _POINTER_FLAGS
                     else chunk.sources[slot].pointer_size)
            readers = chunk.run.readers.get(psize)
            read = readers.get(entry) if readers is not None else None
            if read is None:
                read = chunk.run.reader(entry, psize)
            args = self._args = read(chunk.datas[slot], offset, size)
        return args
