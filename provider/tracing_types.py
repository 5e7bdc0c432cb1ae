"""How Python values travel in WPP messages: the type each conversion of a trace format selects,
and the encoder that turns a Python value into the argument bytes of that type.

A trace format is Python's ``%`` language with tracewpp's extensions (``%!STATUS!``, C length
letters). Where the two overlap, Python's meaning wins, so that a message reads the same as
``fmt % args`` would, on Windows (tracefmt, TraceView) as here:

=====================  ===========================================  ===========================
conversion             values (as Python's ``%`` takes them)        TMF item
=====================  ===========================================  ===========================
``%d %i %u``           int, or any real number (truncated, int())   ItemLongLong / ItemULongLong
``%x %X %o``           int or an object with ``__index__``          ItemLongLongX / XX / O
``%s %r %a``           any object: str(), repr(), ascii()           ItemWString (UTF-16)
``%c``                 an int code point or a 1-character str       ItemWString
``%e %f %g ...``       a real number (float())                      ItemDouble (tracefmt: %g)
``%!HEXDUMP!``         bytes, bytearray, memoryview (<= 65535)      ItemHexDump
=====================  ===========================================  ===========================

* Integers: the plain conversions are 64-bit and take any int from -2**63 to 2**64 - 1, as 64-bit
  two's complement: the text is Python's when the value fits the conversion's signedness (signed
  for d/i, unsigned for u/x/X/o), C's otherwise (``%x`` of -1 is ``ffffffffffffffff``). An
  explicit C length (``%hd``, ``%lu``, ``%I64x``, ``%hhx`` ...) selects tracewpp's type of that
  width, and the value must fit it with that signedness.
* Text: Windows tools read ItemString in the ANSI code page, so ``str`` travels as UTF-16
  (ItemWString) and reads the same everywhere; ``%hs`` still writes an ItemString (UTF-8). A
  NUL character cannot travel in a NUL-terminated string: such a value does not fit.
* Floats: WPP renders every double with ``%g`` (tracefmt formats ItemDouble itself, ``!s!``), so
  ``%.2f`` shows ``3.14159``, not ``3.14``; width and precision do not travel.
* Everything else (``%p``, ``%!GUID!``, ``%!STATUS!``, ``%!IPADDR!``, ``%!sid!`` ...) follows
  defaultwpp.ini, with the Python values listed by :func:`codec_for`.

Custom types (:class:`CustomType`) add a name as a ``CUSTOM_TYPE``/``DEFINE_CPLX_TYPE`` line of a
tracewpp ``-ini`` file does for C: ``%!NAME!`` then writes the given item, the value first going
through the type's ``encode`` function.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import math
import operator
import re
import struct
import uuid
from typing import Any, Callable, Iterable

from wpptrace.tmf import formatspec, wppini
from wpptrace.tmf.itemtypes import ITEM_TYPES

from .tracing_interrupts import passes_on

__all__ = ["ArgCodec", "CustomType", "TypeTable", "PythonFormat", "codec_for", "python_format",
           "PYTHON_TYPES_INI"]

POINTER_SIZE = struct.calcsize("P")
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)

#: The types the Python provider adds to defaultwpp.ini, in tracewpp's own configuration syntax.
PYTHON_TYPES_INI = """
# Binary data: a USHORT byte count and the bytes (tracepdb writes WppBinary arguments this way).
DEFINE_CPLX_TYPE(HEXDUMP, WPP_LOGHEXDUMP, const void*, ItemHexDump, "s", _HEX_, 0, 2);
"""


# -- encoders -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ArgCodec:
    """Wire form of one argument.

    ``encode(value) -> bytes`` is the validating encoder: it raises TypeError/ValueError saying
    what was expected. The rest are shortcuts for the common values, all giving the same bytes:
    ``code`` a struct code applied to the value itself, ``fast`` a Python expression over
    ``{a}`` for str values (then ``terminator`` NUL bytes follow), ``program`` the type code of
    the C fast path (provider/pyext/fastpath.c; ``o`` calls ``encode`` from C)."""

    item: str
    expected: str
    encode: Callable[[Any], bytes]
    code: str | None = None
    fast: str | None = None
    terminator: int = 0
    program: str = "o"


def _is_number(value: Any) -> bool:
    """PyNumber_Check, as Python's ``%d`` tests it: str and bytes are not numbers."""
    kind = type(value)
    return (hasattr(kind, "__index__") or hasattr(kind, "__int__") or hasattr(kind, "__float__")
            or isinstance(value, complex))


