"""The C compiler of message programs (tmf/csrc/wppcompile.c) makes the bytes the Python compile
makes (``ProgramPlan.encode``) for every message it does not decline, declines what only
Python prints, and reads hostile format strings and trailers without crashing."""
from __future__ import annotations

import pathlib
import random

import pytest

from wpptrace import tmf
from wpptrace.decoder import wpp
from wpptrace.decoder.prefix import _DEFAULTED, _EMPTY_MARKERS, DEFAULT_PREFIX, MessageMarkers
from wpptrace.decoder.wpp import WppDecoder
from wpptrace.tmf import render
from wpptrace.tmf.model import make_argument, make_message
from wpptrace.tmf.native_compile import MessageCompiler, insert_op

TESTS = pathlib.Path(__file__).resolve().parent.parent
TMF_FILES = sorted(TESTS.rglob("*.tmf"))
DRIVER_TMFS = TESTS / "corpus" / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
#: (shared prefix program, its strings, the WPPR_P_PREFIX flag): none, and a shared prefix
#: given a component and a name with non-ASCII text
CALLS = ((-1, (), None), (3, (b"Comp", "n\u00e4me".encode()), True))


def _compiler() -> MessageCompiler:
    """A compiler with the decoder's marker rules (as the decoder makes its own)."""
    return MessageCompiler(_EMPTY_MARKERS, _DEFAULTED)


def _reference(message, tmfset, program: int, strings: tuple, prefix: bool):
    """What the Python compile makes of the message: its blob, or None / PER_MESSAGE."""
    try:
        plan = render.native_plan(message, tmfset, False)
    except Exception:
        return render.PER_MESSAGE
    if plan is None or plan is render.PER_MESSAGE:
        return plan
    try:
        return plan.encode(MessageMarkers(message), program, strings, prefix)
    except UnicodeEncodeError:
        return None


def _check(compiler: MessageCompiler, message, tmfset) -> int:
    """Assert the C blob is the Python one (or declined); the number of blobs made in C."""
    made = 0
    for program, strings, prefix in CALLS:
        flag = message.format.startswith("%0") if prefix is None else prefix
        ref = _reference(message, tmfset, program, strings, flag)
        got = compiler.blob(message, program, strings, flag)
        if type(ref) is not bytes:
            assert got is None, (message.format, message.args)
        elif got is not None:
            assert got == ref, (message.format, message.args)
            made += 1
    return made


def test_every_corpus_message_compiles_to_the_python_bytes():
    compiler = _compiler()
    total = made = 0
    for path in TMF_FILES:
        tmfset = tmf.load(str(path), tolerant=True)
        for message in tmfset.messages():
            total += 1
            made += _check(compiler, message, tmfset)
    assert len(TMF_FILES) > 50 and total > 2000
    assert made >= 0.95 * 2 * total      # the C side declines only rare shapes


def test_the_decoder_makes_the_same_blob_with_and_without_the_c_compiler(monkeypatch):
    keys = [(m.guid.bytes_le, m.number) for m in tmf.load(str(DRIVER_TMFS)).messages()]
    blobs = {}
    made_in_c = []

    class Counted(MessageCompiler):
        __slots__ = ()

        def blob(self, *args):
            made_in_c.append(super().blob(*args))
            return made_in_c[-1]

    for compiler in (Counted(_EMPTY_MARKERS, _DEFAULTED), False):  # False: Python only
        monkeypatch.setattr(wpp, "_COMPILER", compiler)
        decoder = WppDecoder(tmf.load(str(DRIVER_TMFS), tolerant=True), prefix=DEFAULT_PREFIX)
        decoder._row_printer()
        decoder._shared_prefix()
        for noprefix in (False, True):
            blobs.setdefault(noprefix, []).append(
                [decoder._message_blob(decoder._raw_entry(*key), noprefix) for key in keys])
    for noprefix, (with_c, python_only) in blobs.items():
        assert with_c == python_only
        assert sum(blob is not None for blob in with_c) > 1500
    assert sum(blob is not None for blob in made_in_c) > 2 * 1500    # the C side made them


def _message(fmt: str, args=(("ItemLong", ()),), trailer=None, legacy=False):
    arguments = tuple(make_argument(f"a{i}", item, params, 10 + i) for i, (item, params) in enumerate(args))
    return make_message(0x1234, 7, "m_c1", fmt, arguments,
                        {"FUNC": "f", "LEVEL": "TRACE_LEVEL_ERROR"} if trailer is None else trailer,
                        "Comp", "a.c", "a.tmf:3", legacy)


@pytest.mark.parametrize("fmt, args, trailer, legacy", [
    ("%0 [%!FUNC!] x=%1!d!", (("ItemLong", ()),), None, False),       # %1..%9: prefix variables
    ("%0 x=%10!d", (("ItemLong", ()),), None, False),                  # unterminated spec
    ("%0 x=%11!d!", (("ItemLong", ()),), None, False),                 # an insert with no argument
    ("%0 x=%10!d!", (("ItemLong", ()),), None, True),                  # legacy #type
    ("%0 %!LINE! x=%10!d!", (("ItemLong", ()),), {}, False),           # a marker Python derives
    ("%0 %!func! x=%10!d!", (("ItemLong", ()),), {"f\u00fcnc": "v"}, False),   # a non-ASCII key
    ("%0 x=%10!d! %\x00", (("ItemLong", ()),), None, False),           # an escape it does not know
    ("%0 x=%10!" + "0" * 40 + "d!", (("ItemLong", ()),), None, False),  # a spec past the table's
    ("%0 x=%10!d!", (("ItemNoSuchType", ()),), None, False),           # an item Python cannot print
    ("%0 x=%10!d!", (("ItemLong", ()),), {"FUNC": "a\x00b"}, False),   # a NUL in a trailer value
    # after %!END! Python still reads the specs, and counts a bad one as a format error
    ("a %!END!%10!q!", (("ItemLong", ()),), None, False),
    ("a %!END!%11", (("ItemLong", ()),), None, False),
    ("a %!END!%10!d", (("ItemLong", ()),), None, False),
    ("a %!END!%10!*d!", (("ItemLong", ()),), None, False),
    ("a %!END!%10!99999d!", (("ItemLong", ()),), None, False),
    ("a %!END! fine", (("ItemLong", ()),), None, False),
])
def test_what_the_c_side_declines(fmt, args, trailer, legacy):
    assert _compiler().blob(_message(fmt, args, trailer, legacy), -1, (), True) is None


