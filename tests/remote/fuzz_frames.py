"""Hypothesis strategies for hostile relay conversations (shared by the fuzz test and the
long fuzz script): frames with every header field free or nearly right, after a valid
opening (nothing, HELLO, HELLO + header buffer) so that every state of the collector is
reached, and real buffers with bytes changed."""
from __future__ import annotations

import uuid

from hypothesis import strategies as st

from wpptrace.remote import protocol as P

TYPES = st.one_of(st.sampled_from(list(P.FrameType)), st.integers(0, 255))


@st.composite
def frame(draw, buffer_size: int, buffers: list[bytes]) -> bytes:
    kind = draw(TYPES)
    if draw(st.integers(0, 3)) == 0 and buffers:            # a real buffer, bytes changed
        data = bytearray(draw(st.sampled_from(buffers)))
        for _ in range(draw(st.integers(0, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
        cut = draw(st.sampled_from([len(data), len(data), 72, draw(st.integers(0, len(data)))]))
        payload = bytes(data[:cut])
        aux = P.PADDED | 0xFF if cut < len(data) else 0
        kind = draw(st.sampled_from([P.FrameType.BUFFER, P.FrameType.HEADER, kind]))
    else:
        payload = draw(st.binary(max_size=64))
        aux = draw(st.sampled_from([0, 0, P.PADDED, P.PADDED | 0xFF, 0x200, 0xFFFF]))
    magic = draw(st.sampled_from([P.MAGIC] * 8 + [b"WPRA", b"\0\0\0\0"]))
    version = draw(st.sampled_from([P.VERSION] * 8 + [0, 2, 255]))
    length = len(payload)
    lie = draw(st.integers(0, 9))
    if lie == 0:
        length = draw(st.integers(0, 0xFFFFFFFF))
    elif lie == 1:
        length = max(0, length + draw(st.integers(-8, 8)))
    sequence = draw(st.one_of(st.integers(0, 40), st.integers(0, 2**64 - 1)))
    return P.HEADER.pack(magic, version, int(kind), aux, length, sequence) + payload


@st.composite
def conversation(draw, buffer_size: int, header: bytes, buffers: list[bytes]) -> bytes:
    opening = draw(st.sampled_from(["none", "hello", "header"]))
    out = b""
    if opening != "none":
        hello = P.Hello(uuid.UUID(bytes=draw(st.binary(min_size=16, max_size=16))), buffer_size,
                        "fuzzed", "fuzz-host")
        out += P.encode_hello(hello, 1)
        if opening == "header":
            out += b"".join(bytes(p) for p in P.encode_buffer(P.FrameType.HEADER, 0, header))
    frames = draw(st.lists(frame(buffer_size, buffers), max_size=6))
    out += b"".join(frames)
    if draw(st.booleans()) and out:                          # cut anywhere
        out = out[:draw(st.integers(0, len(out)))]
    return out


def hello_frame(source_id: uuid.UUID, buffer_size: int) -> bytes:
    return P.encode_hello(P.Hello(source_id, buffer_size, "fuzzed", "fuzz-host"), 1)


__all__ = ["conversation", "frame", "hello_frame"]