#: A real number of this magnitude or more is no 64-bit integer, whatever its digits (with room
#: for the float's rounding near 2**64).
_BEYOND_64_BITS = 2.0 ** 65


def _far_past_64_bits(value: Any) -> bool:
    """Is this (non-int) real number far past 64 bits? int() of it would make every digit
    first (of Decimal('1e999999'): a million, for minutes) only for the value not to fit."""
    try:
        magnitude = abs(float(value))
        if not magnitude >= _BEYOND_64_BITS:     # (NaN too: int() says it has no integer)
            return False
        return magnitude != math.inf or abs(value) != math.inf   # an infinity: int() says so
    except Exception as exc:  # noqa: BLE001 - no float value (or no abs): int() decides
        if passes_on(exc):
            raise                             # no room (the call is lost: check_args), or the application's
        return False


def _as_int(value: Any) -> int:
    """The integer Python's ``%d``/``%i``/``%u`` prints for ``value`` (int() of any real number)."""
    if isinstance(value, int):
        return int(value)
    if not _is_number(value):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    if _far_past_64_bits(value):
        raise ValueError(f"{value!r} does not fit a 64-bit integer")
    try:
        return int(value)
    except TypeError:
        raise TypeError(f"expected a real number, got {type(value).__name__}") from None
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r} has no integer value: {exc}") from None


def _as_index(value: Any) -> int:
    """The integer Python's ``%x``/``%X``/``%o`` prints (the value's ``__index__``)."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"expected an integer, got {type(value).__name__}") from None


def _int_encoder(size: int, lo: int, hi: int, what: str, convert: Callable[[Any], int]) -> Callable[[Any], bytes]:
    mask = (1 << (8 * size)) - 1

    def encode(value: Any) -> bytes:
        v = convert(value)
        if not lo <= v <= hi:
            raise ValueError(f"{v} does not fit {what} ({lo}..{hi})")
        return (v & mask).to_bytes(size, "little")
    return encode


def _strict_int(value: Any) -> int:
    """C-typed values (status codes, enumerations, ports ...): an int or an ``__index__``."""
    if isinstance(value, float) or not hasattr(type(value), "__index__"):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return operator.index(value)


def _int_codec(item: str, size: int, signed: bool, what: str, *, both: bool = False,
               convert: Callable[[Any], int] = _strict_int) -> ArgCodec:
    """``both``: the value may have either signedness (written as two's complement)."""
    bits = 8 * size
    lo = -(1 << (bits - 1)) if (signed or both) else 0
    hi = ((1 << bits) - 1) if (not signed or both) else (1 << (bits - 1)) - 1
    code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
    if not signed:
        code = code.upper()
    program = "n" if (both and size == 8) else code
    return ArgCodec(item, what, _int_encoder(size, lo, hi, what, convert), code=code, program=program)


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("a NUL character cannot travel in a NUL-terminated string")
    return text


def _wide(text: str) -> bytes:
    # Lone surrogates travel as the UTF-16 code units Python holds.
    return _no_nul(text).encode("utf-16-le", "surrogatepass") + b"\x00\x00"


def _text_encoder(convert: Callable[[Any], str], wide: bool) -> Callable[[Any], bytes]:
    if wide:
        return lambda value: _wide(convert(value))

    def ansi(value: Any) -> bytes:
        return _no_nul(convert(value)).encode("utf-8") + b"\x00"
    return ansi


def _to_str(value: Any) -> str:
    return value if type(value) is str else str(value)


def _to_char(value: Any) -> str:
    """Python's ``%c``: an int code point or a str of one character."""
    if isinstance(value, str):
        if len(value) != 1:
            raise TypeError(f"%c requires an int or a one-character str, got a str of length {len(value)}")
        return value
    v = _as_index(value)
    if not 0 <= v <= 0x10FFFF:
        raise ValueError(f"%c arg {v} not in range(0x110000)")
    return chr(v)


_TEXT_CONVERTERS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "str": ("any object (str())", _to_str),
    "repr": ("any object (repr())", repr),
    "ascii": ("any object (ascii())", ascii),
    "char": ("an int code point or a one-character str", _to_char),
}


def _counted(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data)} bytes do not fit a counted item (at most 65535)")
    return len(data).to_bytes(2, "little") + data


def _bytes_of(value: Any) -> bytes:
    if isinstance(value, str):
        raise TypeError("expected bytes, got str (encode it, or log it with %s)")
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"expected bytes or another buffer, got {type(value).__name__}") from None


