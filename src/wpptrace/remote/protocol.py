"""The relay protocol: frame layout, frame types, limits, and the checks every frame passes.

Declared once here and described in docs/remote-protocol.md. A frame is a fixed 20-byte
header (magic, version, type, aux, payload length, sequence; little-endian) and a payload
whose size each type bounds. ``read_frame`` reads one frame from an asyncio stream and
raises :class:`ProtocolError` (a one-line reason) for anything that breaks the rules, before
reading a payload larger than its type allows; what a frame means in a conversation (order,
sequence numbers) is checked by the collector and the relay.
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
import re
import struct
import unicodedata
import uuid

from wpptrace._core import ffi
from wpptrace.decoder._hazmat import ETL
from wpptrace.decoder.buffers import BUFFER_HEADER_SIZE, MAX_BUFFER_SIZE
from wpptrace.winerror import ERROR_BAD_FORMAT, ERROR_BUSY, ERROR_NOT_SUPPORTED

__all__ = ["MAGIC", "VERSION", "FrameType", "Frame", "ProtocolError", "Hello", "Stats",
           "buffer_field", "HEADER_BUFFER_TYPE",
           "HEADER", "encode", "encode_buffer", "read_frame", "expand_buffer", "MAX_NAME_BYTES",
           "MIN_BUFFER_SIZE", "BUSY_FILE_CLOSING", "BUSY_FILE_WRITING",
           "BUSY_FILE_CLOSING_WITHOUT_END", "in_hand"]

MAGIC = b"WPRB"
VERSION = 1
#: magic, version, type, aux, payload length, sequence
HEADER = struct.Struct("<4sBBHIQ")

#: session and host names in HELLO (UTF-8 bytes)
MAX_NAME_BYTES = 256
#: the smallest buffer a session writes: a header buffer with its log-file header record
MIN_BUFFER_SIZE = 1024
#: an ERROR frame's reason text (UTF-8 bytes)
MAX_REASON_BYTES = 512
#: the ERROR_BUSY reasons by which a collector says it has the stream in hand: its file is
#: being closed because END came (said only then: a relay that sent END takes it for END's
#: arrival), or buffers it received still wait for the disk. A relay that lingers after
#: the end takes them for progress (any other ERROR_BUSY says nothing of the stream).
#: Version 1 has no code of its own for them, only these texts: they are part of the
#: protocol (relays match them exactly), so changing one takes a new version.
BUSY_FILE_CLOSING = "this source's file is being closed"
BUSY_FILE_WRITING = "this source's file is still being written"
#: the ERROR_BUSY reason for a file closed without END (the resume window ran out, an error
#: on its connection): neither progress nor a sign that END arrived
BUSY_FILE_CLOSING_WITHOUT_END = "this source's file is being closed without its end"
#: BUFFER/HEADER aux: bit set -> the payload is the buffer's head, the rest is the low byte
PADDED = 0x100
#: WMI_BUFFER_HEADER.BufferType of a session's header buffer
HEADER_BUFFER_TYPE = ETL.ETW_BUFFER_TYPE_HEADER
#: WMI_BUFFER_HEADER field -> (offset, size), from etl_layout.h
_BUFFER_FIELDS = {name: (field.offset, ffi.sizeof(field.type))
                  for name, field in ffi.typeof("WMI_BUFFER_HEADER").fields}


def buffer_field(buffer, name: str) -> int:
    """One integer field of a buffer's WMI_BUFFER_HEADER (e.g. "BufferSize", "SavedOffset")."""
    offset, size = _BUFFER_FIELDS[name]
    return int.from_bytes(buffer[offset:offset + size], "little", signed=name == "SequenceNumber")


class FrameType(enum.IntEnum):
    HELLO = 1      # relay -> collector: who is sending what
    WELCOME = 2    # collector -> relay: sequence = the next one wanted (0: the header first)
    HEADER = 3     # relay -> collector: the session's header buffer (sequence 0)
    BUFFER = 4     # relay -> collector: one data buffer (sequence 1, 2, ...)
    STATS = 5      # relay -> collector: loss counters so far (sequence = next to be assigned)
    END = 6        # relay -> collector: the stream is over (sequence = next to be assigned)
    ACK = 7        # collector -> relay: every sequence below this one is written or counted lost
    ERROR = 8      # either way, before closing: Win32 code and a reason


