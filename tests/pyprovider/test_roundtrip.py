"""Round trip: a Python program logs every supported type into a session; decoding its .etl
with the TMF ``wpptrace tmf gen`` writes gives Python's own formatting of the same call (where
WPP renders a type its own way, the expected text is stated)."""
from __future__ import annotations

import datetime
import pathlib

from wpptrace.cli import main



def _local_stamp(when: datetime.datetime) -> str:
    local = when.astimezone()
    return local.strftime("%m/%d/%Y-%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def expected_lines(app) -> list[str]:
    """One line per call of rt_app.emit_all, in order."""
    return [
        "int %d neg %d max %d min %d" % (42, -1000, 2147483647, -2147483648),
        "unsigned %u hex %x HEX %X oct %o" % (4000000000, 0xABCDEF, 0xABCDEF, 8),
        "widths [%5d] [%-5d] [%05d] [%08x] [%+d] [%#x]" % (42, 42, 42, 0xBEEF, 7, 255),
        "long %ld %lu %lx" % (-7, 7, 0xFF),
        "short %hd %hu %hx" % (-2, 65535, 0xBEEF),
        "char %c%c" % ("O", 75),
        "i64 %d %d %x %d %d %X" % (-5000000000, 18446744073709551615, 0xDEADBEEFCAFE, -1, 12345678901234,
                                    0xABCDEF0123),
        "str [%s] [%10s] [%-6s] [%.3s] empty [%s]" % ("hello", "right", "left", "truncate", ""),
        "utf8 %s" % "h\u00e9llo \u2713",
        "wide %s %s %s" % ("wide \u2713", "ls", "ws"),
        "percent 100% done",
        # %p: Python has none; WPP prints the pointer as zero-padded upper-case hex of its width.
        "ptr %016X null %016X" % (0x7FF012345678, 0),
        # Status codes: names from ntstatus.h / winerror.h, as tracefmt prints them.
        "status 0xc0000022(STATUS_ACCESS_DENIED) ok STATUS_SUCCESS neg 0xc000000d(STATUS_INVALID_PARAMETER)",
        "hr 0x80070005(ERROR_ACCESS_DENIED) ok S_OK win 5(ERROR_ACCESS_DENIED)",
        "guid %s" % app.GUID,
        "ip 192.168.1.20 port 443",
        # Lists print 0x%08X(name), sets the names of the set bits: what the findneedle capture's
        # tracefmt output shows (corpus README: "b=0x00000001(true) irql=0x00000002(DPC)", "set=[1,3]").
        "bool 0x00000001(true) BOOLEAN 0x00000000(FALSE) irql 0x00000002(DPC)",
        "set [1,3]",
        # Doubles: tracewpp gives every double the FormatSpec "s"; they print like %g.
        "double 1.5 0.25 3",
        "counted ansi wide counted wide",
        "sid S-1-5-21-1004336348-1177238915-682003330-512",
        "delta 1.500s when " + _local_stamp(app.WHEN),
        # %!FUNC! is resolved from the TMF trailer (FUNC=emit_all).
        "func emit_all five %d" % 5,
        "log() level %d" % 3,
        "many %d %d %d %d %d %d %s" % (1, 2, 3, 4, 5, 6, "seven"),
        "no arguments",
    ]


def _tmfs(pp, tmp_path: pathlib.Path) -> pathlib.Path:
    """The TMFs ``wpptrace tmf gen`` writes for rt_app.py: their folder."""
    tmf_dir = tmp_path / "tmf"
    assert main(["tmf", "gen", str(pp.here / "rt_app.py"), "-o", str(tmf_dir), "--no-registry"]) == 0
    return tmf_dir


def _emit_all_into(rt_app, pp, etl: pathlib.Path, flags: int, level: int, check=None) -> None:
    """rt_app.emit_all() traced into ``etl`` by a session that enabled rt_app's provider with
    ``flags`` and ``level`` (``check()`` asserted then, if given)."""
    from wpptrace.provider import api

    with pp.etl_session(etl) as session:
        rt_app.trace.register()
        try:
            api.EnableTrace(True, flags, level, rt_app.trace.guid, session)
            if check is not None:
                assert check()
            rt_app.emit_all()
        finally:
            rt_app.trace.unregister()


def test_every_type_round_trips(rt_app, pp, tmp_path: pathlib.Path) -> None:
    tmf_dir = _tmfs(pp, tmp_path)
    etl = tmp_path / "alltypes.etl"
    _emit_all_into(rt_app, pp, etl, 0xFFFFFFFF, 5, lambda: rt_app.trace.enabled(rt_app.CORE, 5))
    assert rt_app.trace.events_dropped == 0
    got = pp.decode_lines(etl, tmf_dir, tmp_path)
    want = expected_lines(rt_app)
    assert len(got) == len(want)
    for number, (g, w) in enumerate(zip(got, want), start=10):
        assert g == w, f"message {number}"


def test_level_and_flags_filter_at_the_call(rt_app, pp, tmp_path: pathlib.Path) -> None:
    """A session with level WARNING and only NET: the INFORMATION/CORE calls are not written."""
    tmf_dir = _tmfs(pp, tmp_path)
    etl = tmp_path / "filtered.etl"
    _emit_all_into(rt_app, pp, etl, int(rt_app.NET), 3,
                   lambda: rt_app.trace.enable_flags == int(rt_app.NET) and rt_app.trace.enable_level == 3)
    got = pp.decode_lines(etl, tmf_dir, tmp_path)
    want = expected_lines(rt_app)
    # NET at WARNING or above: the STATUS warning, the HRESULT error and log(WARNING, CORE|NET).
    assert got == [want[12], want[13], want[23]]


def test_dissect_etl_reads_the_records_and_their_argument_bytes(rt_app, pp, tmp_path: pathlib.Path) -> None:
    """Third-party check: dissect.etl finds every message with our GUID and number, and the
    argument bytes are the item encodings written out by hand here."""
    import struct

    from dissect.etl import ETL

    from wpptrace.provider.tracing_sites import message_guid

    etl = tmp_path / "dissect.etl"
    _emit_all_into(rt_app, pp, etl, 0xFFFFFFFF, 5)
    records = []
    with open(etl, "rb") as fh:
        for record in ETL(fh):
            header = record.header
            if type(header).__name__ == "MessageTraceHeader":
                records.append((header.id, header.header.EventProperty, header.provider_id, bytes(header.payload)))
    guid = message_guid(rt_app.trace.guid, "rt_app.py")
    # dissect walks the file in order; each processor's buffers are a stream of their own, so a
    # thread moved to another processor has later messages in a buffer that may come first.
    # Merge by message timestamp (after the sequence and the GUID), as ProcessTrace does.
    records.sort(key=lambda r: struct.unpack_from("<q", r[3], 4 + 16)[0])
    assert [r[0] for r in records] == list(range(10, 36))
    assert {r[2] for r in records} == {guid}
    # GUID | TIMESTAMP | SYSTEMINFO | POINTER64, plus SEQUENCE (4 bytes, 0 without a sequence mode)
    assert {r[1] for r in records} == {0xAB}
    args = {number: payload[4 + 16 + 8 + 8:] for number, _, _, payload in records}
    # Plain %d: 64-bit (any int Python's %d prints, within 64 bits)
    assert args[10] == struct.pack("<qqqq", 42, -1000, 2147483647, -2147483648)
    assert args[13] == struct.pack("<iIi", -7, 7, 0xFF)  # %ld %lu %lx: C's 32-bit long
    assert args[16] == struct.pack("<qQqqQQ", -5000000000, 18446744073709551615, 0xDEADBEEFCAFE, -1,
                                   12345678901234, 0xABCDEF0123)
    # %s: str travels as UTF-16 (ItemWString), which Windows tools read as Unicode
    assert args[18] == "h\u00e9llo \u2713\0".encode("utf-16-le")
    assert args[19] == "wide \u2713\0ls\0ws\0".encode("utf-16-le")
    assert args[21] == struct.pack("<QQ", 0x7FF012345678, 0)
    assert args[24] == rt_app.GUID.bytes_le
    assert args[25] == bytes([192, 168, 1, 20]) + struct.pack(">H", 443)
    assert args[28] == struct.pack("<ddd", 1.5, 0.25, 3.0)
    assert args[29] == struct.pack("<H", 4) + b"ansi" + struct.pack("<H", 8) + "wide".encode("utf-16-le")
    assert args[30] == bytes([1, 5, 0, 0, 0, 0, 0, 5]) + struct.pack("<IIII", 21, 1004336348, 1177238915,
                                                                      682003330) + struct.pack("<I", 512)
    assert args[35] == b""
