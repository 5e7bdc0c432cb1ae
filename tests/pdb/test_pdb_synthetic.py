"""Hand-made PDBs for the cases clang/lld do not produce: scope edge cases, _ID/_DPC procs, stripped
and mini PDBs, old CodeView signatures, modules without symbols, non-UTF-8 strings."""
from __future__ import annotations

import argparse
import uuid

from wpptrace.tmf import tracepdb
from wpptrace.tmf.pdb import read_pdb

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
