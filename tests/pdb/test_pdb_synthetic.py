"""Hand-made PDBs for the cases clang/lld do not produce: scope edge cases, _ID/_DPC procs, stripped
and mini PDBs, old CodeView signatures, modules without symbols, non-UTF-8 strings."""
from __future__ import annotations

import argparse
import struct
import uuid

from wpptrace.tmf.pdb import read_pdb, tracepdb

GUID = "11112222-3333-4444-5555-666677778888"


def tmf(number: int, func: str = "") -> tuple[str, ...]:
    trailer = "   LEVEL=TRACE_LEVEL_ERROR FLAGS=F" + (f" FUNC={func}" if func else "")
    return ("TMF:", f"{GUID} comp // SRC=s.c MJ= MN=", f'#typev s_c{number} {number} "%0n{number}" //{trailer}', "{", "}")


def funcs(info) -> dict[int, str | None]:
    out = {}
    for m in info.messages:
        _, _, func = m.lines[0].partition(" FUNC=")
        out[m.number] = func or None
    return out


def test_scope_kinds_and_nesting(pdb_maker):
    pm = pdb_maker
    id_proc = pm.proc("IdProc", kind=0x1147)  # S_GPROC32_ID
    dpc_proc = pm.proc("DpcProc", kind=0x1155)  # S_LPROC32_DPC
    body = (pm.annotation(*tmf(10))  # before any procedure: no FUNC= to add
            + id_proc + pm.block() + pm.annotation(*tmf(11)) + pm.end() + pm.end()
            + dpc_proc + pm.annotation(*tmf(12)) + pm.sym(0x114F, b"")  # closed by S_PROC_ID_END
            + pm.annotation(*tmf(13)))
    info = read_pdb(pm.make_pdb([("a.obj", body)]))
    assert funcs(info) == {10: None, 11: "IdProc", 12: "DpcProc", 13: None}
    assert info.issues == []


def test_proc_without_s_end_is_closed_at_its_ptr_end(pdb_maker):
    pm = pdb_maker
    first = pm.proc("Closed", ptr_end=0)  # placeholder to learn the size
    annotation = pm.annotation(*tmf(20))
    # PtrEnd names where S_END should be (stream offset; symbols start at 4) but it is missing
    ptr_end = 4 + len(first) + len(annotation)
    body = pm.proc("Closed", ptr_end=ptr_end) + annotation + pm.sym(0x0007, bytes(4)) + pm.annotation(*tmf(21))
    info = read_pdb(pm.make_pdb([("a.obj", body)]))
    assert funcs(info) == {20: "Closed", 21: None}


def test_modules_without_symbols_or_with_old_signatures(pdb_maker):
    pm = pdb_maker
    good = pm.proc("Good") + pm.annotation(*tmf(30)) + pm.end()
    info = read_pdb(pm.make_pdb([("Import:x.dll", None), ("a.obj", good)]))
    assert funcs(info) == {30: "Good"} and info.modules == 2 and info.issues == []
    old = read_pdb(pm.make_pdb([("a.obj", good)], cv_signature=2), name="old.pdb")
    assert old.messages == [] and len(old.issues) == 1
    assert "CodeView signature 2" in str(old.issues[0]) and "expected 4" in str(old.issues[0])


def test_stripped_and_mini_pdbs_are_flagged(pdb_maker, tmp_path, capsys):
    pm = pdb_maker
    stripped = tmp_path / "public.pdb"
    stripped.write_bytes(pm.make_pdb([("a.obj", None)], dbi_flags=0x2))
    info = read_pdb(stripped)
    assert info.stripped and not info.mini_pdb and info.messages == []
    mini = read_pdb(pm.make_pdb([("a.obj", None)], features=(20140508, 0x494E494D)))
    assert mini.mini_pdb and not mini.stripped
    parser = argparse.ArgumentParser()
    tracepdb.add_arguments(parser)
    assert tracepdb.run(parser.parse_args([str(stripped), "-o", str(tmp_path / "out")])) == 0
    assert "stripped" in capsys.readouterr().err


def test_public_tmc_and_other_annotations(pdb_maker):
    pm = pdb_maker
    body = (pm.proc("Init") + pm.annotation("TMC:", "A56A946C-AC5C-4E2F-9179-6821272856C6", "CtlGuid", "F1", "F2",
                                            "PUBLIC_TMF:")
            + pm.annotation(*tmf(40), "PUBLIC_TMF:") + pm.annotation("Hello!", "World!") + pm.end())
    info = read_pdb(pm.make_pdb([("a.obj", body)]))
    (control,) = info.control_guids
    assert control.guid == uuid.UUID("a56a946c-ac5c-4e2f-9179-6821272856c6") and control.public
    assert control.guid_text == "A56A946C-AC5C-4E2F-9179-6821272856C6"  # case kept for the .mof
    assert control.flags == ("F1", "F2") and control.annotation.procedure == "Init"
    (message,) = info.messages
    assert message.public and message.lines[-1] == "}" and info.other_annotations == 1


