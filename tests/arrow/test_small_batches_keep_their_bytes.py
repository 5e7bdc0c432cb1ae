"""A record batch of a few rows holds memory for its rows, not the room its C buffers grew to.

Regression: the C column buffers start at 64 KiB each, and a batch took them over as they
were; with ``--batch-rows 1`` (or a live session's small batches) every batch kept some
1.4 MB of address space for a few bytes of values, and a Parquet row group holds all of its
batches until it is encoded: the thousand one-row batches of a small trace took 1.4 GB of
address space, and ``fmt -f parquet`` and ``-f arrow`` aborted (``std::bad_alloc``) under a
2 GB limit. The 3,000 one-row batches here ran out of a 1 GB limit.
"""
from __future__ import annotations

import resource
import subprocess
import sys
import uuid

import etlgen
import pyarrow.parquet as pq

GUID = uuid.UUID("7b1c2d3e-4f50-4162-8374-a5b6c7d8e9f0")
LIMIT = 1 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def test_small_batches_keep_their_bytes(tmp_path):
    etlgen.write_tmf(tmp_path, GUID, "v=%10!d! s=%11!s!", [("v", "ItemLong"), ("s", "ItemString")])
    etl = tmp_path / "small.etl"
    etlgen.write_messages(etl, [(GUID, 10, k.to_bytes(4, "little") + b"text\0", 1, 2, 0,
                                 etlgen.T0 + k, etlgen.FLAGS_CORPUS) for k in range(3000)])
    for form in ("parquet", "arrow"):
        out = tmp_path / f"small.{form}"
        proc = subprocess.run([sys.executable, "-m", "wpptrace", "fmt", str(etl), "-p",
                               str(tmp_path), "-f", form, "-o", str(out), "--batch-rows", "1",
                               "--no-cache"], capture_output=True, text=True,
                              preexec_fn=_limited, timeout=300)
        assert proc.returncode == 0, (form, proc.stderr[-500:])
    table = pq.read_table(tmp_path / "small.parquet")
    assert table.num_rows == 3001
    assert table.column("text").to_pylist()[-1] == "v=2999 s=text"
