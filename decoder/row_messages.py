"""``DecodedMessage``s made straight from the engine's rows: the "messages" output of
``WppDecoder.format``.

Per merged chunk the C renderer prints the text of every row it can; each such row becomes a
``RowMessage`` holding only its text, its place in the chunk and the chunk's shared state
(the chunk's row refs, buffers and row tables, the decoder's key entries). Its other fields
are read from the row when first asked for, so a caller that wants the text pays for one
object per message. A message keeps its chunk's buffers alive.

Typed arguments are decoded when one message of the chunk first reads them, for the whole
chunk at once, in C (``decoder/csrc/wpp_values.c``): the values come back in one pool per
kind (integers, doubles, strings, GUIDs), which become Python values in a few calls (the
strings decoded as one text), then one tuple in row order; a message's ``args`` is a
slice of it. Messages whose arguments only Python decodes exactly (item types the renderer's
JSON kinds do not cover, bytes that do not fit, counted strings holding a NUL) read them as
before, through the formatter's ``values_reader``. Rows the renderer leaves to Python (format errors, argument bytes it
cannot print) are decoded as records are: a ``DecodedMessage`` over the decoder's
``WppMessage``.
"""
from __future__ import annotations

import threading
import uuid
from array import array
from typing import Any, Callable, Sequence

from ._hazmat import ETL, ROW, row_values
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
(_UNSIGNED, _SIGNED, _DOUBLE, _STRING, _GUID) = (
    ETL.WPPV_UNSIGNED, ETL.WPPV_SIGNED, ETL.WPPV_DOUBLE, ETL.WPPV_STRING, ETL.WPPV_GUID)


def _no_args(buffer: bytes, offset: int, size: int) -> Args:
    return Args()


class _KeyValues:
    """What the C decoder of a run's typed values reads per message key, built as keys are
    met: the key's value layout (``wpptrace.tmf.native.value_layout``) or none (Python's
    path), and its Args class. Chunks may be decoded from several threads: the tables grow
    under a lock, and each decoding call gets a snapshot that nothing changes."""

    def __init__(self, args_class: Callable[[Any], type[Args]]) -> None:
        self._args_class = args_class
        self._lock = threading.Lock()
        self._entries: list | None = None
        self._snapshot: tuple = (array("i"), b"", [None])

    def tables(self, entries: list) -> tuple[array, bytes, list]:
        """(per key id the offset of its layout in the layouts, -1 for none; the layouts;
        per key id + 1 (as the decoder gives rows) its Args class, None at 0) for the keys
        of ``entries`` (the decoder's key entries, one list for a whole run)."""
        snapshot = self._snapshot
        if entries is self._entries and len(snapshot[0]) == len(entries):
            return snapshot
        from wpptrace.tmf.native import value_layout

        with self._lock:
            if entries is not self._entries:   # another key table: its ids are its own
                self._entries = entries
                self._key_layout, self._layouts, self._classes = array("i"), bytearray(), [None]
                self._layout_at: dict[bytes, int] = {}
            for entry in entries[len(self._key_layout):]:
                formatter = entry.formatter
                if formatter is None:          # no arguments, as ``MessageRows.reader`` gives
                    layout, cls = [], Args
                else:
                    layout, cls = formatter.value_layout(), self._args_class(formatter)
                if layout is None:             # values only Python gives
                    self._key_layout.append(-1)
                    self._classes.append(None)
                    continue
                blob = value_layout(layout)
                at = self._layout_at.get(blob)
                if at is None:                 # messages share layouts: each is stored once
                    at = self._layout_at[blob] = len(self._layouts)
                    self._layouts += blob
                self._key_layout.append(at)
                self._classes.append(cls)
            # copies: the arrays grow while older snapshots are read (the classes list only
            # grows, so it is shared)
            snapshot = self._snapshot = (array("i", self._key_layout), bytes(self._layouts),
                                         self._classes)
        return snapshot


