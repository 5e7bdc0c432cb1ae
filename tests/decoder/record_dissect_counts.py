#!/usr/bin/env python3
"""Record dissect.etl's per-kind record counts for every corpus .etl file.

The corpus tests compare our counts with these for the big files (dissect needs minutes
for them) and with a live dissect run for the small ones. Regenerate after the corpus
changes (default: the unpacked tests/corpus):

    python3 tests/decoder/record_dissect_counts.py [CORPUS_DIR] > tests/data/etl/dissect_counts.json
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "corpus"))
from dec_dissect import dissect_counts  # noqa: E402
from unpack import unpacked  # noqa: E402


def main(corpus: str) -> None:
    import dissect.etl

    root = pathlib.Path(corpus)
    files = {}
    for path in sorted(root.rglob("*.etl")):
        t0 = time.perf_counter()
        counts = dissect_counts(path)
        counts["dissect_seconds"] = round(time.perf_counter() - t0, 2)
        counts["size"] = path.stat().st_size
        files[path.relative_to(root).as_posix()] = counts
    version = getattr(dissect.etl, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v
        version = _v("dissect.etl")
    json.dump({"tool": f"dissect.etl {version}",
               "command": "python3 tests/decoder/record_dissect_counts.py",
               "files": files}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(unpacked()))
