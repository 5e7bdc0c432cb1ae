"""A small MS-XCA Plain LZ77 *encoder* for tests (Windows compresses; we only decode).

Greedy matching with a 3-byte hash, every length escape (code, shared nibble, byte, u16,
u32) and overlapping matches, so decoder tests can cover the whole format.
"""
from __future__ import annotations

import struct


def compress(data: bytes, max_distance: int = 8192) -> bytes:
    out = bytearray(4)
    flag_pos, flags, nflags = 0, 0, 0
    half_pos = None

    def push_flag(bit: int) -> None:
        # called before the item's bytes: a full word is closed and the next one reserved
        # here, so each flag word precedes the 32 items it describes
        nonlocal flag_pos, flags, nflags
        if nflags == 32:
            struct.pack_into("<I", out, flag_pos, flags)
            flag_pos = len(out)
            out.extend(bytes(4))
            flags, nflags = 0, 0
        flags = (flags << 1) | bit
        nflags += 1

    def put_nibble(value: int) -> None:
        nonlocal half_pos
        if half_pos is None:
            half_pos = len(out)
            out.append(value)
        else:
            out[half_pos] |= value << 4
            half_pos = None

    last: dict[bytes, int] = {}
    i, n = 0, len(data)
    while i < n:
        best_len, best_dist = 0, 0
        key = data[i:i + 3]
        cand = last.get(key) if len(key) == 3 else None
        if cand is not None and i - cand <= max_distance:
            length = 0
            while i + length < n and data[cand + length] == data[i + length]:
                length += 1
            best_len, best_dist = length, i - cand
        if best_len >= 3:
            push_flag(1)
            code = best_len - 3
            out += struct.pack("<H", ((best_dist - 1) << 3) | min(code, 7))
            if code >= 7:
                if code - 7 < 15:
                    put_nibble(code - 7)
                else:
                    put_nibble(15)
                    if code - 22 < 255:
                        out.append(code - 22)
                    else:
                        out.append(255)
                        if code < 65536:
                            out += struct.pack("<H", code)
                        else:
                            out += struct.pack("<HI", 0, code)
            for k in range(i, min(i + best_len, n - 2)):
                last[data[k:k + 3]] = k
            i += best_len
        else:
            push_flag(0)
            out.append(data[i])
            if len(key) == 3:
                last[key] = i
            i += 1
    # end of stream: the remaining flag bits are ones (a match read at the end of input)
    if nflags == 32:
        struct.pack_into("<I", out, flag_pos, flags)
        flag_pos = len(out)
        out.extend(bytes(4))
        flags, nflags = 0, 0
    rest = 32 - nflags
    struct.pack_into("<I", out, flag_pos, ((flags << rest) | ((1 << rest) - 1)) & 0xFFFFFFFF)
    return bytes(out)
