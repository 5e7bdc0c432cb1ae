"""Golden outputs of ``wpptrace fmt`` and ``wpptrace dump``: the cases and how to run them.

The expected files in ``tests/data/fmt_golden/`` were written by the released decoder (run this
file: ``python tests/fmt/golden.py``); ``test_golden_outputs.py`` checks that the current
decoder still writes the same bytes for every case: every output format (text with several
prefixes, CSV, JSON Lines, the summary counts), one file or several merged, on the real
findneedle captures and on two generated traces that exercise what the captures do not
(three processors whose buffers overlap in time, a 3.579545 MHz clock, repeated and unique
argument blocks, unknown messages, format errors, messages without a timestamp, 4-byte
pointers by message flag, kernel records between the messages).
"""
from __future__ import annotations

import contextlib
import io
import lzma
import pathlib
import random
import struct
import sys
import uuid

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE.parent / "data" / "fmt_golden"
CORPUS = HERE.parent / "corpus"   # the stored corpus: the files used here are stored as is, except powershell.etl
GENERATED_EVENTS = 800
SLOW_CLOCK_HZ = 3_579_545
NOBODY = uuid.UUID("0badc0de-0000-4000-8000-000000000001")

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(CORPUS))
import etlgen  # noqa: E402  (the tests' trace writer, beside this file)
import subsets  # noqa: E402  (named corpus file sets)

CAPTURES = CORPUS / subsets.FINDNEEDLE
CAPTURE_NAMES = [pathlib.PurePath(rel).name for rel in subsets.FINDNEEDLE_CAPTURES]
TMF_FILES = [CORPUS / rel for rel in subsets.DRIVER_SAMPLE]
TMF_DIRS = [CAPTURES / "tmf"]


def _arg(item: str, params: tuple, rnd: random.Random, unique: bool, pointer: int) -> bytes | None:
    """Argument bytes for one TMF item type; None if the type is not generated."""
    value = rnd.getrandbits(64) if unique else rnd.choice((0, 1, 5, 0x103, 0xC0000022))
    if item in ("ItemNTSTATUS", "ItemHRESULT", "ItemWINERROR"):
        return struct.pack("<I", rnd.choice((0, 0xC0000022, 0xC000000D, 0x103, 0x80070005, 5,
                                             value & 0xFFFFFFFF)))
    if item == "ItemPtr":
        return (value & ((1 << (8 * pointer)) - 1)).to_bytes(pointer, "little")
    if item in ("ItemLong", "ItemListLong", "ItemSetLong"):
        return struct.pack("<I", value & 0xFFFFFFFF)
    if item in ("ItemLongLong", "ItemULongLong", "ItemLongLongXX", "ItemLongLongX"):
        return struct.pack("<Q", value)
    if item == "ItemDouble":
        return struct.pack("<d", (value % 100000) / 7.0)
    if item == "ItemString":
        return b"dev-%d\0" % (value % 997)
    if item == "ItemWString":
        return ("w%d\0" % (value % 31)).encode("utf-16-le")
    if item == "ItemPWString":
        raw = ("\\Device\\Sym%d" % (value % 13)).encode("utf-16-le")
        return struct.pack("<H", len(raw)) + raw
    if item == "ItemListByte":
        return bytes([value % max(1, len(params) + 1)])
    if item == "ItemGuid":
        return uuid.UUID(int=value | value << 64).bytes_le
    return None


def _kernel_record(timestamp: int, tid: int, pid: int) -> bytes:
    """A SYSTEM64 record of a kernel group (not a TraceMessage: counted and skipped by fmt)."""
    payload = b"kernel!!"
    return etlgen.SYSTEM_HEADER.pack(2, 0x02, 0xC0, etlgen.SYSTEM_HEADER.size + len(payload),
                                     0x0A01, tid, pid, timestamp, 0, 0) + payload


def generate(path: pathlib.Path, *, seed: int, slow_clock: bool) -> None:
    """A deterministic trace over the repository's driver and findneedle TMFs."""
    from wpptrace import tmf

    tmfset = tmf.load(*map(str, TMF_FILES + TMF_DIRS))
    probe = random.Random(0)
    usable = [m for m in tmfset.messages()
              if all(_arg(a.item, a.params, probe, True, 8) is not None for a in m.args)]
    usable.sort(key=lambda m: (str(m.guid), m.number))
    rnd = random.Random(seed)
    weights = [1.0 / (k + 1) for k in range(len(usable))]
    with open(path, "wb") as fh:
        writer = etlgen.EtlWriter(fh, buffer_size=4096, nprocs=3)
        clocks = [etlgen.T0 + 1000 * cpu for cpu in range(3)]
        for i in range(GENERATED_EVENTS):
            cpu = rnd.randrange(3)
            clocks[cpu] += rnd.randrange(1, 400)
            ts = clocks[cpu]
            tid, pid = 0x100 + 4 * rnd.randrange(6), 0x40 + 4 * (i % 3 == 0)
            roll = rnd.random()
            if roll < 0.03:
                writer.add(_kernel_record(ts, tid, pid), cpu=cpu, timestamp=ts)
                continue
            m = rnd.choices(usable, weights=weights)[0]
            flags = etlgen.FLAGS_CORPUS
            pointer = 8
            if roll < 0.10:
                flags = (flags & ~0x80) | 0x40          # POINTER32: 4-byte pointers
                pointer = 4
            elif roll < 0.15:
                flags &= ~0x08                           # no timestamp: carried forward
            elif roll < 0.20:
                flags = etlgen.FLAGS_WPP                 # sequence numbers, no pointer flag
            unique = rnd.random() < 0.5
            args = b"".join(_arg(a.item, a.params, rnd, unique, pointer) for a in m.args)
            guid, number = m.guid, m.number
            if 0.20 <= roll < 0.24:
                guid, number = NOBODY, rnd.randrange(10, 20)     # no format information
            elif 0.24 <= roll < 0.27 and args:
                args = args[:-1]                                 # arguments do not fit
            record = etlgen.message_record(guid, number, args, timestamp=ts, tid=tid, pid=pid,
                                           flags=flags, sequence=i)
            writer.add(record, cpu=cpu, timestamp=ts)
        writer.close()
    if slow_clock:
        from wpptrace._core import ffi

        at = (ffi.sizeof("WMI_BUFFER_HEADER") + ffi.sizeof("SYSTEM_TRACE_HEADER")
              + ffi.offsetof("TRACE_LOGFILE_HEADER64", "PerfFreq"))
        with open(path, "r+b") as fh:
            fh.seek(at)
            fh.write(struct.pack("<q", SLOW_CLOCK_HZ))


