"""Compile one trace call site into its TMF message and its argument packer.

Every ``%`` conversion (and ``%!TYPE!``) of a source format selects a tracewpp type through the
shared format-spec parser (:mod:`wpptrace.tmf.formatspec`, types from defaultwpp.ini); the type
says which TMF item is written and how the value travels (size, signedness, string form). This
module turns that into

* the :class:`wpptrace.tmf.model.Message` tracewpp would have written for the call, and
* a packer: Python values -> the exact argument bytes TraceMessage carries, as ONE generated
  function per call site (``struct.Struct`` runs merged, strings appended), so the enabled hot
  path is one call. A value that does not fit its type falls to a slow path that checks every
  argument and raises ``TypeError``/``ValueError`` naming the call site; nothing is written then.
"""
from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import struct
import uuid
from typing import Any, Callable

from wpptrace.tmf import formatspec, wppini
from wpptrace.tmf.itemtypes import ITEM_TYPES
from wpptrace.tmf.model import Argument, Message

from ._hazmat import MISSING
from .tracing_sites import CallSite, message_name

__all__ = ["MISSING", "ArgCodec", "codec_for", "CompiledSite", "compile_site", "site_label",
           "compile_format"]

POINTER_SIZE = struct.calcsize("P")



_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


# -- how each item travels: one codec per (item, signedness) ---------------------------------

@dataclasses.dataclass(frozen=True)
class ArgCodec:
    """Wire form of one argument.

    ``code`` is a struct code used directly on the value in the fast path (``None``: variable
    length or converted). ``check(value) -> bytes`` is the slow, validating encoder that raises
    TypeError/ValueError with a message saying what was expected."""

    item: str
    expected: str
    code: str | None
    fast: str | None  # a Python expression template over "{a}" giving bytes (variable forms)
    check: Callable[[Any], bytes]
    terminator: int = 0  # NUL bytes that follow the fast form (strings)


def _int_check(size: int, lo: int, hi: int, what: str, wrap: bool = False) -> Callable[[Any], bytes]:
    def check(value: Any) -> bytes:
        if isinstance(value, float) or not hasattr(value, "__index__"):
            raise TypeError(f"expected {what}, got {type(value).__name__}")
        v = value.__index__()
        if not lo <= v <= hi:
            raise ValueError(f"{v} does not fit {what} ({lo}..{hi})")
        return (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return check


def _int_codec(item: str, size: int, signed: bool, what: str, *, both: bool = False) -> ArgCodec:
    bits = 8 * size
    lo = -(1 << (bits - 1)) if (signed or both) else 0
    hi = ((1 << bits) - 1) if (not signed or both) else (1 << (bits - 1)) - 1
    code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
    if not signed:
        code = code.upper()
    return ArgCodec(item, what, code, None, _int_check(size, lo, hi, what))


def _str_value(value: Any) -> str:
    # Python's %s formats any object with str(); WPP strings carry that text.
    return value if isinstance(value, str) else str(value)


def _astr_check(value: Any) -> bytes:
    text = _str_value(value)
    if "\x00" in text:
        raise ValueError("a NUL character cannot travel in a NUL-terminated string")
    return text.encode("utf-8") + b"\x00"


def _wstr_check(value: Any) -> bytes:
    text = _str_value(value)
    if "\x00" in text:
        raise ValueError("a NUL character cannot travel in a NUL-terminated string")
    return text.encode("utf-16-le") + b"\x00\x00"


def _counted(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data)} bytes do not fit a counted string (at most 65535)")
    return len(data).to_bytes(2, "little") + data


def _pstr_check(value: Any) -> bytes:
    data = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else _str_value(value).encode("utf-8")
    return _counted(data)


def _pwstr_check(value: Any) -> bytes:
    return _counted(_str_value(value).encode("utf-16-le"))


