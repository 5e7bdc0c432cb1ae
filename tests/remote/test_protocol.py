"""The frame layer: what each frame type allows, the one-line reasons for what breaks the
rules, and (hypothesis) that no byte string makes ``read_frame`` do anything but return a
frame, raise ProtocolError or report the end of the stream."""
from __future__ import annotations

import asyncio
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wpptrace.remote import protocol as P

SIZE = 8192


def _read(data: bytes, allowed=P.FROM_RELAY, buffer_size: int = SIZE):
    async def run():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await P.read_frame(reader, allowed, buffer_size)
    return asyncio.run(run())


def _header(ftype, length, sequence=1, *, magic=P.MAGIC, version=P.VERSION, aux=0) -> bytes:
    return P.HEADER.pack(magic, version, ftype, aux, length, sequence)


def test_hello_round_trip():
    hello = P.Hello(uuid.uuid4(), 65536, "my session", "lab-7")
    frame = _read(P.encode_hello(hello, 1))
    assert frame.type == P.FrameType.HELLO and P.decode_hello(frame) == hello


def test_buffers_travel_without_their_unused_tail_and_come_back_whole():
    used = 600
    buf = struct.pack("<II", SIZE, used) + bytes(range(256)) * 2 + b"\x11" * (used - 520)
    buf += b"\xff" * (SIZE - len(buf))
    head, body = P.encode_buffer(P.FrameType.BUFFER, 7, buf)
    assert len(body) == used
    frame = _read(head + bytes(body))
    assert frame.sequence == 7 and P.expand_buffer(frame, SIZE) == buf
    mixed = buf[:-1] + b"\x00"                  # a tail that is not one byte: sent whole
    head, body = P.encode_buffer(P.FrameType.BUFFER, 8, mixed)
    assert len(body) == SIZE and P.expand_buffer(_read(head + bytes(body)), SIZE) == mixed


def test_stats_and_end_round_trip():
    stats = P.Stats(3, 4, 5, 132000000000000000)
    frame = _read(P.encode_stats(P.FrameType.END, 99, stats))
    assert frame.sequence == 99 and P.decode_stats(frame) == stats
    frame = _read(P.encode_stats(P.FrameType.STATS, 9, stats))
    assert P.decode_stats(frame) == P.Stats(3, 4, 5, 0)


@pytest.mark.parametrize("data, reason", [
    (_header(P.FrameType.HELLO, 0, magic=b"HTTP"), "not a relay frame"),
    (_header(P.FrameType.HELLO, 0, version=2), "protocol version 2 is not supported"),
    (_header(42, 0), "unknown frame type 42"),
    (_header(P.FrameType.ACK, 0), "not sent in this direction"),
    (_header(P.FrameType.BUFFER, SIZE + 1), f"payload of {SIZE + 1} bytes"),
    (_header(P.FrameType.BUFFER, 0xFFFFFFFF), "payload of 4294967295 bytes"),
    (_header(P.FrameType.BUFFER, 100), "payload of 100 bytes"),           # not padded: whole
    (_header(P.FrameType.BUFFER, 10, aux=P.PADDED), "payload of 10 bytes"),
    (_header(P.FrameType.BUFFER, 100, aux=0x200), "aux 0x200 is not defined"),
    (_header(P.FrameType.STATS, 23), "STATS payload of 23 bytes"),
    (_header(P.FrameType.END, 0), "END payload of 0 bytes"),
    (_header(P.FrameType.HELLO, 1 << 20), "HELLO payload of 1048576 bytes"),
    (_header(P.FrameType.STATS, 24, aux=1), "STATS aux 0x1 is not defined"),
], ids=lambda value: value if isinstance(value, str) else "frame")
def test_bad_frame_headers_are_refused_before_any_payload_is_read(data, reason):
    with pytest.raises(P.ProtocolError, match=reason):
        _read(data)          # no payload follows: the header alone decides


def test_buffers_before_hello_are_refused():
    with pytest.raises(P.ProtocolError, match="BUFFER before HELLO"):
        _read(_header(P.FrameType.BUFFER, SIZE), buffer_size=0)


#: one source id for the bad HELLOs, so that test ids are the same in every process (pytest -n)
SOURCE = uuid.UUID("6f0c2a51-0d7e-4f43-9a52-3b1e8c4d2f10")


def _hello_payload(buffer_size=SIZE, flags=0, session=b"s", host=b"h", extra=b"") -> bytes:
    return (struct.pack("<16sII", SOURCE.bytes, buffer_size, flags)
            + struct.pack("<H", len(session)) + session + struct.pack("<H", len(host)) + host + extra)


@pytest.mark.parametrize("payload, reason", [
    (_hello_payload(buffer_size=100), "buffer size 100 outside"),
    (_hello_payload(buffer_size=1 << 30), "buffer size 1073741824 outside"),
    (_hello_payload(flags=1), "HELLO flags 0x1"),
    (_hello_payload(session=b""), "session name is empty"),
    (_hello_payload(session=b"a\nb"), "control characters"),
    (_hello_payload(host=b"\xff\xfe"), "host name is not UTF-8"),
    (_hello_payload(extra=b"x"), "1 bytes after the host name"),
    (_hello_payload(host=b"h] x"), r"host name 'h\] x' has characters other than"),
    (_hello_payload(host=b"lab1@h"), "host name 'lab1@h' has characters other than"),
    (_hello_payload()[:-3] + struct.pack("<H", 200) + b"h", "host name of 200 bytes does not fit"),
], ids=lambda value: value if isinstance(value, str) else "hello")
def test_bad_hellos_are_refused_with_a_reason(payload, reason):
    frame = _read(P.encode(P.FrameType.HELLO, 0, payload))
    with pytest.raises(P.ProtocolError, match=reason):
        P.decode_hello(frame)


def test_an_error_frame_carries_a_code_and_reason():
    frame = _read(P.encode_error(5, "not on the list " * 100), allowed=P.FROM_COLLECTOR)
    code, reason = P.decode_error(frame)
    assert code == 5 and reason.startswith("not on the list") and len(reason) <= P.MAX_REASON_BYTES


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([0, 1024, SIZE]))
def test_any_bytes_give_a_frame_a_protocol_error_or_the_end(data, buffer_size):
    try:
        frame = _read(data, buffer_size=buffer_size)
    except (P.ProtocolError, asyncio.IncompleteReadError):
        return
    assert len(frame.payload) == struct.unpack_from("<I", data, 8)[0]
    if frame.type == P.FrameType.HELLO:
        try:
            P.decode_hello(frame)
        except P.ProtocolError:
            pass


def test_an_error_frames_reason_is_one_printable_line():
    """The reason is logged and shown as it came: control characters would forge log lines."""
    payload = struct.pack("<I", 5) + "bad\nwpptrace collect: forged\x1b[2J\u202e é".encode()
    frame = _read(P.encode(P.FrameType.ERROR, 0, payload), allowed=P.FROM_COLLECTOR)
    assert P.decode_error(frame) == (5, "bad\\nwpptrace collect: forged\\x1b[2J\\u202e é")
