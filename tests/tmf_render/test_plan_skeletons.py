"""A format's plan made from the plan steps of another format with the same inserts and
markers but other literal texts (``render.native_plan``'s skeletons) is the plan its own
layout makes, for every corner of the format syntax (escapes, a lone "%", unterminated
specs, %0 in the text, markers and non-markers)."""
from __future__ import annotations

import uuid

import golden_traces
import pytest

from wpptrace import tmf
from wpptrace.tmf import native, render
from wpptrace.tmf.model import Argument, Message

G = uuid.UUID("0badf00d-0000-4000-8000-00000000c0de")
LONG = Argument("n", "ItemLong", (), 10)
TEXT = Argument("s", "ItemString", (), 11)

# pairs of formats that differ in their literal texts only, then formats of other shapes
FORMATS = [
    ("%0 [%!FUNC!] status=%10!s!", "%0 [%!FUNC!] other words %10!s!"),
    ("%0 [%!FUNC!]a%10!d!b%11!s!c", "%0 [%!FUNC!]x%10!d!yy%11!s!zzz"),
    ("%0%!FUNC!%10!d!", "%0%!FUNC!%10!d!"),
    ("a%%b%n%t%r%.%!%  %10!x! 100%", "%%%%%10!x!%"),
    ("%!foo %!FUNC! %10!d!", "x%!bar %!FUNC! y%10!d!"),
    ("%!FUNC!%1%2!s!%10!u!", "-%!FUNC!+%1=%2!s!:%10!u!"),
    ("%10!d! %11", "n=%10!d! s=%11"),
    ("%101 and %10", "%109 or %10"),
    ("%10!s", "x %10!s"),                      # unterminated: the layout's error
    ("%10!d! %0 tail", "%10!d!%0other"),       # %0 ends the text
    ("%10!Q! bad", "%10!Q! worse"),            # a bad spec
    ("%10!99999999d!", "x%10!99999999d!"),     # too wide
    ("%!LEVEL!é%10!d!ü", "ß%!LEVEL!%10!d!"),
    ("%0%!Odd!:%10!x!%!COMPNAME!%!FILE!%!LINE!", "%0 %!Odd!; %10!x! %!COMPNAME!/%!FILE!:%!LINE!"),
    ("text only", "other text"),
    ("", "%"),
    ("%\ud800 %10!d!", "%10!d!"),              # text only Python can write
]


def _fields(plan):
    if plan is None or plan is render.PER_MESSAGE:
        return plan
    return tuple(getattr(plan, name) for name in native.ProgramPlan.__slots__)


def _own_plan(message):
    """The plan of the message's own layout (no skeleton)."""
    layout = render._Layout(message.format, message.args)
    if layout.error is not None:
        return None
    return render._plan_of_steps(layout.plan_steps(message.args, bool(message.legacy), None, False))


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("first,second", FORMATS)
def test_a_plan_from_a_skeleton_is_the_layouts_own(first, second, legacy):
    render.clear_cache()
    for number, fmt in enumerate((first, second, first)):
        message = Message(G, number, "Dev_c1", fmt, (LONG, TEXT), {"FUNC": "f"}, "C", "d.c",
                          "x.tmf:1", legacy)
        assert _fields(render.native_plan(message)) == _fields(_own_plan(message)), fmt


def test_corpus_driver_formats_share_skeletons(corpus):
    """Every message of the corpus driver TMFs: its plan is its layout's, and most of the
    plans came from a skeleton another format made."""
    render.clear_cache()
    messages = list(tmf.load(str(golden_traces.driver_tmf_dir(corpus))).messages())
    for message in messages:
        assert _fields(render.native_plan(message)) == _fields(_own_plan(message)), message.format
    assert len(render._SKELETONS) * 3 < len({(m.format, m.args, m.legacy) for m in messages})
