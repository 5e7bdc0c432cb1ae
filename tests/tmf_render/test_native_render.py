"""The C renderer prints exactly what the Python renderer prints: every item type it handles under
any printf spec, any argument bytes (or leaves the row to Python when they do not fit), any
prefix template, local and UTC time; and it refuses malformed programs without crashing."""
from __future__ import annotations

import os
import struct
import time
import uuid

import golden_traces
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace import tmf
from wpptrace._core import ffi
from wpptrace.decoder.prefix import PrefixTemplate, TimestampText, marker_values
from wpptrace.tmf import native
from wpptrace.tmf.formatspec import parse_spec
from wpptrace.tmf.itemtypes import ITEM_TYPES
from wpptrace.tmf.model import Argument, EnumDef, Message, TmfSet
from wpptrace.tmf.render import FormatError, MessageFormatter

G = uuid.UUID("0badf00d-0000-4000-8000-00000000c0de")
# WPPTRACE_NATIVE_EXAMPLES: more examples for a long differential run
SETTINGS = settings(max_examples=int(os.environ.get("WPPTRACE_NATIVE_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
NATIVE_ITEMS = sorted(name for name, it in ITEM_TYPES.items() if it.native)


class Harness:
    """Renders rows of one program with the C renderer; Python's text for the same row."""

    def __init__(self, *, utc: bool = True, noprefix: bool = False) -> None:
        self.renderer = native.NativeRenderer(utc=utc, noprefix=noprefix)
        self.rows = ffi.new("wppr_row[1]")

    def program(self, formatter: MessageFormatter, markers, prefix_ops=None) -> int | None:
        compiled = formatter.native_ops(markers)
        if compiled is None:
            return None
        args, ops = compiled
        has_prefix = formatter.message.format.startswith("%0")
        return self.renderer.add(native.encode(args, ops, prefix_ops, prefix=has_prefix))

    def render(self, program: int, data: bytes, pointer_size: int, **fields) -> str | None:
        """The line without its newline, or None for a hole."""
        row = self.rows[0]
        keep = ffi.from_buffer(data)
        row.args, row.size, row.program = keep, len(data), program
        row.pointer_size = pointer_size
        row.milli = fields.get("milli", 0)
        row.thread_id, row.process_id = fields.get("tid", 0), fields.get("pid", 0)
        row.sequence, row.cpu = fields.get("seq", 0), fields.get("cpu", 0)
        text, holes = self.renderer.render(self.rows, 1)
        if holes:
            assert holes == [(0, 0)] and text == b""
            return None
        assert text.endswith(b"\n")
        return text[:-1].decode("utf-8")


def python_text(formatter: MessageFormatter, data: bytes, pointer_size: int, markers) -> str | None:
    try:
        return formatter.format(data, pointer_size, markers)
    except FormatError:
        return None


def check_messages(tmfset, messages, rng, per_message: int) -> tuple[int, int]:
    """C == Python for every message and random arguments; (rendered in C, holes)."""
    h = Harness()
    rendered = holes = 0
    for m in messages:
        f = MessageFormatter(m, tmfset, utc=True)
        markers = marker_values(m)
        program = h.program(f, markers)
        if program is None:
            continue
        for _ in range(per_message):
            for ps in (4, 8):
                data = b"".join(golden_traces.arg_bytes(a.item, a.params, rng, ps) for a in m.args)
                if rng.below(8) == 0 and data:
                    data = data[:rng.below(len(data))]
                want = python_text(f, data, ps, markers)
                got = h.render(program, data, ps)
                if got is None:
                    holes += 1
                    assert want is None, (m.origin, m.format, data.hex(), ps, want)
                else:
                    rendered += 1
                    assert got == want, (m.origin, m.format, data.hex(), ps)
    return rendered, holes


def test_corpus_driver_messages(corpus):
    tmfset = tmf.load(str(golden_traces.driver_tmf_dir(corpus)))
    messages = sorted(tmfset.messages(), key=lambda m: (str(m.guid), m.number))
    rendered, holes = check_messages(tmfset, messages, golden_traces.Rng(11), 2)
    assert rendered > 9000 and holes > 100  # cut-off blocks are left to Python


def test_every_item_under_the_synthetic_specs():
    tmfset = tmf.parse_text(golden_traces.synth_tmf(), path="synth.tmf")
    messages = sorted(tmfset.messages(), key=lambda m: m.number)
    rendered, holes = check_messages(tmfset, messages, golden_traces.Rng(12), 30)
    assert rendered > 4000


def test_which_messages_stay_with_python():
    tmfset = tmf.parse_text(golden_traces.synth_tmf(), path="synth.tmf")
    python_only = sorted(m.format for m in tmfset.messages()
                         if MessageFormatter(m, tmfset).native_ops(marker_values(m)) is None)
    uses = " ".join(python_only)
    # the rare item types (IP addresses, ports, SIDs, times), '*' widths and unusable formats
    assert len(python_only) == 12 and "%10!*d!" in uses and "%10!q!" in uses and "%14!d!" in uses


# -- any spec, any bytes -------------------------------------------------------------------

SPEC_FLAGS = st.lists(st.sampled_from("-+ #0"), max_size=3).map("".join)
SPECS = st.builds(
    lambda flags, width, prec, length, conv: f"{flags}{'' if width is None else width}"
                                             f"{'' if prec is None else '.' + str(prec)}{length}{conv}",
    SPEC_FLAGS, st.none() | st.integers(0, 24), st.none() | st.integers(0, 20),
    st.sampled_from(["", "", "h", "hh", "l", "ll", "I64", "I", "w", "z", "I32", "L", "q"]),
    st.sampled_from(list("diuxXocCsSpeEfFgGaAn")))


def _enums() -> TmfSet:
    tmfset = TmfSet()
    tmfset.add_enum(EnumDef("_E", {0: "Zero", 1: "One", 0x80000000: "High", -2 & 0xFFFFFFFFFFFFFFFF: "Neg"}))
    tmfset.add_enum(EnumDef("_F", {1: "A", 2: "B", 8: "D", 3: "AB"}))
    return tmfset


PARAMS = {"ItemListByte": ("Low", "APC", "DPC=5", "X"), "ItemListShort": ("a", "b=0x100"),
          "ItemListLong": ("false", "true"), "ItemSetByte": ("b0", " b1", "b2 "), "ItemSetShort": ("s",),
          "ItemSetLong": ("x", "y", "z"), "ItemEnum": ("_E",), "ItemFlagsEnum": ("_F",)}


@SETTINGS
@given(item=st.sampled_from(NATIVE_ITEMS), spec=SPECS, data=st.binary(max_size=40),
       ps=st.sampled_from([4, 8]), legacy=st.booleans(), missing_enum=st.booleans())
def test_any_item_under_any_spec(item, spec, data, ps, legacy, missing_enum):
    try:
        parse_spec(spec)
    except ValueError:
        return
    params = PARAMS.get(item, ())
    if missing_enum and item in ("ItemEnum", "ItemFlagsEnum"):
        params = ("_Missing",)
    message = Message(guid=G, number=10, name="t_c1", format=f"%0<%10!{spec}!>|%11!{spec}!|%10",
                      args=(Argument("a", item, params, 10), Argument("b", item, params, 11)),
                      legacy=legacy)
    f = MessageFormatter(message, _enums(), utc=True)
    h = Harness()
    program = h.program(f, {})
    assert program is not None
    want = python_text(f, data, ps, {})
    got = h.render(program, data, ps)
    assert got == want or (got is None and want is None), (item, spec, data.hex(), ps)


@SETTINGS
@given(text=st.binary(max_size=30), wide=st.binary(max_size=30), spec=SPECS)
def test_string_bytes_decode_alike(text, wide, spec):
    """Any ANSI bytes (UTF-8 or code page 1252) and any UTF-16 units (lone surrogates too)."""
    try:
        parse_spec(spec)
    except ValueError:
        return
    message = Message(guid=G, number=11, name="t_c2", format=f"%0[%10!{spec}!][%11][%12][%13!{spec}!]",
                      args=(Argument("a", "ItemPString", (), 10), Argument("b", "ItemPWString", (), 11),
                            Argument("c", "ItemRString", (), 12), Argument("d", "ItemRWString", (), 13)))
    data = (struct.pack("<H", len(text)) + text + struct.pack("<H", len(wide)) + wide
            + text.replace(b"\0", b"") + b"\0" + _utf16z(wide))
    f = MessageFormatter(message, None, utc=True)
    h = Harness()
    program = h.program(f, {})
    assert h.render(program, data, 8) == python_text(f, data, 8, {})


def _utf16z(raw: bytes) -> bytes:
    units = [raw[i:i + 2] for i in range(0, len(raw) - 1, 2) if raw[i:i + 2] != b"\0\0"]
    return b"".join(units) + b"\0\0"


# -- prefixes and time text ------------------------------------------------------------------

PREFIX_PIECES = st.sampled_from([
    "%1!s!", "%2!s!", "%3!04X!", "%3!x!", "%4!s!", "%5!d!", "%6!u!", "%7!08x!", "%8!04X!", "%9!d!",
    "%1!-10s!", "%2!12s!", "%4!-30s!", "%4!.10s!", "%3!#x!", "%8!+d!", "%9! 5d!", "%7!-8u|!", "%3!#o!",
    "%8!#010X!", "%9!.3d!", "%7!05.3d!", "%3!-05x!", "%8!s!", "%9!.1s!", "%3!p!", "%3!i!", "%1",
    "%!FUNC!", "%!LEVEL!", "%!COMPNAME!", "%!FLAGS!", "%!FILE!", "%!LINE!", "%!SUBCOMP!", "%!OTHER!",
    "[", "]", "::", " ", "%%", "%n", "x%0y", "%10!d!", "%9!c!"])


@SETTINGS
@given(pieces=st.lists(PREFIX_PIECES, max_size=12), tid=st.integers(0, 2**32 - 1),
       pid=st.integers(0, 2**32 - 1), cpu=st.integers(0, 2**32 - 1), seq=st.integers(0, 2**32 - 1),
       milli=st.integers(-(2**63) + 2, 2**63 - 1), noprefix=st.booleans())
def test_any_prefix(pieces, tid, pid, cpu, seq, milli, noprefix):
    text = "".join(pieces).replace("%7!-8u|!", "%7!-8u!")
    try:
        template = PrefixTemplate(text)
    except ValueError:
        return
    message = Message(guid=G, number=12, name="Dev_c42", format="%0 [%!FUNC!]v=%10!d!",
                      args=(Argument("a", "ItemLong", (), 10),), trailer={"FUNC": "Dev_Go", "LEVEL": "L"},
                      component="drv", source_file="dev.c")
    markers = marker_values(message)
    ops = template.native_ops("drv", "Dev_c42", markers)
    if ops is None:  # a %c of a number: Python prints the prefix
        assert "%9!c!" in pieces
        return
    f = MessageFormatter(message, None, utc=True)
    h = Harness(utc=True, noprefix=noprefix)
    program = h.program(f, markers, ops)
    data = struct.pack("<i", -7)
    got = h.render(program, data, 8, milli=milli, tid=tid, pid=pid, cpu=cpu, seq=seq)
    # the same prefix as a program shared by every message (its strings per message)
    shared = native.SharedPrefix(h.renderer.add_prefix(template.native_shared_ops()),
                                 template.native_strings("drv", "Dev_c42", markers))
    assert h.render(h.program(f, markers, shared), data, 8, milli=milli, tid=tid, pid=pid, cpu=cpu,
                    seq=seq) == got
    body = f.format(data, 8, markers)
    if noprefix:
        assert got == body
        return
    bound = template.bind("drv", "Dev_c42", markers)
    values = (tid, TimestampText(True)(milli * 10_000 + 9_999), 0, 0, seq, pid, cpu)
    assert got == bound.render(values) + body


@pytest.mark.parametrize("zone", ["UTC0", golden_traces.LOCAL_TZ, "EST5EDT,M3.2.0,M11.1.0", "<+1345>-13:45"])
def test_time_text_local_and_utc(zone):
    old = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        rng = golden_traces.Rng(13)
        samples = [0, -1, 1, 2**63 - 1, -(2**63), 116444736000000000, 134000000000000000 - 1]
        samples += [rng.u64() - 2**63 for _ in range(300)]
        samples += [134000000000000000 + rng.below(10**15) for _ in range(300)]
        for utc in (True, False):
            python = TimestampText(utc)
            for ft in samples:
                assert native.time_text(ft, utc) == python(ft), (zone, utc, ft)
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_rows_without_a_time_and_out_of_range_times():
    """No time: an empty time text (padded as any text); a time only Python can place: a hole."""
    template = PrefixTemplate("%4!s!|%4!-6s!|")
    message = Message(guid=G, number=13, name="c", format="%0x")
    h = Harness()
    program = h.program(MessageFormatter(message, None), {}, template.native_ops("c", "c", {}))
    assert h.render(program, b"", 8, milli=native.NO_TIME) == "|      |x"
    assert h.render(program, b"", 8, milli=native.TIME_OUT_OF_RANGE) is None
    assert h.render(program, b"", 8, milli=13_400_000_000_123) == "08/18/2025-14:13:20.123|08/18/2025-14:13:20.123|x"


# -- programs from untrusted bytes -----------------------------------------------------------

def test_malformed_programs_are_refused_and_mutants_never_crash():
    message = Message(guid=G, number=14, name="m", format="%0%10!s! %11!08x! %12!s! %13!s! %14!-5s!",
                      args=(Argument("a", "ItemGuid", (), 10), Argument("b", "ItemLong", (), 11),
                            Argument("c", "ItemSetLong", ("x", "y"), 12),
                            Argument("d", "ItemFlagsEnum", ("_F",), 13), Argument("e", "ItemString", (), 14)))
    f = MessageFormatter(message, _enums())
    args, ops = f.native_ops({})
    prefix = PrefixTemplate("[%9!d!]%4!s! %1!s!").native_ops("c", "m", {})
    blob = native.encode(args, ops, prefix, prefix=True)
    h = Harness()
    assert h.renderer.add(blob) >= 0
    data = bytes(range(16)) + b"\x01\x00\x00\x00\x03\x00\x00\x00\x09\x00\x00\x00hello\0"
    for bad in (b"", blob[:-1], blob + b"\0", b"XXXX" + blob[4:]):
        with pytest.raises(ValueError):
            h.renderer.add(bad)
    # a shared prefix: only a registered shared program with strings enough for its pstr ops
    shared_ops = PrefixTemplate("[%9!d!]%4!s! %1!s! %2!s!").native_shared_ops()
    prefix_id = h.renderer.add_prefix(shared_ops)
    for program, strings in ((prefix_id, ["c"]), (0, ["c", "m"]), (999, ["c", "m"])):
        with pytest.raises(ValueError):
            h.renderer.add(native.encode(args, ops, native.SharedPrefix(program, strings), prefix=True))
    shared_program = h.renderer.add(native.encode(args, ops, native.SharedPrefix(prefix_id, ["c", "m"]),
                                                  prefix=True))
    assert h.render(prefix_id, data, 8) is None  # a shared prefix prints no row itself
    assert h.render(shared_program, data, 8).startswith("[0]01/01/1601-00:00:00.000 c m")
    rng = golden_traces.Rng(14)
    accepted = 0
    for _ in range(3000):
        mutant = bytearray(blob)
        for _ in range(1 + rng.below(4)):
            mutant[rng.below(len(mutant))] = rng.below(256)
        try:
            program = h.renderer.add(bytes(mutant))
        except ValueError:
            continue
        accepted += 1
        chunk = data[:rng.below(len(data) + 1)]
        keep = ffi.from_buffer(chunk)
        h.rows[0].args, h.rows[0].size, h.rows[0].program = keep, len(chunk), program
        h.renderer.render(h.rows, 1)  # any bytes, never a crash
    assert accepted > 100
