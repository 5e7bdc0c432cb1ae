"""Reference record counts from dissect.etl (test-only dependency), per our kind names.

Used live by the corpus tests for small files, and by ``record_dissect_counts.py`` to
record the big files' counts in tests/data/etl/dissect_counts.json.
"""
from __future__ import annotations

import collections

#: dissect.etl header class -> our record kind
DISSECT_KINDS = {
    "SystemHeader": "system", "CompactSystemHeader": "compact",
    "PerfinfoTraceHeader": "perfinfo", "EventTraceHeader": "full",
    "EventInstanceGUIDHeader": "instance", "EventHeader": "event",
    "MessageTraceHeader": "message",
}


def dissect_counts(path) -> dict:
    """{"by_kind": {kind: n}, "records": n, "buffer0_records": n} as dissect.etl sees the file."""
    from dissect.etl import ETL

    with open(path, "rb") as fh:
        etl = ETL(fh)
        kinds: collections.Counter = collections.Counter()
        for rec in etl:
            kinds[DISSECT_KINDS.get(type(rec.header).__name__, "unknown")] += 1
        first = sum(1 for _ in etl.buffer(0))
    return {"by_kind": dict(sorted(kinds.items())), "records": sum(kinds.values()),
            "buffer0_records": first}


def dissect_records(path) -> list[dict]:
    """Per-record facts dissect.etl decodes (file order), for field-by-field comparison."""
    from dissect.etl import ETL

    out = []
    with open(path, "rb") as fh:
        for rec in ETL(fh):
            h = rec.header
            kind = DISSECT_KINDS.get(type(h).__name__, "unknown")
            out.append({
                "kind": kind, "size": h.size, "time": h.time_delta,
                "tid": getattr(h, "thread_id", None), "pid": getattr(h, "process_id", None),
                "provider": h.provider_id if kind in ("message", "full", "instance") else None,
                "kernel_provider": (h.provider_id if kind in ("system", "compact", "perfinfo")
                                    else None),
                "id": h.id if kind == "message" else None,
                "payload": bytes(h.payload) if kind != "message" else None,
            })
    return out