FROM_RELAY = frozenset({FrameType.HELLO, FrameType.HEADER, FrameType.BUFFER, FrameType.STATS,
                        FrameType.END, FrameType.ERROR})
FROM_COLLECTOR = frozenset({FrameType.WELCOME, FrameType.ACK, FrameType.ERROR})

_HELLO_FIXED = struct.Struct("<16sII")          # source id, buffer size, flags (0)
_NAME_LEN = struct.Struct("<H")
STATS_BODY = struct.Struct("<QQQ")              # relay dropped, session lost, events lost
END_BODY = struct.Struct("<QQQq")               # ... and the session's stop time (FILETIME)
_ERROR_CODE = struct.Struct("<I")

#: the payload sizes each type allows: (minimum, maximum); buffers: per connection
_PAYLOAD_LIMITS = {
    FrameType.HELLO: (_HELLO_FIXED.size + 2 * _NAME_LEN.size,
                      _HELLO_FIXED.size + 2 * (_NAME_LEN.size + MAX_NAME_BYTES)),
    FrameType.WELCOME: (0, 0),
    FrameType.STATS: (STATS_BODY.size, STATS_BODY.size),
    FrameType.END: (END_BODY.size, END_BODY.size),
    FrameType.ACK: (0, 0),
    FrameType.ERROR: (_ERROR_CODE.size, _ERROR_CODE.size + MAX_REASON_BYTES),
}


class ProtocolError(Exception):
    """A frame broke the protocol; the message is the one-line reason logged and sent."""

    def __init__(self, reason: str, code: int = ERROR_BAD_FORMAT):
        super().__init__(reason)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Frame:
    type: FrameType
    aux: int
    sequence: int
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Hello:
    source_id: uuid.UUID
    buffer_size: int
    session: str
    host: str


@dataclasses.dataclass(frozen=True)
class Stats:
    relay_dropped: int = 0     #: buffers the relay dropped (its queue was full)
    session_lost: int = 0      #: buffers the session dropped before the relay read them
    events_lost: int = 0       #: the session's EventsLost
    end_time: int = 0          #: END only: FILETIME the session stopped, 0 if it did not


# -- encoding -------------------------------------------------------------------------------

def encode(ftype: FrameType, sequence: int = 0, payload: bytes = b"", aux: int = 0) -> bytes:
    return HEADER.pack(MAGIC, VERSION, ftype, aux, len(payload), sequence) + payload


def encode_hello(hello: Hello, first_sequence: int) -> bytes:
    session = hello.session.encode("utf-8")[:MAX_NAME_BYTES]
    host = hello.host.encode("utf-8")[:MAX_NAME_BYTES]
    payload = (_HELLO_FIXED.pack(hello.source_id.bytes, hello.buffer_size, 0)
               + _NAME_LEN.pack(len(session)) + session + _NAME_LEN.pack(len(host)) + host)
    return encode(FrameType.HELLO, first_sequence, payload)


def encode_stats(ftype: FrameType, next_sequence: int, stats: Stats) -> bytes:
    if ftype == FrameType.END:
        body = END_BODY.pack(stats.relay_dropped, stats.session_lost, stats.events_lost,
                             stats.end_time)
    else:
        body = STATS_BODY.pack(stats.relay_dropped, stats.session_lost, stats.events_lost)
    return encode(ftype, next_sequence, body)


def encode_error(code: int, reason: str) -> bytes:
    text = reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
    return encode(FrameType.ERROR, 0, _ERROR_CODE.pack(code) + text)


_FILLS: dict[int, bytes] = {}


def _fill(byte: int, size: int) -> bytes:
    block = _FILLS.get(byte, b"")
    if len(block) < size:
        block = _FILLS[byte] = bytes([byte]) * max(size, 1 << 16)
    return block[:size]


