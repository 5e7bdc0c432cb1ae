"""The C walker's declarations: the cffi view (etlread.cdef) says what etlread.h says."""
from __future__ import annotations

import pathlib
import re

from wpptrace._core import ffi

CSRC = pathlib.Path(__file__).resolve().parents[2] / "decoder" / "csrc"


def declarations(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    keep = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line or (line.startswith("#") and not re.match(r"#\s*define\s+\w+\s+\S", line)):
            continue
        keep.append(line)
    return keep


def test_cdef_mirrors_the_header():
    assert declarations((CSRC / "etlread.cdef").read_text()) == \
        declarations((CSRC / "etlread.h").read_text())


def test_record_struct_has_no_hidden_padding():
    fields = ffi.typeof("etlrd_record").fields
    end = 0
    for _, f in fields:
        assert f.offset == end, "etlrd_record must stay packed (fields in size order)"
        end = f.offset + ffi.sizeof(f.type)
    assert end == ffi.sizeof("etlrd_record") == 88
