"""Typed arguments decoded in C a chunk at a time (``decoder/csrc/wpp_values.c``) equal the
formatter's ``decode_values`` for every row the C decoder takes, on the corpus driver TMFs
(the golden traces' random arguments, the fmt benchmark's trace), every item type under many
specs with both pointer sizes, and argument bytes cut off, garbled or holding invalid text.
A row C leaves to Python is one whose values only Python gives (a rare item type, a counted
string holding a NUL) or whose bytes do not fit (where Python raises); every other row is
C's. The values stay lazy: a chunk is decoded when one of its messages' ``args`` is read."""
from __future__ import annotations

import importlib.util
import pathlib
import struct
import threading

import etlgen
import pytest
from fmthelp import same_value

from wpptrace import tmf
from wpptrace.decoder import decode_file
from wpptrace.decoder.buffers import message_pointer_size
from wpptrace.decoder.row_messages import RowMessage
from wpptrace.decoder.wpp_rows import ROW_FORMAT, ROW_INDEX, ROW_SIZE
from wpptrace.tmf.itemtypes import FormatError, item_type

import golden_traces  # the rendering tests' deterministic traces (on the path by conftest)

TESTS = pathlib.Path(__file__).resolve().parent.parent

_KEY, _OFFSET, _SIZE, _FLAGS = (ROW_INDEX[k] for k in ("key", "payload_offset", "payload_size", "flags"))


def check_rows(paths, tmfs) -> dict[str, int]:
    """Decode ``paths``, then every row of every chunk twice: in C (``MessageRows.values``) and
    by the row's formatter; they agree wherever C decoded. Counts of rows C decoded, rows left
    to Python (and why), and the messages (whose ``args`` must be their row's C values)."""
    messages = decode_file(paths, tmf=tmf.load(*map(str, tmfs))).messages
    counts = {"c": 0, "no layout": 0, "raises": 0, "nul": 0, "messages": len(messages)}
    chunks = {id(m._chunk): m._chunk for m in messages if isinstance(m, RowMessage)}
    for chunk in chunks.values():
        classes, flat, starts = chunk.values = chunk.run.values(chunk)
        assert len(classes) == len(chunk.refs) and len(starts) == len(chunk.refs) + 1
        for i, ref in enumerate(chunk.refs):
            slot = ref >> 32
            row = ROW_FORMAT.unpack_from(chunk.blobs[slot], (ref & 0xFFFFFFFF) * ROW_SIZE)
            if row[_KEY] >= len(chunk.entries):          # not a message, the header, overflow
                assert classes[i] is None and starts[i] == starts[i + 1]
                continue
            formatter = chunk.entries[row[_KEY]].formatter
            data = chunk.datas[slot][row[_OFFSET]:row[_OFFSET] + row[_SIZE]]
            ps = message_pointer_size(row[_FLAGS], chunk.sources[slot].pointer_size)
            try:
                want = () if formatter is None else formatter.decode_values(data, ps)
            except FormatError:
                want = None
            cls = classes[i]
            if cls is None:
                assert starts[i] == starts[i + 1]
                if formatter is not None and formatter.value_layout() is None:
                    counts["no layout"] += 1
                elif want is None:
                    counts["raises"] += 1
                else:   # the one other reason: a counted string with a NUL in its text
                    assert any(isinstance(v, str) and "\0" in v for v in want), (data.hex(), ps)
                    counts["nul"] += 1
                continue
            assert want is not None, (formatter.message.format, data.hex(), ps)
            got = cls(flat[starts[i]:starts[i + 1]])
            assert len(got) == len(want) and all(map(same_value, got, want)), \
                (formatter.message.format, data.hex(), ps, got, want)
            if formatter is not None:
                assert (got.names, got.types) == formatter.arg_names_items()
            counts["c"] += 1
    for m in messages:     # what callers read: the same values, through the chunk's decoding
        if isinstance(m, RowMessage):
            chunk, i = m._chunk, m._i
            classes, flat, starts = chunk.values
            if classes[i] is not None:
                assert tuple(m.args) == tuple(flat[starts[i]:starts[i + 1]])
                assert type(m.args) is classes[i]
    return counts


@pytest.mark.parametrize("name", ["driver", "synth", "captures", "pyapp"])
def test_golden_traces(name, tmp_path, corpus) -> None:
    counts = check_rows(*golden_traces.build(name, tmp_path, corpus))
    assert counts["c"] > counts["messages"] // 2
    if name == "synth":    # the rare item types
        assert counts["no layout"]


def test_the_benchmark_trace(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_fmt", TESTS.parent / "benchmarks" / "bench_fmt.py")
    bench_fmt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_fmt)
    path = tmp_path / "bench.etl"
    bench_fmt.generate(path, 3000)
    counts = check_rows([path], [bench_fmt.TMF_DIR])
    assert counts["c"] == counts["messages"] == 3000