def encode_buffer(ftype: FrameType, sequence: int, buffer: bytes) -> list[bytes]:
    """A HEADER or BUFFER frame as [frame header, payload]: a buffer whose tail after its
    used bytes is one repeated byte (sessions fill unused space) is sent without it."""
    used = buffer_field(buffer, "SavedOffset")
    if BUFFER_HEADER_SIZE <= used < len(buffer):
        fill = buffer[used]
        if buffer.endswith(_fill(fill, len(buffer) - used)):      # a memcmp, no scan
            return [HEADER.pack(MAGIC, VERSION, ftype, PADDED | fill, used, sequence),
                    memoryview(buffer)[:used]]
    return [HEADER.pack(MAGIC, VERSION, ftype, 0, len(buffer), sequence), buffer]


# -- decoding -------------------------------------------------------------------------------

#: a host name: DNS and Windows (NetBIOS) host names, and the "_" some hosts use. It is
#: part of the tag on every line the collector shows of the source (``[SESSION@HOST]``), so
#: it holds none of the characters that could make that tag pass for another source's
_HOST_NAME_CHARS = "A-Za-z0-9._-"
HOST_NAME = re.compile(f"[{_HOST_NAME_CHARS}]+")
_NOT_HOST_NAME = re.compile(f"[^{_HOST_NAME_CHARS}]")


def host_name_problem(host: str) -> str:
    """Why ``host`` is not a host name HELLO may carry ("" if it is one); the name as given
    (only characters that are not printable escaped)."""
    if HOST_NAME.fullmatch(host):
        return ""
    return (f"host name '{escape_unprintable(host)}' has characters other than ASCII "
            f"letters, digits, '.', '-' and '_'")


def host_name_from(name: str) -> str:
    """A host name HELLO may carry made from ``name`` (this host's, which may hold letters
    other than ASCII ones, or a NetBIOS name's "$"): itself if it is one; else each
    dot-separated part with its accents dropped ("büro" -> "buro"), or in DNS's ASCII form
    (IDNA's "xn--") if other letters remain, and any other character left as "_"."""
    if HOST_NAME.fullmatch(name):
        return name
    parts = []
    for part in name.split("."):
        plain = "".join(ch for ch in unicodedata.normalize("NFKD", part)
                        if not unicodedata.combining(ch))
        if not plain.isascii():
            plain = "xn--" + part.encode("punycode").decode("ascii")
        parts.append(plain)
    return _NOT_HOST_NAME.sub("_", ".".join(parts)) or "localhost"


def decode_hello(frame: Frame) -> Hello:
    p = frame.payload
    source, buffer_size, flags = _HELLO_FIXED.unpack_from(p)
    if flags:
        raise ProtocolError(f"HELLO flags {flags:#x}: none are defined in version {VERSION}")
    if not MIN_BUFFER_SIZE <= buffer_size <= MAX_BUFFER_SIZE:
        raise ProtocolError(f"HELLO buffer size {buffer_size} outside "
                            f"{MIN_BUFFER_SIZE}..{MAX_BUFFER_SIZE}")
    names, pos = [], _HELLO_FIXED.size
    for what in ("session", "host"):
        if pos + _NAME_LEN.size > len(p):
            raise ProtocolError(f"HELLO ends before the {what} name")
        (n,) = _NAME_LEN.unpack_from(p, pos)
        pos += _NAME_LEN.size
        if n > MAX_NAME_BYTES or pos + n > len(p):
            raise ProtocolError(f"HELLO {what} name of {n} bytes does not fit")
        try:
            text = p[pos:pos + n].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"HELLO {what} name is not UTF-8") from None
        if not text or not text.isprintable():
            raise ProtocolError(f"HELLO {what} name is empty or has control characters")
        names.append(text)
        pos += n
    if pos != len(p):
        raise ProtocolError(f"HELLO has {len(p) - pos} bytes after the host name")
    problem = host_name_problem(names[1])
    if problem:
        raise ProtocolError(f"HELLO {problem}")
    return Hello(uuid.UUID(bytes=source), buffer_size, names[0], names[1])


