"""Damaged .etl files through ``wpptrace fmt`` and ``decode_file``: a long-running driver.

Each input is a seed trace (the real WPP captures of the corpus, the other corpus .etl files,
the golden traces the tests build) with a few mutations aimed at what the decoder trusts:
bit flips, cuts, zeroed spans, hostile sizes and counts in buffer headers, record headers
(size, marker, message flags) and WPP argument bytes (counted-string lengths, strings with
no terminator running past their record); with ``tmf`` among the kinds, the seed's TMF files
are damaged too (or alone): lines cut, repeated or dropped, format specs, item types and
argument numbers changed, bytes garbled. Every input is decoded in a forked process with a
time and memory limit, and must:

* run ``fmt`` in text, CSV and JSON Lines without an exception, with a one-line
  ``warning:`` per problem on stderr (a TMF problem followed by its line and a caret) and
  exit code 0 or 1;
* give with ``-j 2`` (``--jobs``) the bytes, summary (its elapsed time left out), stderr and
  exit code of ``-j 1`` (seeds of several buffers per stream, so that ``-j 2`` cuts them);
* give, writing its summary alone (tracefmt -summaryonly: no text printed), the summary,
  stderr and exit code of the text run, with ``-j 1`` and ``-j 2``;
* print the same lines through the formatting loop (``row_lines``) as each record formatted
  on its own (``reference_lines``), in all three forms;
* give ``DecodedMessage.args`` equal to the formatter's ``decode_values`` for every row the
  C decoder takes (``test_row_values.check_rows``);
* give through ``decode_file`` (rows, values decoded in C) the messages, texts and values
  ``decoder.open`` gives (each record formatted by Python), and through ``format_file`` the
  lines of ``fmt``'s text;
* give the same output with a program cache read back as with ``--no-cache``, the cache file
  whole, cut, bit-flipped, or rewritten with records whose lengths, prefix program or count
  lie under a right checksum; records that hold another valid program or another message's
  record under a right checksum (which no check of the file can tell from good ones) must
  not crash the run;
* with ``arrow`` among the kinds (not a default one: it needs pyarrow), write ``fmt -f
  parquet`` and ``fmt -f arrow`` with the exit code, stderr and summary of the text run, a row per
  line of JSON Lines (the log-file header, unknown messages and format errors included, one
  row each as one line each), the Arrow stream holding the rows of the Parquet file, and the
  ``text`` column, row after row, the text ``--no-prefix`` prints; each row holding the facts
  of its JSON Lines object.

    python3 tests/fmt/fuzz_fmt_damage.py [--seed N] [--inputs N] [--kinds fmt,jobs,rows,api,cache,tmf,arrow]

A failing input is kept in ``--keep`` (default /tmp/fuzz_fmt_damage) with what failed and
the damaged TMF copies; the exit code is the number of failures (capped at 100).

Under AddressSanitizer and UBSan: install a copy of the tree into its own virtual environment
with ``CC=clang CFLAGS="-fsanitize=address,undefined -fno-wrapv -fno-omit-frame-pointer -g -O1"
LDFLAGS="-fsanitize=address,undefined" pip install -e .``, then run this script there with
``LD_PRELOAD="$(clang -print-file-name=libclang_rt.asan-x86_64.so)"``,
``ASAN_OPTIONS=detect_leaks=0:log_path=...`` and ``UBSAN_OPTIONS=print_stacktrace=1:log_path=...``
(the memory limit is left off there: the sanitizer's shadow memory needs the address space).
Why clang and -fno-wrapv: Python's own CFLAGS come first and hold -fwrapv, which turns off
clang's check of pointer arithmetic (overflow, an offset on a null pointer); gcc has no such check.
"""
from __future__ import annotations

import argparse
import copy
import marshal
import os
import pathlib
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
for extra in (HERE, TESTS / "tmf_render", TESTS / "corpus"):
    sys.path.insert(0, str(extra))

import golden_traces  # noqa: E402
import unpack  # noqa: E402
from fmthelp import reference_lines, row_lines, run_fmt_capture, same_value  # noqa: E402

TIME_LIMIT = 60            # seconds per input (every check): far above what a seed takes
MEMORY_LIMIT = 2 << 30     # bytes of address space per input
JOBS = 2                   # the processes of the runs compared with one process (--jobs)
#: what --kinds accepts (the default: all but arrow)
KINDS = ("fmt", "jobs", "rows", "api", "cache", "tmf", "arrow")


# -- seeds --------------------------------------------------------------------------------

