"""A double argument of -0.0 keeps its sign in the rows Python decodes for the Arrow columns.

Regression: the rows the C renderer leaves to Python (format errors, rarer item types)
appended each argument's float as ``f or 0.0``; -0.0 is falsy, so a format-error message's
-0.0 argument read 0.0 in Parquet and Arrow while JSON Lines gave -0.0.
"""
from __future__ import annotations

import json
import math
import struct
import uuid

import etlgen
import pyarrow.parquet as pq
from arrowhelp import fmt

GUID = uuid.UUID("8c2d3e4f-5061-4273-8485-b6c7d8e9f0a1")


def test_negative_zero_argument_of_python_rows(tmp_path):
    # %11!q! is no printf spec: the message is a format error, its arguments still typed
    etlgen.write_tmf(tmp_path, GUID, "d=%10!f! x=%11!q!", [("d", "ItemDouble"), ("x", "ItemLong")])
    etl = tmp_path / "zero.etl"
    etlgen.write_messages(etl, [(GUID, 10, struct.pack("<di", -0.0, 7), 1, 2, 0, etlgen.T0,
                                 etlgen.FLAGS_CORPUS)])
    _code, jsonl, _err = fmt([etl], [tmp_path], "jsonl")
    row = json.loads(jsonl.splitlines()[1])
    assert row["status"] == "format-error"
    assert [a["value"] for a in row["args"]] == [-0.0, 7]
    assert math.copysign(1.0, row["args"][0]["value"]) == -1.0
    out = tmp_path / "zero.parquet"
    fmt([etl], [tmp_path], "parquet", output=str(out))
    args = pq.read_table(out).column("args").to_pylist()[1]
    assert [a["float"] for a in args] == [-0.0, None]
    assert math.copysign(1.0, args[0]["float"]) == -1.0
