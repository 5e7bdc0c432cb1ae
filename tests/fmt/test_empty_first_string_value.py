"""An empty string argument as the first string of a chunk decodes to "" in C.

Regression (sanitizer run, UBSan): wpp_values.c looked for a NUL in a string value's text
with ``memchr(pool + at, 0, len - at)`` even when the text was empty and the string pool had
no memory yet (its data pointer NULL): a null pointer passed to memchr, undefined behaviour
that UBSan reports and an optimising compiler may act on. Under a plain build the values
were right; the test fails under ``-fsanitize=undefined`` (UBSAN_OPTIONS=halt_on_error=1)
without the fix.
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
