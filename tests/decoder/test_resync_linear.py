"""The walker's search for where to resume after damage is linear in the buffer size.

A walker that tests "is everything from here to the end 0xFF fill?" at every 8-byte step,
each test reading to the end, is quadratic: a buffer whose first record marker is damaged
and whose rest is 0xFF except the last byte took it 0.15 s at 64 KiB, 2.3 s at 256 KiB,
44 s at 1 MiB, and would take about three hours at the 16 MiB ETW allows (``wpptrace dump``
on such a file stalls the same way). Each shape of ``dec_hostile`` is walked at 16 MiB in a
child process that must finish well inside a bound such a search misses by orders of
magnitude; the answers themselves are checked too (``test_walk_model`` compares every
resume point with a plain model of the rules on small buffers).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dec_hostile as hostile

HERE = os.path.dirname(os.path.abspath(__file__))
#: the child's whole run (four 16 MiB walks, one 16 MiB file read twice) takes about 1 s;
#: the old search needed hours for the first shape alone
BOUND_S = 120


def run_child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=HERE, timeout=BOUND_S,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_hostile_shape_walks_16_mib_in_linear_time():
    got = run_child("""
        import json, time
        import dec_hostile as h
        result = {}
        for name, shape in h.SHAPES.items():
            data = shape(h.MAX_BUFFER)
            t0 = time.perf_counter()
            records, errors, skipped = h.walk_in_chunks(data)
            result[name] = [records, errors, skipped, time.perf_counter() - t0]
        print(json.dumps(result))
    """)
    size = hostile.MAX_BUFFER
    body = size - hostile.BUFFER_HEADER
    assert got["fill_after_damaged_first_record"][:3] == [0, 1, body]
    assert got["fill_with_junk_every_page"][:3] == [0, 1, body]
    records, errors, skipped, _ = got["small_records_damaged_every_chunk"]
    assert errors == len(range(16000, body // 8, 16384)) + 1 and skipped == 8 * errors
    assert records == body // 8 - errors
    records, errors, skipped, _ = got["plausible_headers_without_a_clean_chain"]
    assert errors == 2 and skipped == 24 and records == (body - 24) // 16
    for name, (*_, seconds) in got.items():
        assert seconds < BOUND_S / 4, (name, seconds)


def test_a_16_mib_buffer_of_that_shape_in_a_file_reads_and_reports_the_damage(tmp_path):
    path = tmp_path / "damaged.etl"
    path.write_bytes(hostile.etl_with_buffer(hostile.fill_after_damaged_first_record(hostile.MAX_BUFFER)))
    got = run_child(f"""
        import json
        from wpptrace.decoder.etlfile import EtlFile
        with EtlFile({str(path)!r}) as etl:
            stats = etl.scan()
            print(json.dumps({{"records": stats.records, "damaged": stats.damaged,
                              "errors": [e.message for e in etl.errors]}}))
    """)
    assert got["records"] == 1 and got["damaged"] == 1          # the log-file header record
    assert len(got["errors"]) == 1 and "expected a record marker" in got["errors"][0]
    dump = subprocess.run([sys.executable, "-m", "wpptrace.cli", "dump", "--summary-only", str(path)],
                          timeout=BOUND_S, capture_output=True, text=True)
    assert dump.returncode == 1
    assert "skipped or damaged 1; 1 errors" in dump.stdout
