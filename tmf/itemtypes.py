"""The ONE table of WPP item types: wire encoding (how the argument bytes are laid out) and
rendering (the text tracefmt prints for an insert), for every type of defaultwpp.ini plus the
legacy and widely used custom ones (ItemHEXDump, ItemIPV6Addr ...).

Arguments are packed back to back, little-endian, with no alignment (tmf-format.md §4).
``ItemType.decode`` bounds-checks every length against the buffer (the bytes are untrusted) and
raises :class:`ItemDecodeError` saying which item, where, and how many bytes were needed.

Raw numeric items (ItemLong, ItemPtr ...) decode to the zero-extended unsigned value and render
through the TMF's printf spec (:mod:`wpptrace.tmf.cprintf`); "string form" items (status codes,
GUIDs, lists, sets, timestamps ...) render to text that the spec (normally ``s``) then pads.
"""
from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import struct
import uuid
from typing import Any, Callable

from . import statuscodes
from .cprintf import format_insert, pad
from .formatspec import Spec

__all__ = ["FormatError", "ItemDecodeError", "RenderContext", "ItemType", "ITEM_TYPES",
           "item_type", "format_filetime", "format_time_delta"]


class FormatError(ValueError):
    """A message whose argument bytes do not fit its format (or whose format cannot be used)."""


class ItemDecodeError(FormatError):
    """The argument bytes end (or are malformed) inside an item."""

    def __init__(self, item: str, offset: int, reason: str, *, needed: int | None = None,
                 available: int | None = None) -> None:
        self.item, self.offset, self.needed, self.available = item, offset, needed, available
        detail = reason
        if needed is not None:
            detail += f": needed {needed} bytes, {available} available"
        super().__init__(f"{item} at argument offset {offset}: {detail}")


@dataclasses.dataclass(frozen=True)
class RenderContext:
    """What rendering needs beyond the value: the item's parameters (list/set names, enum type),
    the TMF set (for #enumv), the pointer size of the logger, and UTC vs local time."""

    pointer_size: int = 8
    params: tuple[str, ...] = ()
    tmfset: Any = None
    utc: bool = False


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


# -- decoders: (buf, offset, pointer_size, name) -> (value, new_offset) --

def _need(name: str, buf, offset: int, size: int) -> None:
    if size < 0 or offset < 0 or offset + size > len(buf):
        raise ItemDecodeError(name, offset, "argument data ends inside the item",
                              needed=size, available=max(0, len(buf) - offset))


def _fixed_decoder(st: struct.Struct) -> Callable:
    size = st.size

    def decode(buf, offset, pointer_size, name):
        if offset + size > len(buf):
            _need(name, buf, offset, size)
        return st.unpack_from(buf, offset)[0], offset + size
    return decode


def _ptr_decoder(buf, offset, pointer_size, name):
    if pointer_size not in (4, 8):
        raise ItemDecodeError(name, offset, f"pointer size {pointer_size} is not 4 or 8")
    _need(name, buf, offset, pointer_size)
    return int.from_bytes(buf[offset:offset + pointer_size], "little"), offset + pointer_size


def _cstr_decoder(buf, offset, pointer_size, name):
    end = bytes(buf[offset:]).find(b"\0") if offset <= len(buf) else -1
    if end < 0:
        raise ItemDecodeError(name, offset, "no NUL terminator before the end of the argument data")
    raw = bytes(buf[offset:offset + end])
    return _ansi(raw), offset + end + 1


def _wstr_decoder(buf, offset, pointer_size, name):
    data = bytes(buf[offset:])
    pos = 0
    while True:
        pos = data.find(b"\0\0", pos)
        if pos < 0:
            raise ItemDecodeError(name, offset, "no UTF-16 NUL terminator before the end of the argument data")
        if pos % 2 == 0:
            break
        pos += 1
    return _utf16(data[:pos]), offset + pos + 2


def _pstr_decoder(buf, offset, pointer_size, name):
    _need(name, buf, offset, 2)
    n = _U16.unpack_from(buf, offset)[0]
    _need(name, buf, offset + 2, n)
    return _ansi(bytes(buf[offset + 2:offset + 2 + n])), offset + 2 + n


def _pwstr_decoder(buf, offset, pointer_size, name):
    _need(name, buf, offset, 2)
    n = _U16.unpack_from(buf, offset)[0]
    _need(name, buf, offset + 2, n)
    return _utf16(bytes(buf[offset + 2:offset + 2 + n])), offset + 2 + n