class Seed:
    """A trace, its TMF paths, and where its buffers, records and argument blocks are."""

    def __init__(self, name: str, data: bytes, tmfs: list[str], parallel: bool) -> None:
        self.name, self.data, self.tmfs, self.parallel = name, data, tmfs, parallel
        self.buffers: list[tuple[int, int]] = []            # (file offset, size)
        self.records: list[tuple[int, int, int, int]] = []  # (file offset, size, payload at, payload size)
        self._locate()

    def _locate(self) -> None:
        from wpptrace.decoder import parse_buffer
        from wpptrace.decoder.etlfile import EtlFile

        with tempfile.NamedTemporaryFile(suffix=".etl") as fh:
            fh.write(self.data)
            fh.flush()
            with EtlFile(fh.name) as etl:
                ps = etl.header.pointer_size or 8
                offsets = etl.buffer_index().column("file_offset")
                sizes = etl.buffer_index().column("size_on_disk")
                for k, (at, size) in enumerate(zip(offsets, sizes)):
                    self.buffers.append((at, size))
                    raw = self.data[at:at + size]
                    try:
                        records, _issues = parse_buffer(raw, ps, header_buffer=k == 0)
                    except Exception:   # noqa: BLE001  (a compressed buffer: not located)
                        continue
                    for r in records:
                        self.records.append((at + r.offset, r.size, at + r.payload_offset,
                                             len(r.user_data)))


def seeds(tmp: pathlib.Path) -> list[Seed]:
    corpus = unpack.unpacked()
    out = []
    for name in ("driver", "synth", "repeat"):
        etls, tmfs = golden_traces.build(name, tmp, corpus)
        out.append(Seed(name, etls[0].read_bytes(), tmfs, parallel=True))
    # a larger driver trace (about 1.3 MB, 80 buffers): -j 2 cuts it into windows of several
    # buffers per stream, so damage falls inside windows as well as at their edges
    from wpptrace import tmf
    tmf_dir = golden_traces.driver_tmf_dir(corpus)
    messages = sorted(tmf.load(str(tmf_dir)).messages(), key=lambda m: (str(m.guid), m.number))
    large = tmp / "driver-large.etl"
    golden_traces._write(large, golden_traces._events(messages, golden_traces.Rng(11), 8,
                                                      extra_flags=True))
    out.append(Seed("driver-large", large.read_bytes(), [str(tmf_dir)], parallel=True))
    captures, tmfs = golden_traces.build("captures", tmp, corpus)
    for etl in captures:
        out.append(Seed(etl.name, etl.read_bytes(), tmfs, parallel=False))
    etls, tmfs = golden_traces.build("pyapp", tmp, corpus)
    out.append(Seed("pyapp", etls[0].read_bytes(), tmfs, parallel=True))
    driver_tmf = [str(golden_traces.driver_tmf_dir(corpus))]
    for path in sorted((corpus / "etl").rglob("*.etl")):
        if path.stat().st_size <= 600_000:
            out.append(Seed(path.name, path.read_bytes(), driver_tmf, parallel=False))
    return out


# -- mutations ----------------------------------------------------------------------------

HOSTILE16 = (0, 1, 2, 3, 7, 8, 9, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFF8, 0xFFFE, 0xFFFF)
HOSTILE32 = (0, 1, 7, 8, 0x47, 0x48, 0x49, 0xFFF, 0x1000, 0x4000, 0x10000, 0x7FFFFFFF, 0x80000000,
             0xFFFFFFF8, 0xFFFFFFFF)
# WMI_BUFFER_HEADER fields worth lying in: BufferSize, SavedOffset, CurrentOffset,
# ReferenceCount, timestamp, sequence, clock/flags words, processor, BufferType/Flag, Offset
BUFFER_FIELDS = ((0, 4), (4, 4), (8, 4), (12, 4), (16, 8), (24, 8), (32, 8), (40, 2), (42, 2),
                 (44, 4), (48, 4), (52, 2), (54, 2))


