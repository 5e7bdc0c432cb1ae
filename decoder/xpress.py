"""MS-XCA Plain LZ77 decompression of compressed ETL buffers (C implementation, bounded).

``decompress`` raises ``XpressError`` (with the good prefix) on a damaged stream;
``decompress_into`` (decoder._hazmat) decodes into a window of a bytearray and returns the C
code, for callers that keep what was decoded before the damage (decoder.buffers.expand).
"""
from __future__ import annotations

from ._hazmat import ETL, decompress_into

__all__ = ["XPRESS_ERRORS", "XpressError", "decompress", "decompress_into"]

#: why a stream could not be decoded (ETLRD_XPRESS_*)
XPRESS_ERRORS = {
    ETL.ETLRD_XPRESS_TRUNCATED: "compressed data ends inside an item",
    ETL.ETLRD_XPRESS_BAD_DISTANCE: "match refers to before the start of the output",
    ETL.ETLRD_XPRESS_OVERFLOW: "output larger than the expected size",
}


class XpressError(ValueError):
    """A damaged LZ77 stream; ``partial`` holds the bytes decoded before the damage."""

    def __init__(self, message: str, input_offset: int, partial: bytes):
        super().__init__(f"{message} (at compressed byte {input_offset})")
        self.input_offset = input_offset
        self.partial = partial


def decompress(data: bytes | bytearray | memoryview, max_output: int, *,
               exact: bool = False) -> bytes:
    """Decode a Plain LZ77 stream into at most ``max_output`` bytes (exactly that many
    with ``exact``, as an ETW buffer's payload must: SavedOffset less the buffer header).

    Raises XpressError (with the good prefix) on malformed input; never writes or reads
    outside the given buffers, whatever the input says.
    """
    out = bytearray(max_output)
    rc, n, consumed = decompress_into(data, out, 0, max_output)
    if rc:
        raise XpressError(XPRESS_ERRORS.get(rc, f"error {rc}"), consumed, bytes(out[:n]))
    if exact and n != max_output:
        raise XpressError(f"stream ended after {n} of {max_output} bytes", consumed,
                          bytes(out[:n]))
    del out[n:]
    return bytes(out)