def _hexdump_encode(value: Any) -> bytes:
    return _counted(_bytes_of(value))


def _pstr_encode(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _counted(bytes(value))
    return _counted(_to_str(value).encode("utf-8"))


def _pwstr_encode(value: Any) -> bytes:
    return _counted(_to_str(value).encode("utf-16-le", "surrogatepass"))


def _guid_encode(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes_le
    if isinstance(value, str):
        try:
            return uuid.UUID(value).bytes_le
        except ValueError:
            raise ValueError(f"{value!r} is not a GUID") from None
    raise TypeError(f"expected uuid.UUID, got {type(value).__name__}")


def _ipaddr_encode(value: Any) -> bytes:
    if isinstance(value, (str, int, ipaddress.IPv4Address)) and not isinstance(value, bool):
        try:
            return ipaddress.IPv4Address(value).packed  # network order, as in_addr holds it
        except ValueError as exc:
            raise ValueError(f"not an IPv4 address: {exc}") from None
    if isinstance(value, (bytes, bytearray)) and len(value) == 4:
        return bytes(value)
    raise TypeError(f"expected an IPv4 address (str, int or IPv4Address), got {type(value).__name__}")


def _port_encode(value: Any) -> bytes:
    v = _strict_int(value)
    if not 0 <= v <= 0xFFFF:
        raise ValueError(f"{v} is not a port number (0..65535)")
    return v.to_bytes(2, "big")  # USHORT in network order, as sockaddr holds it


def _as_float(value: Any) -> float:
    """What Python's ``%f``/``%g`` takes: a real number (``__float__`` or ``__index__``)."""
    kind = type(value)
    if isinstance(value, (int, float)) or hasattr(kind, "__float__") or hasattr(kind, "__index__"):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"expected a real number: {exc}") from None
    raise TypeError(f"expected a float, got {kind.__name__}")


def _double_encode(value: Any) -> bytes:
    return struct.pack("<d", _as_float(value))


def _ticks(delta: datetime.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


_INT64 = _int_encoder(8, -(1 << 63), (1 << 63) - 1, "a signed 64-bit integer", _strict_int)


def _filetime_encode(value: Any) -> bytes:
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.astimezone()  # naive: local time, as Python means it
        return struct.pack("<q", _ticks(moment - _FILETIME_EPOCH))
    return _INT64(value)


def _delta_encode(value: Any) -> bytes:
    if isinstance(value, datetime.timedelta):
        return struct.pack("<q", _ticks(value))
    return _INT64(value)


def _sid_encode(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        if len(data) >= 8 and data[0] == 1 and len(data) == 8 + 4 * data[1]:
            return data
        raise ValueError("not a binary SID (revision 1, 8 + 4*SubAuthorityCount bytes)")
    if isinstance(value, str):
        parts = value.split("-")
        if len(parts) < 3 or parts[0].upper() != "S" or parts[1] != "1" or len(parts) - 3 > 15:
            raise ValueError(f"{value!r} is not a SID string S-1-<authority>-<sub>...")
        try:
            authority, subs = int(parts[2]), [int(p) for p in parts[3:]]
        except ValueError:
            raise ValueError(f"{value!r} is not a SID string") from None
        if not 0 <= authority < 1 << 48 or any(not 0 <= s <= 0xFFFFFFFF for s in subs):
            raise ValueError(f"{value!r}: a SID field is out of range")
        return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + b"".join(
            s.to_bytes(4, "little") for s in subs)
    raise TypeError(f"expected a SID (str 'S-1-...' or bytes), got {type(value).__name__}")


def _char4_encode(value: Any) -> bytes:
    if isinstance(value, str):
        data = value.encode("latin-1", "strict") if len(value) == 4 else b""
        if len(data) != 4:
            raise ValueError(f"{value!r} is not 4 characters")
        return data
    return _int_encoder(4, -(1 << 31), (1 << 32) - 1, "4 characters or an int", _strict_int)(value)


def _c_char_encoder(size: int) -> Callable[[Any], bytes]:
    """C's ``%hc`` (one byte) and ``%lc``/``%C`` (one UTF-16 unit): a character or its code."""
    limit, encoding = (0xFF, "latin-1") if size == 1 else (0xFFFF, "utf-16-le")
    number = _int_encoder(size, -(1 << (8 * size - 1)), (1 << (8 * size)) - 1,
                          f"a {8 * size}-bit character code", _strict_int)

    def encode(value: Any) -> bytes:
        if isinstance(value, str):
            if len(value) != 1 or ord(value) > limit:
                raise ValueError(f"{value!r} is not one {8 * size}-bit character")
            return value.encode(encoding, "surrogatepass")
        return number(value)
    return encode


_GUID_ITEMS = {"ItemGuid", "ItemCLSID", "ItemLIBID", "ItemIID"}
_EITHER_SIGN_ITEMS = {"ItemNTSTATUS", "ItemWINERROR", "ItemHRESULT", "ItemNDIS_STATUS", "ItemNDIS_OID",
                      "ItemListByte", "ItemListShort", "ItemListLong", "ItemSetByte", "ItemSetShort",
                      "ItemSetLong", "ItemEnum", "ItemFlagsEnum"}
_SPECIAL: dict[str, tuple[str, Callable[[Any], bytes]]] = {
    "ItemIPAddr": ("an IPv4 address", _ipaddr_encode),
    "ItemPort": ("a port number", _port_encode),
    "ItemTimestamp": ("a datetime or a FILETIME (int)", _filetime_encode),
    "ItemWaitTime": ("a datetime or a FILETIME (int)", _filetime_encode),
    "ItemTimeDelta": ("a timedelta or 100 ns ticks (int)", _delta_encode),
    "ItemChar4": ("4 characters", _char4_encode),
}
_WIRE: dict[str, tuple[str, Callable[[Any], bytes]]] = {
    "pstr": ("a str or bytes", _pstr_encode),
    "pwstr": ("any object (str())", _pwstr_encode),
    "sid": ("a SID", _sid_encode),
    "hexdump": ("bytes (at most 65535)", _hexdump_encode),
}


def codec_for(wtype: wppini.WppType, conversion: str, semantics: str | None = None) -> ArgCodec:
    """The codec of a tracewpp type. ``conversion`` is the printf conversion the TMF shows
    (d, x, s ...); ``semantics`` the Python meaning of the source conversion: ``int`` (d/i/u:
    int() of a number), ``index`` (x/X/o), ``int64`` / ``index64`` (the same for the plain
    64-bit conversions: either signedness), ``str``/``repr``/``ascii``/``char`` (text), ``float``;
    None for ``%!TYPE!`` extensions."""
    item = wtype.item
    it = ITEM_TYPES.get(item)
    if it is None:
        raise TypeError(f"unknown item type {item} (type %!{wtype.name}!)")
    if it.wire in ("cstr", "wstr"):
        expected, convert = _TEXT_CONVERTERS.get(semantics or "str", _TEXT_CONVERTERS["str"])
        wide = it.wire == "wstr"
        encode = _text_encoder(convert, wide)
        if semantics in (None, "str"):
            fast = '{a}.encode("utf-16-le", "surrogatepass")' if wide else "{a}.encode()"
            return ArgCodec(item, expected, encode, fast=fast, terminator=2 if wide else 1,
                            program="S" if wide else "s")
        return ArgCodec(item, expected, encode)
    if it.wire in _WIRE:
        expected, encode = _WIRE[it.wire]
        return ArgCodec(item, expected, encode)
    if it.wire not in ("fixed", "pointer"):
        raise TypeError(f"the Python provider cannot send {item} values (type %!{wtype.name}!)")
    size = it.fixed_size(POINTER_SIZE)
    if item in _GUID_ITEMS:
        return ArgCodec(item, "a uuid.UUID", _guid_encode, fast="{a}.bytes_le", program="g")
    if item == "ItemDouble":
        return ArgCodec(item, "a real number", _double_encode, code="d", program="d")
    if item in _SPECIAL:
        expected, encode = _SPECIAL[item]
        return ArgCodec(item, expected, encode)
    if item in _EITHER_SIGN_ITEMS:
        # Written either way in Python (0xC0000022 or -1073741790): both ranges fit.
        return _int_codec(item, size, False, f"a {8 * size}-bit value", both=True)
    if not it.raw or size not in (1, 2, 4, 8):
        raise TypeError(f"the Python provider cannot send {item} values (type %!{wtype.name}!)")
    if conversion in "cC" and semantics != "int":
        return ArgCodec(item, f"a {8 * size}-bit character", _c_char_encoder(size))
    if semantics in ("int64", "index64"):
        convert = _as_int if semantics == "int64" else _as_index
        return _int_codec(item, size, conversion in "di", "a 64-bit integer", both=True, convert=convert)
    signed = conversion in "di"
    convert = _as_int if semantics == "int" else _as_index if semantics == "index" else _strict_int
    what = f"a {'signed' if signed else 'non-negative'} {8 * size}-bit integer"
    if item == "ItemPtr" and conversion == "p":
        what = "a pointer value (non-negative int)"
    return _int_codec(item, size, signed, what, convert=convert)


# -- custom types -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CustomType:
    """A WPP type for ``%!NAME!`` in trace formats, as a ``CUSTOM_TYPE``/``DEFINE_CPLX_TYPE`` line
    of a tracewpp ``-ini`` file adds one for C.

    ``item`` is the TMF item word, with its parameters for lists and sets
    (``"ItemListByte(Low,APC,DPC)"``, ``"ItemWString"``, ``"ItemLong"`` ...); ``encode``
    converts the Python value into one that item takes (an int for numbers and lists, a str for
    strings, bytes for ``ItemHexDump`` ...); ``format`` is the printf spec the TMF shows (default:
    ``s`` for strings and named forms, tracewpp's own spec for plain numbers). Give a
    :class:`~wpptrace.provider.Provider` its types (``types=[...]``); ``wpptrace tmf gen`` finds
    the ``CustomType("NAME", "Item...")`` calls with literal arguments in the sources it scans.
    """

    name: str
    item: str
    encode: Callable[[Any], Any] | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name or ""):
            raise ValueError(f"a WPP type name is one identifier: {self.name!r}")
        word = self.item.partition("(")[0].strip()
        if ITEM_TYPES.get(word) is None:
            raise ValueError(f"unknown TMF item type {word!r} (type %!{self.name}!)")

    def wpp_type(self) -> wppini.WppType:
        word, paren, rest = self.item.partition("(")
        params = tuple(p.strip() for p in rest.rstrip(") ").split(",")) if paren else ()
        spec = self.format or _natural_spec(word.strip())
        return wppini.WppType(self.name, "CUSTOM_TYPE", "", word.strip(), params, spec, word.strip(),
                              f"CustomType({self.name})")


@functools.lru_cache(maxsize=None)
def _natural_spec(item: str) -> str:
    """The FormatSpec tracewpp gives an item's plain numbers (ItemLong -> d), else ``s``."""
    it = ITEM_TYPES.get(item)
    if it is None or not it.raw:
        return "s"
    for t in wppini.default_types().values():
        if t.item == item and t.command == "DEFINE_SIMPLE_TYPE":
            return t.format_spec
    return "s"


class TypeTable:
    """The WPP types a provider's formats may name: defaultwpp.ini, the Python provider's own
    (:data:`PYTHON_TYPES_INI`) and the provider's custom types."""

    def __init__(self, custom: Iterable[CustomType] = ()) -> None:
        self.custom = tuple(custom)
        types = dict(_python_types())
        self.encoders: dict[str, Callable[[Any], Any]] = {}
        for ct in self.custom:
            types[ct.name] = ct.wpp_type()
            if ct.encode is not None:
                self.encoders[ct.name] = ct.encode
        self.types = types

    @property
    def key(self) -> tuple:
        return tuple((c.name, c.item, c.format, id(c.encode)) for c in self.custom)


@functools.lru_cache(maxsize=1)
def _python_types() -> dict[str, wppini.WppType]:
    return wppini.parse_wpp_config(PYTHON_TYPES_INI, path="tracing_types.PYTHON_TYPES_INI",
                                   base_types=wppini.default_types())


DEFAULT_TABLE = TypeTable()


# -- trace formats ------------------------------------------------------------------------------

# One conversion of a trace format: %%, %!NAME!, or a printf conversion with Python's r and a.
_CONVERSION = re.compile(
    r"%(?:(?P<pct>%)|!(?P<ext>[A-Za-z_][A-Za-z0-9_]*)!|(?P<flags>[-+ #0]*)(?P<width>\*|[0-9]+)?"
    r"(?:\.(?P<prec>\*|[0-9]*))?(?P<length>I64|I32|hh|ll|h|l|L|I|w|z|j|t|q)?"
    r"(?P<conv>[diuxXocCsSZpneEfFgGaAr]))")

# Plain Python conversion -> (tracewpp conversion it is written as, Python meaning).
_PLAIN: dict[str, tuple[str, str]] = {
    "d": ("lld", "int64"), "i": ("lld", "int64"), "u": ("llu", "int64"),
    "x": ("llx", "index64"), "X": ("llX", "index64"), "o": ("llo", "index64"),
    "s": ("ls", "str"), "r": ("ls", "repr"), "a": ("ls", "ascii"), "c": ("ls", "char"),
    "e": ("e", "float"), "E": ("E", "float"), "f": ("f", "float"), "F": ("F", "float"),
    "g": ("g", "float"), "G": ("G", "float"),
}
_WITH_LENGTH = {"d": "int", "i": "int", "u": "int", "x": "index", "X": "index", "o": "index",
                "e": "float", "E": "float", "f": "float", "F": "float", "g": "float", "G": "float",
                "a": "float", "A": "float", "s": "str", "S": "str", "Z": "str"}


@dataclasses.dataclass
class PythonFormat:
    """A trace format compiled: the TMF format string, the tracewpp type and codec per argument."""

    tmf_format: str
    types: list[wppini.WppType]
    codecs: list[ArgCodec]


def python_format(fmt: str, *, table: TypeTable = DEFAULT_TABLE, component: str | None = None,
                  file: str | None = None, line: int | None = None) -> PythonFormat:
    """Compile a trace format (raises FormatSpecError for a bad format, TypeError for a type the
    provider cannot send)."""
    wpp_source, semantics = _to_wpp_source(fmt)
    tmf_format, _items = formatspec.printf_to_tmf(wpp_source, std_prefix=True, component=component,
                                                   file=file, line=line, types=table.types)
    shown = [p for p in formatspec.parse_tmf_format(tmf_format) if isinstance(p, formatspec.Insert)]
    inserts = [p for p in formatspec.parse_printf_format(wpp_source) if isinstance(p, formatspec.Insert)]
    types, codecs = [], []
    for piece, rendered, meaning in zip(inserts, shown, semantics):
        wtype = formatspec.wpp_type_for(piece.spec if piece.ext is None else piece.ext, table.types)
        conversion = rendered.spec.conversion if rendered.spec is not None else "s"
        codec = codec_for(wtype, conversion, meaning)
        encode = table.encoders.get(piece.ext) if piece.ext is not None else None
        if encode is not None:
            codec = _custom_codec(codec, encode)
        types.append(wtype)
        codecs.append(codec)
    return PythonFormat(tmf_format, types, codecs)


def _custom_codec(base: ArgCodec, convert: Callable[[Any], Any]) -> ArgCodec:
    inner = base.encode

    def encode(value: Any) -> bytes:
        try:
            converted = convert(value)
        except Exception as exc:  # noqa: BLE001 - the application's encoder: report, never pass through
            if passes_on(exc):
                raise                         # ... but no room (the call is lost), or its signal handler's
            raise ValueError(f"the type's encoder refused {value!r}: {type(exc).__name__}: {exc}") from None
        return inner(converted)
    return ArgCodec(base.item, base.expected, encode)


def _to_wpp_source(fmt: str) -> tuple[str, list[str | None]]:
    """Rewrite a trace format into tracewpp's source language (``%d`` -> ``%lld``, ``%s`` ->
    ``%ls``, ``%r`` -> ``%ls`` ...) and give each argument's Python meaning."""
    out: list[str] = []
    semantics: list[str | None] = []
    pos = 0
    while True:
        start = fmt.find("%", pos)
        if start < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:start])
        m = _CONVERSION.match(fmt, start)
        if m is None:
            raise formatspec.FormatSpecError(
                "bad conversion", text=fmt, column=start + 1,
                expected="%%, %!TYPE! or [flags][width][.precision][length]conversion")
        pos = m.end()
        if m.group("pct") is not None:
            out.append("%%")
            continue
        if m.group("ext") is not None:
            out.append(m.group())
            semantics.append(None)
            continue
        conv, length = m.group("conv"), m.group("length") or ""
        head = m.group()[1:m.start("conv") - start]
        if not length and conv in _PLAIN:
            written, meaning = _PLAIN[conv]
            out.append(f"%{head}{written}")
        else:
            if conv in "ra":
                raise formatspec.FormatSpecError(
                    f"%{length}{conv}: a length letter does not go with %{conv}", text=fmt,
                    column=start + 1, expected=f"%{conv}")
            out.append(m.group())
            meaning = _WITH_LENGTH.get(conv)
        semantics.append(meaning)
        stars = (m.group("width") == "*") + (m.group("prec") == "*")
        semantics.extend([None] * stars)
    return "".join(out), semantics
