"""TMF reader speed: cold parse rate over the corpus TMFs, lazy directory load, lookup cost.

Run: python3 benchmarks/bench_tmf.py [CORPUS_DIR]   (default tests/corpus)

Prints side by side: the real grammar (pyparsing line productions + state machine), the same
with its per-line caches warm, and a bare regex line reader that only extracts (guid, number)
(the floor any TMF reader pays for reading lines; it checks nothing and builds no model).
Then the lazy scan of every file of the nefarius set, the fixed cost each fmt process pays for
the files it reads: split at the entries tracepdb writes (the reader's) beside unit by unit
(its split turned off: the reading it did before), in CPU time with gc off, as fmt runs.
"""
from __future__ import annotations

import gc
import pathlib
import re
import sys
import tempfile
import time
import uuid
from unittest import mock

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import wpptrace.tmf as tmf  # noqa: E402
from wpptrace.tmf import grammar  # noqa: E402

_GUID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) ")
_TYPEV = re.compile(r'^#typev \S+ (\d+) "')


def floor_reader(texts: list[str]) -> int:
    keys = set()
    guid = None
    for text in texts:
        for line in text.split("\n"):
            match = _GUID.match(line)
            if match:
                guid = match.group(1)
                continue
            match = _TYPEV.match(line)
            if match:
                keys.add((guid, int(match.group(1))))
    return len(keys)


def clear_caches() -> None:
    for fn in (grammar.parse_typev, grammar.parse_arg, grammar.parse_guid_header):
        fn.cache_clear()


def lazy_scan_cpu(directory: pathlib.Path, runs: int) -> tuple[float, float]:
    """CPU seconds (min of ``runs``) to scan every file of a lazily loaded directory, then to
    parse every message (caches cleared before each: a fmt process reads each file once)."""
    scan = parse = float("inf")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            clear_caches()
            grammar._trailer_to_pairs.cache_clear()
            tmfset = tmf.load(directory, use_environment=False)
            start = time.process_time()
            for guid in list(tmfset._pending):
                tmfset._load_guid(guid)
            scan = min(scan, time.process_time() - start)
            start = time.process_time()
            list(tmfset.messages())
            parse = min(parse, time.process_time() - start)
            del tmfset
            gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    return scan, parse


def best_of(runs: int, fn):
    best = float("inf")
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    corpus = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "corpus"
    files = sorted(p for sub in ("tmf", "wpp") for p in (corpus / sub).rglob("*.tmf"))
    texts = [p.read_text() for p in files]
    lines = sum(t.count("\n") for t in texts)

    def parse_all() -> int:
        return sum(len(tmf.parse_text(text, path=str(path))) for path, text in zip(files, texts))

    def cold() -> int:
        clear_caches()
        return parse_all()

    t_cold, messages = best_of(5, cold)
    t_warm, _ = best_of(5, parse_all)
    t_floor, floor_messages = best_of(5, lambda: floor_reader(texts))
    assert floor_messages == messages, (floor_messages, messages)

    print(f"corpus: {len(files)} TMF files, {lines} lines, {messages} unique messages")
    print(f"{'reader':<34}{'seconds':>10}{'messages/s':>14}{'lines/s':>12}{'x floor':>9}")
    for name, seconds in (("grammar, cold (caches cleared)", t_cold), ("grammar, line caches warm", t_warm),
                          ("bare regex floor (no model)", t_floor)):
        print(f"{name:<34}{seconds:>10.4f}{messages / seconds:>14,.0f}{lines / seconds:>12,.0f}"
              f"{seconds / t_floor:>9.1f}")

    # lazy directory: listing cost, first lookup (parses one file), repeated lookups
    directory = corpus / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
    clear_caches()
    start = time.perf_counter()
    tmfset = tmf.load(directory, use_environment=False)
    t_list = time.perf_counter() - start
    probe = uuid.UUID("01e9b841-7d67-315a-7b92-23b2033356de")
    start = time.perf_counter()
    assert tmfset.lookup(probe, 14) is not None
    t_first = time.perf_counter() - start
    repeats = 200_000
    start = time.perf_counter()
    for _ in range(repeats):
        tmfset.lookup(probe, 14)
    t_hit = (time.perf_counter() - start) / repeats
    missing = uuid.UUID(int=0)
    start = time.perf_counter()
    for _ in range(repeats):
        tmfset.lookup(missing, 10)
    t_miss = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    total = len(tmfset)
    t_rest = time.perf_counter() - start
    print(f"\nlazy directory ({len(list(directory.glob('*.tmf')))} files):")
    print(f"  load() (list only)          {t_list * 1e3:8.2f} ms")
    print(f"  first lookup (parses 1 file) {t_first * 1e3:7.2f} ms")
    print(f"  lookup, hit                 {t_hit * 1e9:8.0f} ns")
    print(f"  lookup, unknown GUID        {t_miss * 1e9:8.0f} ns")
    print(f"  load the other files        {t_rest * 1e3:8.2f} ms ({total} messages)")

    # the lazy scan of every file, as each fmt process pays it, with the split and without
    split = unit = (float("inf"), float("inf"))
    for _ in range(3):  # alternated: this VM's speed drifts
        split = min(split, lazy_scan_cpu(directory, 5))
        with mock.patch.object(grammar, "split_text", lambda text: ([], [text], None)):
            unit = min(unit, lazy_scan_cpu(directory, 5))
    print("\nlazy scan of every file of the nefarius set (CPU, min of 15, gc off):")
    print(f"  {'reader':<34}{'scan':>10}{'then messages()':>18}")
    for name, (scan, parse) in (("split at tracepdb's entries", split), ("unit by unit (split off)", unit)):
        print(f"  {name:<34}{scan * 1e3:7.2f} ms{parse * 1e3:15.2f} ms")

    # a big directory: 5000 <guid>.tmf files (copies of one corpus file under fresh GUIDs)
    template = (directory / f"{probe}.tmf").read_text()
    with tempfile.TemporaryDirectory() as big:
        guids = [uuid.uuid4() for _ in range(5000)]
        for guid in guids:
            pathlib.Path(big, f"{guid}.tmf").write_text(template.replace(str(probe), str(guid)))
        clear_caches()
        start = time.perf_counter()
        bigset = tmf.load(big, use_environment=False)
        t_list = time.perf_counter() - start
        start = time.perf_counter()
        assert bigset.lookup(guids[1234], 14) is not None
        t_first = time.perf_counter() - start
        start = time.perf_counter()
        assert bigset.lookup(guids[4321], 14) is not None
        t_second = time.perf_counter() - start
        print(f"\nlazy directory of {len(guids)} files:")
        print(f"  load() (list only)          {t_list * 1e3:8.2f} ms")
        print(f"  first lookup of a GUID      {t_first * 1e3:8.2f} ms (parses its file only)")
        print(f"  another GUID (caches warm)  {t_second * 1e3:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
