"""Second check of the annotation shape on a real PDB: the cvdump of BthPS3PSM.pdb vs tracepdb's own files.

The S_ANNOTATION strings and enclosing S_GPROC32 names that cvdump printed are assembled the
way our reader assembles them (``message_from_annotation``, ``to_tmf_text_by_guid``,
``mof_text``); the result must equal, byte for byte, the .tmf and .mof files tracepdb wrote
from the same PDB (each .tmf there holds two tracepdb runs: the second appended, no GUID line).
"""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from wpptrace.tmf import parse_text
from wpptrace.tmf.pdb import Annotation, ControlGuidRecord, PdbTraceInfo, message_from_annotation
from wpptrace.tmf.pdb.tracepdb import mof_text, write_tmf_files

# tracepdb's "Last Updated" stamp in those files: 2025-04-28:18:52:28:001 (UTC)
UPDATED = dt.datetime(2025, 4, 28, 18, 52, 28, 1000, tzinfo=dt.timezone.utc)
GUIDS = ["ca66b9c0-97d7-3776-3daf-3296492866aa", "d561fdd8-4a6b-334c-0c99-8bd67f784ac3",
         "9fd9018f-c07b-3383-a12a-2352710d4d14", "324ed36d-6949-3aa1-d581-3e2dc9652ec2",
         "03fb1cb4-1c81-30e9-50db-4ecb4f47594e"]


def cvdump_annotations(text: str) -> list[Annotation]:
    """S_ANNOTATION records of a cvdump listing, each with the S_GPROC32 header before it."""
    out: list[Annotation] = []
    proc = None
    current: list | None = None
    for line in text.splitlines():
        m = re.match(r"\((\w+)\) S_[GL]PROC32: \[\w+:\w+\], .*, (\S+)$", line)
        if m:
            proc, current = m.group(2), None
            continue
        m = re.match(r"\((\w+)\)\s+S_ANNOTATION: \[(\w+):(\w+)\]$", line)
        if m:
            current = [int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16), [], proc]
            out.append(current)  # type: ignore[arg-type]
            continue
        m = re.match(r"\s+\d+: \"(.*)\"$", line)  # cvdump quotes each string without escaping
        if m and current is not None:
            current[3].append(m.group(1))
        else:
            current = None
    return [Annotation(0, "", 0, off, None, seg, code, tuple(strings), proc)
            for off, seg, code, strings, proc in out]  # type: ignore[misc]


@pytest.fixture(scope="module")
def bthps3psm(corpus_file) -> PdbTraceInfo:
    annotations = cvdump_annotations(
        corpus_file("BthPS3PSM.pdb-cvdump.annotations-excerpt.txt").read_text())
    info = PdbTraceInfo(path=r"BthPS3PSM.pdb", annotations=annotations)
    for a in annotations:
        if a.strings[0] == "TMF:":
            info.messages.append(message_from_annotation(a))
        elif a.strings[0] == "TMC:":
            info.control_guids.append(ControlGuidRecord(uuid.UUID(a.strings[1]), a.strings[1], a.strings[2],
                                                        a.strings[3:], False, a))
    return info


def test_excerpt_shape(bthps3psm):
    assert len(bthps3psm.annotations) == 71
    assert len(bthps3psm.messages) == 70 and len(bthps3psm.control_guids) == 1
    assert [str(g) for g in bthps3psm.message_guids()] == GUIDS
    # cvdump shows no FUNC= in any record; every message gets its procedure's name
    assert all(" FUNC=" not in a.strings[2] for a in bthps3psm.annotations if a.strings[0] == "TMF:")
    assert all(m.lines[0].endswith(" FUNC=" + m.annotation.procedure) for m in bthps3psm.messages)


def test_assembled_tmf_equals_tracepdb_output(bthps3psm, corpus_file, tmp_path):
    texts = bthps3psm.to_tmf_text_by_guid(UPDATED)
    for guid in GUIDS:
        real = corpus_file(f"{guid}.tmf").read_text()
        first_run = real[:real.index("// PDB:  BthPS3PSM.pdb", 1)]
        assert texts[uuid.UUID(guid)] == first_run
    # two from-pdb runs with --append reproduce the whole files, second run included
    write_tmf_files(bthps3psm, tmp_path, updated=UPDATED, mof=False)
    write_tmf_files(bthps3psm, tmp_path, updated=UPDATED, mof=False, append=True)
    for guid in GUIDS:
        assert (tmp_path / f"{guid}.tmf").read_bytes() == corpus_file(f"{guid}.tmf").read_bytes()


def test_mof_equals_tracepdb_output(bthps3psm, corpus_file):
    assert mof_text(bthps3psm, UPDATED) == corpus_file("BthPS3PSM.mof").read_text()
    (control,) = bthps3psm.control_guids
    assert control.annotation.procedure == "DriverEntry" and control.flags[0] == "MYDRIVER_ALL_INFO"


def test_assembled_tmf_parses_with_func(bthps3psm):
    texts = bthps3psm.to_tmf_text_by_guid(UPDATED)
    tmfset = parse_text(texts[uuid.UUID("03fb1cb4-1c81-30e9-50db-4ecb4f47594e")], path="03fb1cb4.tmf")
    message = tmfset.lookup(uuid.UUID("03fb1cb4-1c81-30e9-50db-4ecb4f47594e"), 27)
    assert message.trailer["FUNC"] == "BthPS3PSM_SidebandIoDeviceControl"
    assert [(a.name, a.item, a.insert) for a in message.args] == [
        ("&linkName", "ItemPWString", 10), ("linkName.Length", "ItemLong", 11)]
    assert message.component == "BthPS3PSM" and message.source_file == "Sideband.c"