def _put(data: bytearray, at: int, size: int, value: int) -> None:
    if 0 <= at and at + size <= len(data):
        data[at:at + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def mutate(seed: Seed, rng: random.Random, heavy: bool = False) -> tuple[bytes, list[str]]:
    data = bytearray(seed.data)
    done: list[str] = []
    cut = None
    for _ in range(rng.choice((10, 20, 40) if heavy else (1, 1, 1, 2, 2, 3, 5))):
        kind = rng.choice(("flip", "flip", "byte", "cut", "zero", "buffer", "buffer", "record",
                           "record", "record", "args", "args", "args", "args", "dup", "swap"))
        if kind in ("record", "args") and not seed.records:
            kind = "flip"
        if kind == "flip":
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
        elif kind == "cut":                 # made last: the other places stay in the data
            cut = rng.randrange(len(data)) if cut is None else cut
        elif kind == "zero":
            at = rng.randrange(len(data))
            n = rng.choice((4, 16, 64, 300, 4096))
            data[at:at + n] = bytes(len(data[at:at + n]))
        elif kind == "buffer":
            base, _size = rng.choice(seed.buffers)
            off, size = rng.choice(BUFFER_FIELDS)
            at = base + off
            value = rng.choice(HOSTILE32) if size >= 4 else rng.choice(HOSTILE16)
            if rng.random() < 0.3:
                value = rng.getrandbits(8 * size)
            _put(data, at, size, value)
        elif kind == "record":
            at, size, _p, _n = rng.choice(seed.records)
            size = min(size, len(data) - at)
            if size < 8:
                continue
            field = rng.choice(("size", "size", "marker", "flags", "number", "items"))
            if field == "size":
                at_, value = at, rng.choice(HOSTILE16 + (size + 8, size - 8, size + 1))
                _put(data, at_, 2, value)
            elif field == "marker":
                _put(data, at + 2, 2, rng.getrandbits(16))
            elif field == "flags":
                _put(data, at + 6, 2, rng.choice((0, 0x40, 0x80, 0xC0, 0xFF, 0xFFFF, 0x2B, 0xAA,
                                                  rng.getrandbits(16))))
            elif field == "number":
                _put(data, at + 4, 2, rng.getrandbits(16))
            else:                           # message items (sequence, GUID, time, ids)
                span = max(1, min(size, 48) - 8)
                data[at + 8 + rng.randrange(span)] = rng.randrange(256)
        elif kind == "args":
            _r, _s, p, n = rng.choice(seed.records)
            n = min(n, len(data) - p)
            if n <= 0:
                continue
            where = p + rng.randrange(n)
            pick = rng.randrange(6)
            if pick == 0:                   # a counted string's length
                _put(data, where, 2, rng.choice(HOSTILE16))
            elif pick == 1:                 # a 32-bit count or size
                _put(data, where, 4, rng.choice(HOSTILE32))
            elif pick == 2:                 # terminators taken away: strings run to the end
                for k in range(p, p + n):
                    if data[k] == 0:
                        data[k] = 0x41
            elif pick == 3:                 # odd UTF-16 and lone surrogates
                _put(data, where, 2, rng.choice((0xD800, 0xDC00, 0xDBFF, 0xFFFE, 0x00D8)))
            elif pick == 4:                 # the last bytes cut to random
                for k in range(max(p, p + n - rng.randrange(1, 9)), p + n):
                    data[k] = rng.randrange(256)
            else:
                data[where] = rng.randrange(256)
        elif kind == "dup" and len(seed.buffers) > 2:
            (a, sa), (b, sb) = rng.sample(seed.buffers[1:], 2)
            if sa == sb and b + sb <= len(data):
                data[b:b + sb] = seed.data[a:a + sa]
        elif kind == "swap" and len(seed.buffers) > 2:
            (a, sa), (b, sb) = sorted(rng.sample(seed.buffers[1:], 2))
            if sa == sb and b + sb <= len(data):
                data[a:a + sa], data[b:b + sb] = seed.data[b:b + sb], seed.data[a:a + sa]
        done.append(kind)
    if cut is not None:
        del data[max(cut, 0x48):]
        done.append(f"cut at {max(cut, 0x48)}")
    return bytes(data), done


_TMF_WORDS = ("%10!s!", "%10!d!", "%11!S!", "%10!08x!", "%10!*d!", "%10!99999999d!", "%10!.99999s!",
              "%99!s!", "%0", "%!FUNC!", "%!bogus!", "%", "%%", "%10!", "!s!", "%1!s!", "%10!p!",
              "%10!lld!", "%10!I64x!", "%10!hs!", "%10!ws!", "%-20s", "%10!-*.*s!")
_TMF_ITEMS = ("ItemString", "ItemWString", "ItemPString", "ItemPWString", "ItemLong", "ItemULongLong",
              "ItemPtr", "ItemGuid", "ItemHEXDump", "ItemDouble", "ItemNTSTATUS", "ItemListLong(a,b)",
              "ItemSetByte(x,y)", "ItemEnum(Bogus)", "ItemBogus", "ItemChar4", "ItemSid", "ItemIPAddr",
              "ItemCharSign", "ItemTimeDelta", "", "ItemListLong(", "ItemSetLong(" + "a," * 300 + "b)")


def mutate_tmf(text: str, rng: random.Random) -> str:
    """A TMF file's text with a few lines damaged the ways a hand edit or a cut copy does."""
    lines = text.split("\n")
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        if not lines:
            break
        k = rng.randrange(len(lines))
        line = lines[k]
        pick = rng.randrange(12)
        if pick == 0:
            del lines[k]
        elif pick == 1:
            lines.insert(k, lines[rng.randrange(len(lines))])
        elif pick == 2 and line:
            at = rng.randrange(len(line))
            lines[k] = line[:at]                                        # cut
        elif pick == 3 and line:                                        # a format spec
            at = rng.randrange(len(line))
            lines[k] = line[:at] + rng.choice(_TMF_WORDS) + line[at:]
        elif pick == 4 and ", Item" in line:                            # another item type
            name, _item = line.split(", ", 1)
            rest = _item.split(" ", 1)[1] if " " in _item else "-- 10"
            lines[k] = f"{name}, {rng.choice(_TMF_ITEMS)} {rest}"
        elif pick == 5 and "--" in line:                                # another argument number
            lines[k] = line.rsplit("--", 1)[0] + "-- " + str(rng.choice((0, 1, 9, 10, 11, 99, 65535, -1,
                                                                         4294967296)))
        elif pick == 6 and line.startswith("#typev"):                   # another message number
            parts = line.split(" ")
            if len(parts) > 2:
                parts[2] = str(rng.choice((0, 1, 10, 65535, 65536, -1, 10 ** 20)))
                lines[k] = " ".join(parts)
        elif pick == 7:
            lines[k] = rng.choice(("{", "}", "#typev", "#typev x", '#typev x 10 "', "// SRC=",
                                   "#enumv", "#define", "\x00", "\ufeff", "\udcff" * 3))
        elif pick == 8 and line:                                        # a character flipped
            at = rng.randrange(len(line))
            lines[k] = line[:at] + chr(ord(line[at]) ^ (1 << rng.randrange(7))) + line[at + 1:]
        elif pick == 9:
            lines[k] = line * rng.choice((2, 50, 2000))                 # a very long line
        elif pick == 10 and line.startswith("#typev"):                  # quotes unbalanced
            lines[k] = line.replace('"', "", 1)
        else:
            lines.insert(k, '#typev x_c1 10 "%0' + "%10!s!" * rng.choice((1, 40, 300)) + '" // FUNC=f')
    return "\n".join(lines)


def damaged_tmfs(tmfs: list[str], work: pathlib.Path, rng: random.Random) -> list[str]:
    """Copies of the TMF paths with one to three files damaged (``mutate_tmf``)."""
    out = []
    files = []
    for k, src in enumerate(tmfs):
        src = pathlib.Path(src)
        if src.is_dir():
            dst = work / f"tmf{k}"
            shutil.copytree(src, dst)
            files += sorted(dst.glob("*.tmf"))
        else:
            dst = work / f"tmf{k}" / src.name
            dst.parent.mkdir()
            shutil.copy(src, dst)
            files.append(dst)
        out.append(str(dst))
    for path in rng.sample(files, min(len(files), rng.choice((1, 1, 2, 3)))):
        raw = path.read_bytes()
        if rng.random() < 0.15:                                        # bytes, not text
            raw = bytearray(raw)
            for _ in range(rng.choice((1, 4, 20))):
                if raw:
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
            path.write_bytes(bytes(raw))
        else:
            text = raw.decode("utf-8", "surrogateescape")
            path.write_bytes(mutate_tmf(text, rng).encode("utf-8", "surrogateescape"))
    return out


# -- checks -------------------------------------------------------------------------------

def _run(path, tmfs, out: pathlib.Path, **options) -> tuple:
    summary = pathlib.Path(str(out) + ".sum")
    code, stdout, err = run_fmt_capture(path, tmf_dirs=[t for t in tmfs if os.path.isdir(t)],
                                        tmf_files=[t for t in tmfs if not os.path.isdir(t)],
                                        output=str(out), summary=str(summary), utc=True, **options)
    body = out.read_bytes() if out.exists() else None
    sums = ([line for line in summary.read_text().splitlines() if not line.startswith("Elapsed")]
            if summary.exists() else None)
    for p in (out, summary):
        if p.exists():
            p.unlink()
    return code, body, sums, err


def _stderr_ok(err: str) -> str | None:
    if "Traceback" in err or "internal error" in err.lower():
        return "exception text on stderr"
    lines = err.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if not line.startswith("wpptrace fmt: warning: ") and not line.startswith("wpptrace fmt: error: "):
            return f"stderr line not one warning: {line[:200]!r}"
        k += 1
        if "TMF entry skipped: " in line and k + 1 < len(lines) and lines[k + 1].strip() == "^":
            k += 2          # a TMF problem shows its line and a caret under the column
    return None


def _run_summary_alone(path, tmfs, summary: pathlib.Path, jobs: int) -> tuple:
    """fmt writing its summary alone (tracefmt -summaryonly): as ``_run``, no text."""
    code, stdout, err = run_fmt_capture(path, tmf_dirs=[t for t in tmfs if os.path.isdir(t)],
                                        tmf_files=[t for t in tmfs if not os.path.isdir(t)],
                                        output=os.devnull, text_wanted=False, summary=str(summary),
                                        utc=True, jobs=jobs, cache=False)
    sums = ([line for line in summary.read_text().splitlines() if not line.startswith("Elapsed")]
            if summary.exists() else None)
    if summary.exists():
        summary.unlink()
    return code, stdout, sums, err


def check_fmt(path, seed: Seed, work: pathlib.Path, jobs: bool) -> list[str]:
    failures = []
    for form in ("text", "csv", "jsonl"):
        one = _run(path, seed.tmfs, work / f"o1.{form}", output_format=form, jobs=1, cache=False)
        if one[0] not in (0, 1):
            failures.append(f"fmt {form}: exit code {one[0]}")
        problem = _stderr_ok(one[3])
        if problem:
            failures.append(f"fmt {form}: {problem}")
        if jobs and seed.parallel:
            two = _run(path, seed.tmfs, work / f"o2.{form}", output_format=form, jobs=JOBS, cache=False)
            if one != two:
                failures.append(f"fmt {form} -j {JOBS} differs from -j 1: {_first_difference(two, one)}")
        if form == "text":      # the summary alone: the full run's, no text printed
            for n in (1, JOBS) if jobs and seed.parallel else (1,):
                alone = _run_summary_alone(path, seed.tmfs, work / f"alone{n}.sum", n)
                if alone != (one[0], "", one[2], one[3]):
                    failures.append(f"fmt summary alone -j {n} differs from the text run: "
                                    f"{_first_difference(alone, (one[0], '', one[2], one[3]))}")
    return failures


def check_rows(path, seed: Seed) -> list[str]:
    import test_row_values
    from wpptrace import tmf
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder.wpp import WppDecoder

    failures = []
    tmfset = tmf.load(*seed.tmfs)
    for form in ("text", "csv", "jsonl"):
        with EtlFile(str(path)) as etl:
            fast = row_lines(WppDecoder(tmfset, utc=True), etl, form)
            header_refused = any("expected the log-file header record" in e.message for e in etl.errors)
        with EtlFile(str(path)) as etl:
            slow = reference_lines(WppDecoder(tmfset, utc=True), etl, form)
        if header_refused and slow[1:] == fast:
            # the engine reports a damaged log-file header record and prints no header line;
            # the per-record path takes any first system record of HookId 0 for it
            continue
        if fast != slow:
            diff = next((i for i, (a, b) in enumerate(zip(fast, slow)) if a != b), min(len(fast), len(slow)))
            failures.append(f"rows {form}: line {diff} differs from the per-record path "
                            f"({fast[diff:diff + 1]!r} vs {slow[diff:diff + 1]!r})")
    try:
        test_row_values.check_rows([path], seed.tmfs)
    except AssertionError as exc:
        failures.append(f"args: C values differ from decode_values: {str(exc)[:300]}")
    return failures


#: hostile record contents under a right checksum. The structural ones (lengths past the
#: record, a cut record, a prefix program of another run, a lying entry count) must leave the
#: output as --no-cache prints it; the others hold another program or another message's
#: record, which the file's own checksum cannot tell from a good one: they must not crash.
STRUCTURAL = ("lengths", "prefix", "cut", "count")
SUBSTITUTED = ("program byte", "flags", "number")
CACHE_DAMAGE = ("flip", "cut file", "whole") + STRUCTURAL + SUBSTITUTED


def check_api(path, seed: Seed, work: pathlib.Path) -> list[str]:
    """decode_file (rows, C values) against decoder.open (each record formatted by Python),
    and format_file against fmt's text."""
    from wpptrace import decoder, tmf
    from wpptrace.decoder import decode_file, format_file

    failures = []
    tmfset = tmf.load(*seed.tmfs)
    decoded = decode_file(str(path), tmf=tmfset)
    messages = decoded.messages
    with decoder.open(str(path), tmf=tmfset) as reader:
        events = [e for e in reader if isinstance(e, decoder.MessageEvent)]
    if len(messages) != len(events):
        failures.append(f"api: decode_file gives {len(messages)} messages, open {len(events)}")
    for k, (m, e) in enumerate(zip(messages, events)):
        if m.text != e.text:
            failures.append(f"api: message {k}: text {m.text[:200]!r} vs open's {e.text[:200]!r}")
            break
        got, want = tuple(m.args), tuple(e.args)
        if len(got) != len(want) or not all(map(same_value, got, want)):
            failures.append(f"api: message {k} ({m.guid} {m.number}): args {got!r:.300} vs open's "
                            f"{want!r:.300}")
            break
        if (m.status, m.guid, m.number, m.pid, m.tid, m.cpu, m.sequence, m.filetime) != \
                (e.wpp.status, e.wpp.guid, e.wpp.number, e.wpp.pid, e.wpp.tid, e.wpp.cpu,
                 e.wpp.sequence, e.wpp.filetime):
            failures.append(f"api: message {k}: fields differ from open's")
            break
    lines = list(format_file(str(path), tmf=tmfset, utc=True))
    code, body, _sums, _err = _run(path, seed.tmfs, work / "api.txt", output_format="text",
                                   jobs=1, cache=False)
    if body is not None and "\n".join(lines) + ("\n" if lines else "") != body.decode("utf-8", "surrogateescape"):
        failures.append("api: format_file lines differ from fmt's text")
    return failures


def _hostile_cache(data: bytes, rng: random.Random, how: str) -> bytes:
    """The cache file rewritten with hostile records of one kind, its checksum made right.
    The file is read and written by the cache's own ``_parse`` and ``_file_bytes``, so that
    this follows the layout wherever it goes."""
    from wpptrace.decoder.program_cache import _HEAD, _file_bytes, _parse
    from wpptrace.decoder.program_share import RECORD

    key = _HEAD.unpack_from(data)[1]
    records = _parse(data, key)
    if not records:
        raise ValueError("the cache file to damage is not whole")
    hostile = {}
    for (guid_le, number), found in records.items():
        record = bytearray(found)
        if rng.random() < 0.5:
            pass
        elif how == "program byte" and len(record) > RECORD.size:
            k = RECORD.size + rng.randrange(len(record) - RECORD.size)
            record[k] = rng.randrange(256)
        elif how == "lengths":
            _put(record, 12 + 4 * rng.randrange(5), 4, rng.choice(HOSTILE32))
        elif how == "prefix":
            _put(record, 8, 4, rng.choice((1, 2, 3, 0x7FFFFFFF, -2)))
        elif how == "flags":
            _put(record, 4, 4, rng.getrandbits(32))
        elif how == "cut":
            del record[rng.randrange(len(record)):]
        elif how == "number":
            number = rng.getrandbits(16)
        hostile[guid_le, number] = bytes(record)
    damaged = bytearray(_file_bytes(key, hostile))
    if how == "count":      # (the checksum covers what follows the head, not the count in it)
        count = len(hostile)
        _put(damaged, _HEAD.size - 4, 4, rng.choice((0, count + 1, count - 1, 0xFFFFFFFF)))
    return bytes(damaged)


def _first_difference(a: tuple, b: tuple) -> str:
    for name, x, y in zip(("exit code", "output", "summary", "stderr"), a, b):
        if x != y:
            if isinstance(x, bytes) and isinstance(y, bytes):
                xl, yl = x.split(b"\n"), y.split(b"\n")
                k = next((i for i, (p, q) in enumerate(zip(xl, yl)) if p != q), min(len(xl), len(yl)))
                return f"{name} line {k}: {xl[k:k + 1]!r} vs {yl[k:k + 1]!r}"
            return f"{name}: {str(x)[:300]!r} vs {str(y)[:300]!r}"
    return "same"


def check_cache(path, seed: Seed, work: pathlib.Path, rng: random.Random,
                how: str | None = None) -> list[str]:
    """The cache filled by a run, damaged one way (``how``: else one drawn from ``rng``), and
    the runs from it against --no-cache."""
    failures = []
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["WPPTRACE_CACHE_DIR"] = str(cache)
    form = rng.choice(("text", "csv", "jsonl"))
    jobs = 2 if seed.parallel and rng.random() < 0.3 else 1
    cold = _run(path, seed.tmfs, work / "c0", output_format=form, jobs=jobs, cache=False)
    first = _run(path, seed.tmfs, work / "c1", output_format=form, jobs=jobs)
    if first != cold:
        failures.append(f"cache {form} -j {jobs}: the run that fills the cache differs from --no-cache")
    files = sorted(cache.glob("*.prg")) if cache.exists() else []
    if not files:
        return failures
    kept = files[0]
    data = kept.read_bytes()
    how = how or rng.choice(CACHE_DAMAGE)
    if how == "flip":
        damaged = bytearray(data)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
    elif how == "cut file":
        damaged = data[:rng.randrange(len(data))]
    elif how == "whole":
        damaged = data
    else:
        damaged = _hostile_cache(data, rng, how)
    kept.write_bytes(bytes(damaged))
    warm = _run(path, seed.tmfs, work / "c2", output_format=form, jobs=jobs)
    if how in SUBSTITUTED:
        if warm[0] != cold[0] or _stderr_ok(warm[3]):
            failures.append(f"cache {form} -j {jobs} ({how}): exit code or stderr of a "
                            f"run from the cache: {_first_difference(warm, cold)}")
    elif warm != cold:
        failures.append(f"cache {form} -j {jobs} ({how}): a run from the damaged cache differs "
                        f"from --no-cache: {_first_difference(warm, cold)}")
        (work / "cache.prg").write_bytes(bytes(damaged))
    if how in SUBSTITUTED:
        return failures
    again = _run(path, seed.tmfs, work / "c3", output_format=form, jobs=jobs)
    if again != cold:
        failures.append(f"cache {form} -j {jobs} ({how}): the run after differs from --no-cache")
    return failures


def _plain(value):
    """A value of ``Table.to_pylist()`` with its floats as their bits (NaN equals NaN)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _table_difference(a, b) -> str | None:
    """Where two tables of ``decoder.arrow.SCHEMA`` first differ (row and column), None if
    they hold the same values (floats compared by their bits)."""
    if a.schema != b.schema:
        return f"schema {a.schema} vs {b.schema}"[:400]
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows}"
    for name in a.column_names:
        x, y = _plain(a.column(name).to_pylist()), _plain(b.column(name).to_pylist())
        for k, (p, q) in enumerate(zip(x, y)):
            if p != q:
                return f"row {k} column {name}: {p!r:.200} vs {q!r:.200}"
    return None


def _rows_as_jsonl(table, jsonl: bytes) -> list[str]:
    """The Parquet rows against the JSON Lines objects, fact by fact (``arrowhelp``)."""
    sys.path.insert(0, str(TESTS / "arrow"))
    from arrowhelp import arrow_rows, comparable, jsonl_rows

    try:
        got = comparable(arrow_rows(table.to_pylist()))
    except AssertionError:
        return ["parquet: a timestamp is not its filetime's instant"]
    want = comparable(jsonl_rows(jsonl.decode("utf-8", "surrogateescape")))
    for k, (g, w) in enumerate(zip(_plain(got), _plain(want))):
        if g != w:
            field = next((i for i, (p, q) in enumerate(zip(g, w)) if p != q), None)
            return [f"parquet: row {k} differs from JSON Lines in field {field}: "
                    f"{g[field]!r:.200} vs {w[field]!r:.200}"]
    return []


def check_arrow(path, seed: Seed, work: pathlib.Path, rng: random.Random) -> list[str]:
    """fmt -f parquet and -f arrow against the text, --no-prefix text and JSON Lines runs,
    in batches of a few rows or of the default size; the Arrow stream with --all-records
    at times (its rows of other records left out, the Parquet file's rows)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    failures = []
    text = _run(path, seed.tmfs, work / "a.txt", output_format="text", jobs=1, cache=False)
    bare = _run(path, seed.tmfs, work / "a.bare", output_format="text", jobs=1, cache=False,
                noprefix=True)
    lines = _run(path, seed.tmfs, work / "a.jsonl", output_format="jsonl", jobs=1, cache=False)
    tables = {}
    everything = rng.random() < 0.5
    # (a batch has a cost of its own in pyarrow however few its rows: one-row batches of the
    # large seeds' ten thousand rows and more run past the memory limit on that alone)
    sizes = (None, None, 1, 5, 64) if len(seed.data) < 300_000 else (None, None, 5, 64)
    for form in ("parquet", "arrow"):
        code, body, sums, err = _run(path, seed.tmfs, work / f"a.{form}", output_format=form,
                                     jobs=1, cache=False, batch_rows=rng.choice(sizes),
                                     all_records=everything and form == "arrow")
        problem = _stderr_ok(err)
        if problem:
            failures.append(f"{form}: {problem}")
        if code != text[0]:
            failures.append(f"{form}: exit code {code}, text's {text[0]}")
        if err != text[3]:
            failures.append(f"{form}: stderr differs from text's: {_first_difference((err,), (text[3],))}")
        if sums != text[2]:
            failures.append(f"{form}: summary differs from text's: "
                            f"{_first_difference((sums,), (text[2],))}")
        if body is None:
            failures.append(f"{form}: no output file")
            continue
        try:
            if form == "parquet":
                tables[form] = pq.read_table(io.BytesIO(body))
            else:
                tables[form] = pa.ipc.open_stream(body).read_all()
        except Exception as exc:     # noqa: BLE001
            failures.append(f"{form}: the output does not read back: {type(exc).__name__}: {exc}"[:400])
    if failures or lines[1] is None or bare[1] is None:
        return failures
    parquet, arrow = tables["parquet"], tables["arrow"]
    if everything:
        arrow = arrow.filter(pa.array([s != "record" for s in arrow.column("status").to_pylist()],
                                      pa.bool_()))
    rows = lines[1].count(b"\n")
    if parquet.num_rows != rows:
        failures.append(f"parquet: {parquet.num_rows} rows, JSON Lines {rows} lines")
    else:
        failures += _rows_as_jsonl(parquet, lines[1])
    difference = _table_difference(arrow, parquet)
    if difference:
        failures.append(f"arrow: rows differ from parquet's: {difference}")
    texts = parquet.column("text").to_pylist()
    want = bare[1].decode("utf-8", "surrogateescape")
    got = "".join(t + "\n" for t in texts if t is not None)
    if None in texts:
        failures.append(f"parquet: {texts.count(None)} rows without text")
    elif got != want:
        g, w = got.split("\n"), want.split("\n")
        k = next((i for i, (p, q) in enumerate(zip(g, w)) if p != q),
                 None if len(g) == len(w) else min(len(g), len(w)))
        if k is not None:
            failures.append(f"parquet: text column line {k} differs from --no-prefix text: "
                            f"{g[k:k + 1]!r:.300} vs {w[k:k + 1]!r:.300}")
    full = text[1].decode("utf-8", "surrogateescape").split("\n")
    short = want.split("\n")
    if len(full) != len(short) or not all(map(str.endswith, full, short)):
        failures.append("text: a line of --no-prefix is not the end of the text run's line")
    return failures


def one_input(data: bytes, seed: Seed, kinds: set[str], work: pathlib.Path, rng_seed: int) -> list[str]:
    path = work / "input.etl"
    path.write_bytes(data)
    failures = []
    if "tmf" in kinds:                  # the TMF files damaged as well (or instead)
        tmfs = damaged_tmfs(seed.tmfs, work, random.Random(rng_seed ^ 0x5A5A))
        seed = copy.copy(seed)
        seed.tmfs = tmfs
    if "fmt" in kinds or "jobs" in kinds:
        failures += check_fmt(path, seed, work, "jobs" in kinds)
    if "rows" in kinds:
        failures += check_rows(path, seed)
    if "api" in kinds:
        failures += check_api(path, seed, work)
    if "cache" in kinds:
        failures += check_cache(path, seed, work, random.Random(rng_seed))
    if "arrow" in kinds:
        failures += check_arrow(path, seed, work, random.Random(rng_seed ^ 0xA770))
    return failures


def in_child(fn, *args) -> tuple[list[str], float, int]:
    """fn(*args) in a forked process with the limits: (failures, seconds, max RSS KiB)."""
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            if "asan" not in os.environ.get("LD_PRELOAD", ""):   # its shadow memory needs more
                resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            signal.alarm(TIME_LIMIT)
            try:
                result = fn(*args)
            except MemoryError:
                result = ["MemoryError (over the memory limit)"]
            except BaseException:   # noqa: BLE001
                result = ["exception: " + traceback.format_exc()[-1500:]]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            os.write(write, marshal.dumps((result, rss)))
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _pid, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - started
    if not chunks:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            what = "timeout" if sig == signal.SIGALRM else f"killed by signal {sig}"
            return [what], seconds, 0
        return [f"child ended with status {status} and no result"], seconds, 0
    result, rss = marshal.loads(b"".join(chunks))
    return result, seconds, rss


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs", type=int, default=200)
    ap.add_argument("--kinds", default="fmt,jobs,rows,api,cache,tmf")
    ap.add_argument("--only", default="", help="seeds whose names hold one of these texts (a "
                                                "comma-separated list)")
    ap.add_argument("--keep", default="/tmp/fuzz_fmt_damage")
    ap.add_argument("--times", help="a file to write each input's seconds and peak RSS to "
                                    "(outliers against their seed's others show super-linear work)")
    ap.add_argument("--heavy", action="store_true", help="10 to 40 mutations an input, not 1 to 5")
    ap.add_argument("--jobs", type=int, default=2, help="processes of the -j run (default 2)")
    args = ap.parse_args(argv)
    global JOBS
    JOBS = args.jobs
    kinds = set(args.kinds.split(","))
    if kinds - set(KINDS):
        ap.error(f"--kinds: unknown {', '.join(sorted(kinds - set(KINDS)))} (known: {', '.join(KINDS)})")
    keep = pathlib.Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fuzzfmt-"))
    os.environ["WPPTRACE_CACHE_DIR"] = str(tmp / "cache-default")
    try:
        pool = [s for s in seeds(tmp) if any(part in s.name for part in args.only.split(","))]
        if "jobs" in kinds and kinds <= {"jobs", "fmt"}:
            pool = [s for s in pool if s.parallel]
        print(f"{len(pool)} seeds, {args.inputs} inputs, seed {args.seed}, kinds {sorted(kinds)}",
              flush=True)
        rng = random.Random(args.seed)
        failed = 0
        slowest = (0.0, "")
        biggest = (0, "")
        for n in range(args.inputs):
            seed = rng.choice(pool)
            data, how = mutate(seed, rng, args.heavy)
            if "tmf" in kinds and rng.random() < 0.5:       # the TMF files alone damaged
                data, how = seed.data, ["tmf only"]
            work = tmp / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            failures, seconds, rss = in_child(one_input, data, seed, kinds, work, rng.getrandbits(32))
            label = f"{args.seed}-{n}-{seed.name}"
            if args.times:
                with open(args.times, "a") as fh:
                    fh.write(f"{label}\t{seed.name}\t{len(data)}\t{seconds:.2f}\t{rss}\t{' '.join(how)}\n")
            if seconds > slowest[0]:
                slowest = (seconds, label)
            if rss > biggest[0]:
                biggest = (rss, label)
            if failures:
                failed += 1
                (keep / f"{label}.etl").write_bytes(data)
                for damaged in work.glob("tmf*"):              # the damaged TMF copies
                    shutil.copytree(damaged, keep / f"{label}.{damaged.name}", dirs_exist_ok=True)
                (keep / f"{label}.txt").write_text(f"{seed.tmfs}\n{how}\n" + "\n".join(failures) + "\n")
                print(f"FAIL {label} {how}: {failures[0][:400]}", flush=True)
            if (n + 1) % 25 == 0:
                print(f"{n + 1} inputs, {failed} failing; slowest {slowest[0]:.1f} s ({slowest[1]}), "
                      f"largest RSS {biggest[0] >> 10} MiB ({biggest[1]})", flush=True)
        print(f"done: {args.inputs} inputs, {failed} failing", flush=True)
        return min(failed, 100)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
