"""Files we write read the same on Windows: str travels as UTF-16, bytes as a hex dump. Checked
with an independent reader that renders as Windows tools do (ItemString in Windows-1252) and
with our own decoder; and a custom type end to end (declaration, tmf gen, run, decode)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import warnings

import pytest

pytest.importorskip("dissect.etl")

HERE = pathlib.Path(__file__).resolve().parent
TEXTS = ["h\u00e9llo w\u00f6rld \u20ac", "\u2713 \u65e5\u672c\u8a9e \U0001F600", "plain ascii", ""]

APP = textwrap.dedent("""
    import logging, os, sys, uuid
    from wpptrace.provider import api
    from wpptrace.provider.logging_handler import WppHandler
    from wpptrace.provider.tracing import Provider

    trace = Provider("TextApp", guid="41f0c7a2-5b3d-4e6f-9a1b-2c3d4e5f6a7b", flags=("TEXT", "LOG"))
    log = logging.getLogger("text")
    log.addHandler(WppHandler(provider=trace, flag=trace.flags.LOG))
    log.setLevel(logging.INFO)

    def emit(text, data):
        trace.info(trace.flags.TEXT, "text [%s] repr %r bytes [%!HEXDUMP!] n=%d", text, text, data, len(data))
        trace.info(trace.flags.TEXT, "ansi [%hs]", text)
        log.info("logged [%s]", text)
        log.info("formatted [%(t)s]", {"t": text})

    props = api.EVENT_TRACE_PROPERTIES(LogFileMode=1, LogFileName=sys.argv[1])
    session = api.StartTrace("text-" + uuid.uuid4().hex[:8], props)
    api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
    # The thread moves between processors as a busy machine's scheduler moves it: the middle
    # texts go to another processor stream, which the file holds before or after the first's.
    cpus = sorted(os.sched_getaffinity(0))
    for i, text in enumerate(TEXTS):
        os.sched_setaffinity(0, {cpus[-1] if 0 < i < len(TEXTS) - 1 else cpus[0]})
        emit(text, bytes(range(i * 3)) + b"\\xff")
    api.ControlTrace(session, None, None, 1)