def generated_inputs(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    paths = {"gen-qpc": directory / "gen-qpc.etl", "gen-slowclock": directory / "gen-slowclock.etl"}
    generate(paths["gen-qpc"], seed=7, slow_clock=False)
    generate(paths["gen-slowclock"], seed=8, slow_clock=True)
    return paths


def cases(generated: dict[str, pathlib.Path], corpus: pathlib.Path = CORPUS) -> dict[str, tuple[str, list, dict]]:
    """name -> (command, input paths, options); ``corpus``: an unpacked corpus (tests/corpus/unpack.py)."""
    out: dict[str, tuple[str, list, dict]] = {}
    formats = {"text": {}, "csv": {"output_format": "csv"}, "jsonl": {"output_format": "jsonl"}}
    inputs = {name[:-4]: [CAPTURES / name] for name in CAPTURE_NAMES}
    inputs["captures-merged"] = [CAPTURES / name for name in CAPTURE_NAMES]
    inputs.update({name: [path] for name, path in generated.items()})
    inputs["gen-merged"] = [generated["gen-qpc"], generated["gen-slowclock"],
                            CAPTURES / "wppemitter-sample.etl"]
    for name, paths in inputs.items():
        for fmt, options in formats.items():
            out[f"{name}.{fmt}"] = ("fmt", paths, dict(options))
    for name in ("gen-qpc", "gen-slowclock", "gen-merged", "captures-merged"):
        paths = inputs[name]
        out[f"{name}.summary"] = ("summary", paths, {})
        if name == "gen-merged":
            continue
        out[f"{name}.noprefix.text"] = ("fmt", paths, {"noprefix": True})
        out[f"{name}.seq.text"] = ("fmt", paths, {"seq": True})
        out[f"{name}.markers.text"] = ("fmt", paths, {
            "prefix": "%!FUNC! %!LEVEL! %!FLAGS! %!COMPNAME! %!SUBCOMP! %!FILE!:%!LINE! "
                      "%1!s! %2!s! %3!04X! %4!s! %5!d! %6!d! %7!d! %8!X! %9!d!: "})
        out[f"{name}.quoted.csv"] = ("fmt", paths, {"output_format": "csv", "csv_header": False,
                                                    "csv_quote": True})
    dumped = [corpus / rel for rel in subsets.SMALL_FILES]
    for path in dumped + [generated["gen-qpc"], generated["gen-slowclock"]]:
        out[f"dump-{path.stem}.text"] = ("dump", [path], {})
        out[f"dump-{path.stem}.json"] = ("dump", [path], {"json": True})
    return out


def run_case(command: str, paths: list, options: dict, scratch: pathlib.Path) -> bytes:
    """The output of one case (stdout, and for "summary" the summary file without its
    elapsed-time line)."""
    if command == "dump":
        import argparse

        from wpptrace.decoder import cli_dump

        args = argparse.Namespace(file=str(paths[0]), json=options.get("json", False),
                                  file_order=False, raw_timestamps=False, summary_only=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            cli_dump.run(args)
        return out.getvalue().encode()
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    summary = scratch / "golden.sum"
    opts = FmtOptions(files=[str(p) for p in paths], tmf_files=[str(f) for f in TMF_FILES],
                      tmf_dirs=[str(d) for d in TMF_DIRS], utc=True,
                      progress="never", summary=str(summary) if command == "summary" else None,
                      **options)
    out, err = io.StringIO(), io.StringIO()
    run_fmt(opts, out=out, err=err)
    if command == "summary":
        text = summary.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines(keepends=True)
                 if not line.startswith("Elapsed Time")]
        # input paths differ between machines: keep their names only
        return "".join(pathlib.Path(line.strip()).name + "\n" if line.startswith("\t") else line
                       for line in lines).encode()
    return out.getvalue().encode()


def expected(name: str) -> bytes:
    return lzma.decompress((GOLDEN / f"{name}.xz").read_bytes())


def write_all() -> None:
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = pathlib.Path(tmp)
        from unpack import unpacked

        for name, (command, paths, options) in cases(generated_inputs(scratch), unpacked()).items():
            data = run_case(command, paths, options, scratch)
            (GOLDEN / f"{name}.xz").write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
            print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    write_all()
