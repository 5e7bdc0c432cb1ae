"""from-pdb as a command: what it says for an output path that is a file and for PDBs whose
TMF: records are all damaged, and several PDBs of one run sharing a message GUID (their
messages go into one <guid>.tmf, as tracepdb appends, and read back)."""
from __future__ import annotations

import argparse
import uuid

import wpptrace.tmf as tmf
from wpptrace.tmf.pdb import tracepdb

GUID = "11112222-3333-4444-5555-666677778888"


def record(number: int, src: str = "s.c") -> tuple[str, ...]:
    return ("TMF:", f"{GUID} comp // SRC={src} MJ= MN=", f'#typev {src}{number} {number} "%0m{number}" //', "{", "}")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    tracepdb.add_arguments(parser)
    return tracepdb.run(parser.parse_args(list(argv)))


def write_pdb(pm, path, *records: tuple[str, ...]):
    path.write_bytes(pm.make_pdb([("a.obj", pm.proc("P") + b"".join(pm.annotation(*r) for r in records)
                                   + pm.end())]))
    return path


def test_output_naming_an_existing_file_is_not_a_directory(pdb_maker, tmp_path, capsys):
    pdb = write_pdb(pdb_maker, tmp_path / "m.pdb", record(10))
    taken = tmp_path / "taken"
    taken.write_text("a file\n")
    assert run(str(pdb), "-o", str(taken)) == 1
    err = capsys.readouterr().err
    assert f"error: {taken}: not a directory" in err and "Errno" not in err
    assert taken.read_text() == "a file\n"


def test_all_records_damaged_says_so(pdb_maker, tmp_path, capsys):
    bad = ("TMF:", f"{GUID} comp // SRC=s.c", '#typev s_c1 1 "%0x" //', "{", "not an argument", "}")
    pdb = write_pdb(pdb_maker, tmp_path / "m.pdb", bad, bad[:-1] + ("also not one", "}"))
    assert run(str(pdb), "-o", str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert f"warning: {pdb}: no trace messages: 2 TMF: annotations were damaged" in err
    assert "no TMF: annotations in its module symbols" not in err


def test_pdbs_of_one_run_sharing_a_guid_append(pdb_maker, tmp_path, capsys):
    first = write_pdb(pdb_maker, tmp_path / "one.pdb", record(10, "a.c"), record(11, "a.c"))
    second = write_pdb(pdb_maker, tmp_path / "two.pdb", record(12, "b.c"))
    out = tmp_path / "out"
    assert run(str(first), str(second), "-o", str(out), "--no-mof") == 0
    capsys.readouterr()
    text = (out / f"{GUID}.tmf").read_text()
    assert text.count("// PDB:  one.pdb\n") == 1 and text.count("// PDB:  two.pdb\n") == 1
    assert text.index("one.pdb") < text.index("two.pdb")
    messages = {m.number: m for m in tmf.parse_text(text).messages()}
    assert sorted(messages) == [10, 11, 12]
    assert {n: m.source_file for n, m in messages.items()} == {10: "a.c", 11: "a.c", 12: "b.c"}
    assert all(m.guid == uuid.UUID(GUID) and m.component == "comp" for m in messages.values())
    # a second run without --append starts the file again
    assert run(str(second), "-o", str(out), "--no-mof") == 0
    assert sorted(m.number for m in tmf.parse_text((out / f"{GUID}.tmf").read_text()).messages()) == [12]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    # from-pdb first asks whether the file is a PE image: that look must not open a pipe and wait
    import os
    import subprocess
    import sys

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "from-pdb", "-o", str(tmp_path / "o"),
                           str(fifo)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert f"{fifo}: not a regular file (a device, pipe or socket): give the .pdb file" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and not (tmp_path / "o").exists()


def test_codeview_of_a_fifo_is_refused_without_waiting(tmp_path):
    import os

    import pytest

    from wpptrace.tmf import TmfError
    from wpptrace.tmf.pdb.peimage import is_pe_image, read_codeview

    fifo = tmp_path / "x.sys"
    os.mkfifo(fifo)
    assert not is_pe_image(fifo)
    with pytest.raises(TmfError, match="not a regular file"):
        read_codeview(fifo)