@pytest.mark.parametrize("fmt, trailer", [
    ("%0 [%!FUNC!] x=%10!08.3lx! y=%11 %% %n %!PREFIX! %!nomarker! %!SUBCOMP!%", None),
    ("%!level! %!Func! %12!s! %0 after the end", {"Func": "g", "LEVEL": "L", "level": "l"}),
    ("%!FUNC!%!FUNC!%10!d!%!FLAGS!", {"FUNC": "\u00e9\u00e8"}),
    ("no inserts, %t %r %. %! %!1bad! %!END!", None),
    ("%10!s!%11!d!%12!s!", None),
])
def test_the_c_blob_is_the_python_blob(fmt, trailer):
    message = _message(fmt, (("ItemLong", ()), ("ItemString", ()), ("ItemNTSTATUS", ())), trailer)
    tmfset = tmf.TmfSet()
    assert _check(_compiler(), message, tmfset) == 2


def test_an_insert_op_is_the_python_compiles_own():
    assert insert_op("ItemLong", (), b"d") == render._plan_of_steps(
        render._Layout("%10!d!", (make_argument("", "ItemLong", (), 10),)).plan_steps(
            (make_argument("", "ItemLong", (), 10),), False, None, False)).front[4:]
    assert insert_op("ItemLong", (), b"q!") is None      # a spec Python cannot read
    assert insert_op("ItemListLong", ("a", "b"), b"s") is None   # a name table: in the pool


def _mutations(text: str, rng: random.Random):
    alphabet = ["%", "!", "0", "1", "9", "10", "%0", "%!", "%10!", "!s!", "\x00", "\u00e9", "\ud800",
                "%1", "%99", "%!FUNC!", "%!A", "  ", "}", "%!END!"]
    for cut in range(0, len(text) + 1, max(1, len(text) // 8)):
        yield text[:cut]
    for _ in range(12):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            at = rng.randint(0, len(chars))
            chars[at:at + rng.randint(0, 3)] = rng.choice(alphabet)
        yield "".join(chars)


def test_hostile_formats_and_trailers_do_not_crash_and_stay_exact():
    rng = random.Random(1)
    compiler = _compiler()
    tmfset = tmf.load(str(DRIVER_TMFS), tolerant=True)
    messages = list(tmfset.messages())
    rng.shuffle(messages)
    for message in messages[:150]:
        for fmt in _mutations(message.format, rng):
            trailer = dict(message.trailer)
            if rng.random() < 0.3:
                trailer[rng.choice(["FUNC", "func", "X\x00", "LEVEL", "\u017fUNC"])] = rng.choice(
                    ["", "v", "\x00", "%s", "\ud800", "\u00e9" * 50])
            mutated = make_message(0x1234, message.number, message.name, fmt, message.args, trailer,
                                   message.component, "a.c", "a.tmf:1", False)
            _check(compiler, mutated, tmfset)


def test_the_c_call_runs_with_the_compilers_lock_held(monkeypatch):
    """The compiler is one a process, shared by its decoders, and its C call runs without the
    GIL on one table and one output buffer: two threads compiling at once would write both."""
    from wpptrace.tmf import native_compile

    compiler = _compiler()
    held = []
    real = native_compile._message

    def checked(*args):
        held.append(compiler._lock.locked())
        return real(*args)

    monkeypatch.setattr(native_compile, "_message", checked)
    assert compiler.blob(_message("%0 x=%10!d!"), -1, (), True) is not None
    assert held and all(held)


_NAMED_TMF = """// PDB:  x.pdb
0f1d2c3b-4a59-4867-8e7d-6c5b4a392817 Synth // SRC=a.c MJ= MN=
#typev a_c10 10 "%0 caps=%10!{spec}!" //   LEVEL=TRACE_LEVEL_ERROR FUNC=f
{{
caps, {item}(_Caps) -- 10
}}
#enumv _Caps
{{
Read,0x1
Write,0x2
}}
"""


@pytest.mark.parametrize("item", ["ItemFlagsEnum", "ItemEnum"])
@pytest.mark.parametrize("spec", ["s", "x", "08x", "d"])
def test_an_item_named_by_the_tmf_sets_enumv_prints_as_python_prints_it(tmp_path, item, spec):
    """An insert's op is made once a process from the item alone, with no TMF set: an item whose
    names come from the set's #enumv (a flags enum printed as "Read | Write(0x3)") must not get
    the op of an item with no names (its value in hex)."""
    path = tmp_path / "0f1d2c3b-4a59-4867-8e7d-6c5b4a392817.tmf"
    path.write_text(_NAMED_TMF.format(spec=spec, item=item))
    tmfset = tmf.load(str(path))
    (message,) = tmfset.messages()
    compiler = _compiler()
    _check(compiler, message, tmfset)
    _check(compiler, message, tmfset)     # the op kept from the first: still the same bytes
