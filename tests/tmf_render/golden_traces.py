"""Deterministic traces for the rendering golden files, and the script that (re)writes them.

Every trace is rebuilt from a seed on each test run (nothing large is committed); the texts
``wpptrace fmt`` printed for them are committed, xz-compressed, in ``tests/data/render_golden``.

* ``driver``: every message of the corpus driver TMFs (nefarius BthPS3 / BthPS3PSM /
  DsHidMini / DMF, 2,610 messages) with fresh random arguments per event, as real driver logs
  carry (pointers, counters, sizes, status codes), a few truncated argument blocks (format
  errors) and unknown message numbers; four processors with interleaved and tied times.
* ``synth``: a TMF written here with every item type under the printf specs TMFs use
  (flags, width, precision, length letters, both pointer sizes, '*' widths, legacy ``#type``
  quoting, markers, escapes, inserts out of order), random arguments including boundary
  values, invalid UTF-8 / UTF-16, NaNs and cut-off blocks; a clock that is not 10 MHz.
* ``repeat``: the interned-friendly shape of the fmt benchmark (few distinct argument blocks).
* ``captures``: the real findneedle captures of the corpus merged, and ``pyapp``: the Python
  sample application's capture (samples/python_app), as they are.

Run ``python tests/tmf_render/golden_traces.py --write`` only when a rendering change (or an
input) is intended; review the diff. It writes what the Python renderer prints.
"""
from __future__ import annotations

import contextlib
import io
import lzma
import os
import pathlib
import struct
import sys
import uuid
from typing import Iterator

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
GOLDEN = REPO / "tests" / "data" / "render_golden"
sys.path.insert(0, str(REPO / "tests" / "fmt"))
import etlgen  # noqa: E402  (the tests' .etl writer)

SYNTH_GUID = uuid.UUID("c0ffee00-1d2e-4f30-8a4b-5c6d7e8f9012")
DRIVER_TMF_DIR = ("tmf", "nefarius__Nefarius.Utilities.ETW", "tmf")
#: POSIX TZ rule with daylight saving (no tz database needed) for the local-time variants
LOCAL_TZ = "CET-1CEST,M3.5.0,M10.5.0/3"


