"""What the Arrow tests compare: ``wpptrace fmt -f jsonl`` objects and Parquet/Arrow rows, as
the same plain tuples."""
from __future__ import annotations

import datetime
import io
import json
import math

from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

_EPOCH_FILETIME = 116_444_736_000_000_000


def fmt(files, tmf_dirs, output_format: str, output: str | None = None, **options):
    """Run ``wpptrace fmt`` in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    opts = FmtOptions(files=[str(f) for f in files], tmf_dirs=[str(d) for d in tmf_dirs],
                      output_format=output_format, output=output, progress="never", jobs=1,
                      **options)
    code = run_fmt(opts, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def dump_iso(filetime: int) -> str:
    """A FILETIME as ``wpptrace dump --json`` writes it (7 fraction digits)."""
    seconds, ticks = divmod(filetime, 10_000_000)
    when = _FILETIME_EPOCH + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{ticks:07d}Z"


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def _json_arg(arg: dict) -> tuple:
    v = arg["value"]
    if isinstance(v, bool) or isinstance(v, int):
        return arg["name"], arg["type"], _int64(int(v)), None, None
    if isinstance(v, float):
        return arg["name"], arg["type"], None, v, None
    if v in ("nan", "inf", "-inf") and arg["type"] in ("ItemDouble", "ItemFloat"):
        return arg["name"], arg["type"], None, float(v), None
    if isinstance(v, list):
        return arg["name"], arg["type"], None, None, json.dumps(v, ensure_ascii=False)
    return arg["name"], arg["type"], None, None, v


def jsonl_rows(text: str) -> list[tuple]:
    """The compared facts of each JSON Lines object."""
    out = []
    for line in text.split("\n")[:-1]:        # (a text may hold U+2028 and other line breaks)
        o = json.loads(line)
        out.append((o["filetime"], o["processor"], o["process_id"], o["thread_id"], o["sequence"],
                    o["status"], o["guid"], o["number"], o["component"], o["name"], o["function"],
                    o["file"], o["line"] or None, o["level"], o["flags"], o["text"],
                    [_json_arg(a) for a in o["args"]], o.get("error")))
    return out


def _nan_safe(args):
    return [(n, t, i, "nan" if isinstance(f, float) and math.isnan(f) else f, s)
            for n, t, i, f, s in args]


def arrow_rows(records: list[dict]) -> list[tuple]:
    """The same facts of each Arrow row (``Table.to_pylist()`` or DuckDB's dicts)."""
    out = []
    for r in records:
        ts = r["timestamp"]
        if ts is not None:     # the timestamp column is the filetime column's instant
            ns = ts.value if hasattr(ts, "value") else None
            if ns is not None:
                assert ns == (r["filetime"] - _EPOCH_FILETIME) * 100
        line = r["line"]
        out.append((r["filetime"], r["cpu"], r["pid"], r["tid"], r["sequence"], r["status"],
                    r["guid"], r["number"], r["component"], r["name"], r["function"], r["file"],
                    str(line) if line is not None else None, r["level_name"], r["flags"],
                    r["text"],
                    [(a["name"], a["type"], a["int"], a["float"], a["str"]) for a in r["args"]],
                    r["error"]))
    return out


def comparable(rows: list[tuple]) -> list[tuple]:
    return [row[:16] + (_nan_safe(row[16]),) + row[17:] for row in rows]