def _hexdump_decoder(buf, offset, pointer_size, name):
    _need(name, buf, offset, 2)
    n = _U16.unpack_from(buf, offset)[0]
    _need(name, buf, offset + 2, n)
    return bytes(buf[offset + 2:offset + 2 + n]), offset + 2 + n


def _sid_decoder(buf, offset, pointer_size, name):
    # WPP_LOGPSID logs GetLengthSid bytes, or "NULL\0" for a NULL/invalid SID.
    if bytes(buf[offset:offset + 5]) == b"NULL\0":
        return None, offset + 5
    _need(name, buf, offset, 8)
    revision, count = buf[offset], buf[offset + 1]
    if revision != 1 or count > 15:
        raise ItemDecodeError(name, offset, f"not a SID (revision {revision}, "
                              f"{count} sub-authorities; expected revision 1, at most 15)")
    size = 8 + 4 * count
    _need(name, buf, offset, size)
    authority = int.from_bytes(buf[offset + 2:offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", buf, offset + 8)
    return (revision, authority, subs), offset + size


def _ansi(raw: bytes) -> str:
    # ANSI code page text; modern providers often log UTF-8, which is tried first.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _utf16(raw: bytes) -> str:
    if len(raw) % 2:
        raw = raw[:-1]
    return raw.decode("utf-16-le", "replace")


# -- renderers: (value, spec, ctx) -> str --

def _render_raw(value, spec, ctx):
    return format_insert(value, spec, ctx.pointer_size)


_NUMERIC_CONVERSIONS = frozenset("diuxXop")


def _string_form(fn: Callable[[Any, RenderContext], str]) -> Callable:
    def render(value, spec, ctx):
        if spec is None:
            return fn(value, ctx)
        if spec.conversion in _NUMERIC_CONVERSIONS and isinstance(value, int):
            return format_insert(value, spec, ctx.pointer_size)  # a hand-written numeric spec
        return format_insert(fn(value, ctx), spec, ctx.pointer_size)
    return render


def _reduce(text: str) -> str:
    """ItemRString/ItemRWString: tabs, commas, CR to spaces, LF to commas, trailing junk trimmed."""
    text = text.replace("\t", " ").replace(",", " ").replace("\r", " ").replace("\n", ",")
    return text.rstrip(" ,")


def _guid_text(value: bytes, ctx) -> str:
    return str(uuid.UUID(bytes_le=bytes(value)))


def _ipv4_text(value: bytes, ctx) -> str:
    return ".".join(str(b) for b in value)


def _ipv6_text(value: bytes, ctx) -> str:
    return str(ipaddress.IPv6Address(bytes(value)))


def _port_text(value: int, ctx) -> str:
    return str(((value & 0xFF) << 8) | (value >> 8))  # network byte order on the wire


def _char4_text(value: bytes, ctx) -> str:
    return bytes(value).decode("cp1252", "replace")


def _double_text(value: float, ctx) -> str:
    return "%g" % value


def _sid_text(value, ctx) -> str:
    if value is None:
        return "NULL"
    revision, authority, subs = value
    auth = str(authority) if authority < (1 << 32) else f"0x{authority:012X}"
    return "-".join([f"S-{revision}-{auth}", *map(str, subs)]) if subs else f"S-{revision}-{auth}"


def _hexdump_text(value: bytes, ctx) -> str:
    return " ".join(f"{b:02X}" for b in value)


def _list_names(params: tuple[str, ...]) -> dict[int, str]:
    """ItemList parameters: names count up from 0; ``Name=number`` restarts the count."""
    names, n = {}, 0
    for p in params:
        name, eq, num = p.partition("=")
        if eq:
            try:
                n = int(num.strip(), 0)
            except ValueError:
                pass
        names.setdefault(n, name.strip())
        n += 1
    return names


def _list_text(value: int, ctx) -> str:
    name = _list_names(ctx.params).get(value)
    return f"0x{value:08x}({name})" if name is not None else f"0x{value:08x}"


def _set_text(value: int, ctx) -> str:
    parts, bit = [], 0
    params = ctx.params
    while value >> bit:
        if (value >> bit) & 1:
            parts.append(params[bit].strip() if bit < len(params) else str(bit))
        bit += 1
    return "[" + ",".join(parts) + "]"


def _enum_def(ctx):
    if ctx.tmfset is None or not ctx.params:
        return None
    lookup = getattr(ctx.tmfset, "enum", None)
    return lookup(ctx.params[0]) if lookup else None


def _enum_text(value: int, ctx) -> str:
    enum = _enum_def(ctx)
    if enum is not None:
        name = enum.values.get(value)
        if name is None:  # #enumv values may be written sign-extended to 64 bits
            name = enum.values.get(value - (1 << 32) if value >> 31 else value | 0xFFFFFFFF00000000)
        if name is not None:
            return name
    return str(value)


def _flags_enum_text(value: int, ctx) -> str:
    enum = _enum_def(ctx)
    if enum is None:
        return f"0x{value:x}"
    if value in enum.values:
        return enum.values[value]
    names, rest = [], value
    for v, n in sorted(enum.values.items()):
        v &= 0xFFFFFFFF
        if v and (rest & v) == v:
            names.append(n)
            rest &= ~v
    if rest:
        names.append(f"0x{rest:x}")
    return "|".join(names) if names else "0"


_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def format_filetime(value: int, utc: bool = False) -> str:
    """FILETIME (100 ns since 1601, UTC) as tracefmt prints it: ``MM/DD/YYYY-HH:MM:SS.mmm``."""
    try:
        t = _FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)
        if not utc:
            t = t.astimezone()
    except (OverflowError, ValueError, OSError):
        return f"0x{value & 0xFFFFFFFFFFFFFFFF:016X}"
    return f"{t.month:02d}/{t.day:02d}/{t.year:04d}-{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}"


def format_time_delta(value: int) -> str:
    """A 100 ns interval: ``Nms``, ``S.mmms``, ``M:SS.mmms``, ``H:MM:SS.mmms``, ``D~HH:MM:SS.mmms``."""
    sign = "-" if value < 0 else ""
    ms = abs(value) // 10000
    if ms < 1000:
        return f"{sign}{ms}ms"
    s, ms = divmod(ms, 1000)
    if s <= 600:
        return f"{sign}{s}.{ms:03d}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{sign}{m}:{s:02d}.{ms:03d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{sign}{h}:{m:02d}:{s:02d}.{ms:03d}s"
    d, h = divmod(h, 24)
    return f"{sign}{d}~{h:02d}:{m:02d}:{s:02d}.{ms:03d}s"


def _timestamp_text(value: int, ctx) -> str:
    return format_filetime(value, ctx.utc)


def _waittime_text(value: int, ctx) -> str:
    if value <= 0:
        return "+" + format_time_delta(-value)
    return format_filetime(value, ctx.utc)


@dataclasses.dataclass(frozen=True)
class ItemType:
    """One TMF item type.

    ``wire``: fixed (``size`` bytes, ``struct_code``), pointer (``pointer_sized``), cstr / wstr
    (NUL-terminated ANSI / UTF-16LE), pstr / pwstr / hexdump (USHORT byte count + bytes), sid.
    ``raw``: True if the value is printed through the TMF's printf spec (numbers, pointers),
    False if the item renders its own text (status names, GUIDs, lists ...)."""

    name: str
    wire: str
    size: int | None
    pointer_sized: bool
    struct_code: str | None
    raw: bool
    _decode: Callable = dataclasses.field(repr=False, compare=False)
    _render: Callable = dataclasses.field(repr=False, compare=False)

    def fixed_size(self, pointer_size: int) -> int | None:
        """Bytes on the wire if that does not depend on the data."""
        return pointer_size if self.pointer_sized else self.size

    def decode(self, buf: bytes | memoryview, offset: int, pointer_size: int) -> tuple[Any, int]:
        """(value, offset after the item); raises ItemDecodeError if the bytes don't fit."""
        return self._decode(buf, offset, pointer_size, self.name)

    def render(self, value: Any, spec: Spec | None, ctx: RenderContext) -> str:
        return self._render(value, spec, ctx)

    @property
    def bits(self) -> int | None:
        return None if self.size is None else self.size * 8


def _fixed(name: str, code: str, render: Callable | None = None) -> ItemType:
    st = struct.Struct("<" + code)
    return ItemType(name, "fixed", st.size, False, code, render is None, _fixed_decoder(st),
                    render or _render_raw)


def _var(name: str, wire: str, decode: Callable, render: Callable) -> ItemType:
    return ItemType(name, wire, None, False, None, False, decode, render)


def _text_render(value, spec, ctx):
    return format_insert(value, spec if spec is not None and spec.conversion in "sSZ" else Spec(), ctx.pointer_size)


def _reduced_render(value, spec, ctx):
    return _text_render(_reduce(value), spec, ctx)


def _double_render(value, spec, ctx):
    if spec is not None and spec.conversion in "eEfFgGaA":
        return format_insert(value, spec, ctx.pointer_size)
    return format_insert(_double_text(value, ctx), spec, ctx.pointer_size)


_TYPES: list[ItemType] = [
    # raw integers: printed through the TMF spec
    _fixed("ItemChar", "B"), _fixed("ItemUChar", "B"), _fixed("ItemCharShort", "B"),
    _fixed("ItemShort", "H"), _fixed("ItemUShort", "H"),
    _fixed("ItemLong", "I"), _fixed("ItemULong", "I"), _fixed("ItemULongX", "I"),
    _fixed("ItemLongLong", "Q"), _fixed("ItemULongLong", "Q"), _fixed("ItemLongLongX", "Q"),
    _fixed("ItemLongLongXX", "Q"), _fixed("ItemLongLongO", "Q"),
    ItemType("ItemPtr", "pointer", None, True, None, True, _ptr_decoder, _render_raw),
    ItemType("ItemDouble", "fixed", 8, False, "d", False, _fixed_decoder(struct.Struct("<d")), _double_render),
    # status codes
    _fixed("ItemNTSTATUS", "I", _string_form(lambda v, c: statuscodes.format_ntstatus(v))),
    _fixed("ItemWINERROR", "I", _string_form(lambda v, c: statuscodes.format_winerror(v))),
    _fixed("ItemHRESULT", "I", _string_form(lambda v, c: statuscodes.format_hresult(v))),
    _fixed("ItemNDIS_STATUS", "I", _string_form(lambda v, c: statuscodes.format_ndis_status(v))),
    _fixed("ItemNDIS_OID", "I", _string_form(lambda v, c: statuscodes.format_ndis_oid(v))),
    # GUIDs, addresses, ports, characters
    _fixed("ItemGuid", "16s", _string_form(_guid_text)),
    _fixed("ItemCLSID", "16s", _string_form(_guid_text)),
    _fixed("ItemLIBID", "16s", _string_form(_guid_text)),
    _fixed("ItemIID", "16s", _string_form(_guid_text)),
    _fixed("ItemIPAddr", "4s", _string_form(_ipv4_text)),
    _fixed("ItemIPV6Addr", "16s", _string_form(_ipv6_text)),
    _fixed("ItemPort", "H", _string_form(_port_text)),
    _fixed("ItemChar4", "4s", _string_form(_char4_text)),
    # time
    _fixed("ItemTimestamp", "q", _string_form(_timestamp_text)),
    _fixed("ItemWaitTime", "q", _string_form(_waittime_text)),
    _fixed("ItemTimeDelta", "q", _string_form(lambda v, c: format_time_delta(v))),
    # enumerations
    _fixed("ItemListByte", "B", _string_form(_list_text)),
    _fixed("ItemListShort", "H", _string_form(_list_text)),
    _fixed("ItemListLong", "I", _string_form(_list_text)),
    _fixed("ItemSetByte", "B", _string_form(_set_text)),
    _fixed("ItemSetShort", "H", _string_form(_set_text)),
    _fixed("ItemSetLong", "I", _string_form(_set_text)),
    _fixed("ItemEnum", "I", _string_form(_enum_text)),
    _fixed("ItemFlagsEnum", "I", _string_form(_flags_enum_text)),
    # strings and blobs
    _var("ItemString", "cstr", _cstr_decoder, _text_render),
    _var("ItemRString", "cstr", _cstr_decoder, _reduced_render),
    _var("ItemWString", "wstr", _wstr_decoder, _text_render),
    _var("ItemRWString", "wstr", _wstr_decoder, _reduced_render),
    _var("ItemPString", "pstr", _pstr_decoder, _text_render),
    _var("ItemPWString", "pwstr", _pwstr_decoder, _text_render),
    _var("ItemSid", "sid", _sid_decoder, _string_form(_sid_text)),
    _var("ItemHEXDump", "hexdump", _hexdump_decoder, _string_form(_hexdump_text)),
]

#: name -> ItemType for every known item type.
ITEM_TYPES: dict[str, ItemType] = {t.name: t for t in _TYPES}


def item_type(name: str) -> ItemType | None:
    """The item type for a TMF item word (``ItemLong``); None if unknown."""
    return ITEM_TYPES.get(name)
