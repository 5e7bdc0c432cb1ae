"""A plain-Python model of the C record walker's documented behaviour (etlread.h), written
from the rules, not from the C code: which records it returns, what it counts as damage and
where it resumes. Slow (every candidate resume point re-walks the chain to the end) and
meant for small buffers only: tests compare the fast walker with it.

Rules (etl-format.md §2.2):
- a record starts with a marker: 0x90 top byte = message (size in the low word, 8-byte
  header); 0xC0 = a fixed-family header whose type byte picks the header size (kernel-style
  types carry the size in bytes 4..5, PEBS/PMC items follow the header); other types are
  skipped by the size in the low word;
- 0xFFFFFFFF (the fill), the end of data or fewer than 4 bytes left end the events;
- a record is valid when its header fits and header <= size <= bytes left;
- after damage the walk resumes at the earliest 8-aligned offset after the last good record
  of this stretch (after the damage if there is none) that starts the 0xFF fill tail or a
  plausible header (message with Reserved byte 0, or a known fixed type) from which valid
  records chain to the end of the events; failing that, at the first plausible header after
  the damage; failing that, at the end;
- a valid record whose message items / extended items overrun its size is counted as
  damage and skipped by its size.
"""
from __future__ import annotations

import struct

MESSAGE_HEADER = 8
KERNEL_TYPES = {0x01: 32, 0x02: 32, 0x03: 24, 0x04: 24, 0x10: 16, 0x11: 16}   # system, compact, perfinfo
OTHER_TYPES = {0x0A: 48, 0x14: 48, 0x0B: 72, 0x15: 72, 0x12: 80, 0x13: 80}    # full, instance, event
PEBS = 0x8000
PMC_MASK = 0x0700
FILL = 0xFFFFFFFF

SHORT_HEADER, BAD_MARKER, BAD_SIZE, BAD_ITEMS = 1, 2, 3, 4


def _u16(b: bytes, o: int) -> int:
    return struct.unpack_from("<H", b, o)[0]


def _u32(b: bytes, o: int) -> int:
    return struct.unpack_from("<I", b, o)[0]


def align8(x: int) -> int:
    return (x + 7) & ~7


def header(buf: bytes, off: int, end: int):
    """(kind, fixed header size, record size) of the record at off, or None."""
    avail = end - off
    marker = _u32(buf, off)
    top, htype = marker >> 24, (marker >> 16) & 0xFF
    if top == 0x90:
        return "message", MESSAGE_HEADER, marker & 0xFFFF
    if top != 0xC0:
        return None
    if htype in KERNEL_TYPES:
        if avail < 8:
            return None
        extra = (8 if marker & PEBS else 0) + 8 * ((marker & PMC_MASK) >> 8)
        return "kernel", KERNEL_TYPES[htype] + extra, _u16(buf, off + 4)
    if htype in OTHER_TYPES:
        return ("event" if htype in (0x12, 0x13) else "other"), OTHER_TYPES[htype], marker & 0xFFFF
    return "unknown", 4, marker & 0xFFFF


def valid(buf: bytes, off: int, end: int):
    h = header(buf, off, end)
    if h is None:
        return None
    kind, fixed, size = h
    if end - off < fixed or not fixed <= size <= end - off:
        return None
    return h


def problem(buf: bytes, off: int, end: int) -> int:
    h = header(buf, off, end)
    if h is None:
        return SHORT_HEADER if end - off < 8 else BAD_MARKER
    if end - off < h[1]:
        return SHORT_HEADER
    if not h[1] <= h[2] <= end - off:
        return BAD_SIZE
    return 0


def plausible(buf: bytes, off: int, end: int) -> bool:
    if end - off < 4:
        return False
    h = valid(buf, off, end)
    if h is None or h[0] == "unknown":
        return False
    return not (h[0] == "message" and (_u32(buf, off) >> 16) & 0xFF)


def chains_to_end(buf: bytes, off: int, end: int) -> bool:
    records = 0
    while off < end and end - off >= 4 and _u32(buf, off) != FILL:
        h = valid(buf, off, end)
        if h is None:
            return False
        records += 1
        off += align8(h[2])
    return records > 0


def only_fill(buf: bytes, off: int, end: int) -> bool:
    return all(b == 0xFF for b in buf[off:end])


def resume_point(buf: bytes, end: int, last_good: int | None, bad: int) -> int:
    p = align8((bad if last_good is None else last_good) + 1)
    while p < end and end - p >= 4:
        if only_fill(buf, p, end) or (plausible(buf, p, end) and chains_to_end(buf, p, end)):
            return p
        p += 8
    p = align8(bad + 1)
    while p < end and end - p >= 4:
        if plausible(buf, p, end):
            return p
        p += 8
    return end


def items_overrun(buf: bytes, off: int, kind: str, fixed: int, size: int) -> bool:
    if kind == "message":
        flags = _u16(buf, off + 6)
        need = fixed + 4 * bool(flags & 0x01) + (16 if flags & 0x02 else 4 * bool(flags & 0x04)) \
            + 8 * bool(flags & 0x08) + 8 * bool(flags & 0x20)
        return need > size
    if kind == "event" and _u16(buf, off + 4) & 0x0001:
        pos = fixed
        while True:
            if pos + 8 > size:
                return True
            isize, linkage = _u16(buf, off + pos), _u16(buf, off + pos + 4)
            if isize < 8 or isize & 7 or pos + isize > size:
                return True
            pos += isize
            if not linkage & 1:
                return False
    return False


def walk(buf: bytes, start: int, end: int, chunk: int) -> dict:
    """The walk as a caller sees it when it asks for at most ``chunk`` records per call
    and continues from where each call stopped."""
    out = {"offsets": [], "errors": 0, "skipped": 0, "first_error": 0, "first_offset": 0}
    damaged_to_end = False            # the walk ends skipping damage up to end

    def note(code: int, at: int) -> None:
        if not out["errors"]:
            out["first_error"], out["first_offset"] = code, at
        out["errors"] += 1

    off, last_good, in_call = start, None, 0
    while off < end and end - off >= 4:
        if _u32(buf, off) == FILL:
            break
        code = problem(buf, off, end)
        if code:
            note(code, off)
            p = resume_point(buf, end, last_good, off)
            out["skipped"] += max(p - off, 0)
            last_good, off = None, p
            damaged_to_end = p >= end or end - p < 4
            continue
        if in_call == chunk:              # the caller's array is full: a new call
            in_call, last_good = 0, None
        kind, fixed, size = header(buf, off, end)
        if items_overrun(buf, off, kind, fixed, size):
            note(BAD_ITEMS, off)
            out["skipped"] += size
        else:
            out["offsets"].append(off)
            in_call += 1
        last_good = off
        off += align8(size)
        damaged_to_end = False
    out["end"] = min(off, end)
    out["ends_damaged"] = damaged_to_end
    return out
