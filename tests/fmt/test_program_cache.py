"""Compiled messages kept between fmt runs (decoder.program_cache): a run that takes its
messages from the cache prints the bytes a run that compiles them prints; a changed TMF file,
a file that is not whole, a directory or file others could write, or a run whose TMF files
reported problems never lead a later run to print from a stale or foreign record."""
from __future__ import annotations

import gc
import os
import pathlib
import re
import shutil
import struct
import time
import zlib

import pytest
from fmthelp import hold_up, run_fmt_capture

from wpptrace.cli import main as wpptrace_main
from wpptrace.decoder import parallel, program_cache
from wpptrace.decoder.engine import FileSource, record_view
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.program_share import RECORD, ProgramShare
from wpptrace.decoder.wpp import WppDecoder

import golden_traces  # the rendering tests' deterministic traces (on the path by conftest)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> pathlib.Path:
    """A cache directory of this test's own (the run's default one is shared by all tests)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("WPPTRACE_CACHE_DIR", str(directory))
    monkeypatch.delenv("WPPTRACE_NO_CACHE", raising=False)
    return directory


@pytest.fixture
def compiled(monkeypatch) -> list:
    """The messages this process compiles from here on (one item a message)."""
    made: list = []
    real = WppDecoder._program_code

    def counting(self, entry):
        made.append((entry.guid, entry.number))
        return real(self, entry)

    monkeypatch.setattr(WppDecoder, "_program_code", counting)
    return made


@pytest.fixture(scope="module")
def repeat(tmp_path_factory, corpus):
    """A trace whose 120 corpus driver messages come back all along, and a copy of its TMF
    directory the tests may change."""
    tmp = tmp_path_factory.mktemp("cache")
    etls, tmfs = golden_traces.build("repeat", tmp, corpus)
    tmf_dir = tmp / "tmf"
    shutil.copytree(tmfs[0], tmf_dir)
    return etls[0], tmf_dir


def _run(etl, tmf_dir, out: pathlib.Path, **options) -> tuple[bytes, str]:
    code, _stdout, err = run_fmt_capture(etl, tmf_dirs=[str(tmf_dir)], output=str(out), utc=True,
                                         summary=str(out) + ".sum", **options)
    assert code == 0, err
    summary = pathlib.Path(str(out) + ".sum").read_bytes().splitlines(keepends=True)
    # the run's own time, in whole seconds, differs between runs on a busy machine
    return out.read_bytes() + b"".join(line for line in summary if not line.startswith(b"Elapsed")), err


def _cache_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(directory.glob("*.prg")) if directory.exists() else []


@pytest.mark.parametrize("output_format", ["text", "csv", "jsonl"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_from_the_cache_prints_what_compiling_prints(tmp_path, repeat, cache_dir, compiled,
                                                          monkeypatch, output_format, jobs):
    etl, tmf_dir = repeat
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.txt", output_format=output_format, jobs=1, cache=False)
    assert compiled and not _cache_files(cache_dir)
    first, _ = _run(etl, tmf_dir, tmp_path / "first.txt", output_format=output_format, jobs=jobs)
    [kept] = _cache_files(cache_dir)
    assert oct(kept.stat().st_mode & 0o777) == "0o600" and oct(cache_dir.stat().st_mode & 0o777) == "0o700"
    compiled.clear()
    runs = []
    real = parallel.decode_parallel
    monkeypatch.setattr(parallel, "decode_parallel", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    warm, _ = _run(etl, tmf_dir, tmp_path / "warm.txt", output_format=output_format, jobs=jobs)
    assert first == cold and warm == cold
    assert compiled == []            # every message from the cache (in this process)
    if jobs == 2:                    # and in the worker: neither compiled nor shared one
        [run] = runs
        assert run.shares == [(0, 0), (0, 0)]


def test_a_trace_starting_with_an_unknown_message_is_all_taken_from_the_cache(tmp_path, repeat, cache_dir,
                                                                                 compiled):
    """Records name the shared prefix program by its id, so it is the first program of every
    run, whatever message comes first: here one whose TMF file is gone (an Unknown line,
    compiled without the prefix)."""
    etl, original = repeat
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(original, tmf_dir)
    with EtlFile(str(etl)) as trace:
        first = next(r.message_guid for items, _keys in FileSource(trace).ordered(record_view)
                     for r in items if r.message_guid is not None)
    gone = [path for path in tmf_dir.glob("*.tmf")
            if str(first) in path.read_text(encoding="utf-8-sig").lower()]
    assert gone
    for path in gone:
        path.unlink()
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.txt", cache=False)
    assert b"Unknown" in cold.splitlines()[1]      # (after the log header's line)
    first_run, _ = _run(etl, tmf_dir, tmp_path / "first.txt")
    compiled.clear()
    warm, _ = _run(etl, tmf_dir, tmp_path / "warm.txt")
    assert first_run == cold and warm == cold
    assert compiled == []


def _published_before_an_unknown(decoder, table, keys: list) -> list:
    """Another process of the run (a decoder of its own) claims, compiles and publishes each
    of ``keys`` up to the first Unknown one; the keys it took."""
    other = WppDecoder(decoder.tmfset, utc=decoder.utc)
    other._row_printer(decoder._printer_mode)
    mode = ProgramShare.mode(decoder._printer_mode)
    taken = []
    for key in keys:
        if other._raw_entry(*key).unknown is not None:
            break
        slot, state = table.claim(*key)
        assert state == table.MINE
        table.publish(slot, other._compiled_entry(key, mode)[1])
        taken.append(key)
    return taken


def test_records_made_after_the_other_process_came_first_serve_the_next_run(tmp_path, repeat, cache_dir,
                                                                             compiled, monkeypatch):
    """fmt -j 2 on a busy machine: between this process's look for records of its first
    messages and its claims of them, the other process claimed and published the first ones,
    so the first message this process compiles is an Unknown one, compiled without the
    prefix. Its records still name the prefix program every process and run has: the next
    run takes every message from the cache."""
    etl, tmf_dir = repeat
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.txt", cache=False)
    hold_up(monkeypatch, tmp_path / "parent-done", "worker")    # this process's first rows first
    parent, taken = os.getpid(), []

    class LateLook:
        """The run's table, this process's first look for records answered as it was before
        the other process published."""

        def __init__(self, decoder, table) -> None:
            self._decoder, self._table = decoder, table

        def __getattr__(self, name):
            return getattr(self._table, name)

        def ready(self, keys):
            looked = self._table.ready(keys)
            if os.getpid() == parent and not taken:
                taken.extend(_published_before_an_unknown(self._decoder, self._table, keys))
            return looked

    real_share = WppDecoder.share_programs

    def share_programs(self, share):
        if share is not None:
            share.table = LateLook(self, share.table)
        real_share(self, share)

    monkeypatch.setattr(WppDecoder, "share_programs", share_programs)
    first, _ = _run(etl, tmf_dir, tmp_path / "first.txt", jobs=2)
    assert taken                                  # (the messages before an Unknown one)
    monkeypatch.setattr(WppDecoder, "share_programs", real_share)
    compiled.clear()
    runs = []
    real = parallel.decode_parallel
    monkeypatch.setattr(parallel, "decode_parallel", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    warm, _ = _run(etl, tmf_dir, tmp_path / "warm.txt", jobs=2)
    assert first == cold and warm == cold
    assert compiled == []
    [run] = runs
    assert run.shares == [(0, 0), (0, 0)]


def test_real_captures_print_the_same_from_the_cache(tmp_path, corpus, cache_dir, compiled):
    etls, tmfs = golden_traces.build("captures", tmp_path, corpus)
    for k, etl in enumerate(etls):
        cold, _ = _run(etl, tmfs[0], tmp_path / f"cold{k}.txt", cache=False)
        _run(etl, tmfs[0], tmp_path / f"first{k}.txt")
        compiled.clear()
        warm, _ = _run(etl, tmfs[0], tmp_path / f"warm{k}.txt")
        assert warm == cold and compiled == []


def test_json_lines_with_and_without_the_prefix_share_their_programs(tmp_path, repeat, cache_dir,
                                                                   compiled):
    """A JSON object never carries the prefix, so ``--noprefix`` does not change what its
    programs are compiled for: the run with it takes them all from the run's before."""
    etl, tmf_dir = repeat
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.jsonl", output_format="jsonl", noprefix=True,
                   cache=False)
    _run(etl, tmf_dir, tmp_path / "first.jsonl", output_format="jsonl")
    compiled.clear()
    warm, _ = _run(etl, tmf_dir, tmp_path / "warm.jsonl", output_format="jsonl", noprefix=True)
    assert warm == cold and compiled == [] and len(_cache_files(cache_dir)) == 1