def test_non_utf8_strings_fall_back_to_cp1252(pdb_maker):
    pm = pdb_maker
    strings = list(tmf(50))
    strings[2] = strings[2].replace("%0n50", "%0caf\xe9").encode("cp1252")
    body = pm.proc("P") + pm.annotation(*strings) + pm.end()
    info = read_pdb(pm.make_pdb([("a.obj", body)]))
    assert '"%0caf\xe9"' in info.messages[0].lines[0]


def test_malformed_tmf_records_are_issues(pdb_maker):
    pm = pdb_maker
    body = (pm.proc("P") + pm.annotation("TMF:", "not-a-guid comp // SRC=x", '#typev x 10 "a" //', "{", "}")
            + pm.annotation("TMF:", f"{GUID} comp // SRC=x") + pm.annotation("TMF:", f"{GUID} c", "no typev")
            + pm.annotation(*tmf(60)) + pm.end())
    info = read_pdb(pm.make_pdb([("a.obj", body)]), name="m.pdb")
    assert funcs(info) == {60: "P"} and len(info.issues) == 3
    assert all(issue.offset is not None and str(issue).startswith("m.pdb: offset ") for issue in info.issues)
    assert "does not start with a GUID" in str(info.issues[0])


def _enumerate(name: str, leaf: bytes) -> bytes:
    return struct.pack("<HH", 0x1502, 3) + leaf + name.encode() + b"\0"


def _enum_message_pdb(pm, tpi: bytes) -> bytes:
    strings = list(tmf(70))
    strings[3:4] = ["{", "s, ItemEnum(_Big) -- 10", "t, ItemFlagsEnum(Other) -- 11"]
    return pm.make_pdb([("a.obj", pm.proc("P") + pm.annotation(*strings) + pm.end())], tpi=tpi)


def test_enum_leaves_padding_index_continuation_and_forward_refs(pdb_maker):
    pm = pdb_maker
    t = pm.type_record
    part2 = t(0x1203, _enumerate("Last", struct.pack("<Hq", 0x8009, -(2**40))))  # 0x1000: LF_QUADWORD
    part1 = t(0x1203, _enumerate("Small", struct.pack("<H", 7)) + b"\xf2\xf1"  # padded member
              + _enumerate("Char", struct.pack("<Hb", 0x8000, -1)) + b"\xf1"
              + _enumerate("Long", struct.pack("<Hi", 0x8003, -2)) + b"\xf3\xf2\xf1"
              + _enumerate("ULong", struct.pack("<HI", 0x8004, 0x90000000))
              + struct.pack("<HHI", 0x1404, 0, 0x1000))  # LF_INDEX: continue in 0x1000
    forward = t(0x1507, struct.pack("<HHII", 0, 0x80, 0x74, 0) + b"_Big\0")  # forward ref: skipped
    full = t(0x1507, struct.pack("<HHII", 5, 0x200, 0x74, 0x1001) + b"_Big\0.?AW4_Big@@\0")
    info = read_pdb(_enum_message_pdb(pm, pm.tpi_stream([part2, part1, forward, full])))
    assert info.issues == []
    assert info.enums == {"_Big": (("Small", 7), ("Char", -1), ("Long", -2), ("ULong", 0x90000000),
                                   ("Last", -(2**40)))}
    text = info.to_tmf_text_by_guid()[uuid.UUID(GUID)]
    assert text.endswith("#enumv _Big\n{\nSmall,0x7\nChar,0xFFFFFFFFFFFFFFFF\nLong,0xFFFFFFFFFFFFFFFE\n"
                         "ULong,0x90000000\nLast,0xFFFFFF0000000000\n}\n")
    assert f"\n{GUID} comp\n#enumv _Big\n" in text  # "Other" is not in the PDB: no block


def test_damaged_type_stream_is_an_issue_and_messages_survive(pdb_maker):
    pm = pdb_maker
    bad = pm.type_record(0x1203, struct.pack("<HHH", 0x1502, 3, 0x8123) + b"X\0")  # unknown numeric leaf
    full = pm.type_record(0x1507, struct.pack("<HHII", 1, 0, 0x74, 0x1000) + b"_Big\0")
    info = read_pdb(_enum_message_pdb(pm, pm.tpi_stream([bad, full])), name="t.pdb")
    assert [m.number for m in info.messages] == [70] and info.enums == {}
    (issue,) = info.issues
    assert "numeric leaf kind 0x8123" in str(issue) and "(TPI)" in str(issue) and issue.offset is not None
    truncated = pm.tpi_stream([full])[:-3]
    info = read_pdb(_enum_message_pdb(pm, truncated))
    assert len(info.messages) == 1 and "does not fit" in str(info.issues[0])


