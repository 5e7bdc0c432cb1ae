"""Helpers shared by the fmt tests (imported as a plain module: conftest puts this folder on sys.path).

``row_lines`` runs the product's formatting loop (the engine's rows, the C renderer).
``reference_lines`` is an independent per-record path written here, without rows, ids or
memo: each record formatted on its own (text: the formatter and the prefix template; CSV:
Python's csv module over ``decode_record``'s facts; JSON Lines: ``json`` over the same), the
way the decoder worked before its single loop. Tests compare the two on real and random data.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import struct
import time


def same_value(a, b) -> bool:
    """Two decoded argument values are the same: same type and value, a NaN by its bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def run_fmt_capture(*files, **options):
    """Run the fmt engine in-process; returns (exit code, stdout text, stderr text)."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    out, err = io.StringIO(), io.StringIO()
    opts = FmtOptions(files=[str(f) for f in files], **options)
    code = run_fmt(opts, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def hold_up(monkeypatch, marker, held: str) -> None:
    """Hold one process of a ``-j 2`` run (``held``: "worker" or "parent") in its first
    window until the other has found no window left to take (it then touches ``marker``):
    the other process takes every tail window, however fast each core is."""
    from wpptrace.decoder import cli_fmt, parallel

    parent = os.getpid()
    real_take, real_decode = parallel._take, cli_fmt._decode_sources

    def is_held() -> bool:
        return (os.getpid() != parent) == (held == "worker")

    def take(fd):
        k = real_take(fd)
        if k is None and not is_held():
            marker.touch()
        return k

    def held_up(decoder, writer, opts, sources, progress, window=None, view=None):
        if window is not None and is_held():
            deadline = time.monotonic() + 60
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        return real_decode(decoder, writer, opts, sources, progress, window, view)

    monkeypatch.setattr(parallel, "_take", take)
    monkeypatch.setattr(cli_fmt, "_decode_sources", held_up)


def row_lines(decoder, etl, output: str = "text", quote_all: bool = False) -> list[str]:
    """The formatter's lines for an open EtlFile, through the engine's compact rows."""
    from wpptrace.decoder.engine import FileSource
    from wpptrace.decoder.wpp_rows import RowView

    view = RowView()
    if output == "text":
        return [line for batch in decoder.format(FileSource(etl).ordered(view), view, "lines")
                for line in batch]
    data = b"".join(bytes(chunk) for chunk in decoder.format(FileSource(etl).ordered(view), view,
                                                            output, quote_all))
    return str(data, "utf-8", "surrogatepass").split("\n")[:-1]


def _records(decoder, etl):
    """(header?, record, context) in ProcessTrace order; non-WPP records are skipped."""
    from wpptrace.decoder import ordered_records
    from wpptrace.decoder.timestamps import TimeConverter
    from wpptrace.decoder.wpp import FileContext

    ctx = FileContext.for_header(str(etl.name), etl.header, TimeConverter(etl.header))
    counters = decoder.counters
    first = True
    made = _made_header(etl)
    if made is not None:
        counters.events += 1
        first = False
        yield True, made, ctx
    for rec in ordered_records(etl):
        counters.events += 1
        if rec.kind != "message":
            if first and rec.kind == "system" and rec.event_id == 0:
                yield True, rec, ctx
            else:
                counters.non_wpp += 1
            first = False
            continue
        first = False
        counters.messages += 1
        yield False, rec, ctx
    counters.formatted = counters.messages - counters.unknown - counters.format_errors


def _made_header(etl):
    """The header event fmt prints for a file whose first buffer does not start with the
    log-file header record (damaged) when the header facts were read from it: the record's
    fields as those facts hold them, the buffer's processor (0 when the buffer's own header is
    no WMI_BUFFER_HEADER: nothing is taken from junk); None when the record is there, the
    facts were not read, or the file has no buffer."""
    from types import SimpleNamespace

    from wpptrace.decoder.buffers import not_a_buffer_header, starts_with_logfile_header

    index = etl.buffer_index()
    if not (len(index) and etl.header_read) or starts_with_logfile_header(etl.read_buffer(index[0])):
        return None
    h = etl.header
    first = index[0]
    return SimpleNamespace(timestamp=h.header_timestamp, thread_id=h.header_thread_id,
                           process_id=h.header_process_id, sequence=None,
                           processor=0 if not_a_buffer_header(first) is not None else first.processor)


def _text_line(decoder, rec, ctx) -> str:
    """One message formatted on its own: formatter, then the prefix template."""
    from wpptrace.decoder.buffers import message_pointer_size
    from wpptrace.decoder.wpp import _format_error_line, _no_guid

    # as decode_record: a message with no GUID (TRACE_MESSAGE_COMPONENTID) is kept under the zero GUID
    key = (rec.message_guid or _no_guid(), rec.event_id)
    entry = decoder._entries.get(key) or decoder._entry(*key)
    if entry.formatter is None:
        if entry.unknown is not None:
            return entry.unknown
        text = _format_error_line(entry, entry.compile_error)
    else:
        try:
            text = entry.formatter.format(rec.user_data, message_pointer_size(rec.flags, ctx.pointer_size),
                                          entry.markers)
        except Exception as exc:  # noqa: BLE001
            text = _format_error_line(entry, str(exc) or type(exc).__name__)
    if decoder.noprefix or not entry.has_prefix:
        return text
    tt = decoder.time_text(ctx.to_filetime(rec.timestamp)) if rec.timestamp is not None else ""
    return entry.prefix.render((rec.thread_id or 0, tt, 0, 0, rec.sequence or 0,
                                rec.process_id or 0, rec.processor or 0)) + text


def _header_facts(decoder, rec, ctx) -> dict:
    filetime, tt = decoder._header_values(rec, ctx)
    return dict(status="header", guid="68fdd900-4a3e-11d1-84f4-0000f80464e3", number=0,
                filetime=filetime, time_text=tt, cpu=rec.processor or 0,
                thread_id=rec.thread_id or 0, process_id=rec.process_id or 0,
                sequence=rec.sequence or 0, component="Header", name="Header",
                source_file="", source_line="", function="", level="", flags="",
                text="EventTrace", line=decoder.header_line(rec, ctx), args=[], error="")


def reference_lines(decoder, etl, output: str = "text", quote_all: bool = False) -> list[str]:
    """Every output line of an open EtlFile, each record formatted on its own (see the
    module docstring)."""
    from wpptrace.decoder.output import _json_value, filetime_to_iso
    from wpptrace.decoder.timestamps import ISO_END_FILETIME

    lines: list[str] = []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n",
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for is_header, rec, ctx in _records(decoder, etl):
        if is_header:
            m = _header_facts(decoder, rec, ctx)
        else:
            msg = decoder.decode_record(rec, ctx)        # counts unknown / format errors
            m = dict(msg.__dict__)
            m["guid"] = str(msg.guid) if msg.guid is not None else None
        if output == "text":
            lines.append(m["line"] if is_header else _text_line(decoder, rec, ctx))
            continue
        if output == "csv":
            # tracefmt's %2 of a message without a format: the %3d of its number
            name = "%3d" % m["number"] if m["status"] == "unknown" else m["name"]
            writer.writerow((m["component"], name, "0x%04X" % m["thread_id"], m["time_text"],
                             0, 0, m["sequence"], "0x%04X" % m["process_id"], m["cpu"], m["line"]))
            continue
        late = m["filetime"] is not None and m["filetime"] >= ISO_END_FILETIME   # a 5-digit year
        obj = {"timestamp": filetime_to_iso(m["filetime"])
               if m["filetime"] is not None and not late else None,
               "filetime": m["filetime"], "guid": m["guid"], "number": m["number"],
               "status": m["status"], "component": m["component"], "name": m["name"],
               "file": m["source_file"], "line": m["source_line"], "function": m["function"],
               "level": m["level"], "flags": m["flags"], "processor": m["cpu"],
               "thread_id": m["thread_id"], "process_id": m["process_id"],
               "sequence": m["sequence"], "text": m["text"],
               "args": [{"name": n, "type": t, "value": _json_value(v)} for n, t, v in m["args"]]}
        if m["error"]:
            obj["error"] = m["error"]
        lines.append(dumps(obj))
    if output == "csv":
        lines = buf.getvalue().split("\n")[:-1]
    return lines