def _mutate(args: bytes, rng) -> bytes:
    pick = rng.below(6)
    if pick == 0 and args:
        return args[:rng.below(len(args))]                      # cut off anywhere
    if pick == 1 and args:                                       # bytes garbled
        raw = bytearray(args)
        for _ in range(1 + rng.below(4)):
            raw[rng.below(len(raw))] = rng.below(256)
        return bytes(raw)
    if pick == 2:
        return args + rng.bytes(rng.below(9))                    # trailing bytes
    if pick == 3:
        return rng.bytes(rng.below(48))                          # anything
    return args


def test_hostile_argument_bytes(tmp_path) -> None:
    """Every item type of the synthetic TMF with both pointer sizes; most argument blocks cut
    off, garbled, extended or replaced by random bytes."""
    tmf_path = tmp_path / f"{golden_traces.SYNTH_GUID}.tmf"
    tmf_path.write_text(golden_traces.synth_tmf(), encoding="utf-8")
    messages = sorted(tmf.load(str(tmf_path)).messages(), key=lambda m: m.number)
    rng = golden_traces.Rng(7)
    events = []
    ts = etlgen.T0
    for k in range(60):
        for m in messages:
            ps = 4 if k % 2 else 8
            flags = (etlgen.FLAGS_CORPUS & ~0x80) | 0x40 if ps == 4 else etlgen.FLAGS_CORPUS
            args = b"".join(golden_traces.arg_bytes(a.item, a.params, rng, ps) for a in m.args
                            if item_type(a.item) is not None)
            ts += 1 + rng.below(100)
            events.append((m.guid, m.number, _mutate(args, rng), 0x10, 0x20, rng.below(2), ts, flags))
    path = tmp_path / "hostile.etl"
    etlgen.write_messages(path, events, buffer_size=16384)
    counts = check_rows([path], [tmf_path])
    assert counts["c"] > 1000 and counts["raises"] > 300


def test_texts_c_leaves_to_python(tmp_path) -> None:
    """Counted strings whose text holds a NUL, next to ANSI text that is not UTF-8 and UTF-16
    with lone surrogates (both C's)."""
    guid = golden_traces.SYNTH_GUID
    etlgen.write_tmf(tmp_path, guid, "a=%10!s! b=%11!s! c=%12!s!",
                     [("p", "ItemPString"), ("w", "ItemPWString"), ("z", "ItemWString")])
    blocks = [(b"a\0b", "x\0y".encode("utf-16-le"), "z".encode("utf-16-le") + b"\0\0"),
              (b"caf\xe9 \x81", b"\x00\xd8A\x00", b"\x00\xdc\0\0"),
              (b"ok", "ok".encode("utf-16-le"), b"\0\0")]
    events = []
    for k, (p, w, z) in enumerate(blocks):
        args = struct.pack("<H", len(p)) + p + struct.pack("<H", len(w)) + w + z
        events.append((guid, 10, args, 1, 2, 0, etlgen.T0 + k, etlgen.FLAGS_CORPUS))
    path = tmp_path / "texts.etl"
    etlgen.write_messages(path, events)
    counts = check_rows([path], [tmp_path])
    assert counts["nul"] == 1 and counts["c"] == 2
    got = [tuple(m.args) for m in decode_file(path, tmf=str(tmp_path)).messages]
    assert got == [("a\0b", "x\0y", "z"), ("caf\xe9 \ufffd", "\ufffdA", "\ufffd"), ("ok", "ok", "")]


def test_values_decoded_when_a_message_first_reads_them(driver) -> None:
    path, tmf_dir = driver
    messages = decode_file([path], tmf=tmf.load(tmf_dir)).messages
    chunks = list({id(m._chunk): m._chunk for m in messages if isinstance(m, RowMessage)}.values())
    assert len(chunks) > 2 and all(c.values is None for c in chunks)
    first = next(m for m in messages if isinstance(m, RowMessage) and m._chunk is chunks[1])
    first.args
    assert [c.values is not None for c in chunks[:3]] == [False, True, False]


def test_threads_reading_arguments(driver) -> None:
    """Chunks decoded from several threads at once give each message its own values."""
    path, tmf_dir = driver
    tmfset = tmf.load(tmf_dir)
    want = [tuple(m.args) for m in decode_file([path], tmf=tmfset).messages]
    messages = decode_file([path], tmf=tmfset).messages
    got: list = [None] * len(messages)
    start = threading.Barrier(4)

    def read(k: int) -> None:
        start.wait()
        for i in range(k, len(messages), 4):
            got[i] = tuple(messages[i].args)

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(want) > 1000 and all(map(lambda a, b: all(map(same_value, a, b)), got, want))
