"""An empty string argument as the first string of a chunk decodes to "" in C.

Regression (sanitizer run, UBSan): an empty text put in a string pool that had no memory
yet (its data pointer NULL) took ``data + len`` on that NULL (wppr_put) and passed it to
``memchr`` (wpp_values.c, looking for a NUL): undefined behaviour that UBSan reports and an
optimising compiler may act on. Under a plain build the values were right; with either guard
undone the test fails under the sanitizer build tests/fmt/fuzz_fmt_damage.py describes (clang,
``-fno-wrapv``: without it the offset on NULL goes unchecked) with UBSAN_OPTIONS=halt_on_error=1.
"""
from __future__ import annotations

import uuid

import etlgen

from wpptrace.decoder import decode_file
from wpptrace.decoder.row_messages import RowMessage

GUID = uuid.UUID("5d1e0f00-2b3c-4d5e-8f60-718293a4b5c6")


def test_empty_first_string_value(tmp_path):
    etlgen.write_tmf(tmp_path, GUID, "s=[%10!s!] w=[%11!S!]", [("s", "ItemString"), ("w", "ItemWString")])
    path = tmp_path / "empty.etl"
    etlgen.write_messages(path, [
        (GUID, 10, b"\0" + b"\0\0", 1, 2, 0, etlgen.T0, etlgen.FLAGS_CORPUS),
        (GUID, 10, b"x\0" + "y".encode("utf-16-le") + b"\0\0", 1, 2, 0, etlgen.T0 + 1,
         etlgen.FLAGS_CORPUS)])
    messages = decode_file(path, tmf=str(tmp_path)).messages
    assert all(isinstance(m, RowMessage) for m in messages)     # the C decoder's rows
    assert [m.text for m in messages] == ["s=[] w=[]", "s=[x] w=[y]"]
    assert [tuple(m.args) for m in messages] == [("", ""), ("x", "y")]