class Rng:
    """splitmix64: the same numbers on every Python version and platform."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.u64() % n

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def bytes(self, n: int) -> bytes:
        return b"".join(self.u64().to_bytes(8, "little") for _ in range((n + 7) // 8))[:n]


# -- argument values ----------------------------------------------------------------------

_WORDS = ["alpha", "Device", "\\Device\\HarddiskVolume3\\Windows", "", "a,b", 'say "hi"', "tab\there",
          "line1\nline2", "cr\rlf", "caf\u00e9", "\u65e5\u672c\u8a9e", "emoji \U0001F600", "%s %d %%",
          " padded ", "x" * 40, "\\", "<tag attr='1'>", "\x01\x1f ctl", "trail, ,\n"]
_STATUS_KINDS = {"ItemNTSTATUS": "ntstatus", "ItemHRESULT": "hresult", "ItemWINERROR": "winerror",
                 "ItemNDIS_STATUS": "ndis_status", "ItemNDIS_OID": "ndis_oid"}
_STATUS_CACHE: dict[str, list[int]] = {}


def _known_codes(kind: str) -> list[int]:
    codes = _STATUS_CACHE.get(kind)
    if codes is None:
        from wpptrace.tmf import statuscodes
        codes = _STATUS_CACHE[kind] = sorted(statuscodes.table(kind))
    return codes


def _int_value(rng: Rng, bits: int) -> int:
    mask = (1 << bits) - 1
    pick = rng.below(10)
    if pick == 0:
        return 0
    if pick == 1:
        return mask
    if pick == 2:
        return 1 << (bits - 1)
    if pick == 3:
        return (1 << (bits - 1)) - 1
    if pick == 4:
        return rng.below(min(1000, mask + 1))
    if pick == 5:
        return (-rng.below(1000)) & mask
    return rng.u64() & mask


def _ansi(rng: Rng) -> bytes:
    pick = rng.below(6)
    if pick == 0:  # not UTF-8: read as code page 1252
        return bytes(b for b in rng.bytes(rng.below(12)) if b) or b"\x80\x81\xff"
    text = rng.choice(_WORDS)
    return text.encode("utf-8") if pick != 1 else text.encode("cp1252", "replace")


def _utf16(rng: Rng) -> bytes:
    pick = rng.below(6)
    if pick == 0:  # random code units: lone surrogates, pairs, anything but NUL
        units = [rng.below(0xFFFF) + 1 for _ in range(rng.below(8))]
        return b"".join(struct.pack("<H", u) for u in units)
    return rng.choice(_WORDS).encode("utf-16-le")


def _double(rng: Rng) -> bytes:
    pick = rng.below(8)
    if pick < 3:
        return rng.bytes(8)  # any bit pattern: NaNs, denormals, huge
    values = (0.0, -0.0, 1.0, 0.1, 1 / 3, 1e15, 1e16, 123456789.125, 1e-5, 1e-4, 2.5e300, float("inf"),
              float("-inf"), float("nan"), -7.25)
    if pick < 6:
        return struct.pack("<d", rng.choice(values))
    return struct.pack("<d", (rng.below(2_000_000) - 1_000_000) / (rng.below(999) + 1))


def _sid(rng: Rng) -> bytes:
    if rng.below(5) == 0:
        return b"NULL\0"
    count = rng.below(6)
    authority = rng.choice((5, 1, 16, 0x0000FFFFFFFFFFFF))
    return (bytes([1, count]) + authority.to_bytes(6, "big")
            + b"".join(struct.pack("<I", rng.u64() & 0xFFFFFFFF) for _ in range(count)))


def arg_bytes(item: str, params: tuple, rng: Rng, pointer_size: int) -> bytes:
    """Random argument bytes for one TMF item (any known item type)."""
    from wpptrace.tmf.itemtypes import item_type

    it = item_type(item)
    if item in _STATUS_KINDS:
        pick = rng.below(6)
        if pick == 0:
            value = 0
        elif pick < 4:
            value = rng.choice(_known_codes(_STATUS_KINDS[item]))
        elif pick == 4 and item == "ItemHRESULT":
            value = 0x80070000 | rng.choice(_known_codes("winerror")) & 0xFFFF
        else:
            value = rng.u64() & 0xFFFFFFFF
        return struct.pack("<I", value)
    if it.name in ("ItemListByte", "ItemListShort", "ItemListLong", "ItemSetByte", "ItemSetShort",
                   "ItemSetLong", "ItemEnum", "ItemFlagsEnum"):
        bits = it.size * 8
        value = rng.below(len(params) + 3) if rng.below(3) else _int_value(rng, bits)
        if "Set" in it.name or "Flags" in it.name:
            value = rng.u64() & ((1 << min(bits, len(params) + 2)) - 1) if rng.below(4) else value
        return value.to_bytes(it.size, "little")
    if it.name == "ItemDouble":
        return _double(rng)
    if it.name == "ItemPtr":
        return _int_value(rng, pointer_size * 8).to_bytes(pointer_size, "little")
    if it.name in ("ItemTimestamp", "ItemWaitTime"):
        pick = rng.below(6)
        value = (etlgen.START_TIME + rng.below(10**13) if pick < 3 else
                 -rng.below(10**10) if pick == 3 else _int_value(rng, 64))
        return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    if it.name == "ItemTimeDelta":
        return ((rng.below(10**13) - 10**12) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    if it.wire == "fixed":
        return _int_value(rng, it.size * 8).to_bytes(it.size, "little") if it.size <= 8 else rng.bytes(it.size)
    if it.wire == "cstr":
        return _ansi(rng) + b"\0"
    if it.wire == "wstr":
        return _utf16(rng) + b"\0\0"
    if it.wire == "pstr":
        raw = _ansi(rng)
        return struct.pack("<H", len(raw)) + raw
    if it.wire == "pwstr":
        raw = _utf16(rng) + (b"\x41" if rng.below(8) == 0 else b"")  # sometimes an odd count
        return struct.pack("<H", len(raw)) + raw
    if it.wire == "hexdump":
        raw = rng.bytes(rng.below(24))
        return struct.pack("<H", len(raw)) + raw
    if it.wire == "sid":
        return _sid(rng)
    raise ValueError(f"no generator for {item}")


# -- the synthetic TMF --------------------------------------------------------------------

_INT_SPECS = ["d", "i", "u", "x", "X", "o", "08x", "-8d|", "+d", " d", "#x", "#o", "#X", "010d", "-010u|",
              ".5d", "8.3d", "0.0d", ".0u", "#.8x", "hd", "hu", "hx", "hhd", "hhx", "ld", "lu", "lx",
              "I64d", "I64u", "I64x", "lld", "llX", "Id", "Iu", "IX", "c", "C", "lc", "wc", "hc", "s", "10s",
              "p", "20p", "-20p|", "Ix", "zu"]
_TEXT_SPECS = ["s", "-12s|", "12s", ".3s", "10.2s", "S", "ls", "ws", "hs", "d", "08x"]
_FORM_SPECS = ["s", "-30s|", "30s", ".4s", "d", "08x", "u", "X"]
_DOUBLE_SPECS = ["s", "g", "e", "E", "f", "G", "10.3f", "-12.4e|", "+g", "#g", ".0f", ".15g", "015.2f",
                 "a", "A", "F", "d", "x", "20s"]


def synth_tmf() -> str:
    """Messages covering every item type under many specs (tracepdb's TMF syntax)."""
    g = SYNTH_GUID
    lines = ["// PDB:  synth.pdb", f"{g} SynthDriver // SRC=synth.c MJ= MN="]
    number = 10

    def message(fmt: str, args: list[tuple[str, str]], *, legacy: bool = False,
                trailer: str = "LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_SYNTH FUNC=Synth_Func") -> None:
        nonlocal number
        kind = "#type" if legacy else "#typev"
        lines.append(f'{kind} synth_c{100 + number} {number} "{fmt}" //   {trailer}')
        lines.append("{")
        for k, (name, item) in enumerate(args):
            lines.append(f"{name}, {item} -- {10 + k}")
        lines.append("}")
        number += 1

    ints = [("ItemChar", ["c", "d", "hhd", "02x", "u", "C"]), ("ItemUChar", ["c", "u", "x"]),
            ("ItemCharShort", ["d"]), ("ItemShort", _INT_SPECS), ("ItemUShort", ["u", "hu", "04X"]),
            ("ItemLong", _INT_SPECS), ("ItemULong", ["lu", "x"]), ("ItemULongX", ["x"]),
            ("ItemLongLong", _INT_SPECS), ("ItemULongLong", ["I64u", "llu", "I64x"]),
            ("ItemLongLongX", ["I64x"]), ("ItemLongLongXX", ["I64X", "016I64X"]), ("ItemLongLongO", ["I64o"]),
            ("ItemPtr", _INT_SPECS)]
    for item, specs in ints:
        for start in range(0, len(specs), 6):
            chunk = specs[start:start + 6]
            fmt = "%0" + " ".join(f"[{s.rstrip('|')}]=%{10 + k}!{s.rstrip('|')}!|" for k, s in enumerate(chunk))
            message(fmt, [(f"v{k}", item) for k in range(len(chunk))])
    for item in ("ItemString", "ItemWString", "ItemPString", "ItemPWString", "ItemRString", "ItemRWString"):
        fmt = "%0" + " ".join(f"<%{10 + k}!{s.rstrip('|')}!>" for k, s in enumerate(_TEXT_SPECS))
        message(fmt, [(f"s{k}", item) for k in range(len(_TEXT_SPECS))])
        message("%0plain %10 and %11!s! end", [("a", item), ("b", item)])
        message("%0legacy %10 %11!-6s!", [("a", item), ("b", "ItemLong")], legacy=True)
    forms = ["ItemNTSTATUS", "ItemHRESULT", "ItemWINERROR", "ItemNDIS_STATUS", "ItemNDIS_OID", "ItemGuid",
             "ItemCLSID", "ItemIID", "ItemLIBID", "ItemChar4", "ItemHEXDump", "ItemHexDump", "ItemIPAddr",
             "ItemIPV6Addr", "ItemPort", "ItemSid", "ItemTimestamp", "ItemWaitTime", "ItemTimeDelta",
             "ItemListByte(Low,APC,DPC,HIGH=31)", "ItemListShort(A,B=5,C,D=0x100)", "ItemListLong(false,true)",
             "ItemSetByte(b0,b1,b2)", "ItemSetShort(A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P)", "ItemSetLong(x,y)",
             "ItemEnum(_SynthState)", "ItemFlagsEnum(_SynthFlags)", "ItemEnum(_Missing)",
             "ItemFlagsEnum(_Missing)"]
    for item in forms:
        fmt = "%0" + " ".join(f"{{%{10 + k}!{s.rstrip('|')}!}}" for k, s in enumerate(_FORM_SPECS))
        message(fmt, [(f"f{k}", item) for k in range(len(_FORM_SPECS))])
    for start in range(0, len(_DOUBLE_SPECS), 7):
        chunk = _DOUBLE_SPECS[start:start + 7]
        fmt = "%0" + " ".join(f"%{10 + k}!{s.rstrip('|')}!;" for k, s in enumerate(chunk))
        message(fmt, [(f"d{k}", "ItemDouble") for k in range(len(chunk))])
    # format-string features: markers, escapes, order, repeats, '*' widths, %0 end, %1..%9
    message("%0[%!FUNC!] %!LEVEL! %!FLAGS! %!COMPNAME! %!FILE! %!LINE! %!SUBCOMP! %!UNKNOWN! 100%% done%n"
            "tab%tx %11!d! before %10!s! again %11!08X!", [("name", "ItemString"), ("n", "ItemLong")])
    message("%0%10!*d!|%13!-*.*s!|", [("w", "ItemLong"), ("v", "ItemLong"), ("x", "ItemLong"),
                                      ("w2", "ItemLong"), ("p2", "ItemLong"), ("s", "ItemString")])
    message("%0%1 %2!s! %3!d! %9!x! mid %10!d!%0 never printed %11!d!", [("a", "ItemLong"), ("b", "ItemLong")])
    message("no prefix here %10!u!", [("a", "ItemLong")], trailer="FUNC=NoPrefix")
    message("%0 [%!FUNC!]constant text only", [], trailer="LEVEL=TRACE_LEVEL_ERROR FUNC=Const")
    message("%0%10!s! unused args %12!d!", [("a", "ItemString"), ("b", "ItemSid"), ("c", "ItemLong")])
    message("%0bad %10!q! spec", [("a", "ItemLong")])
    message("%0uses missing insert %14!d!", [("a", "ItemLong")])
    message("%0unknown item %10!d!", [("a", "ItemWhatever")])
    lines += [f"{g} SynthDriver", "#enumv _SynthState", "{", "StateOff,0x0", "StateOn,0x1", "StateBig,0x90000000",
              "StateNeg,0xFFFFFFFFFFFFFFFE", "}", "#enumv _SynthFlags", "{", "FlagRead,0x1", "FlagWrite,0x2",
              "FlagExec,0x4", "FlagAll,0x7", "FlagHigh,0x80000000", "}"]
    return "\n".join(lines) + "\n"


# -- traces --------------------------------------------------------------------------------

_THREADS = [(0x1A4, 0x4), (0x2B8, 0x4), (0x13F0, 0x9C4), (0x1F00, 0x2F44), (0xFFFFFFFF, 0x10000)]


def _events(messages: list, rng: Rng, per_message: int, *, extra_flags: bool) -> Iterator[tuple]:
    ts = etlgen.T0
    order = [m for m in messages for _ in range(per_message)]
    # shuffle deterministically
    for i in range(len(order) - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    for k, m in enumerate(order):
        flags = etlgen.FLAGS_CORPUS
        ps = 8
        if extra_flags:
            pick = rng.below(10)
            if pick == 0:
                flags, ps = (flags & ~0x80) | 0x40, 4      # a 32-bit provider
            elif pick == 1:
                flags |= 0x01                                # with sequence numbers
            elif pick == 2:
                flags &= ~0x08                               # no timestamp: the previous one's
        args = b"".join(arg_bytes(a.item, a.params, rng, ps) for a in m.args
                        if _generatable(a.item))
        number = m.number
        pick = rng.below(250)
        if pick == 0 and args:
            args = args[:rng.below(len(args))]               # cut off: a format-error line
        elif pick == 1:
            number = 60000 + rng.below(50)                  # no format: an Unknown line
        step = rng.choice((0, 1, 37, 1000, 9999, 10000, 123457, 10_000_000, 7_777_777_777))
        ts += step
        tid, pid = rng.choice(_THREADS)
        yield (m.guid, number, args, tid, pid, rng.below(4), ts, flags)


def _generatable(item: str) -> bool:
    from wpptrace.tmf.itemtypes import item_type
    return item_type(item) is not None


class _Writer(etlgen.EtlWriter):
    """The tests' writer with another QPC frequency (the prefix's generic time path)."""

    frequency = 10_000_000

    def close(self) -> None:
        super().close()
        if self.frequency != 10_000_000:
            # PerfFreq of the header event: buffer header 0x48 + system header 0x20 + 0x100
            self.fh.seek(0x48 + 0x20 + 0x100)
            self.fh.write(struct.pack("<q", self.frequency))
            self.fh.seek(0, 2)


def _write(path: pathlib.Path, events, *, frequency: int = 10_000_000, nprocs: int = 4) -> None:
    with open(path, "wb") as fh:
        writer = _Writer(fh, nprocs=nprocs, buffer_size=16384)
        writer.frequency = frequency
        for n, (guid, number, args, tid, pid, cpu, ts, flags) in enumerate(events, 1):
            writer.add(etlgen.message_record(guid, number, args, timestamp=ts, tid=tid, pid=pid,
                                             flags=flags, sequence=n), cpu=cpu, timestamp=ts)
        writer.close()


def driver_tmf_dir(corpus: pathlib.Path) -> pathlib.Path:
    return corpus.joinpath(*DRIVER_TMF_DIR)


def build(name: str, tmp: pathlib.Path, corpus: pathlib.Path) -> tuple[list[pathlib.Path], list[str]]:
    """Write trace ``name`` into ``tmp`` (the real ones are used in place); returns (.etl paths,
    TMF paths)."""
    from wpptrace import tmf

    path = tmp / f"{name}.etl"
    if name == "driver":
        tmf_dir = driver_tmf_dir(corpus)
        messages = sorted(tmf.load(str(tmf_dir)).messages(), key=lambda m: (str(m.guid), m.number))
        _write(path, _events(messages, Rng(1), 1, extra_flags=False))
        return [path], [str(tmf_dir)]
    if name == "repeat":
        tmf_dir = driver_tmf_dir(corpus)
        messages = sorted(tmf.load(str(tmf_dir)).messages(), key=lambda m: (str(m.guid), m.number))[:120]
        rng = Rng(3)
        fixed = {(m.guid, m.number): [b"".join(arg_bytes(a.item, a.params, rng, 8) for a in m.args)
                                      for _ in range(3)] for m in messages}
        events = []
        for ev in _events(messages, rng, 25, extra_flags=False):
            guid, number, _args, tid, pid, cpu, ts, flags = ev
            choices = fixed.get((guid, number), [b""])
            events.append((guid, number, rng.choice(choices), tid, pid, cpu, ts, flags))
        _write(path, events)
        return [path], [str(tmf_dir)]
    if name == "captures":
        data = corpus / "wpp" / "guscatalano__findneedle"
        return sorted(data.glob("*.etl")), [str(data / "tmf")]
    if name == "pyapp":
        app = REPO / "samples" / "python_app"
        return [app / "app.etl"], [str(app / "tmf")]
    if name == "synth":
        tmf_path = tmp / f"{SYNTH_GUID}.tmf"
        tmf_path.write_text(synth_tmf(), encoding="utf-8")
        messages = sorted(tmf.load(str(tmf_path)).messages(), key=lambda m: m.number)
        _write(path, _events(messages, Rng(2), 10, extra_flags=True), frequency=3_579_545)
        return [path], [str(tmf_path)]
    raise ValueError(name)


#: (trace, variant) -> fmt options; variant names end the golden file names
VARIANTS: dict[str, dict[str, dict]] = {
    "driver": {"text": {"utc": True}, "jsonl": {"utc": True, "output_format": "jsonl"},
               "csv": {"utc": True, "output_format": "csv"}},
    "synth": {"text": {"utc": True}, "local.text": {"local": True},
              "noprefix.text": {"utc": True, "noprefix": True},
              "seq.text": {"utc": True, "seq": True},
              "custom.text": {"utc": True, "prefix": "%2!-12s!|%1!10s!|%3!x!|%4!s!|%5!d!|%6!d!|%7!05d!|%8!u!|"
                                                     "%9!02d!|%!FUNC!|%!LEVEL!|%!FLAGS!|%!COMPNAME!|%!FILE!|"
                                                     "%!LINE!|%!OTHER!|100%%|"},
              "csv": {"utc": True, "output_format": "csv"},
              "quoted.csv": {"utc": True, "output_format": "csv", "csv_quote": True},
              "jsonl": {"utc": True, "output_format": "jsonl"}},
    "repeat": {"text": {"utc": True}},
    "captures": {"text": {"utc": True}, "local.text": {"local": True}, "jsonl": {"utc": True, "output_format": "jsonl"},
                 "csv": {"utc": True, "output_format": "csv"}},
    "pyapp": {"text": {"utc": True}, "jsonl": {"utc": True, "output_format": "jsonl"}},
}


def render(etls: list[pathlib.Path], tmfs: list[str], options: dict, *, python_only: bool = False) -> bytes:
    """What ``wpptrace fmt`` writes for the trace (utf-8 bytes; local time in LOCAL_TZ).
    ``python_only``: every line printed by the Python renderer (the C renderer gets no
    program: each row is left to Python)."""
    import time
    from unittest import mock

    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt
    from wpptrace.decoder.wpp import RowPrinter, WppDecoder

    options = dict(options)
    local = options.pop("local", False)
    tmf_files = [t for t in tmfs if t.endswith(".tmf")]
    tmf_dirs = [t for t in tmfs if not t.endswith(".tmf")]
    out, err = io.StringIO(), io.StringIO()
    old_tz = os.environ.get("TZ")
    if local:
        os.environ["TZ"] = LOCAL_TZ
        time.tzset()
    try:
        with mock.patch.object(WppDecoder, "_program", lambda self, entry: RowPrinter.HOLE) \
                if python_only else contextlib.nullcontext():
            code = run_fmt(FmtOptions(files=[str(etl) for etl in etls], tmf_files=tmf_files,
                                      tmf_dirs=tmf_dirs, progress="never", **options), out=out, err=err)
    finally:
        if local:
            if old_tz is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = old_tz
            time.tzset()
    if code != 0:
        raise RuntimeError(f"fmt failed ({code}): {err.getvalue()}")
    return out.getvalue().encode("utf-8", "surrogatepass")


def golden_path(trace: str, variant: str) -> pathlib.Path:
    return GOLDEN / f"{trace}.{variant}.xz"


def read_golden(trace: str, variant: str) -> bytes:
    return lzma.decompress(golden_path(trace, variant).read_bytes())


def main(argv: list[str]) -> int:
    import tempfile

    if argv != ["--write"]:
        print(__doc__)
        return 2
    sys.path.insert(0, str(REPO / "tests" / "corpus"))
    import unpack

    corpus = unpack.unpacked()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for trace, variants in VARIANTS.items():
            etls, tmfs = build(trace, pathlib.Path(tmp), corpus)
            for variant, options in variants.items():
                data = render(etls, tmfs, options, python_only=True)
                golden_path(trace, variant).write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
                lines = data.count(b"\n")
                print(f"{golden_path(trace, variant).name}: {len(data):,} bytes, {lines:,} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
