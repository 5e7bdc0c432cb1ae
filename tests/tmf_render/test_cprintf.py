"""printf emulation: integer conversions checked against the C library's own snprintf (glibc and
MSVC agree on d i u x X o with every flag, width and precision), and the fast path (Python's ``%``
on the struct-decoded value) checked against the exact path."""
from __future__ import annotations

import ctypes
import ctypes.util
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace.tmf.cprintf import fast_template, format_insert, format_int, spec_bits
from wpptrace.tmf.formatspec import Spec, parse_spec

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_libc.snprintf.restype = ctypes.c_int


def c_snprintf(spec: Spec, value: int, pointer_size: int) -> str:
    """What the C runtime prints. MSVC length letters map to glibc's (long is 32-bit on Windows)."""
    bits = spec_bits(spec, pointer_size)
    glibc_length = {8: "hh", 16: "h", 32: "", 64: "ll"}[bits]
    width = "" if spec.width is None else str(spec.width)
    prec = "" if spec.precision is None else f".{spec.precision}"
    fmt = f"%{spec.flags}{width}{prec}{glibc_length}{spec.conversion}".encode()
    arg = ctypes.c_ulonglong(value & (2**64 - 1)) if bits == 64 else ctypes.c_uint(value & 0xFFFFFFFF)
    buf = ctypes.create_string_buffer(256)
    n = _libc.snprintf(buf, 256, fmt, arg)
    assert 0 <= n < 256
    return buf.value.decode()


INT_SPECS = st.builds(
    Spec,
    flags=st.text(alphabet="-+ #0", max_size=4),
    width=st.none() | st.integers(1, 30),
    precision=st.none() | st.integers(0, 25),
    length=st.sampled_from(["", "h", "hh", "l", "ll", "I", "I32", "I64", "w", "z"]),
    conversion=st.sampled_from(list("diuxXo")),
)
VALUES = st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF,
                                                      0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**63, 2**64 - 1])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(INT_SPECS, VALUES, st.sampled_from([4, 8]))
def test_integers_match_the_c_library(spec, value, ps):
    assert format_int(value, spec, ps) == c_snprintf(spec, value, ps)


FAST_SPECS = INT_SPECS | st.builds(Spec, flags=st.sampled_from(["", "-"]),
                                   width=st.none() | st.integers(1, 20), conversion=st.just("p"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FAST_SPECS, VALUES, st.sampled_from([8, 16, 32, 64]), st.sampled_from([4, 8]))
def test_fast_path_equals_exact_path(spec, value, item_bits, ps):
    raw = value & ((1 << item_bits) - 1)
    fast = fast_template(spec, item_bits, ps)
    if fast is None:
        return
    template, code = fast
    decoded = struct.unpack("<" + code, raw.to_bytes(item_bits // 8, "little"))[0]
    assert template % decoded == format_insert(raw, spec, ps)


@pytest.mark.parametrize("spec,value,text", [
    ("d", 0xFFFFFFFF, "-1"), ("hd", 0xFFFF, "-1"), ("d", 0xFFFF, "65535"),
    ("I64d", 0xFFFFFFFF, "4294967295"),          # zero-extended, not sign-extended
    ("#x", 0, "0"), ("#x", 255, "0xff"), ("#o", 8, "010"), ("#o", 0, "0"),
    (".0d", 0, ""), ("08.3d", 5, "     005"), ("+u", 5, "5"), ("-6d", 5, "5     "),
])
def test_c_corner_cases(spec, value, text):
    assert format_int(value, parse_spec(spec), 8) == text


def test_pointer_char_string_and_float():
    assert format_insert(0x1234, parse_spec("p"), 8) == "0000000000001234"
    assert format_insert(0x1234, parse_spec("p"), 4) == "00001234"
    assert format_insert(0x1234, parse_spec("20p"), 4) == "            00001234"
    assert format_insert(0x41, parse_spec("c"), 8) == "A"
    assert format_insert(0x263A, parse_spec("C"), 8) == "\u263a"
    assert format_insert(0x263A, parse_spec("lc"), 8) == "\u263a"
    assert format_insert("abc", parse_spec("-5s"), 8) == "abc  "
    assert format_insert("abcdef", parse_spec("5.2s"), 8) == "   ab"
    assert format_insert(1.5, parse_spec("e"), 8) == "1.500000e+00"
    assert format_insert(2.25, parse_spec("08.3f"), 8) == "0002.250"
    assert format_insert(1.5, None, 8) == "1.5"
    assert format_insert(7, parse_spec("n"), 8) == ""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(allow_nan=False, allow_infinity=False),
       st.sampled_from(["e", "E", "f", "g", "G", "10.3f", "-12.4e", "+.2g", "#g", "015.2f"]))
def test_floats_match_the_c_library(value, spec_text):
    spec = parse_spec(spec_text)
    buf = ctypes.create_string_buffer(512)
    n = _libc.snprintf(buf, 512, f"%{spec_text}".encode(), ctypes.c_double(value))
    if n >= 512:
        return
    assert format_insert(value, spec, 8) == buf.value.decode()
