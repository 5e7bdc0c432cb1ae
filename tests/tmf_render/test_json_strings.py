"""JSON Lines text and string values: the C renderer escapes each value of a message as it
prints it (the literals are checked once) and takes a string argument's value from the text
when the text printed it as it is; what it writes equals what Python's json module writes,
for strings the text prints as they are, padded, cut, twice or not at all, next to literals
that need escaping and literals that do not."""
from __future__ import annotations

import json
import uuid

import golden_traces

etlgen = golden_traces.etlgen      # the tests' .etl writer (tests/fmt/etlgen.py)

G = uuid.UUID("0badf00d-0000-4000-8000-00000000057a")
FORMATS = [
    '%0plain %10!s! then %11!s!',                       # both printed as they are
    '%0padded [%10!-12s!] cut [%11!.3s!]',              # values differ from the printed text
    '%0first %10!s!, padded %10!8s!, cut %10!.2s!',     # one argument printed three ways
    '%0only the second %11!s!',                         # the first never printed
    '%0tab%tand "quotes" in the literal: %10!s! %11!s!',   # literals needing escapes
    '%0char %12!c! wide %13!C! then %10!s!',            # characters of any value
]
STRINGS = ['', 'clean', 'quote " inside', 'back\\slash', 'ctl \x01\x1f end', 'line\nbreak',
           'tab\there', 'caf\u00e9 \u65e5\u672c', 'x' * 40 + '"' + 'y' * 9]


def _tmf() -> str:
    lines = ["// PDB: x", f"{G} Strs // SRC=s.c"]
    for number, fmt in enumerate(FORMATS, 10):
        lines += [f'#typev s_c{number} {number} "{fmt}" //   FUNC=F', "{",
                  "a, ItemString -- 10", "b, ItemWString -- 11", "c, ItemChar -- 12",
                  "d, ItemShort -- 13", "}"]
    return "\n".join(lines) + "\n"


def test_json_string_values_equal_python(tmp_path):
    tmf = tmp_path / f"{G}.tmf"
    tmf.write_text(_tmf())

    def events():
        ts = etlgen.T0
        for number in range(10, 10 + len(FORMATS)):
            for k, a in enumerate(STRINGS):
                b = STRINGS[(k + 3) % len(STRINGS)]
                args = (a.encode("utf-8") + b"\0" + b.encode("utf-16-le") + b"\0\0"
                        + bytes([(k * 7) % 128]) + ((k * 11) % 128).to_bytes(2, "little"))
                ts += 10
                yield (G, number, args, 4, 4, 0, ts, etlgen.FLAGS_CORPUS)

    etl = tmp_path / "strings.etl"
    etlgen.write_messages(etl, events(), nprocs=1)
    options = {"utc": True, "output_format": "jsonl"}
    native = golden_traces.render([etl], [str(tmf)], options)
    python = golden_traces.render([etl], [str(tmf)], options, python_only=True)
    rows = [json.loads(line) for line in native.decode("utf-8").splitlines()[1:]]
    assert len(rows) == len(FORMATS) * len(STRINGS)
    assert all(row["status"] == "ok" for row in rows)
    cut = next(row for row in rows if row["number"] == 11 and row["args"][1]["value"] == "clean")
    assert "cut [cle]" in cut["text"]
    assert native == python
