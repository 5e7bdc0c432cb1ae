"""MSVC printf semantics for one FormatMessage insert: how a raw argument value prints under a
printf spec (``d``, ``04X``, ``I64u``, ``p``, ``-10s`` ...).

FormatMessage hands each insert to the C runtime's printf. WPP passes the raw argument bytes
zero-extended into a pointer-sized slot, so the spec's length modifier decides how many bits are
read (none/l/w: 32, h: 16, hh: 8, ll/I64: 64, I/z/t: pointer size) and the conversion decides
signedness (``d``/``i`` signed, ``u``/``x``/``X``/``o`` unsigned). This module gives

* :func:`format_insert` - the exact (slow) rendering of one value, and
* :func:`fast_template` - when Python's ``%`` operator prints the same text, the Python
  template and the struct code that yields the value ready for it (the decoder's hot path).
"""
from __future__ import annotations

from .formatspec import Spec

__all__ = ["spec_bits", "format_insert", "format_int", "pad", "fast_template"]

_INT_CONVERSIONS = frozenset("diuxXo")
_FLOAT_CONVERSIONS = frozenset("eEfFgGaA")


def spec_bits(spec: Spec, pointer_size: int) -> int:
    """How many bits of the argument slot the spec reads."""
    length = spec.length
    if length in ("", "l", "w", "I32"):
        return 32
    if length == "h":
        return 16
    if length == "hh":
        return 8
    if length in ("ll", "I64", "q", "j", "L"):
        return 64
    return pointer_size * 8  # I, z, t


def pad(text: str, spec: Spec, zero_ok: bool = False) -> str:
    """Apply width and the '-' / '0' flags to already converted text."""
    width = spec.width if isinstance(spec.width, int) else 0
    if len(text) >= width:
        return text
    if "-" in spec.flags:
        return text.ljust(width)
    if zero_ok and "0" in spec.flags:
        sign = text[:1] if text[:1] in "+- " else ""
        body = text[len(sign):]
        if body[:2] in ("0x", "0X"):
            sign, body = sign + body[:2], body[2:]
        return sign + body.rjust(width - len(sign), "0")
    return text.rjust(width)


def format_int(value: int, spec: Spec, pointer_size: int) -> str:
    """C printf of an integer slot value (already zero-extended, unsigned) under ``spec``."""
    conv = spec.conversion
    bits = spec_bits(spec, pointer_size)
    value &= (1 << bits) - 1
    if conv in "di" and value >> (bits - 1):
        value -= 1 << bits
    prec = spec.precision if isinstance(spec.precision, int) else None
    neg = value < 0
    mag = -value if neg else value
    if conv in "di" or conv == "u":
        digits = str(mag)
    elif conv == "x":
        digits = f"{mag:x}"
    elif conv == "X":
        digits = f"{mag:X}"
    else:  # o
        digits = f"{mag:o}"
    if prec is not None:
        digits = "" if (prec == 0 and mag == 0) else digits.rjust(prec, "0")
    if "#" in spec.flags:
        if conv == "o" and not digits.startswith("0"):
            digits = "0" + digits
        elif conv in "xX" and mag != 0:
            digits = ("0x" if conv == "x" else "0X") + digits
    sign = ""
    if conv in "di":
        sign = "-" if neg else ("+" if "+" in spec.flags else (" " if " " in spec.flags else ""))
    return pad(sign + digits, spec, zero_ok=prec is None)


def format_insert(value: object, spec: Spec | None, pointer_size: int) -> str:
    """Render one insert value: ints by printf rules, floats by %e/%f/%g (or %g under ``s``),
    strings with width/precision. ``spec`` None means ``s``."""
    if spec is None:
        return value if isinstance(value, str) else _plain(value)
    conv = spec.conversion
    if isinstance(value, str):
        if conv in "sSZ" or conv == "c" or conv == "C":
            text = value[: spec.precision] if isinstance(spec.precision, int) and conv in "sSZ" else value
            return pad(text, spec)
        return pad(value, spec)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        if conv in _INT_CONVERSIONS:
            return format_int(value, spec, pointer_size)
        if conv == "p":
            bits = pointer_size * 8
            return pad(f"{value & ((1 << bits) - 1):0{pointer_size * 2}X}", spec)
        if conv in "cC":
            wide = conv == "C" or spec.length in ("l", "w")
            code = value & (0xFFFF if wide else 0xFF)
            if wide:  # a lone UTF-16 surrogate is not a character: U+FFFD, as UTF-16 decoding gives
                return pad("\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code), spec)
            return pad(bytes([code]).decode("cp1252", "replace"), spec)
        if conv == "n":
            return ""
        if conv in _FLOAT_CONVERSIONS:
            return format_insert(float(value), spec, pointer_size)
        return format_insert(str(value), spec, pointer_size)  # 's' on a number: its decimal text
    if isinstance(value, float):
        if conv in _FLOAT_CONVERSIONS:
            py = _py_float_spec(spec)
            text = py % value
            return text
        return format_insert(_plain(value), spec, pointer_size)
    return format_insert(_plain(value), spec, pointer_size)


def _plain(value: object) -> str:
    if isinstance(value, float):
        return "%g" % value
    return str(value)


def _py_float_spec(spec: Spec) -> str:
    conv = {"F": "f", "a": "e", "A": "E"}.get(spec.conversion, spec.conversion)
    width = spec.width if isinstance(spec.width, int) else None
    prec = spec.precision if isinstance(spec.precision, int) else None
    return ("%" + spec.flags + ("" if width is None else str(width))
            + ("" if prec is None else f".{prec}") + conv)


def fast_template(spec: Spec | None, item_bits: int, pointer_size: int, *,
                  is_float: bool = False) -> tuple[str, str] | None:
    """(python %-template, struct code) when Python's ``%`` operator applied to the struct-decoded
    value prints exactly what C prints for a raw item of ``item_bits`` bits; else None.

    The struct code reads exactly the item's bytes with the signedness the spec implies; that is
    only valid when the spec reads the same number of bits as the item has (no truncation or
    zero-extension), or when the spec is unsigned and reads at least the item's bits."""
    if spec is None or spec.stars:
        return None
    conv, flags = spec.conversion, spec.flags
    if is_float:
        if conv in "eEfgG" and item_bits == 64:
            return _py_float_spec(spec), "d"
        return None
    if conv == "p":  # MSVC: upper-case hex, zero-padded to the pointer width
        if flags.replace("-", "") or spec.precision is not None or item_bits > pointer_size * 8:
            return None
        digits = pointer_size * 2
        if spec.width is not None and spec.width > digits:
            return None
        codes = {8: "B", 16: "H", 32: "I", 64: "Q"}
        return (f"%0{digits}X", codes[item_bits]) if item_bits in codes else None
    if conv not in _INT_CONVERSIONS or spec.precision is not None or "#" in flags:
        return None
    bits = spec_bits(spec, pointer_size)
    signed = conv in "di"
    if signed and bits != item_bits:
        return None  # needs sign handling at a different width
    if bits < item_bits:
        return None  # truncation
    codes = {8: "bB", 16: "hH", 32: "iI", 64: "qQ"}
    if item_bits not in codes:
        return None
    code = codes[item_bits][0 if signed else 1]
    if not signed:
        flags = flags.replace("+", "").replace(" ", "")
    width = "" if spec.width is None else str(spec.width)
    py_conv = "d" if conv in "diu" else conv
    return f"%{flags}{width}{py_conv}", code