""")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("text")
    app = tmp / "text_app.py"
    app.write_text(f"TEXTS = {TEXTS!r}\n" + APP)
    etl, tmf = tmp / "text.etl", tmp / "tmf"
    subprocess.run([sys.executable, str(app), str(etl)], check=True)
    subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", str(app), "-o", str(tmf)], check=True,
                   capture_output=True)
    return tmp, etl, tmf


def expected(text: str, data: bytes) -> list[str]:
    hexdump = " ".join(f"{b:02X}" for b in data)
    return [f"text [{text}] repr {text!r} bytes [{hexdump}] n={len(data)}",
            f"ansi [{text}]", f"logged [{text}]", f"formatted [{text}]"]


def test_the_app_writes_two_processor_streams(capture):
    from dissect.etl import ETL

    tmp, etl, tmf = capture
    with open(etl, "rb") as fh:
        processors = {buffer.header.ProcessorIndex for buffer in list(ETL(fh).buffers())[1:]}
    assert len(processors) == min(2, len(os.sched_getaffinity(0)))


def test_an_independent_windows_1252_reader_shows_the_python_text(capture, pp):
    messages = pp.load_module("pyprovider_cp1252_reader", HERE / "cp1252_reader.py").messages
    tmp, etl, tmf = capture
    got = messages(str(etl), [p.read_text(encoding="utf-8") for p in tmf.glob("*.tmf")])
    want = [line for i, text in enumerate(TEXTS) for line in expected(text, bytes(range(i * 3)) + b"\xff")]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w.startswith("ansi ["):
            # %hs is an ItemString: a Windows reader shows its UTF-8 bytes in the ANSI code page,
            # which is why str travels as UTF-16 everywhere else.
            assert g == "ansi [" + w[6:-1].encode("utf-8").decode("cp1252", "replace") + "]"
        else:
            assert g == w
    assert "h\u00e9llo w\u00f6rld \u20ac" in got[0] and "\U0001F600" in got[4]


def test_our_decoder_shows_the_same_text(capture, pp):
    tmp, etl, tmf = capture
    got = pp.decode_lines(etl, tmf, tmp)
    want = [line for i, text in enumerate(TEXTS) for line in expected(text, bytes(range(i * 3)) + b"\xff")]
    assert got == want


CUSTOM = textwrap.dedent("""
    import datetime, enum, sys, uuid
    from wpptrace.provider import api
    from wpptrace.provider.tracing import CustomType, Provider

    class State(enum.Enum):
        IDLE = 0
        BUSY = 1
        DONE = 2

    POINT = CustomType("POINT", "ItemWString", encode=lambda p: f"({p[0]}, {p[1]})")
    STATE = CustomType("STATE", "ItemListByte(Idle,Busy,Done)", encode=lambda s: s.value)
    MILLIS = CustomType("MILLIS", "ItemLongLong", encode=lambda d: round(d.total_seconds() * 1000))
    trace = Provider("Shapes", guid="51a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8", flags=("GEO",),
                     types=[POINT, STATE, MILLIS])

    def move(point, state, took):
        trace.info(trace.flags.GEO, "at %!POINT! state %!STATE! took %!MILLIS! ms", point, state, took)

    props = api.EVENT_TRACE_PROPERTIES(LogFileMode=1, LogFileName=sys.argv[1])
    session = api.StartTrace("custom-" + uuid.uuid4().hex[:8], props)
    api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
    move((1, 2), State.BUSY, datetime.timedelta(seconds=1.5))
    move((-3, 4.5), State.DONE, datetime.timedelta(milliseconds=7))
    move((0, 0), "not a state", None)                # the encoder refuses: dropped, reported
    api.ControlTrace(session, None, None, 1)
    stats = trace.stats()
    print(stats.calls_dropped, stats.sites[0].reason)
    trace.write_tmf(sys.argv[2])
""")


def test_a_custom_type_end_to_end(tmp_path, pp):
    app = tmp_path / "shapes.py"
    app.write_text(CUSTOM)
    etl, runtime_tmf, gen_tmf = tmp_path / "shapes.etl", tmp_path / "rt", tmp_path / "gen"
    proc = subprocess.run([sys.executable, str(app), str(etl), str(runtime_tmf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 shapes.py:")
    assert ("argument 2 (state) for ItemListByte: the type's encoder refused 'not a state': AttributeError"
            in proc.stdout)
    assert "TraceWarning" in proc.stderr
    gen = subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", str(app), "-o", str(gen_tmf),
                          "--no-registry"], capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    assert {p.name: p.read_bytes() for p in runtime_tmf.iterdir()} == {p.name: p.read_bytes() for p in gen_tmf.iterdir()}
    text = next(gen_tmf.glob("*.tmf")).read_text()
    assert "ItemListByte(Idle,Busy,Done) -- 11" in text and '%12!I64d! ms"' in text
    assert pp.decode_lines(etl, gen_tmf, tmp_path) == [
        "at (1, 2) state 0x00000001(Busy) took 1500 ms",
        "at (-3, 4.5) state 0x00000002(Done) took 7 ms",
    ]


def test_custom_type_declarations_are_checked():
    from wpptrace.provider.tracing import CustomType

    with pytest.raises(ValueError, match="unknown TMF item type 'ItemNope'"):
        CustomType("X", "ItemNope")
    with pytest.raises(ValueError, match="one identifier"):
        CustomType("two words", "ItemLong")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CustomType("N", "ItemLong").wpp_type().format_spec == "d"
        assert CustomType("H", "ItemULongLong", format="I64x").wpp_type().format_spec == "I64x"
