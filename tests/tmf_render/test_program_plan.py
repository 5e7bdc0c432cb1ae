"""A message's program made from the plan its format string and argument list share
(``render.native_plan``, ``ProgramPlan.encode``) prints what the program made from its own
``native_ops`` prints, for every message, prefix and marker; and a marker read alone
(``marker_value``) is the one ``marker_values`` gives."""
from __future__ import annotations

import uuid

import golden_traces
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wpptrace import tmf
from wpptrace._core import ffi
from wpptrace.decoder.prefix import (DEFAULT_PREFIX, MessageMarkers, PrefixTemplate, marker_value,
                                     marker_values)
from wpptrace.tmf import native, render
from wpptrace.tmf.model import Argument, Message, TmfSet
from wpptrace.tmf.render import MessageFormatter, marker_default, marker_defaults

G = uuid.UUID("0badf00d-0000-4000-8000-00000000c0de")


class Pair:
    """One renderer holding, per message, the program from its plan and the one from its
    ``native_ops``; both print the same rows."""

    def __init__(self, prefix: str | None) -> None:
        self.renderer = native.NativeRenderer(utc=True)
        self.rows = ffi.new("wppr_row[1]")
        self.prefix = PrefixTemplate(prefix) if prefix is not None else None
        ops = self.prefix.native_shared_ops() if self.prefix is not None else None
        self.shared = None if ops is None else self.renderer.add_prefix(ops)

    def programs(self, message, tmfset) -> tuple[int, int] | None:
        """(planned program, program from native_ops); None when only Python prints it."""
        formatter = MessageFormatter(message, tmfset, utc=True)
        markers = marker_values(message, defaults=formatter.markers)
        compiled = formatter.native_ops(markers)
        plan = render.native_plan(message, tmfset, utc=True)
        assert (plan is None) == (compiled is None), message.format
        if plan is None:
            return None
        has_prefix = message.format.startswith("%0")
        shared = None
        if has_prefix and self.shared is not None:
            strings = self.prefix.native_strings(message.component, message.name, markers)
            lazy = self.prefix.native_strings(message.component, message.name, MessageMarkers(message))
            assert lazy == strings
            shared = native.SharedPrefix(self.shared, strings)
        old = self.renderer.add(native.encode(*compiled, shared, prefix=has_prefix))
        if plan is render.PER_MESSAGE:
            return old, old
        if shared is None:
            blob = plan.encode(MessageMarkers(message), -1, (), has_prefix)
        else:
            encoded = self.prefix.native_encoded_strings(message.component, message.name,
                                                         MessageMarkers(message))
            assert encoded == tuple(text.encode() for text in shared.strings)
            blob = plan.encode(MessageMarkers(message), shared.program, encoded, True)
        return self.renderer.add(blob), old

    def render(self, program: int, data: bytes, pointer_size: int) -> bytes:
        row = self.rows[0]
        keep = ffi.from_buffer(data)
        row.args, row.size, row.program = keep, len(data), program
        row.pointer_size = pointer_size
        row.milli, row.thread_id, row.process_id, row.sequence, row.cpu = 1_700_000_000_123, 7, 9, 3, 1
        text, holes = self.renderer.render(self.rows, 1)
        return b"hole" if holes else text


def same_text(tmfset, messages, rng, per_message: int, prefix: str | None = DEFAULT_PREFIX) -> int:
    """Render random argument bytes of every message with both of its programs; the rows
    compared."""
    pair = Pair(prefix)
    compared = 0
    for m in messages:
        programs = pair.programs(m, tmfset)
        if programs is None:
            continue
        planned, old = programs
        for _ in range(per_message):
            for ps in (4, 8):
                data = b"".join(golden_traces.arg_bytes(a.item, a.params, rng, ps) for a in m.args)
                if rng.below(8) == 0 and data:
                    data = data[:rng.below(len(data))]
                assert pair.render(planned, data, ps) == pair.render(old, data, ps), (m.origin, m.format)
                compared += 1
    return compared


