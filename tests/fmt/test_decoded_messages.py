"""``decode_file`` makes its messages straight from the engine's rows; every field equals the
record path's (``WppDecoder.decode_record`` wrapped in a ``DecodedMessage``), on the real
findneedle captures and on generated traces with 4- and 8-byte pointers, Unknown messages,
format errors, messages without a timestamp and a slow clock (golden.py's)."""
from __future__ import annotations

import struct
import uuid

import etlgen
import golden
import pytest

from wpptrace import tmf
from wpptrace.decoder import DecodedMessage, decode_file, ordered_records
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.row_messages import RowMessage
from wpptrace.decoder.timestamps import TimeConverter
from wpptrace.decoder.wpp import FileContext, WppDecoder

FIELDS = ("text", "guid", "number", "level_name", "flags", "function", "file", "component",
          "name", "filetime", "pid", "tid", "cpu", "sequence", "status", "error", "level",
          "line", "timestamp")
POINTER32 = 0x40      # TRACE_MESSAGE_POINTER32
STRS = uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d")  # findneedle: 10 ItemString + ItemLong, 11 ItemWString


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return golden.generated_inputs(tmp_path_factory.mktemp("decoded"))


def record_path(path, tmfset) -> tuple[list[DecodedMessage], list]:
    """The messages of ``path`` decoded record by record, and their records."""
    decoder = WppDecoder(tmfset)
    with EtlFile(path) as etl:
        ctx = FileContext.for_header(str(path), etl.header, TimeConverter(etl.header))
        records = [r for r in ordered_records(etl) if r.kind == "message"]
        return [DecodedMessage.from_wpp(decoder.decode_record(r, ctx)) for r in records], records


def fields(m: DecodedMessage) -> dict:
    out = {name: getattr(m, name) for name in FIELDS}
    out["args"] = (m.args.names, m.args.types, tuple(m.args))
    out["dict"], out["str"], out["repr"] = m.to_dict(), str(m), repr(m)
    return out


def assert_same_messages(path, tmfset) -> list[DecodedMessage]:
    got = decode_file(path, tmf=tmfset).messages
    want, _records = record_path(path, tmfset)
    assert len(got) == len(want) > 0
    for i, (g, w) in enumerate(zip(got, want)):
        assert fields(g) == fields(w), f"{path.name}: message {i}"
    assert any(isinstance(m, RowMessage) for m in got)
    return got


@pytest.mark.parametrize("with_tmf", [True, False], ids=["tmf", "no-tmf"])
@pytest.mark.parametrize("name", [p.split("/")[-1] for p in golden.subsets.FINDNEEDLE_CAPTURES])
def test_captures_give_the_record_path_fields(name, with_tmf, fmt_data, fmt_tmf) -> None:
    got = assert_same_messages(fmt_data / name, tmf.load(fmt_tmf) if with_tmf else tmf.TmfSet())
    assert {m.status for m in got} == ({"ok"} if with_tmf else {"unknown"})


@pytest.mark.parametrize("name", ["gen-qpc", "gen-slowclock"])
def test_generated_traces_give_the_record_path_fields(name, generated) -> None:
    path = generated[name]
    tmfset = tmf.load(*map(str, golden.TMF_FILES + golden.TMF_DIRS))
    got = assert_same_messages(path, tmfset)
    _want, records = record_path(path, tmfset)
    # what the traces hold: every status, and messages of each pointer size with arguments
    assert {m.status for m in got} == {"ok", "unknown", "format-error"}
    pointer32 = [m for m, r in zip(got, records) if (r.flags or 0) & POINTER32 and m.args]
    assert pointer32 and len(pointer32) < len(got) and any(m.filetime is None for m in got)


def test_arguments_are_decoded_when_first_read(fmt_data, fmt_tmf) -> None:
    messages = decode_file(fmt_data / "wpptypes-sample.etl", tmf=fmt_tmf).messages
    first = messages[0]
    assert isinstance(first, RowMessage) and first._args is None
    assert first.args is first.args and first.args["(int)42"] == 42
    assert messages[1]._args is None


def test_text_beyond_ascii(tmp_path, fmt_tmf) -> None:
    """Texts the renderer prints in multi-byte UTF-8 are cut at the right places."""
    path = tmp_path / "utf8.etl"
    names = ["alpha", "bj\u00f6rk", "\u65e5\u672c", "zed"]
    rows = []
    for i, name in enumerate(names):
        rows.append((STRS, 10, name.encode("utf-8") + b"\0" + struct.pack("<i", i)))
        rows.append((STRS, 11, name.encode("utf-16-le") + b"\0\0"))
    etlgen.write_messages(path, [(guid, number, args, 0x100, 0x200, 0, etlgen.T0 + 10_000 * k)
                                 for k, (guid, number, args) in enumerate(rows)])
    got = assert_same_messages(path, tmf.load(fmt_tmf))
    assert [m.args[0] for m in got] == [name for name in names for _ in (10, 11)]
    assert got[3].text == "widetrace user=bj\u00f6rk role=admin"
