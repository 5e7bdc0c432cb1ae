"""MS-XCA Plain LZ77 decompression of compressed ETL buffers (C implementation, bounded)."""
from __future__ import annotations

import threading

from wpptrace._core import ffi, lib

#: why a stream could not be decoded (ETLRD_XPRESS_*)
XPRESS_ERRORS = {
    lib.ETLRD_XPRESS_TRUNCATED: "compressed data ends inside an item",
    lib.ETLRD_XPRESS_BAD_DISTANCE: "match refers to before the start of the output",
    lib.ETLRD_XPRESS_OVERFLOW: "output larger than the expected size",
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
    with ``exact``, as ETW buffers must: SavedOffset - 0x48).

    Raises XpressError (with the good prefix) on malformed input; never writes or reads
    outside the given buffers, whatever the input says.
    """
    out = bytearray(max_output)
    produced = ffi.new("size_t *")
    consumed = ffi.new("size_t *")
    rc = lib.etlrd_xpress_decompress(ffi.from_buffer(data), len(data),
                                     ffi.from_buffer(out), max_output, produced, consumed)
    n = produced[0]
    if rc:
        raise XpressError(XPRESS_ERRORS.get(rc, f"error {rc}"), consumed[0], bytes(out[:n]))
    if exact and n != max_output:
        raise XpressError(f"stream ended after {n} of {max_output} bytes", consumed[0],
                          bytes(out[:n]))
    del out[n:]
    return bytes(out)


_local = threading.local()


def decompress_into(data, out: bytearray, start: int, max_output: int) -> tuple[int, int, int]:
    """Decode into ``out[start:start+max_output]`` in place; returns (rc, produced, consumed).

    Raises ValueError if that window is not inside ``out`` (the C code writes up to
    ``max_output`` bytes from ``start`` and must never be told a larger room than there is)."""
    if start < 0 or max_output < 0 or start + max_output > len(out):
        raise ValueError(f"output window [{start}, {start + max_output}) is not inside the "
                         f"{len(out)}-byte output buffer")
    counters = getattr(_local, "counters", None)
    if counters is None:
        counters = _local.counters = ffi.new("size_t[2]")
    produced, consumed = counters, counters + 1
    dst = ffi.from_buffer(out)
    rc = lib.etlrd_xpress_decompress(ffi.from_buffer(data), len(data), dst + start,
                                     max_output, produced, consumed)
    return rc, produced[0], consumed[0]