def test_corpus_driver_messages(corpus):
    tmfset = tmf.load(str(golden_traces.driver_tmf_dir(corpus)))
    messages = sorted(tmfset.messages(), key=lambda m: (str(m.guid), m.number))
    assert same_text(tmfset, messages, golden_traces.Rng(21), 1) > 4000


@pytest.mark.parametrize("prefix", [DEFAULT_PREFIX, "%!FUNC!|%!level!|%2!-12s!|%!Nope!| %1!s!: ", None])
def test_every_item_under_the_synthetic_specs(prefix):
    tmfset = tmf.parse_text(golden_traces.synth_tmf(), path="synth.tmf")
    messages = sorted(tmfset.messages(), key=lambda m: m.number)
    assert same_text(tmfset, messages, golden_traces.Rng(22), 3, prefix) > 500


def _message(number: int, fmt: str, trailer: dict, args=(), *, legacy: bool = False,
             name: str = "Dev_c42") -> Message:
    return Message(G, number, name, fmt, tuple(args), trailer, "Comp", "dev.c", "x.tmf:1", legacy)


def test_markers_and_literals_around_them():
    """Marker texts (present, aliased, empty, unknown, a PREFIX key) merged with the literals
    around them, messages sharing one plan with different texts, and runs that end up empty."""
    arg = Argument("n", "ItemLong", (), 10)
    text = Argument("s", "ItemString", (), 11)
    formats = ["%0%!FUNC!%!LEVEL!", "%0 [%!FUNC!] n=%10!d! s=%11!s!%!FLAGS!", "%!FUNC!%!SUBCOMP!",
               "%0%!Odd!:%10!x!%!COMPNAME!%!FILE!%!LINE!", "a%%b%n%10!d!%0tail", "%!FUNC!%1%10!u!"]
    trailers = [{}, {"FUNC": "Open", "LEVEL": "TRACE_LEVEL_ERROR"}, {"func": "lower", "TRACELEVEL": "4"},
                {"PREFIX": "pre", "FLAGS": "", "Level": "3"}, {"FUNC": "é%s\t", "Odd": "!odd!"}]
    messages = [_message(k, fmt, trailer, (arg, text), legacy=k % 2 == 1, name=f"Dev_c{k}")
                for k, (fmt, trailer) in enumerate((f, t) for f in formats for t in trailers)]
    tmfset = TmfSet()
    for m in messages:
        tmfset.add_message(m)
    for prefix in (DEFAULT_PREFIX, "%!FUNC! %2!s! %!LEVEL!|", None):
        assert same_text(tmfset, messages, golden_traces.Rng(23), 2, prefix) == 2 * 2 * len(messages)
    # one plan for the messages of one format: their own texts are the only difference
    plans = {id(render.native_plan(m, tmfset)) for m in messages if m.format == formats[1]}
    assert len(plans) == 2            # #typev and legacy #type entries print strings differently


KEYS = st.sampled_from(["FUNC", "func", "Func", "LEVEL", "Level", "level", "TRACELEVEL", "MyLevel",
                        "FLAGS", "Flags", "SUBCOMP", "COMPNAME", "compname", "FILE", "LINE",
                        "line", "PREFIX", "ÿ", "ß", "X"])
NAMES = st.sampled_from(["FUNC", "LEVEL", "FLAGS", "SUBCOMP", "COMPNAME", "FILE", "LINE", "PREFIX",
                         "Func", "MYLEVEL", "TRACELEVEL", "X", "Ÿ", "SS", "Nope"])


@settings(max_examples=300, deadline=None)
@given(trailer=st.dictionaries(KEYS, st.text(max_size=3), max_size=6),
       name=st.sampled_from(["Dev_c104", "Dev", "", "x٣"]), component=st.sampled_from(["", "Comp"]),
       source=st.sampled_from(["", "a.c"]), marker=NAMES)
def test_a_marker_read_alone_is_the_one_of_the_dict(trailer, name, component, source, marker):
    message = Message(G, 1, name, "%0", (), trailer, component, source, "", False)
    assert marker_default(message, marker) == marker_defaults(message).get(marker)
    assert marker_value(message, marker) == marker_values(message).get(marker)
    assert MessageMarkers(message).get(marker, "-") == marker_values(message).get(marker, "-")