class MessageRows:
    """The "messages" output of one run of the formatting loop: ``chunk`` makes each chunk's
    messages; ``values`` decodes a chunk's typed arguments in C, ``reader`` those only
    Python decodes (one ``Args`` class per message signature)."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.args_classes: dict[tuple, type[Args]] = {}   # (names, types) -> its Args class
        # pointer size -> {entry: its reader}
        self.readers: dict[int, dict[Any, Callable[[bytes, int, int], Args]]] = {}
        self.keys = _KeyValues(self._args_class)

    def _args_class(self, formatter: Any) -> type[Args]:
        signature = formatter.arg_names_items()
        cls = self.args_classes.get(signature)
        if cls is None:
            cls = self.args_classes[signature] = Args.of_signature(*signature)
        return cls

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
                read = formatter.values_reader(pointer_size, self._args_class(formatter))
            readers[entry] = read
        return read

    def values(self, chunk: "_Chunk") -> tuple[list, list, list]:
        """A chunk's typed argument values, decoded in C: (per row its Args class, None when
        Python decodes the row's; every value in row order, as a tuple, whose slices an Args
        takes as they are, with no copy in between; per row where its values start there,
        and where the last row's end)."""
        key_layout, layouts, classes = self.keys.tables(chunk.entries)
        sizes = [8 if s is None else s.pointer_size for s in chunk.sources]
        ids, starts, pools, order = row_values(chunk.refs, chunk.datas, chunk.blobs, sizes,
                                               key_layout, layouts)
        unsigned = memoryview(pools[_UNSIGNED]).cast("Q").tolist()
        if len(unsigned) == len(order):        # only unsigned values: already in row order
            flat = tuple(unsigned)
        else:                                  # the pools end to end, then in row order
            pool = unsigned
            pool += memoryview(pools[_SIGNED]).cast("q").tolist()
            pool += memoryview(pools[_DOUBLE]).cast("d").tolist()
            if pools[_STRING]:
                texts = str(pools[_STRING], "utf-8").split("\0")
                texts.pop()                     # each text ends with a NUL
                pool += texts
            guids = pools[_GUID]
            pool += [uuid.UUID(bytes_le=guids[k:k + 16]) for k in range(0, len(guids), 16)]
            flat = tuple(map(pool.__getitem__, order))
        return list(map(classes.__getitem__, ids)), flat, starts.tolist()

    def chunk(self, text: Any, ends: list[int], items: Sequence[int],
              holes: list[tuple[int, int]], view) -> list[DecodedMessage]:
        """The messages of one chunk of the loop (the C renderer's UTF-8 ``text`` without
        prefixes, the output length after each of the ``items``, the rows it left to
        Python), the log-file header and the records that are not messages left out."""
        decoder = self.decoder
        chunk = _Chunk(self, decoder._key_entries, items, view)
        whole = str(text, "utf-8")
        plain = len(whole) == len(text)     # ASCII: byte offsets are character offsets
        out: list[DecodedMessage] = []
        append = out.append
        start = 0
        if plain and not holes:
            for i, end in enumerate(ends):
                if end != start:               # else not a TraceMessage record: counted, skipped
                    append(RowMessage(chunk, i, whole[start:end - 1]))
                    start = end
            return out
        raw = bytes(text)
        hole_rows = {row for row, _pos in holes}
        for i, end in enumerate(ends):
            if i in hole_rows:
                m = decoder._row_message(items[i], view)
                if m is not None and m.status != HEADER:
                    append(DecodedMessage(m))
            elif end != start:
                append(RowMessage(chunk, i, whole[start:end - 1] if plain else
                                  str(raw[start:end - 1], "utf-8")))
                start = end
        return out


class _Chunk:
    """What the messages of one chunk share: their run, the decoder's key entries (row key
    id -> its entry), the chunk's row refs, per engine slot the buffer bytes, row table and
    source, and the typed argument values once decoded (``MessageRows.values``)."""

    __slots__ = ("run", "entries", "refs", "datas", "blobs", "sources", "values")

    def __init__(self, run: MessageRows, entries: list, refs: Sequence[int], view) -> None:
        self.run, self.entries, self.refs = run, entries, refs
        # the view's lists are refilled for the next buffers: keep this chunk's
        self.datas, self.blobs, self.sources = list(view.datas), list(view.blobs), list(view.sources)
        self.values: tuple | None = None


class RowMessage(DecodedMessage):
    """A ``DecodedMessage`` of a row the C renderer printed (status "ok" or "unknown"):
    the same fields, read from the row when first used."""

    __slots__ = ("_chunk", "_i", "_text", "_row")

    def __init__(self, chunk: _Chunk, i: int, text: str) -> None:
        # the row (the chunk's i-th) stands for the base's WppMessage: read when first used
        self._chunk, self._i, self._text = chunk, i, text
        self._row = self._args = None

    def _fields(self) -> tuple:
        row = self._row
        if row is None:
            chunk = self._chunk
            ref = chunk.refs[self._i]
            row = self._row = _unpack(chunk.blobs[ref >> 32], (ref & 0xFFFFFFFF) * ROW_SIZE)
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
    name = property(lambda self: self._entry.name,
                    doc="the message name (prefix %2; a message without a format: its number)")
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
        chunk = self._chunk
        return chunk.sources[chunk.refs[self._i] >> 32].clock.to_filetime(row[_TS])

    @property
    def args(self) -> Args:
        """The typed argument values in insert order (``args["name"]`` by TMF name)."""
        args = self._args
        if args is None:
            chunk = self._chunk
            values = chunk.values
            if values is None:
                values = chunk.values = chunk.run.values(chunk)
            classes, flat, starts = values
            i = self._i
            cls = classes[i]
            if cls is not None:
                args = self._args = cls(flat[starts[i]:starts[i + 1]])
            else:
                args = self._args = self._python_args()
        return args

    def _python_args(self) -> Args:
        """The arguments decoded by the formatter (what C leaves to Python)."""
        chunk = self._chunk
        ref = chunk.refs[self._i]
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
        return read(chunk.datas[slot], offset, size)
