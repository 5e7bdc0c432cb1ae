"""The ONE table of WPP item types: wire encoding (how the argument bytes are laid out) and
rendering (the text tracefmt prints for an insert), for every type of defaultwpp.ini plus the
legacy and widely used custom ones (ItemHEXDump, ItemIPV6Addr ...).

Arguments are packed back to back, little-endian, with no alignment (docs/tmf-format.md §4).
``ItemType.decode`` bounds-checks every length against the buffer (the bytes are untrusted) and
raises :class:`ItemDecodeError` saying which item, where, and how many bytes were needed.

Raw numeric items (ItemLong, ItemPtr ...) decode to the zero-extended unsigned value and render
through the TMF's printf spec (:mod:`wpptrace.tmf.cprintf`); "string form" items (status codes,
GUIDs, lists, sets, timestamps ...) render to text that the spec (normally ``s``) then pads.

Item words are matched ignoring ASCII case, as tracefmt does (``ItemHexDump``, tracepdb's
spelling for ``WppBinary``, is ``ItemHEXDump``).

Renderings confirmed by tracefmt output (corpus, Microsoft docs): status names
(``0x%08x(NAME)``, ``STATUS_SUCCESS``), HRESULT FACILITY_WIN32 -> Win32 name, GUIDs (lower case,
no braces), ``%p`` (upper-case hex, pointer width), lists (``0x%08x(name)``), sets (``[a,c]``),
flags enums (``FlagRead | FlagExec(0x5)``; one bit, no bit and unnamed bits follow the set
rendering, see ``_flags_enum_binder``).
Chosen without a modern tracefmt sample (docs/tmf-format.md §4 / §11 list them as unverified):
IPv4 as plain dotted decimal, out-of-range list values as bare ``0x%08x``, unnamed set bits as
their bit index, ItemDouble as ``%g``, ItemHEXDump as space-separated upper-case bytes, SIDs as
``S-1-...`` (no account lookup offline), ItemEnum fallback to the decimal value.
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Mapping

from wpptrace._fieldclass import field, fieldclass, replace

from . import statuscodes
from .cprintf import format_insert
from .formatspec import Spec

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

__all__ = ["FormatError", "ItemDecodeError", "RenderContext", "ItemType", "ITEM_TYPES",
           "ItemTable", "item_type", "format_filetime", "format_time_delta"]


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


@fieldclass(frozen=True)
class RenderContext:
    """What rendering needs beyond the value: the item's parameters (list/set names, enum type),
    the TMF set (for #enumv), the pointer size of the logger, and UTC vs local time."""

    pointer_size: int = 8
    params: tuple[str, ...] = ()
    tmfset: Any = None
    utc: bool = False


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


# -- decoders: (buf: bytes, offset, pointer_size, name) -> (value, new_offset) --

def _need(name: str, buf: bytes, offset: int, size: int) -> None:
    if size < 0 or offset < 0 or offset + size > len(buf):
        raise ItemDecodeError(name, offset, "argument data ends inside the item",
                              needed=size, available=max(0, len(buf) - offset))


def _fixed_decoder(st: struct.Struct) -> Callable:
    size, unpack = st.size, st.unpack_from

    def decode(buf, offset, pointer_size, name):
        if offset + size > len(buf):
            _need(name, buf, offset, size)
        return unpack(buf, offset)[0], offset + size
    return decode


def _ptr_decoder(buf, offset, pointer_size, name):
    if pointer_size not in (4, 8):
        raise ItemDecodeError(name, offset, f"pointer size {pointer_size} is not 4 or 8")
    _need(name, buf, offset, pointer_size)
    return int.from_bytes(buf[offset:offset + pointer_size], "little"), offset + pointer_size


def _cstr_decoder(buf, offset, pointer_size, name):
    end = buf.find(b"\0", offset)
    if end < 0:
        raise ItemDecodeError(name, offset, "no NUL terminator before the end of the argument data "
                              f"({max(0, len(buf) - offset)} bytes left)")
    return _ansi(buf[offset:end]), end + 1


def _wstr_decoder(buf, offset, pointer_size, name):
    pos = offset
    while True:
        pos = buf.find(b"\0\0", pos)
        if pos < 0:
            raise ItemDecodeError(name, offset, "no UTF-16 NUL terminator before the end of the "
                                  f"argument data ({max(0, len(buf) - offset)} bytes left)")
        if (pos - offset) % 2 == 0:
            break
        pos += 1
    return buf[offset:pos].decode("utf-16-le", "replace"), pos + 2


def _counted(buf, offset, name) -> tuple[bytes, int]:
    if offset + 2 > len(buf):
        _need(name, buf, offset, 2)
    n = _U16.unpack_from(buf, offset)[0]
    start = offset + 2
    if start + n > len(buf):
        raise ItemDecodeError(name, offset, f"USHORT length {n} runs past the argument data",
                              needed=2 + n, available=len(buf) - offset)
    return buf[start:start + n], start + n


def _pstr_decoder(buf, offset, pointer_size, name):
    raw, end = _counted(buf, offset, name)
    return _ansi(raw), end


def _pwstr_decoder(buf, offset, pointer_size, name):
    raw, end = _counted(buf, offset, name)
    return _utf16(raw), end


def _hexdump_decoder(buf, offset, pointer_size, name):
    return _counted(buf, offset, name)


def _sid_decoder(buf, offset, pointer_size, name):
    # WPP_LOGPSID logs GetLengthSid bytes, or "NULL\0" for a NULL/invalid SID.
    if buf[offset:offset + 5] == b"NULL\0":
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


# -- text of "string form" items: binders (ctx) -> (value -> str) --

def _status_text(fn: Callable[[int], str]) -> Callable:
    cached = functools.lru_cache(maxsize=4096)(fn)
    return lambda ctx: cached


def _const_binder(fn: Callable[[Any], str]) -> Callable:
    return lambda ctx: fn


@functools.lru_cache(maxsize=1024)
def _guid_text(value: bytes) -> str:
    h = value.hex()
    return (h[6:8] + h[4:6] + h[2:4] + h[0:2] + "-" + h[10:12] + h[8:10] + "-" + h[14:16] + h[12:14]
            + "-" + h[16:20] + "-" + h[20:32])


def _ipv4_text(value: bytes) -> str:
    return "%d.%d.%d.%d" % (value[0], value[1], value[2], value[3])


def _ipv6_text(value: bytes) -> str:
    import ipaddress  # 1 ms to import: only for messages with an IPv6 argument

    return str(ipaddress.IPv6Address(bytes(value)))


def _port_text(value: int) -> str:
    return str(((value & 0xFF) << 8) | (value >> 8))  # network byte order on the wire


def _char4_text(value: bytes) -> str:
    return bytes(value).decode("cp1252", "replace")


def _double_text(value: float) -> str:
    return "%g" % value


def _sid_text(value) -> str:
    if value is None:
        return "NULL"
    revision, authority, subs = value
    auth = str(authority) if authority < (1 << 32) else f"0x{authority:012X}"
    return "-".join([f"S-{revision}-{auth}", *map(str, subs)])


def _hexdump_text(value: bytes) -> str:
    return " ".join(f"{b:02X}" for b in value)


def list_names(params: tuple[str, ...]) -> dict[int, str]:
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


def _list_binder(ctx: RenderContext) -> Callable[[int], str]:
    texts = {v: f"0x{v:08x}({n})" for v, n in list_names(ctx.params).items()}

    def text(value: int) -> str:
        t = texts.get(value)
        return t if t is not None else f"0x{value:08x}"
    return text


def _set_binder(ctx: RenderContext) -> Callable[[int], str]:
    params = tuple(p.strip() for p in ctx.params)

    def text(value: int) -> str:
        parts, bit = [], 0
        while value >> bit:
            if (value >> bit) & 1:
                parts.append(params[bit] if bit < len(params) else str(bit))
            bit += 1
        return "[" + ",".join(parts) + "]"
    return text


def _enum_values(ctx: RenderContext) -> dict[int, str] | None:
    if ctx.tmfset is None or not ctx.params:
        return None
    lookup = getattr(ctx.tmfset, "enum", None)
    enum = lookup(ctx.params[0]) if lookup else None
    if enum is None:
        return None
    # #enumv values may be written sign-extended to 64 bits; the wire value is a ULONG.
    return {v & 0xFFFFFFFF: n for v, n in enum.values.items()}


def _enum_binder(ctx: RenderContext) -> Callable[[int], str]:
    values = _enum_values(ctx) or {}

    def text(value: int) -> str:
        name = values.get(value)
        return name if name is not None else str(value)
    return text


def _flags_enum_binder(ctx: RenderContext) -> Callable[[int], str]:
    """ItemFlagsEnum: tracefmt's ``FlagRead | FlagExec(0x5)``: the names of the set bits in bit
    order joined by " | ", then the value in hex in parentheses. The cases tracefmt's flags
    output leaves open follow its ItemSetLong rendering: a set bit with no enumerator of
    exactly that value prints as its bit number (``FlagRead | 4(0x11)``); no bit set prints no
    name (``(0x0)``); one bit is the same shape (``FlagRead(0x1)``). A value equal to one
    enumerator (a zero-valued or multi-bit one included) prints that name (``FlagAll(0x7)``).
    Without the ``#enumv`` block the value prints as ``0x%x``."""
    values = _enum_values(ctx)
    if values is None:
        return lambda value: f"0x{value:x}"
    bit_names = _bit_names(values)

    def text(value: int) -> str:
        name = values.get(value)
        if name is not None:
            return f"{name}(0x{value:x})"
        names, bit = [], 0
        while value >> bit:
            if (value >> bit) & 1:
                names.append(bit_names.get(bit, str(bit)))
            bit += 1
        return f"{' | '.join(names)}(0x{value:x})"
    return text


def _bit_names(values: dict[int, str]) -> dict[int, str]:
    """bit number -> the enumerator whose value is exactly that bit."""
    return {v.bit_length() - 1: n for v, n in values.items() if v and not v & (v - 1)}


#: the native kinds whose items print names (``name_table``); every other item has none
NAMED_NATIVES = frozenset(("list", "set", "enum", "flags"))


def name_table(it: "ItemType", ctx: RenderContext) -> Any:
    """The names a list, set or enum item prints, as its renderers use them: ``list`` / ``enum``
    {value: name}, ``set`` [name of bit 0, bit 1 ...], ``flags`` ({value: name}, {bit: name})
    or None without the ``#enumv`` block (and for an item whose kind is not in
    ``NAMED_NATIVES``)."""
    if it.native not in NAMED_NATIVES:
        return None
    if it.native == "list":
        return list_names(ctx.params)
    if it.native == "set":
        return [p.strip() for p in ctx.params]
    values = _enum_values(ctx)
    if it.native == "enum":
        return values or {}
    return None if values is None else (values, _bit_names(values))     # flags


def _timestamp_binder(ctx: RenderContext) -> Callable[[int], str]:
    utc = ctx.utc
    return lambda value: format_filetime(value, utc)


def _waittime_binder(ctx: RenderContext) -> Callable[[int], str]:
    utc = ctx.utc

    def text(value: int) -> str:
        if value <= 0:
            return "+" + format_time_delta(-value)
        return format_filetime(value, utc)
    return text


def format_filetime(value: int, utc: bool = False) -> str:
    """FILETIME (100 ns since 1601, UTC) as tracefmt prints it: ``MM/DD/YYYY-HH:MM:SS.mmm``."""
    import datetime  # here: the messages of most runs have no time argument

    try:
        t = (datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
             + datetime.timedelta(microseconds=value // 10))
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


_NUMERIC_CONVERSIONS = frozenset("diuxXop")
_TEXT_CONVERSIONS = frozenset("sSZ")


def _plain_spec(spec: Spec | None) -> bool:
    """True if the spec prints a string unchanged (``s`` with no flags, width or precision)."""
    return spec is None or (spec.conversion in _TEXT_CONVERSIONS and not spec.flags
                            and spec.width is None and spec.precision is None)


@fieldclass(frozen=True)
class ItemType:
    """One TMF item type.

    ``wire``: ``fixed`` (``size`` bytes, ``struct_code``), ``pointer`` (pointer-sized), ``cstr`` /
    ``wstr`` (NUL-terminated ANSI / UTF-16LE), ``pstr`` / ``pwstr`` / ``hexdump`` (USHORT byte
    count + bytes), ``sid`` (8 + 4 * SubAuthorityCount bytes, or ``NULL\\0``).
    ``kind``: ``raw`` (a number printed through the TMF's printf spec), ``text`` (a string
    printed through the spec), ``form`` (the item renders its own text: status names, GUIDs,
    lists ...; a numeric spec written by hand prints the raw number instead).
    ``native``: how the C renderer (:mod:`wpptrace.tmf.native`) prints the type: ``int``,
    ``double``, ``text``, ``reduced_text`` or the name of its text form (``ntstatus``,
    ``guid``, ``list`` ...); None: the Python renderer prints messages that use it."""

    name: str
    wire: str
    size: int | None
    pointer_sized: bool
    struct_code: str | None
    kind: str
    _decode: Callable = field(repr=False, compare=False)
    _binder: Callable | None = field(default=None, repr=False, compare=False)
    native: str | None = None

    @property
    def raw(self) -> bool:
        return self.kind == "raw"

    @property
    def bits(self) -> int | None:
        return None if self.size is None else self.size * 8

    def fixed_size(self, pointer_size: int) -> int | None:
        """Bytes on the wire if that does not depend on the data."""
        return pointer_size if self.pointer_sized else self.size

    def decode(self, buf: bytes | memoryview, offset: int, pointer_size: int) -> tuple[Any, int]:
        """(value, offset after the item); raises ItemDecodeError if the bytes don't fit."""
        if type(buf) is not bytes:
            buf = bytes(buf)
        if offset < 0 or offset > len(buf):
            raise ItemDecodeError(self.name, offset, "offset outside the argument data",
                                  needed=0, available=max(0, len(buf) - offset))
        return self._decode(buf, offset, pointer_size, self.name)

    def converter(self, spec: Spec | None, ctx: RenderContext) -> Callable[[Any], str] | None:
        """value -> insert text for this spec, prepared once; None means the decoded value
        (a str) is already the text."""
        ps = ctx.pointer_size
        if self.kind == "raw":
            return lambda v: format_insert(v, spec, ps)
        if self.kind == "text":
            if _plain_spec(spec):
                return None
            text_spec = spec if spec.conversion in _TEXT_CONVERSIONS else replace(spec, conversion="s", length="")
            return lambda v: format_insert(v, text_spec, ps)
        if self.name == "ItemDouble" and spec is not None and spec.conversion in "eEfFgGaA":
            return lambda v: format_insert(v, spec, ps)
        text = self._binder(ctx)
        if spec is None or (_plain_spec(spec)):
            return text
        if spec.conversion in _NUMERIC_CONVERSIONS and self.struct_code in ("B", "H", "I", "Q", "q"):
            return lambda v: format_insert(v, spec, ps)  # a hand-written numeric spec
        return lambda v: format_insert(text(v), spec, ps)

    def render(self, value: Any, spec: Spec | None, ctx: RenderContext) -> str:
        """The insert text of ``value`` under ``spec`` (None means ``s``)."""
        conv = self.converter(spec, ctx)
        return value if conv is None else conv(value)


def _item_type(name: str, wire: str, size: int | None, pointer_sized: bool, struct_code: str | None,
               kind: str, decode: Callable, binder: Callable | None, native: str | None) -> ItemType:
    """``ItemType(...)`` with every field given, without the frozen class's ``__init__``: the
    table's 47 would make it compile its ``__init__`` in every process that imports this
    module (each ``fmt -j`` process compiling its first message)."""
    made = object.__new__(ItemType)
    made.__dict__.update(name=name, wire=wire, size=size, pointer_sized=pointer_sized,
                         struct_code=struct_code, kind=kind, _decode=decode, _binder=binder,
                         native=native)
    return made


def _fixed(name: str, code: str, binder: Callable | None = None, *, native: str | None) -> ItemType:
    st = struct.Struct("<" + code)
    return _item_type(name, "fixed", st.size, False, code, "raw" if binder is None else "form",
                      _fixed_decoder(st), binder, native)


def _var(name: str, wire: str, decode: Callable, binder: Callable | None = None, *,
         native: str | None) -> ItemType:
    return _item_type(name, wire, None, False, None, "text" if binder is None else "form", decode, binder,
                      native)


def _reduce(text: str) -> str:
    """ItemRString/ItemRWString: tabs, commas, CR to spaces, LF to commas, trailing junk trimmed."""
    text = text.replace("\t", " ").replace(",", " ").replace("\r", " ").replace("\n", ",")
    return text.rstrip(" ,")


def _reduced(decode: Callable) -> Callable:
    def dec(buf, offset, pointer_size, name):
        value, end = decode(buf, offset, pointer_size, name)
        return _reduce(value), end
    return dec


_TYPES: list[ItemType] = [
    # raw integers: printed through the TMF spec ("native": the C renderer's way, None: Python's)
    _fixed("ItemChar", "B", native="int"), _fixed("ItemUChar", "B", native="int"),
    _fixed("ItemCharShort", "B", native="int"),
    _fixed("ItemShort", "H", native="int"), _fixed("ItemUShort", "H", native="int"),
    _fixed("ItemLong", "I", native="int"), _fixed("ItemULong", "I", native="int"),
    _fixed("ItemULongX", "I", native="int"),
    _fixed("ItemLongLong", "Q", native="int"), _fixed("ItemULongLong", "Q", native="int"),
    _fixed("ItemLongLongX", "Q", native="int"), _fixed("ItemLongLongXX", "Q", native="int"),
    _fixed("ItemLongLongO", "Q", native="int"),
    _item_type("ItemPtr", "pointer", None, True, None, "raw", _ptr_decoder, None, "int"),
    _fixed("ItemDouble", "d", _const_binder(_double_text), native="double"),
    # status codes
    _fixed("ItemNTSTATUS", "I", _status_text(statuscodes.format_ntstatus), native="ntstatus"),
    _fixed("ItemWINERROR", "I", _status_text(statuscodes.format_winerror), native="winerror"),
    _fixed("ItemHRESULT", "I", _status_text(statuscodes.format_hresult), native="hresult"),
    _fixed("ItemNDIS_STATUS", "I", _status_text(statuscodes.format_ndis_status), native="ndis_status"),
    _fixed("ItemNDIS_OID", "I", _status_text(statuscodes.format_ndis_oid), native="ndis_oid"),
    # GUIDs, addresses, ports, characters
    _fixed("ItemGuid", "16s", _const_binder(_guid_text), native="guid"),
    _fixed("ItemCLSID", "16s", _const_binder(_guid_text), native="guid"),
    _fixed("ItemLIBID", "16s", _const_binder(_guid_text), native="guid"),
    _fixed("ItemIID", "16s", _const_binder(_guid_text), native="guid"),
    _fixed("ItemIPAddr", "4s", _const_binder(_ipv4_text), native=None),
    _fixed("ItemIPV6Addr", "16s", _const_binder(_ipv6_text), native=None),
    _fixed("ItemPort", "H", _const_binder(_port_text), native=None),
    _fixed("ItemChar4", "4s", _const_binder(_char4_text), native="char4"),
    # time
    _fixed("ItemTimestamp", "q", _timestamp_binder, native=None),
    _fixed("ItemWaitTime", "q", _waittime_binder, native=None),
    _fixed("ItemTimeDelta", "q", _const_binder(lambda v: format_time_delta(v)), native=None),
    # enumerations
    _fixed("ItemListByte", "B", _list_binder, native="list"),
    _fixed("ItemListShort", "H", _list_binder, native="list"),
    _fixed("ItemListLong", "I", _list_binder, native="list"),
    _fixed("ItemSetByte", "B", _set_binder, native="set"),
    _fixed("ItemSetShort", "H", _set_binder, native="set"),
    _fixed("ItemSetLong", "I", _set_binder, native="set"),
    _fixed("ItemEnum", "I", _enum_binder, native="enum"),
    _fixed("ItemFlagsEnum", "I", _flags_enum_binder, native="flags"),
    # strings and blobs
    _var("ItemString", "cstr", _cstr_decoder, native="text"),
    _var("ItemRString", "cstr", _reduced(_cstr_decoder), native="reduced_text"),
    _var("ItemWString", "wstr", _wstr_decoder, native="text"),
    _var("ItemRWString", "wstr", _reduced(_wstr_decoder), native="reduced_text"),
    _var("ItemPString", "pstr", _pstr_decoder, native="text"),
    _var("ItemPWString", "pwstr", _pwstr_decoder, native="text"),
    _var("ItemSid", "sid", _sid_decoder, _const_binder(_sid_text), native=None),
    _var("ItemHEXDump", "hexdump", _hexdump_decoder, _const_binder(_hexdump_text), native="hexdump"),
]

class ItemTable(Mapping[str, ItemType]):
    """name -> ItemType, with names compared ignoring ASCII case, as tracefmt compares item
    words: tracepdb writes ``WppBinary(...)`` arguments as ``ItemHexDump`` while projects'
    DEFINE_CPLX_TYPE lines spell the same type ``ItemHEXDump``. Iteration gives the
    canonical spellings."""

    def __init__(self, types: list[ItemType]) -> None:
        self._by_name = {t.name: t for t in types}
        self._folded = {t.name.lower(): t for t in types}

    def __getitem__(self, name: str) -> ItemType:
        t = None
        if isinstance(name, str):
            t = self._by_name.get(name) or self._folded.get(name.lower())
        if t is None:
            raise KeyError(name)
        return t

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._by_name or name.lower() in self._folded)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


#: name -> ItemType for every known item type (names compared ignoring case).
ITEM_TYPES = ItemTable(_TYPES)


def item_type(name: str) -> ItemType | None:
    """The item type for a TMF item word (``ItemLong``, ``ItemHexDump``); None if unknown."""
    return ITEM_TYPES.get(name)