def test_a_changed_tmf_file_is_read_again(tmp_path, repeat, cache_dir, compiled):
    etl, original = repeat
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(original, tmf_dir)
    before, _ = _run(etl, tmf_dir, tmp_path / "before.txt")
    # every message's format text in one file gets a word more
    changed = next(path for path in sorted(tmf_dir.glob("*.tmf"))
                   if re.search(r'#typev\s+\S+\s+\d+\s+"%0', path.read_text(encoding="utf-8-sig")))
    text = changed.read_text(encoding="utf-8-sig")
    changed.write_text(re.sub(r'(#typev\s+\S+\s+\d+\s+"%0)', r"\1changed ", text), encoding="utf-8")
    compiled.clear()
    after, _ = _run(etl, tmf_dir, tmp_path / "after.txt")
    expected, _ = _run(etl, tmf_dir, tmp_path / "expected.txt", cache=False)
    assert after == expected and after != before and b"changed " in after
    assert compiled and len(_cache_files(cache_dir)) == 2      # a new key; the old one stays


def test_a_cache_file_that_is_not_whole_is_not_read(tmp_path, repeat, cache_dir, compiled):
    etl, tmf_dir = repeat
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.txt", cache=False)
    _run(etl, tmf_dir, tmp_path / "first.txt")
    [kept] = _cache_files(cache_dir)
    data = bytearray(kept.read_bytes())
    for damage in (lambda d: d.__setitem__(len(d) // 2, d[len(d) // 2] ^ 0x40),   # a flipped bit
                   lambda d: d.__delitem__(slice(len(d) - 7, None)),               # cut short
                   lambda d: d.__setitem__(slice(0, 8), b"NOTMAGIC")):
        damaged = bytearray(data)
        damage(damaged)
        kept.write_bytes(bytes(damaged))
        compiled.clear()
        again, _ = _run(etl, tmf_dir, tmp_path / "again.txt")
        assert again == cold and compiled            # compiled, not read
        assert kept.read_bytes() == bytes(data)      # and written whole again


def test_records_the_renderer_refuses_are_compiled_instead(tmp_path, repeat, cache_dir, compiled):
    """A whole file (its checksum right) whose records hold programs that are not programs."""
    etl, tmf_dir = repeat
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.txt", cache=False)
    _run(etl, tmf_dir, tmp_path / "first.txt")
    [kept] = _cache_files(cache_dir)
    key = bytes.fromhex(kept.name[:-len(".prg")])
    records = program_cache._read(str(kept), key)
    count = len(records)
    assert count
    mode = ProgramShare.mode((False, "text", False))
    blob = b"\xff" * 40                              # not a program the renderer accepts
    record = RECORD.pack(mode, 0, -1, 1, 1, 0, len(blob), 0) + b"cn" + blob
    kept.write_bytes(program_cache._file_bytes(key, dict.fromkeys(records, record)))
    compiled.clear()
    again, _ = _run(etl, tmf_dir, tmp_path / "again.txt")
    assert again == cold and len(compiled) == count
    compiled.clear()                                 # and kept in their place
    third, _ = _run(etl, tmf_dir, tmp_path / "third.txt")
    assert third == cold and compiled == []


def _cache_bytes(key: bytes, keys: list, offsets: list, records: bytes, count: int) -> bytes:
    """A cache file laid out by hand (its checksum right, whatever its tables say)."""
    body = (b"".join(struct.pack("<16sI", *k) for k in keys)
            + struct.pack(f"<{len(offsets)}I", *offsets) + records)
    return struct.pack("<8s32sII", program_cache.MAGIC, key, zlib.crc32(body), count) + body


def test_cache_files_read_back_and_tables_that_do_not_fit_are_refused():
    key = bytes(range(32))
    records = {(b"\x01" * 16, 10): b"first", (b"\x02" * 16, 0): b"", (b"\x01" * 16, 11): b"x" * 300}
    data = program_cache._file_bytes(key, records)
    assert program_cache._parse(data, key) == records
    assert list(program_cache._parse(data, key)) == list(records)          # in the file's order
    assert gc.isenabled()                                                   # collections as before
    gc.disable()
    try:
        assert program_cache._parse(data, key) == records and not gc.isenabled()
    finally:
        gc.enable()
    assert program_cache._parse(program_cache._file_bytes(key, {}), key) == {}
    assert program_cache._parse(data, bytes(32)) == {}                      # another key
    start = 48 + 3 * 20 + 4 * 4
    keys = list(records)
    whole = _cache_bytes(key, keys, [start, start + 5, start + 5, start + 305], b"first" + b"x" * 300, 3)
    assert program_cache._parse(whole, key) == records
    for offsets, count in (([start, start + 6, start + 5, start + 305], 3),       # not in order
                           ([start + 1, start + 5, start + 5, start + 305], 3),   # not at the records
                           ([start, start + 5, start + 5, start + 304], 3),       # not to the end
                           ([start, start + 5, start + 5, start + 305], 4),       # more than listed
                           ([start, start + 5, start + 5, start + 305], 2)):      # fewer
        assert program_cache._parse(_cache_bytes(key, keys, offsets, b"first" + b"x" * 300, count),
                                    key) == {}
    huge = _cache_bytes(key, [], [48 + 4], b"", program_cache.MAX_RECORDS + 1)
    assert program_cache._parse(huge, key) == {}
    for cut in range(len(data)):                                            # any part of a file
        assert program_cache._parse(data[:cut], key) == {}


def test_the_checksum_is_zlib_s():
    """Cache files are checked with the C CRC-32 (no zlib imported on fmt's path): it is
    zlib's, for any length and any alignment of the bytes, so files stay readable both ways."""
    import random

    from wpptrace.decoder._hazmat import crc32

    rng = random.Random(5)
    for n in list(range(0, 40)) + [rng.randint(40, 5000) for _ in range(100)] + [1 << 20]:
        data = os.urandom(n)
        for start in (0, 1, 3, 7):
            assert crc32(memoryview(data)[start:]) == zlib.crc32(data[start:]), (n, start)
    key = bytes(range(32))
    data = program_cache._file_bytes(key, {(b"\x01" * 16, 1): b"record"})
    assert struct.unpack_from("<I", data, 40)[0] == zlib.crc32(data[48:])


@pytest.mark.parametrize("insecure", ["others-write", "group-read", "symlink", "file-others-read"])
def test_a_cache_others_could_change_is_not_used(tmp_path, repeat, cache_dir, compiled, insecure):
    etl, tmf_dir = repeat
    cold, _ = _run(etl, tmf_dir, tmp_path / "cold.txt", cache=False)
    if insecure == "file-others-read":
        _run(etl, tmf_dir, tmp_path / "first.txt")
        [kept] = _cache_files(cache_dir)
        os.chmod(kept, 0o644)
    elif insecure == "symlink":
        real = tmp_path / "elsewhere"
        real.mkdir(mode=0o700)
        cache_dir.symlink_to(real)
    else:
        cache_dir.mkdir()
        os.chmod(cache_dir, 0o777 if insecure == "others-write" else 0o740)
    compiled.clear()
    again, _ = _run(etl, tmf_dir, tmp_path / "again.txt")
    assert again == cold and compiled                 # compiled, nothing read
    if insecure == "file-others-read":                # replaced by a private one
        [kept] = _cache_files(cache_dir)
        assert kept.stat().st_mode & 0o777 == 0o600
    else:
        assert not list((tmp_path / "elsewhere").glob("*")) if insecure == "symlink" else \
            not _cache_files(cache_dir)


def test_no_cache_when_turned_off(tmp_path, repeat, cache_dir, monkeypatch):
    etl, tmf_dir = repeat
    out = tmp_path / "out.txt"
    assert wpptrace_main(["fmt", str(etl), "-p", str(tmf_dir), "-o", str(out), "--utc", "--no-cache"]) == 0
    assert not _cache_files(cache_dir)
    monkeypatch.setenv("WPPTRACE_NO_CACHE", "1")
    assert wpptrace_main(["fmt", str(etl), "-p", str(tmf_dir), "-o", str(out), "--utc"]) == 0
    assert not _cache_files(cache_dir)
    monkeypatch.delenv("WPPTRACE_NO_CACHE")
    assert wpptrace_main(["fmt", str(etl), "-p", str(tmf_dir), "-o", str(out), "--utc"]) == 0
    assert len(_cache_files(cache_dir)) == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_whose_tmf_files_reported_problems_keeps_nothing(tmp_path, repeat, cache_dir, jobs):
    """A later run taking its messages from the cache would not read those files: it could
    not report what this one reports."""
    etl, original = repeat
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(original, tmf_dir)
    for path in sorted(tmf_dir.glob("*.tmf")):       # a line no TMF has, in every file
        path.write_text(path.read_text(encoding="utf-8-sig") + "this is not a TMF line\n", encoding="utf-8")
    _, err = _run(etl, tmf_dir, tmp_path / "first.txt", jobs=jobs)
    assert "TMF entry skipped" in err and not _cache_files(cache_dir)
    _, err = _run(etl, tmf_dir, tmp_path / "again.txt", jobs=jobs)
    assert "TMF entry skipped" in err


def test_keys_cover_what_a_record_depends_on(tmp_path, repeat):
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(repeat[1], tmf_dir)
    inputs = [str(path) for path in sorted(tmf_dir.glob("*.tmf"))]
    text = ProgramShare.mode((False, "text", False))
    key = program_cache.cache_key(inputs, text, ("%1 %2", False))
    assert key == program_cache.cache_key(list(inputs), text, ("%1 %2", False))
    others = [program_cache.cache_key(inputs[1:], text, ("%1 %2", False)),
              program_cache.cache_key(inputs, ProgramShare.mode((True, "text", False)), ("%1 %2", False)),
              program_cache.cache_key(inputs, text, ("%1", False)),
              program_cache.cache_key(inputs, text, ("%1 %2", True))]
    assert key not in others and len(set(others)) == len(others)
    os.utime(inputs[0], ns=(0, 0))                    # the same size, another time
    assert program_cache.cache_key(inputs, text, ("%1 %2", False)) != key


def test_keys_cover_the_record_format(tmp_path, repeat, monkeypatch):
    """A record format changed without any file's size or time changing makes another key."""
    from wpptrace.decoder import program_share

    inputs = [str(path) for path in sorted(pathlib.Path(repeat[1]).glob("*.tmf"))]
    text = ProgramShare.mode((False, "text", False))
    key = program_cache.cache_key(inputs, text, ("%1 %2", False))
    monkeypatch.setattr(program_share, "RECORD", struct.Struct("<4sIiIIIIII"))
    assert program_cache.cache_key(inputs, text, ("%1 %2", False)) != key


def test_old_keys_and_leftovers_are_removed(tmp_path, repeat, cache_dir):
    etl, tmf_dir = repeat
    cache_dir.mkdir(mode=0o700)
    old = [cache_dir / f"{k:064x}.prg" for k in range(program_cache.KEEP_FILES + 3)]
    for k, path in enumerate(old):
        path.write_bytes(b"old")
        os.utime(path, (1_000_000 + k, 1_000_000 + k))
    left = cache_dir / f".{0:064x}.1234.tmp"          # a run that ended while writing
    left.write_bytes(b"part")
    os.utime(left, (1_000_000, 1_000_000))
    fresh = cache_dir / f".{1:064x}.1235.tmp"         # a run writing now
    fresh.write_bytes(b"part")
    _run(etl, tmf_dir, tmp_path / "out.txt")
    kept = _cache_files(cache_dir)
    assert len(kept) == program_cache.KEEP_FILES
    assert old[0] not in kept and old[-1] in kept     # the oldest went
    assert not left.exists() and fresh.exists()


def test_keys_change_with_a_tmf_file_rewritten_or_gone(tmp_path, repeat):
    """A TMF file rewritten with the same size and its modification time put back (its change
    time moves), replaced by another file (another inode) or removed makes another key."""
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(repeat[1], tmf_dir)
    inputs = [str(path) for path in sorted(tmf_dir.glob("*.tmf"))]
    text = ProgramShare.mode((False, "text", False))
    settings = ("%1 %2", False)
    keys = [program_cache.cache_key(inputs, text, settings)]
    first = pathlib.Path(inputs[0])
    st = first.stat()
    data = first.read_bytes()
    time.sleep(0.01)
    first.write_bytes(data[::-1])
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns))
    keys.append(program_cache.cache_key(inputs, text, settings))
    copy = tmp_path / "copy.tmf"
    copy.write_bytes(data)
    os.replace(copy, first)
    keys.append(program_cache.cache_key(inputs, text, settings))
    first.unlink()
    keys.append(program_cache.cache_key(inputs, text, settings))
    assert len(set(keys)) == len(keys)
    assert program_cache.cache_key(inputs, text, settings) == keys[-1]
