"""JSON Lines values of ItemDouble arguments: the C renderer writes what Python's json module
writes (repr of the float; NaN and infinities as strings) for every kind of double: special
values, the repr layout boundaries (1e-05, 1e16), subnormals, powers of two and any bit
pattern; the shortest digits that read back are found, or the row is left to Python."""
from __future__ import annotations

import random
import struct
import uuid

import golden_traces

etlgen = golden_traces.etlgen      # the tests' .etl writer (tests/fmt/etlgen.py)

G = uuid.UUID("0badf00d-0000-4000-8000-0000000d0b1e")
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 1e16, 1e15, 9007199254740992.0, 5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, 1e-5, 1e-4, 0.0001, 123456789012345678.0,
           0.5, 2.5, 100.0, 1e22, 1e23, 9.999999999999999e22, float("nan"), float("inf"),
           float("-inf"), 1234567890123456.0, 12345678901234567.0, 2.0 ** -1022, 2.0 ** 1023]


def _double(r: random.Random) -> float:
    kind = r.randrange(4)
    if kind == 0:
        return struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
    if kind == 1:
        return r.random() * 10 ** r.randrange(-30, 30)
    if kind == 2:
        return float(r.getrandbits(r.randrange(1, 64)))
    return 2.0 ** r.randrange(-1074, 1024) * r.choice((1, -1, 3, 0.75))


def test_json_doubles_equal_python(tmp_path):
    tmf = tmp_path / f"{G}.tmf"
    tmf.write_text(f'// PDB: x\n{G} Dbl // SRC=d.c\n#typev d_c1 10 "%0v=%10!g! w=%11!s!" //   FUNC=F\n'
                   "{\nv, ItemDouble -- 10\nw, ItemDouble -- 11\n}\n")
    r = random.Random(11)
    values = SPECIAL + [_double(r) for _ in range(20_000)]

    def events():
        ts = etlgen.T0
        for i, value in enumerate(values):
            ts += 10
            yield (G, 10, struct.pack("<dd", value, _double(r)), 4, 4, 0, ts, etlgen.FLAGS_CORPUS)

    etl = tmp_path / "doubles.etl"
    etlgen.write_messages(etl, events(), nprocs=1)
    options = {"utc": True, "output_format": "jsonl"}
    native = golden_traces.render([etl], [str(tmf)], options)
    python = golden_traces.render([etl], [str(tmf)], options, python_only=True)
    assert native.count(b"\n") == len(values) + 1
    assert b'"value":"nan"' in native and b'"value":1e+16' in native and b'"value":-0.0' in native
    assert native == python