def decode_stats(frame: Frame) -> Stats:
    if frame.type == FrameType.END:
        return Stats(*END_BODY.unpack(frame.payload))
    return Stats(*STATS_BODY.unpack(frame.payload))


def in_hand(code: int, reason: str) -> bool:
    """Whether a collector's ERROR (``code``, ``reason`` as ``decode_error`` gives them) says
    it has the stream in hand (see ``BUSY_FILE_CLOSING``)."""
    return code == ERROR_BUSY and reason in (BUSY_FILE_CLOSING, BUSY_FILE_WRITING)


def decode_error(frame: Frame) -> tuple[int, str]:
    """The code and reason of an ERROR frame; the reason is logged and shown, so control
    characters (a forged log line, terminal escapes) come out escaped, on one line."""
    (code,) = _ERROR_CODE.unpack_from(frame.payload)
    return code, escape_unprintable(frame.payload[_ERROR_CODE.size:].decode("utf-8", "replace"))


def escape_unprintable(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable (controls, line and paragraph
    separators) but those in ``keep`` written as Python escapes (``\\x1b``, ``\\n``,
    ``\\u2028``): text a peer sent, logged or shown, stays on its one line and cannot drive a
    terminal (titles, clipboard writes, cursor moves) or forge a line of another source."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else ascii(ch)[1:-1] for ch in text)


def expand_buffer(frame: Frame, buffer_size: int) -> bytes:
    """The whole buffer a HEADER/BUFFER frame carries (its omitted tail restored)."""
    if frame.aux & PADDED:
        return frame.payload + bytes([frame.aux & 0xFF]) * (buffer_size - len(frame.payload))
    return frame.payload


def _check_header(magic: bytes, version: int, ftype: int, aux: int, length: int,
                  allowed: frozenset, buffer_size: int) -> FrameType:
    if magic != MAGIC:
        raise ProtocolError(f"not a relay frame (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ProtocolError(f"protocol version {version} is not supported (this end speaks "
                            f"version {VERSION})", code=ERROR_NOT_SUPPORTED)
    try:
        kind = FrameType(ftype)
    except ValueError:
        raise ProtocolError(f"unknown frame type {ftype}") from None
    if kind not in allowed:
        raise ProtocolError(f"frame type {kind.name} is not sent in this direction")
    if kind in (FrameType.HEADER, FrameType.BUFFER):
        if not buffer_size:
            raise ProtocolError(f"{kind.name} before HELLO")
        if aux & ~(PADDED | 0xFF) or (aux and not aux & PADDED):
            raise ProtocolError(f"{kind.name} aux {aux:#x} is not defined")
        low = BUFFER_HEADER_SIZE if aux & PADDED else buffer_size
        if not low <= length <= buffer_size:
            raise ProtocolError(f"{kind.name} payload of {length} bytes (the buffer size is "
                                f"{buffer_size})")
        return kind
    if aux:
        raise ProtocolError(f"{kind.name} aux {aux:#x} is not defined")
    low, high = _PAYLOAD_LIMITS[kind]
    if not low <= length <= high:
        raise ProtocolError(f"{kind.name} payload of {length} bytes (allowed {low}..{high})")
    return kind


async def read_frame(reader: asyncio.StreamReader, allowed: frozenset,
                     buffer_size: int = 0) -> Frame:
    """The next frame; ``buffer_size`` (from HELLO) bounds HEADER/BUFFER payloads.
    Raises ProtocolError for a bad frame, asyncio.IncompleteReadError at end of stream."""
    head = await reader.readexactly(HEADER.size)
    magic, version, ftype, aux, length, sequence = HEADER.unpack(head)
    kind = _check_header(magic, version, ftype, aux, length, allowed, buffer_size)
    payload = await reader.readexactly(length) if length else b""
    return Frame(kind, aux, sequence, payload)