def _guid_check(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes_le
    if isinstance(value, str):
        try:
            return uuid.UUID(value).bytes_le
        except ValueError:
            raise ValueError(f"{value!r} is not a GUID") from None
    raise TypeError(f"expected uuid.UUID, got {type(value).__name__}")


def _ipaddr_check(value: Any) -> bytes:
    if isinstance(value, (str, int, ipaddress.IPv4Address)) and not isinstance(value, bool):
        try:
            return ipaddress.IPv4Address(value).packed  # network order, as in_addr holds it
        except ValueError as exc:
            raise ValueError(f"not an IPv4 address: {exc}") from None
    if isinstance(value, (bytes, bytearray)) and len(value) == 4:
        return bytes(value)
    raise TypeError(f"expected an IPv4 address (str, int or IPv4Address), got {type(value).__name__}")


def _port_check(value: Any) -> bytes:
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise TypeError(f"expected a port number (int), got {type(value).__name__}")
    v = value.__index__()
    if not 0 <= v <= 0xFFFF:
        raise ValueError(f"{v} is not a port number (0..65535)")
    return v.to_bytes(2, "big")  # USHORT in network order, as sockaddr holds it


def _double_check(value: Any) -> bytes:
    if isinstance(value, (int, float)) or hasattr(value, "__float__"):
        return struct.pack("<d", float(value))
    raise TypeError(f"expected a float, got {type(value).__name__}")


def _filetime_check(value: Any) -> bytes:
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.astimezone()  # naive: local time, as Python means it
        delta = moment - _FILETIME_EPOCH
        ticks = (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
        return struct.pack("<q", ticks)
    return _int_check(8, -(1 << 63), (1 << 63) - 1, "a datetime or a FILETIME (int)")(value)


def _delta_check(value: Any) -> bytes:
    if isinstance(value, datetime.timedelta):
        ticks = (value.days * 86400 + value.seconds) * 10_000_000 + value.microseconds * 10
        return struct.pack("<q", ticks)
    return _int_check(8, -(1 << 63), (1 << 63) - 1, "a timedelta or 100 ns ticks (int)")(value)


def _sid_check(value: Any) -> bytes:
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


def _char4_check(value: Any) -> bytes:
    if isinstance(value, str):
        data = value.encode("latin-1", "strict") if len(value) == 4 else b""
        if len(data) != 4:
            raise ValueError(f"{value!r} is not 4 characters")
        return data
    return _int_check(4, -(1 << 31), (1 << 32) - 1, "4 characters or an int")(value)


def _char_check(value: Any) -> bytes:
    if isinstance(value, str):
        if len(value) != 1 or ord(value) > 0xFF:
            raise ValueError(f"{value!r} is not one 8-bit character")
        return value.encode("latin-1")
    return _int_check(1, -128, 255, "a character (str of length 1 or 0..255)")(value)


def _wchar_check(value: Any) -> bytes:
    if isinstance(value, str):
        if len(value) != 1 or ord(value) > 0xFFFF:
            raise ValueError(f"{value!r} is not one UTF-16 character")
        return value.encode("utf-16-le")
    return _int_check(2, -(1 << 15), 0xFFFF, "a character (str of length 1 or 0..65535)")(value)


_STRING_FAST = {
    # Fast forms (str only); anything else, or a NUL, goes to the checking slow path.
    "cstr": '{a}.encode()',             # UTF-8; the NUL terminator is added by the packer
    "wstr": '{a}.encode("utf-16-le")',
}
_TERMINATOR = {"cstr": 1, "wstr": 2}
_GUID_ITEMS = {"ItemGuid", "ItemCLSID", "ItemLIBID", "ItemIID"}
_STATUS_ITEMS = {"ItemNTSTATUS", "ItemWINERROR", "ItemHRESULT", "ItemNDIS_STATUS", "ItemNDIS_OID"}
_ENUM_ITEMS = {"ItemListByte", "ItemListShort", "ItemListLong", "ItemSetByte", "ItemSetShort",
               "ItemSetLong", "ItemEnum", "ItemFlagsEnum"}
_SPECIAL_CHECKS: dict[str, tuple[str, Callable[[Any], bytes]]] = {
    "ItemIPAddr": ("an IPv4 address", _ipaddr_check),
    "ItemPort": ("a port number", _port_check),
    "ItemTimestamp": ("a datetime", _filetime_check),
    "ItemWaitTime": ("a datetime", _filetime_check),
    "ItemTimeDelta": ("a timedelta", _delta_check),
    "ItemChar4": ("4 characters", _char4_check),
}
_VAR_CHECKS: dict[str, tuple[str, Callable[[Any], bytes]]] = {
    "cstr": ("a str", _astr_check),
    "wstr": ("a str", _wstr_check),
    "pstr": ("a str or bytes", _pstr_check),
    "pwstr": ("a str", _pwstr_check),
    "sid": ("a SID", _sid_check),
}


def codec_for(wtype: wppini.WppType, conversion: str) -> ArgCodec:
    """The codec for a tracewpp type; ``conversion`` is the rendered printf conversion (d, x, s ...).

    Wire kind and size come from the shared item table (:data:`wpptrace.tmf.itemtypes.ITEM_TYPES`);
    this function adds what only the Python side knows: which Python values a type accepts."""
    item = wtype.item
    it = ITEM_TYPES.get(item)
    if it is None:
        raise TypeError(f"unknown item type {item} (type %!{wtype.name}!)")
    if it.wire in _VAR_CHECKS:
        what, check = _VAR_CHECKS[it.wire]
        return ArgCodec(item, what, None, _STRING_FAST.get(it.wire), check, _TERMINATOR.get(it.wire, 0))
    if it.wire not in ("fixed", "pointer"):
        raise TypeError(f"the Python provider cannot send {item} values (type %!{wtype.name}!)")
    size = it.fixed_size(POINTER_SIZE)
    if item in _GUID_ITEMS:
        return ArgCodec(item, "a uuid.UUID", None, "{a}.bytes_le", _guid_check)
    if item == "ItemDouble":
        return ArgCodec(item, "a float", "d", None, _double_check)
    if item in _SPECIAL_CHECKS:
        what, check = _SPECIAL_CHECKS[item]
        return ArgCodec(item, what, None, None, check)
    if item in _STATUS_ITEMS or item in _ENUM_ITEMS:
        # Written either way in Python (0xC0000022 or -1073741790): both ranges fit.
        return _int_codec(item, size, False, f"a {8 * size}-bit value", both=True)
    if not it.raw or size not in (1, 2, 4, 8):
        raise TypeError(f"the Python provider cannot send {item} values (type %!{wtype.name}!)")
    if conversion in "cC" and size == 1:
        return ArgCodec(item, "a character", None, None, _char_check)
    if conversion in "cC" and size == 2:
        return ArgCodec(item, "a wide character", None, None, _wchar_check)
    signed = conversion in "di"
    what = f"a {'signed' if signed else 'non-negative'} {8 * size}-bit integer"
    if item == "ItemPtr" and conversion == "p":
        what = "a pointer value (non-negative int)"
    return _int_codec(item, size, signed, what)


# -- one call site --------------------------------------------------------------------------

@dataclasses.dataclass
class CompiledFormat:
    tmf_format: str
    types: list[wppini.WppType]
    codecs: list[ArgCodec]


def compile_format(fmt: str, *, component: str | None = None, file: str | None = None,
                   line: int | None = None) -> CompiledFormat:
    """Source format -> TMF format string, tracewpp types and codecs (raises FormatSpecError/TypeError)."""
    tmf_format, _items = formatspec.printf_to_tmf(fmt, std_prefix=True, component=component,
                                                   file=file, line=line)
    rendered = [p for p in formatspec.parse_tmf_format(tmf_format) if isinstance(p, formatspec.Insert)]
    types: list[wppini.WppType] = []
    codecs: list[ArgCodec] = []
    inserts = [p for p in formatspec.parse_printf_format(fmt) if isinstance(p, formatspec.Insert)]
    for piece, shown in zip(inserts, rendered):
        wtype = formatspec.wpp_type_for(piece.spec if piece.ext is None else piece.ext)
        conversion = shown.spec.conversion if shown.spec is not None else "s"
        types.append(wtype)
        codecs.append(codec_for(wtype, conversion))
    return CompiledFormat(tmf_format, types, codecs)


def site_label(source_file: str, site: CallSite) -> str:
    return f"{source_file}:{site.line} in {site.function} ({site.method}, message {site.number})"


@dataclasses.dataclass
class CompiledSite:
    """A call site ready to trace: identity, TMF message and packer."""

    site: CallSite
    label: str
    message: Message
    guid_le: bytes
    number: int
    nargs: int
    codecs: list[ArgCodec]
    # pack(a0, a1, a2, a3, more) -> bytes, for the level methods' fixed slots
    pack: Callable[..., bytes] = dataclasses.field(repr=False, default=None)  # type: ignore[assignment]
    code: Any = None   # the code object and instruction offset of the call (runtime cache key)
    lasti: int = -1
    fmt: Any = None    # the format str object the call passes (identity check of the fast lookup)
    cid: int | None = None  # id of its packer program in the C fast path (_hazmat.register_site)

    def pack_tuple(self, args: tuple) -> bytes:
        """Pack a tuple of arguments (the ``log()`` path and tests)."""
        padded = args + (MISSING,) * 4
        return self.pack(padded[0], padded[1], padded[2], padded[3], args[4:])

    def program(self) -> tuple[str, tuple]:
        """The C packer program: one type code per argument and the converters for code 'o'
        (see provider/pyext/fastpath.c); the same wire forms as :meth:`pack`."""
        codes, converters = [], []
        for codec in self.codecs:
            code, convert = _PROGRAM_CODES.get(codec.fast or codec.code or "", ("o", codec.check))
            codes.append(code)
            converters.append(convert)
        return "".join(codes), tuple(converters)

    def check_args(self, args: tuple) -> bytes:
        """The slow path: validate every argument, raise naming the call site, or return bytes."""
        if len(args) != self.nargs:
            raise TypeError(f"{self.label}: the format {self.site.format!r} takes {self.nargs} "
                            f"argument(s), {len(args)} given")
        out = []
        for index, (codec, value) in enumerate(zip(self.codecs, args)):
            try:
                out.append(codec.check(value))
            except (TypeError, ValueError, OverflowError, UnicodeError) as exc:
                kind = TypeError if isinstance(exc, TypeError) else ValueError
                raise kind(f"{self.label}: argument {index + 1} ({self.site.arg_texts[index] if index < len(self.site.arg_texts) else '?'}) "
                           f"for {codec.item}: {exc}") from None
        return b"".join(out)


#: ArgCodec fast form (struct code or expression) -> C program code; the rest are encoded by
#: ``codec.check`` (code "o"). A value the C form refuses goes to check_args, as in ``pack``.
_PROGRAM_CODES: dict[str, tuple[str, Any]] = {
    **{c: (c, None) for c in "bhiqBHIQd"},
    _STRING_FAST["cstr"]: ("s", None),
    _STRING_FAST["wstr"]: ("S", None),
    "{a}.bytes_le": ("g", None),
}

FIXED_SLOTS = 4  # positional slots of the level methods before *more


def _build_packer(compiled: CompiledSite) -> Callable[..., bytes]:
    """Generate ``pack(a0, a1, a2, a3, more)``: arity check, then one expression of struct packs
    and string encodes. Generated from the codec list only (identifiers, no user text)."""
    n = compiled.nargs
    names = [f"a{i}" if i < FIXED_SLOTS else f"more[{i - FIXED_SLOTS}]" for i in range(n)]
    lines = ["def pack(a0, a1, a2, a3, more):"]
    checks = []
    if n < FIXED_SLOTS:
        if n > 0:
            checks.append(f"a{n - 1} is _MISSING")
        checks.append(f"a{n} is not _MISSING")
        checks.append("more")
    else:
        checks.append(f"len(more) != {n - FIXED_SLOTS}")
        checks.append(f"a{FIXED_SLOTS - 1} is _MISSING")
    namespace: dict[str, Any] = {"_MISSING": MISSING, "_struct_error": struct.error}
    parts: list[str] = []
    run_codes: list[str] = []
    run_args: list[str] = []
    str_checks: list[str] = []

    pending_nul = 0  # a string's terminator, folded into the next struct run as pad bytes

    def settle() -> None:
        nonlocal pending_nul
        if pending_nul:
            parts.append(repr(b"\x00" * pending_nul))
            pending_nul = 0

    def flush() -> None:
        if run_codes:
            key = f"_s{len(parts)}"
            namespace[key] = struct.Struct("<" + "".join(run_codes)).pack
            parts.append(f"{key}({', '.join(run_args)})")
            run_codes.clear()
            run_args.clear()

    def add_fixed(code: str, arg: str) -> None:
        nonlocal pending_nul
        if pending_nul:
            run_codes.append(f"{pending_nul}x")
            pending_nul = 0
        run_codes.append(code)
        run_args.append(arg)

    for codec, name in zip(compiled.codecs, names):
        if codec.code is not None:
            add_fixed(codec.code, name)
        elif codec.fast == "{a}.bytes_le":
            add_fixed("16s", codec.fast.format(a=name))
        elif codec.fast is not None:
            flush()
            settle()
            parts.append(codec.fast.format(a=name))
            str_checks.append(f'"\\x00" in {name}')
            pending_nul = codec.terminator
        else:
            flush()
            settle()
            key = f"_c{len(parts)}"
            namespace[key] = codec.check
            parts.append(f"{key}({name})")
    flush()
    settle()
    body = " + ".join(parts) if parts else 'b""'
    lines.append(f"    if {' or '.join(checks)}:")
    lines.append("        return _slow(a0, a1, a2, a3, more)")
    lines.append("    try:")
    if str_checks:
        lines.append(f"        if {' or '.join(str_checks)}:")
        lines.append("            return _slow(a0, a1, a2, a3, more)")
    lines.append(f"        return {body}")
    lines.append("    except (_struct_error, TypeError, AttributeError, ValueError, OverflowError):")
    lines.append("        return _slow(a0, a1, a2, a3, more)")

    def slow(a0: Any, a1: Any, a2: Any, a3: Any, more: tuple) -> bytes:
        args = tuple(a for a in (a0, a1, a2, a3) if a is not MISSING) + tuple(more)
        if any(a is MISSING for a in (a0, a1, a2, a3)[:len(args)]):
            raise TypeError(f"{compiled.label}: arguments out of order")
        return compiled.check_args(args)

    namespace["_slow"] = slow
    exec(compile("\n".join(lines), f"<wpptrace packer {compiled.label}>", "exec"), namespace)  # noqa: S102
    return namespace["pack"]


def compile_site(site: CallSite, *, guid: uuid.UUID, component: str, source_file: str,
                 label_path: str) -> CompiledSite:
    """Build the TMF message and packer of one call site (raises ValueError/TypeError naming it)."""
    label = site_label(label_path, site)
    try:
        fmt = compile_format(site.format, component=component, file=source_file, line=site.line)
    except (formatspec.FormatSpecError, TypeError) as exc:
        raise type(exc if isinstance(exc, TypeError) else ValueError())(
            f"{label}: bad trace format {site.format!r}: {exc}") from None
    if not site.starred and len(site.arg_texts) != len(fmt.codecs):
        raise TypeError(f"{label}: the format {site.format!r} takes {len(fmt.codecs)} argument(s), "
                        f"the call passes {len(site.arg_texts)}")
    arg_names = list(site.arg_texts) if not site.starred else [f"arg{i + 1}" for i in range(len(fmt.codecs))]
    args = tuple(Argument(name=arg_names[i], item=t.item, params=t.params, insert=10 + i)
                 for i, t in enumerate(fmt.types))
    trailer = {"LEVEL": site.level_text, "FLAGS": site.flag_text, "FUNC": site.function}
    message = Message(guid=guid, number=site.number, name=message_name(source_file, site.line),
                      format=fmt.tmf_format, args=args, trailer=trailer, component=component,
                      source_file=source_file, origin=f"{label_path}:{site.line}")
    compiled = CompiledSite(site=site, label=label, message=message, guid_le=guid.bytes_le,
                            number=site.number, nargs=len(fmt.codecs), codecs=fmt.codecs)
    compiled.pack = _build_packer(compiled)
    return compiled


@dataclasses.dataclass
class FileMessages:
    """All trace call sites of one source file, compiled for one provider."""

    path: str            # as given (absolute at run time)
    relative_path: str   # relative to the provider root, '/'-separated
    guid: uuid.UUID
    sites: list[CompiledSite]
    errors: list[Exception]  # sites whose format or argument count is wrong (numbers still taken)
    bad_sites: dict[tuple[int, int, int, int], Exception]
    format_counts: dict[str, int] = dataclasses.field(default_factory=dict)  # call sites per format text

    @property
    def messages(self) -> list[Message]:
        return [c.message for c in self.sites]


def compile_file(path: str, *, control_guid: uuid.UUID, component: str, root: str) -> FileMessages:
    """Scan ``path`` and compile every call site (raises ScanError if it cannot be read/parsed)."""
    from .tracing_sites import message_guid, relative_source_path, scan_file
    import os
    scan = scan_file(path)
    rel = relative_source_path(path, root)
    guid = message_guid(control_guid, rel)
    base = os.path.basename(path)
    sites, errors, bad = [], [], {}
    for site in scan.sites:
        try:
            sites.append(compile_site(site, guid=guid, component=component, source_file=base,
                                      label_path=rel))
        except (TypeError, ValueError) as exc:
            errors.append(exc)
            bad[site.position] = exc
    counts: dict[str, int] = {}
    for site in scan.sites:
        counts[site.format] = counts.get(site.format, 0) + 1
    return FileMessages(path, rel, guid, sites, errors, bad, counts)