def test_enumerator_budget_stops_shared_chains(pdb_maker, monkeypatch):
    """Regression guard: many enums sharing one field list cannot multiply the work without bound."""
    from wpptrace.tmf.pdb import types as pdbtypes

    pm = pdb_maker
    members = b"".join(_enumerate(f"E{i}", struct.pack("<H", i)) + bytes([0xF0 + n for n in range(-(6 + len(f"E{i}") + 1) % 4, 0, -1)])
                       for i in range(5))
    field_list = pm.type_record(0x1203, members)
    enum = pm.type_record(0x1507, struct.pack("<HHII", 5, 0, 0x74, 0x1000) + b"_Big\0")
    image = _enum_message_pdb(pm, pm.tpi_stream([field_list, enum]))
    assert read_pdb(image).enums == {"_Big": tuple((f"E{i}", i) for i in range(5))}
    monkeypatch.setattr(pdbtypes, "_MAX_ENUMERATORS", 3)
    info = read_pdb(image)
    assert info.enums == {} and "more enumerators" in str(info.issues[0]) and len(info.messages) == 1


def _lines_run_in_symbols(budget: int, call):
    """Run ``call()`` counting the lines executed in the symbol reader; past ``budget`` lines
    the count stops the call (a measure of work done, independent of the machine's speed)."""
    import sys
    from wpptrace.tmf.pdb import symbols

    executed = 0

    def local(frame, event, arg):
        nonlocal executed
        if event == "line":
            executed += 1
            if executed > budget:
                raise RuntimeError(f"more than {budget} lines run in the symbol reader")
        return local

    def global_trace(frame, event, arg):
        return local if frame.f_code.co_filename == symbols.__file__ else None

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        return call(), executed
    finally:
        sys.settrace(previous)


def test_never_closed_scopes_keep_the_walk_linear(pdb_maker):
    """Blocks whose PtrEnd is 0 stay open for good; each annotation after them still costs a
    fixed amount of work, and nesting past the depth cap is reported once."""
    pm = pdb_maker
    n = 3000
    body = (pm.proc("Outer") + pm.block() * n + pm.annotation(*tmf(40))
            + pm.annotation(b"note") * n)
    image = pm.make_pdb([("a.obj", body)])
    records = 2 * n + 2
    info, executed = _lines_run_in_symbols(100 * records, lambda: read_pdb(image, name="deep.pdb"))
    assert len(info.annotations) == n + 1 and funcs(info) == {40: "Outer"}
    from wpptrace.tmf.pdb.symbols import MAX_SCOPE_DEPTH
    assert len(info.issues) == 1
    text = str(info.issues[0])
    assert f"{n + 1 - MAX_SCOPE_DEPTH} scopes nested more than {MAX_SCOPE_DEPTH} deep" in text
    assert text.startswith("deep.pdb: offset ") and "\n" not in text


def test_scopes_past_the_depth_cap_still_close_in_order(pdb_maker):
    from wpptrace.tmf.pdb.symbols import MAX_SCOPE_DEPTH

    pm = pdb_maker
    deep = MAX_SCOPE_DEPTH + 50
    body = (pm.proc("Outer") + pm.block() * deep + pm.annotation(*tmf(41)) + pm.end() * deep
            + pm.annotation(*tmf(42)) + pm.end() + pm.annotation(*tmf(43))
            + pm.proc("Next") + pm.annotation(*tmf(44)) + pm.end())
    info = read_pdb(pm.make_pdb([("a.obj", body)]))
    assert funcs(info) == {41: "Outer", 42: "Outer", 43: None, 44: "Next"}
    assert len(info.issues) == 1 and "51 scopes nested more than" in str(info.issues[0])


def test_problems_past_the_cap_are_counted_not_kept(pdb_maker, monkeypatch, tmp_path):
    """A PDB of many tiny damaged S_ANNOTATION records: the reader keeps the first
    MAX_ISSUES_PER_FILE of its problems and counts the rest, as the TmfSet it loads into does."""
    from wpptrace.tmf import model
    from wpptrace.tmf.pdb import load_pdb

    monkeypatch.setattr(model, "MAX_ISSUES_PER_FILE", 3)
    pm = pdb_maker
    runaway = pm.sym(0x1019, struct.pack("<IHH", 0, 1, 3) + b"TMF:")   # 3 strings, none ended
    path = tmp_path / "m.pdb"
    path.write_bytes(pm.make_pdb([("a.obj", pm.proc("P") + runaway * 7 + pm.annotation(*tmf(60)) + pm.end())]))
    info = read_pdb(path)
    assert funcs(info) == {60: "P"}
    assert len(info.issues) == 3 and info.issues_dropped == 4
    assert all("S_ANNOTATION string 1 of 3 runs past the record end" in str(issue) for issue in info.issues), \
        [str(issue) for issue in info.issues]
    tmfset = load_pdb(path)
    assert len(tmfset.issues) == 3 and tmfset.issues_dropped == {info.path: 4}
