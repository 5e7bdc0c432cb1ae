"""fmt -j N: a file decoded by N processes gives the bytes one process gives (text, CSV, JSON
Lines, the summary), whatever the cut times; damage is reported once."""
from __future__ import annotations

import contextlib
import io
import os
import select
import threading
import time

import pathlib

import pytest
from fmthelp import hold_up, run_fmt_capture

from wpptrace.decoder import parallel
from wpptrace.decoder.engine import FileSource, record_view
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.wpp_rows import ROW_INDEX, RowView

import golden_traces  # the rendering tests' deterministic traces (on the path by conftest)


_KEY = ROW_INDEX["key"]


@pytest.fixture(scope="module")
def traces(tmp_path_factory, corpus, driver):
    path, tmf_dir = driver
    return {"synth": golden_traces.build("synth", tmp_path_factory.mktemp("parallel"), corpus),
            "driver": ([path], [tmf_dir])}


def _order(path, window=None, trust_flush_times=False) -> tuple[list, int, list]:
    with EtlFile(path) as etl:
        source = FileSource(etl, trust_flush_times=trust_flush_times)
        rows = [(r.timestamp, r.processor, r.sequence, r.event_id, r.user_data)
                for items, _keys in source.ordered(record_view, window=window) for r in items]
        return rows, etl.stats.buffers, [(e.offset, e.message) for e in etl.errors]


def test_windows_add_up_to_the_whole_order(traces, corpus):
    """Every cut, even between equal times, at the ends or repeated, splits the ProcessTrace
    order into runs; each buffer is accounted by one window."""
    paths = [traces["synth"][0][0], traces["driver"][0][0]]
    paths += sorted((corpus / "wpp" / "guscatalano__findneedle").glob("*.etl"))
    for path in paths:
        whole, buffers, _errors = _order(path)
        times = sorted({row[0] for row in whole if row[0] is not None})
        candidates = [times[0] - 1, times[0], times[len(times) // 3], times[len(times) // 2],
                      times[-1], times[-1] + 1]
        for cuts in ([candidates[2]], [candidates[0], candidates[3]], [candidates[1], candidates[1]],
                     [candidates[3], candidates[4], candidates[5]], candidates[2:5]):
            bounds = [None, *cuts, None]
            parts = [_order(path, (bounds[k], bounds[k + 1])) for k in range(len(bounds) - 1)]
            assert [row for part in parts for row in part[0]] == whole, (path.name, cuts)
            assert sum(part[1] for part in parts) == buffers


def test_a_source_reads_buffer_0_again_only_for_a_window_its_records_reach(corpus, monkeypatch):
    """One source's windows (as a fmt -j process decodes them): buffer 0's records past the
    log-file header record (three in this trace, at its time) are read once; a window
    starting after the last of them does not read buffer 0 again, one starting at or before
    it does. In any order, the windows add up to the whole order and account every buffer
    once."""
    path = corpus / "wpp" / "guscatalano__findneedle" / "wppstr-sample.etl"
    whole, buffers, _errors = _order(path)
    times = sorted({row[0] for row in whole if row[0] is not None})
    with EtlFile(path) as etl:
        buf = etl.read_buffer(etl.buffer_index()[0])
        top = max(record_view(None, buf, 0, True)[1][1:])   # buffer 0's latest record time
    assert top + 1 < times[len(times) // 2]
    cuts = [None, top, top + 1, times[len(times) // 2], None]   # (the records at top: the 2nd's)
    windows = list(zip(cuts[:-1], cuts[1:]))
    for order in (windows, windows[::-1]):
        reads = []
        with EtlFile(path) as etl:
            real = etl.read_buffer
            monkeypatch.setattr(etl, "read_buffer", lambda info, *a: reads.append(info.index) or real(info, *a))
            source = FileSource(etl)
            parts = {}
            for window in order:
                before = len(reads)
                parts[window] = [(r.timestamp, r.processor, r.sequence, r.event_id, r.user_data)
                                 for items, _keys in source.ordered(record_view, window=window)
                                 for r in items]
                read_0 = 0 in reads[before:]
                lo = window[0]
                assert read_0 == (lo is None or lo <= top or order is not windows and window == order[0]), window
            assert [row for window in windows for row in parts[window]] == whole
            assert etl.stats.buffers == buffers


def _row_order(path, window=None, walks=None) -> tuple[list, int, list]:
    """``_order`` through the rows fmt reads (``RowView``), with flush times trusted as fmt -j
    trusts them; ``walks``: a list to note each walk's ``until`` in."""
    with EtlFile(path) as etl:
        source = FileSource(etl, trust_flush_times=True)
        view = RowView()
        if walks is not None:
            walk = view._walker.walk

            def noted(*args):
                walks.append(args[8] if len(args) > 8 else None)
                return walk(*args)
            view._walker.walk = noted
        rows = [view.full_row(ref) for items, _keys in source.ordered(view, window=window)
                for ref in items]
        tables = view.tables           # key ids are the view's: its messages by (GUID, number)
        keys = tables.key_infos(0, tables.key_count())
        rows = [row[:_KEY] + (keys[row[_KEY]] if row[_KEY] < len(keys) else row[_KEY],) + row[_KEY + 1:]
                for row in rows]
        return rows, etl.stats.buffers, [(e.offset, e.message) for e in etl.errors]


def test_row_windows_ending_inside_a_buffer_walk_it_only_up_to_their_end(traces, corpus):
    """The buffer where a window ends is walked up to there (its later rows are the next
    window's, which walks it whole): the windows' rows still add up to the whole order, each
    buffer accounted once, each problem reported once."""
    paths = [traces["synth"][0][0], traces["driver"][0][0]]
    paths += sorted((corpus / "wpp" / "guscatalano__findneedle").glob("*.etl"))
    stopped = 0
    for path in paths:
        whole, buffers, errors = _row_order(path)
        times = sorted({row[0] for row in whole})
        cuts = [times[len(times) // 4], times[len(times) // 2], times[3 * len(times) // 4]]
        bounds = [None, *cuts, None]
        walks: list = []
        parts = [_row_order(path, (bounds[k], bounds[k + 1]), walks) for k in range(len(bounds) - 1)]
        assert [row for part in parts for row in part[0]] == whole, path.name
        assert sum(part[1] for part in parts) == buffers
        assert sorted(e for part in parts for e in part[2]) == sorted(errors)
        stopped += sum(until is not None for until in walks)
    assert stopped      # the partial walk was taken


def test_windows_started_by_flush_times_are_the_windows_read_whole(traces, corpus):
    """A window from lo that does not read its streams' buffers flushed before lo gives what
    reading them gives, on files written here and on real Windows captures: their buffers
    are flushed after their records, so the window ending at lo never stops before them."""
    paths = [traces["synth"][0][0], traces["driver"][0][0]]
    paths += sorted((corpus / "wpp" / "guscatalano__findneedle").glob("*.etl"))
    skipped = 0
    for path in paths:
        whole, _buffers, _errors = _order(path)
        times = sorted({row[0] for row in whole if row[0] is not None})
        for lo in (times[len(times) // 3], times[len(times) // 2], times[-1]):
            assert _order(path, (lo, None), trust_flush_times=True) == _order(path, (lo, None)), path.name
            with EtlFile(path) as etl:
                source = FileSource(etl)
                for _chunk in source.ordered(record_view, window=(None, lo)):
                    pass
                skips = source.flushed_before(lo)
                assert len(skips) == len(source.streams())
                assert parallel._started_right(source, lo, source.window_stops), (path.name, lo)
                for stream, skip in zip(source.streams(), skips):   # the leading buffers only
                    times_flushed = list(stream.column("timestamp"))
                    assert all(t < lo for t in times_flushed[:skip])
                    assert skip == len(times_flushed) or times_flushed[skip] >= lo
                skipped += sum(skips)
                assert source.flushed_before(0) == [0] * len(skips)
    assert skipped > 0


def test_flush_times_out_of_order_count_only_the_leading_buffers(corpus, tmp_path):
    """A stream whose flush times go back (a doctored file): the buffers flushed before lo
    that a window skips are only the ones before the first flushed at or after lo."""
    path = corpus / "etl" / "jtmoon79__super-speedy-syslog-searcher" / "WindowsUpdate.20251008.140245.443.8.etl"
    data = bytearray(path.read_bytes())
    with EtlFile(path) as etl:
        stream = FileSource(etl).streams()[0]
        assert len(stream) >= 4
        early = stream[0].timestamp - 5
        at = stream[2].file_offset + 0x10                        # WMI_BUFFER_HEADER.TimeStamp
        data[at:at + 8] = early.to_bytes(8, "little", signed=True)
    doctored = tmp_path / "back.etl"
    doctored.write_bytes(bytes(data))
    with EtlFile(doctored) as etl:
        source = FileSource(etl)
        times = list(source.streams()[0].column("timestamp"))
        assert times[2] < times[1]
        for lo in sorted(set(times)) + [max(times) + 1]:
            leading = next((n for n, t in enumerate(times) if t >= lo), len(times))
            assert source.flushed_before(lo)[0] == leading, lo


def _six_windows(path) -> list:
    """Cuts of six windows holding about as many distinct record times each (``cut_keys``'s form)."""
    whole, _buffers, _errors = _order(path)
    times = sorted({row[0] for row in whole if row[0] is not None})
    return [None] + [times[len(times) * k // 6] for k in range(1, 6)] + [None]


def _flushed_too_early(path, out, lo: int) -> None:
    """``path`` copied to ``out`` with the flush times of each stream's buffers up to the one
    whose records reach lo set before lo: a worker starting at lo would pass records it owns."""
    data = bytearray(path.read_bytes())
    with EtlFile(path) as etl:
        source = FileSource(etl)
        for _chunk in source.ordered(record_view, window=(None, lo)):
            pass
        stops = dict(source.window_stops)
        for number, stream in enumerate(source.streams()):
            for position in range(min(stops[number] + 1, len(stream))):
                at = stream[position].file_offset + 0x10          # WMI_BUFFER_HEADER.TimeStamp
                flushed = int.from_bytes(data[at:at + 8], "little", signed=True)
                data[at:at + 8] = min(flushed, lo - 1).to_bytes(8, "little", signed=True)
    out.write_bytes(bytes(data))


def _output_and_summary(tmp_path, jobs: int, *etls, **options) -> tuple[bytes, list[str]]:
    """The output and summary (its elapsed time left out) of one fmt run with ``jobs``."""
    out, summary = tmp_path / f"out{jobs}", tmp_path / f"sum{jobs}"
    code, _stdout, err = run_fmt_capture(*etls, output=str(out), summary=str(summary), jobs=jobs, **options)
    assert code == 0, err
    return out.read_bytes(), [line for line in summary.read_text().splitlines()
                              if not line.startswith("Elapsed")]


def _assert_two_jobs_give(one: tuple[bytes, list[str]], to: str, tmp_path, etl, tmfs) -> None:
    """fmt -j 2 of ``etl`` writes ``one`` (output, summary lines but Elapsed) to a file
    (``to`` "file") or to its standard output."""
    if to == "file":
        assert _output_and_summary(tmp_path, 2, etl, tmf_dirs=tmfs, utc=True) == one
    else:
        summary = tmp_path / "sum-stream"
        code, stdout, err = run_fmt_capture(etl, tmf_dirs=tmfs, utc=True, jobs=2, summary=str(summary))
        assert code == 0, err
        assert stdout.encode() == one[0]
        assert [line for line in summary.read_text().splitlines() if not line.startswith("Elapsed")] == one[1]


def _runs_noted(monkeypatch) -> list:
    """The ParallelRun of each decode_parallel call from now on."""
    runs = []
    real = parallel.decode_parallel
    monkeypatch.setattr(parallel, "decode_parallel", lambda *a, **k: runs.append(real(*a, **k)))
    return runs


@pytest.mark.parametrize("cache", [True, False])
def test_a_worker_started_past_its_records_is_redone_here(traces, tmp_path, monkeypatch, cache):
    """Buffers flushed before their own records (a clock gone wrong): the worker's start,
    taken from flush times, is past records of its window; this process sees it where its
    own window ends, leaves the worker's output out and decodes the rest itself: the bytes
    and summary -j 1 gives (also with the program cache off: the shared table let go of
    before the rest, which this process then compiles its messages for)."""
    etls, tmfs = traces["driver"]
    whole, _buffers, _errors = _order(etls[0])
    times = sorted({row[0] for row in whole if row[0] is not None})
    lo = times[len(times) // 2]
    doctored = tmp_path / "early.etl"
    _flushed_too_early(etls[0], doctored, lo)
    with EtlFile(doctored) as etl:
        source = FileSource(etl)
        for _chunk in source.ordered(record_view, window=(None, lo)):
            pass
        assert not parallel._started_right(source, lo, source.window_stops)
    assert _order(doctored)[0] == whole                        # flush times order nothing
    runs = _runs_noted(monkeypatch)
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: [None, lo, None])
    outputs = {j: _output_and_summary(tmp_path, j, doctored, tmf_dirs=tmfs, utc=True, cache=cache)
               for j in (1, 2)}
    assert outputs[2] == outputs[1]
    [run] = runs
    assert run.redone_from == 1 and len(run.shares) == 2
    runs.clear()
    code, _stdout, err = run_fmt_capture(etls[0], tmf_dirs=tmfs, output=str(tmp_path / "ok"), utc=True, jobs=2)
    assert code == 0, err
    assert runs[0].redone_from is None                         # the file as written: trusted


@pytest.mark.parametrize("cache", [True, False])
def test_a_redone_tail_window_leaves_out_what_came_after_it(traces, tmp_path, monkeypatch, cache):
    """A tail window that started past its records, while this process had already decoded
    it and the windows after it (the worker held up in its first window): those windows'
    output and counts are left out and the rest is decoded here, the bytes and summary of
    one process (also with the program cache off)."""
    etls, tmfs = traces["driver"]
    cuts = _six_windows(etls[0])
    doctored = tmp_path / "early.etl"
    _flushed_too_early(etls[0], doctored, cuts[3])               # window 3 starts too late
    runs = _runs_noted(monkeypatch)
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: cuts)
    one = _output_and_summary(tmp_path, 1, doctored, tmf_dirs=tmfs, utc=True, cache=cache)
    hold_up(monkeypatch, tmp_path / "out-of-windows", "worker")
    assert _output_and_summary(tmp_path, 2, doctored, tmf_dirs=tmfs, utc=True, cache=cache) == one
    [run] = runs
    assert run.redone_from == 3 and run.owners == [0, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("redo", [False, True])
def test_jobs_count_unknown_messages_as_one_process(traces, tmp_path, monkeypatch, redo):
    """Half the TMF files missing: their messages print as Unknown lines, which the C
    renderer prints and counts by program. -j 2 prints the bytes and the summary (Unknown
    total and per-message counts) of one process, also when windows decoded by the worker
    and by this process are left out and the rest redone here (the counts go back to a
    window's mark)."""
    import shutil

    etls, tmfs = traces["driver"]
    half = tmp_path / "half"
    half.mkdir()
    for path in sorted(pathlib.Path(tmfs[0]).glob("*.tmf"))[::2]:
        shutil.copy(path, half)
    etl = etls[0]
    if redo:
        cuts = _six_windows(etl)
        etl = tmp_path / "early.etl"
        _flushed_too_early(etls[0], etl, cuts[3])               # window 3 starts too late
        monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: cuts)
    runs = _runs_noted(monkeypatch)
    one = _output_and_summary(tmp_path, 1, etl, tmf_dirs=[str(half)], utc=True)
    unknown = [line for line in one[1] if line.startswith("Total Formats Unknown")]
    assert unknown and int(unknown[0].split()[-1]) > 100
    assert _output_and_summary(tmp_path, 2, etl, tmf_dirs=[str(half)], utc=True) == one
    [run] = runs
    assert run.redone_from == (3 if redo else None)


def test_the_timeline_of_a_run_is_in_step_order(traces, tmp_path, monkeypatch):
    """decode_parallel tells when each step ended: workers forked, this process's last
    window decoded, each worker's last window decoded (on the clock every process shares),
    every window in the output, the end; each step after the one it waits for."""
    etls, tmfs = traces["driver"]
    runs = _runs_noted(monkeypatch)
    code, _stdout, err = run_fmt_capture(etls[0], tmf_dirs=tmfs, output=str(tmp_path / "out"), utc=True,
                                         jobs=3)
    assert code == 0, err
    [run] = runs
    t = run.timeline
    assert 0 <= t.forked <= t.decoded <= t.appended <= t.done
    assert len(t.workers_decoded) == 2
    assert all(t.forked <= ended <= t.appended for ended in t.workers_decoded)


@pytest.mark.parametrize("slow", ["worker", "parent"])
def test_a_free_process_takes_the_tail_windows(traces, tmp_path, monkeypatch, slow):
    """The tail windows go to whichever process is free: with the worker held up in its
    first window, this process takes them all; with this process held up in its first
    window, the worker does. The bytes and the summary are the ones one process gives
    either way."""
    etls, tmfs = traces["driver"]
    runs = _runs_noted(monkeypatch)
    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True)
    hold_up(monkeypatch, tmp_path / "out-of-windows", slow)
    assert _output_and_summary(tmp_path, 2, etls[0], tmf_dirs=tmfs, utc=True) == one
    [run] = runs
    owners = run.owners
    assert len(owners) == len(parallel.window_shares(2)) and owners[:2] == [0, 1]
    assert owners[2:] == [0 if slow == "worker" else 1] * (len(owners) - 2)


@pytest.mark.parametrize("to", ["file", "stream"])
def test_the_windows_counts_are_added_as_they_come(traces, tmp_path, monkeypatch, to):
    """While this process waits for the worker's last window (held until this process waits,
    to a file, and has looked at the workers once window 4's end came), the windows before it
    are added to this process's counters and read log (the worker decoded them, this process
    its first only): once the last window's results come only its part is left; its summary
    file is made while it waits. The bytes and the summary are one process's, output to a file
    (the worker's results come with each window's end) or to a stream this process appends to
    (with the worker's last message: all added then)."""
    from wpptrace.decoder import cli_fmt

    etls, tmfs = traces["driver"]
    cuts = _six_windows(etls[0])
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: cuts)
    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True)
    parent, waiting, looked = os.getpid(), tmp_path / "waiting", tmp_path / "looked"
    real_take, real_decode, real_idle = parallel._take, cli_fmt._decode_sources, parallel._Assembly._idle
    real_windows, real_ready = parallel._Merge.windows, cli_fmt._SummaryFile.ready
    real_send = parallel._Outbox.send

    def take(fd):                     # this process takes no window after its first
        return None if os.getpid() == parent else real_take(fd)

    def send(self, message, wait=False):
        # (in the worker) window 4's end (larger than the pipe: what did not fit goes with the
        # next message) wholly sent before its last window, not with that window's end
        real_send(self, message, wait or message[:2] == ("begin", 5))

    def decode(decoder, writer, opts, sources, progress, window=None, view=None):
        if window == (cuts[5], None):  # the worker's last window: once this process waits
            deadline = time.monotonic() + 60   # (to a file) and has looked after window 4's end
            while not ((to == "stream" or waiting.exists()) and looked.exists()):
                if time.monotonic() > deadline:
                    raise TimeoutError("this process never looked at window 4's end")
                time.sleep(0.005)
        return real_decode(decoder, writer, opts, sources, progress, window, view)

    def idle(self):
        real_idle(self)
        waiting.touch()

    added, readied = [], []           # the first window not added yet, after each look

    def windows(self, limit, checked=True):
        real_windows(self, limit, checked)
        if checked:                   # (not the end's look, which adds every window left)
            added.append(self.next)
            if 4 in self.output.stops:    # window 4's end came before this look
                looked.touch()

    def ready(self):
        real_ready(self)
        readied.append(sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")))

    monkeypatch.setattr(parallel, "_take", take)
    monkeypatch.setattr(parallel._Outbox, "send", send)
    monkeypatch.setattr(parallel._Assembly, "_idle", idle)
    monkeypatch.setattr(parallel._Merge, "windows", windows)
    monkeypatch.setattr(cli_fmt, "_decode_sources", decode)
    monkeypatch.setattr(cli_fmt._SummaryFile, "ready", ready)
    runs = _runs_noted(monkeypatch)
    _assert_two_jobs_give(one, to, tmp_path, etls[0], tmfs)
    [run] = runs
    assert run.owners == [0, 1, 1, 1, 1, 1] and run.in_place == (to == "file")
    assert added == sorted(added) and added[0] >= 1
    # to a file the windows before the last are added as they come (the look after window 4's
    # end, made before window 5 began, added it); to a stream all at once, with the last
    assert (5 in added) == (to == "file") and (to == "file" or set(added) <= {1, 6})
    [partial] = readied                                    # (the output's own too, to a file)
    assert [name for name in partial if name.startswith(".sum")] != []
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_window_shares():
    """A few windows per process at least, more for a large file (a window holds a few MB
    of it: what a process holds in memory stays small); the first one half the size; the
    last 2 x jobs windows' worth in windows of a half, a quarter and an eighth, so the
    processes end close together."""
    assert parallel.window_shares(1) == [1.0]
    for jobs in (2, 3, 8):
        for data_bytes, bulk in ((0, 4 * jobs), (1 << 20, 4 * jobs), (400 << 20, 100)):
            shares = parallel.window_shares(jobs, data_bytes)
            assert len(shares) == bulk + 2 * jobs and abs(sum(shares) - 1) < 1e-12
            first, middle, tail = shares[0], shares[1:-4 * jobs], shares[-4 * jobs:]
            full = middle[0]
            assert middle == [full] * len(middle) and first == full / 2
            assert tail == [full / 2] * jobs + [full / 4] * jobs + [full / 8] * (2 * jobs)
            assert abs(sum(tail) - 2 * jobs * full / 2) < 1e-12   # the last 2 x jobs half windows' worth
            if data_bytes:
                assert full * data_bytes <= 2 * parallel._WINDOW_BYTES


def test_cut_keys_balance_the_buffers(traces):
    path = traces["driver"][0][0]
    with EtlFile(path) as etl:
        cuts = parallel.cut_keys(etl, 3)
        assert cuts[0] is None and cuts[-1] is None and len(cuts) == 4
        assert cuts[1] < cuts[2]
        sizes = [len(_order(path, (cuts[k], cuts[k + 1]))[0]) for k in range(3)]
    assert min(sizes) > len(_order(path)[0]) // 8  # an estimate from buffer flush times
    with EtlFile(path) as etl:
        quarter = parallel.cut_keys(etl, 2, shares=[0.25, 0.75])
        even = parallel.cut_keys(etl, 2)
    first, rest = (len(_order(path, (lo, hi))[0]) for lo, hi in zip(quarter[:-1], quarter[1:]))
    assert quarter[1] < even[1] and first < rest


class _Stream:
    """A processor stream as cut_keys reads it: (flush time, bytes filled) per buffer."""

    def __init__(self, *buffers):
        self.buffers = buffers

    def column(self, name):
        return [time if name == "timestamp" else filled for time, filled in self.buffers]


def test_cut_keys_spread_each_buffer_since_its_stream_s_last_flush():
    """A buffer's bytes are taken as written evenly between its stream's previous flush and
    its own (the file's first flush for the first one): here 1,000 bytes at t=100 (no span),
    then 10 bytes per tick until t=200 in one stream and 40 until t=150 in the other."""
    streams = [_Stream((100, 1000), (200, 1000)), _Stream((150, 2000))]
    assert parallel.cut_keys(None, 2, streams) == [None, 120, None]          # 2,000 of 4,000
    assert parallel.cut_keys(None, 2, streams, shares=[0.25, 0.75]) == [None, 100, None]  # 1,000
    assert parallel.cut_keys(None, 4, streams) == [None, 100, 120, 140, None]  # 1,000 / 2,000 / 3,000
    assert parallel.cut_keys(None, 1, streams) == [None, None]
    assert parallel.cut_keys(None, 2, [_Stream(), _Stream()]) == [None, None]


def _indexed_streams(streams, rng):
    """The streams (lists of (flush time, bytes filled)) as cut_keys gets them from a file:
    positions, in a shuffled order, into one buffer index's columns."""
    from array import array

    from wpptrace.decoder._hazmat import INDEX_COLUMNS
    from wpptrace.decoder.etlfile import BufferIndex, BufferSubset

    flat = [buffer for stream in streams for buffer in stream]
    places = list(range(len(flat)))
    rng.shuffle(places)
    times, filled = [0] * len(flat), [0] * len(flat)
    for place, (time_, size) in zip(places, flat):
        times[place], filled[place] = time_, size
    columns = {name: array(code, bytes(array(code).itemsize * len(flat))) for name, code in INDEX_COLUMNS}
    columns["timestamp"], columns["filled_bytes"] = array("q", times), array("I", filled)
    index = BufferIndex()
    index.extend_columns(columns, len(flat))
    subsets, at = [], 0
    for stream in streams:
        subsets.append(BufferSubset(index, array("I", places[at:at + len(stream)])))
        at += len(stream)
    return subsets


def _random_streams(rng):
    base = rng.choice([0, 1000, 133_500_000_000_000_000, -(1 << 62), (1 << 62)])
    spread = rng.choice([5, 1000, 10 ** 6, 10 ** 12])
    streams = []
    for _ in range(rng.randint(1, 5)):
        times = sorted(base + rng.randint(0, spread) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.3 and len(times) > 2:      # flushed out of order
            times[0], times[-1] = times[-1], times[0]
        if rng.random() < 0.3 and times:                # equal flush times
            times = [times[0]] * 3 + times
        streams.append([(t, rng.choice([0, 1, 2, rng.randint(0, 1 << 20), (1 << 32) - 1]))
                        for t in times])
    return streams


def test_cut_keys_in_c_are_the_python_sweep_s_cuts():
    """The C pass over the index columns (cuts_sweep) gives the Python sweep's cuts, number
    for number: ties, spans of no time, flushes out of order, empty buffers, times past 2^53
    and near the ends of 64 bits, even and uneven shares."""
    import random

    rng = random.Random(7)
    in_c = 0
    for _case in range(600):
        streams = _random_streams(rng)
        jobs = rng.randint(2, 9)
        shares = rng.choice([None, parallel.window_shares(jobs, rng.randint(0, 1 << 26)),
                             [rng.random() + 0.01 for _ in range(jobs)], [1, 2, 3]])
        indexed = _indexed_streams(streams, rng)
        plain = [_Stream(*stream) for stream in streams]
        expected = parallel.cut_keys(None, jobs, plain, shares)
        assert parallel.cut_keys(None, jobs, indexed, shares) == expected, (streams, jobs, shares)
        in_c += parallel._cut_times(indexed, shares or [1.0 / jobs] * jobs) is not None
    assert in_c > 500     # (the others needed more than 64 bits: the Python sweep cut them)
    wide = [[(-(1 << 63) + 5, 0), ((1 << 63) - 5, 1000)]]   # a cut 2^63 ticks into a buffer's span
    indexed = _indexed_streams(wide, rng)
    assert parallel._cut_times(indexed, [0.5, 0.5]) is None
    assert parallel.cut_keys(None, 2, indexed) == parallel.cut_keys(None, 2, [_Stream(*s) for s in wide])


def test_cut_keys_of_real_files_are_the_python_sweep_s_cuts(traces, corpus):
    paths = [traces[name][0][0] for name in traces] + sorted(corpus.rglob("*.etl"))[:10]
    for path in paths:
        with EtlFile(str(path)) as etl:
            streams = FileSource(etl).streams()
            if not streams:
                continue
            plain = [_Stream(*zip(s.column("timestamp"), s.column("filled_bytes"))) for s in streams]
            for jobs in (2, 3, 5):
                shares = parallel.window_shares(jobs, etl.file_size)
                assert parallel._cut_times(streams, shares) is not None
                assert parallel.cut_keys(etl, jobs, streams, shares) == \
                    parallel.cut_keys(etl, jobs, plain, shares), path


def test_streams_sorted_in_c_are_the_python_grouping(traces, corpus):
    """order_streams groups and orders the buffers as the Python grouping does: processors
    in order, sequence numbers in order, file order for equal numbers (random columns with
    many ties, and the test and corpus files)."""
    import random
    from array import array

    from wpptrace.decoder import ordering
    from wpptrace.decoder._hazmat import INDEX_COLUMNS
    from wpptrace.decoder.etlfile import BufferIndex

    rng = random.Random(11)
    indexes = []
    for n in [0, 1, 2, 3, 50, 900] + [rng.randint(0, 300) for _ in range(60)]:
        columns = {name: array(code, bytes(array(code).itemsize * n)) for name, code in INDEX_COLUMNS}
        top = rng.choice([1, 3, 64, 65535])
        columns["processor"] = array("H", [rng.randint(0, top) for _ in range(n)])
        columns["sequence"] = array("q", [rng.choice([rng.randint(-5, 5), rng.randint(-(1 << 63), (1 << 63) - 1)])
                                          for _ in range(n)])
        index = BufferIndex()
        index.extend_columns(columns, n)
        indexes.append(index)
    for path in [traces[name][0][0] for name in traces] + sorted(corpus.rglob("*.etl"))[:10]:
        with EtlFile(str(path)) as etl:
            indexes.append(etl.buffer_index())
    for index in indexes:
        grouped = ordering.stream_positions(index.column("processor"), index.column("sequence"))
        assert grouped is not None
        assert [list(g) for g in grouped] == [list(s.positions) for s in ordering._streams_in_python(index)]


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("variant", ["text", "custom.text", "csv", "jsonl"])
def test_jobs_print_the_bytes_one_process_prints(traces, tmp_path, jobs, variant):
    etls, tmfs = traces["synth"]
    options = dict(golden_traces.VARIANTS["synth"][variant])
    outputs = {j: _output_and_summary(tmp_path, j, *etls, tmf_files=tmfs, **options) for j in (1, jobs)}
    assert outputs[jobs] == outputs[1]
    assert outputs[1][0] == golden_traces.read_golden("synth", variant)


def test_jobs_on_a_damaged_file_report_the_damage_once(tmp_path, traces):
    """Bytes of one buffer scrambled: the same lines, the same warnings, the same exit code."""
    etls, tmfs = traces["driver"]
    data = bytearray(etls[0].read_bytes())
    for at in range(16384 * 5 + 0x100, 16384 * 5 + 0x180):
        data[at] ^= 0x5A
    damaged = tmp_path / "damaged.etl"
    damaged.write_bytes(bytes(data))
    runs = {}
    for j in (1, 2):
        out = tmp_path / f"d{j}.txt"
        code, _stdout, err = run_fmt_capture(damaged, tmf_dirs=tmfs, output=str(out), utc=True, jobs=j)
        runs[j] = (code, out.read_bytes(), [line for line in err.splitlines() if "warning" in line])   # in order
    assert runs[1][0] == 1 and runs[1] == runs[2]
    assert runs[1][2]


def test_a_window_s_read_log_carries_every_read_stat(traces):
    """A window's read log carries every total of the reader's ``ReadStats``, and adding it
    adds each one (a total added there reaches the -j summary with no list to keep in step)."""
    from types import SimpleNamespace

    from wpptrace.decoder.buffers import ReadStats

    decoder = SimpleNamespace(counters=SimpleNamespace(**dict.fromkeys(parallel._COUNTERS, 0)))
    etls, _tmfs = traces["driver"]
    with EtlFile(etls[0]) as etl:
        snapshot = parallel._snapshot(decoder, etl)["stats"]
        assert set(snapshot) == set(ReadStats.__match_args__)
        result = {"errors": [], "issues_dropped": 0,
                  "stats": {name: ({kind: 1 for kind in value} if isinstance(value, dict) else 1)
                            for name, value in snapshot.items()}}
        parallel._add_reads(etl, result)
        for name, value in snapshot.items():
            expected = {kind: n + 1 for kind, n in value.items()} if isinstance(value, dict) else value + 1
            assert getattr(etl.stats, name) == expected, name


def test_jobs_on_a_truncated_file_report_it_once(tmp_path, traces):
    """The file ends inside a buffer: the index says so once (the workers use the parent's
    index), and -j 2 prints what -j 1 prints."""
    etls, tmfs = traces["driver"]
    data = etls[0].read_bytes()
    cut = tmp_path / "cut.etl"
    cut.write_bytes(data[:len(data) - 16384 - 1000])
    runs = {}
    for j in (1, 2):
        out = tmp_path / f"t{j}.txt"
        code, _stdout, err = run_fmt_capture(cut, tmf_dirs=tmfs, output=str(out), utc=True, jobs=j)
        runs[j] = (code, out.read_bytes(), [line for line in err.splitlines() if "warning" in line])   # in order
    assert runs[1] == runs[2]
    warnings = runs[1][2]
    assert len(set(warnings)) == len(warnings)                 # each said once
    assert sum("BuffersWritten), the file ends after" in line for line in warnings) == 1
    assert sum("truncated: expected 16384 bytes" in line for line in warnings) == 1


def test_a_forked_reader_adopts_the_buffer_index(traces):
    path = traces["driver"][0][0]
    with EtlFile(path) as first, EtlFile(path) as second:
        index = first.buffer_index()
        second.adopt_index(first)
        assert second.buffer_index() is index
    with EtlFile(path) as first, EtlFile(traces["synth"][0][0]) as other:
        other.adopt_index(first)                 # another file: it locates its own buffers
        assert other.buffer_index() is not first.buffer_index()
        assert len(other.buffer_index()) != len(first.buffer_index())


def test_a_jobs_run_groups_the_streams_once(traces, tmp_path, monkeypatch):
    """The processor streams and their flush times are made once, before the fork: the
    worker's reader and this process's own (for its later windows) share them rather than
    sorting the index and reading its columns again; the bytes are one process's."""
    from wpptrace.decoder import engine

    etls, tmfs = traces["driver"]
    notes = tmp_path.parent / f"{tmp_path.name}-grouped"       # (every process appends)
    real_streams = engine.buffer_streams

    def noted(etl):
        fd = os.open(notes, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, b"%d\n" % os.getpid())
        finally:
            os.close(fd)
        return real_streams(etl)

    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True)
    monkeypatch.setattr(engine, "buffer_streams", noted)
    hold_up(monkeypatch, tmp_path / "out-of-windows", "worker")   # this process: the tail windows
    runs = _runs_noted(monkeypatch)
    assert _output_and_summary(tmp_path, 2, etls[0], tmf_dirs=tmfs, utc=True) == one
    [run] = runs
    assert run.owners[1] == 1 and set(run.owners[2:]) == {0}     # (through its own reader)
    assert notes.read_text().split() == [str(os.getpid())]


def test_this_process_lets_go_of_its_windows_before_waiting_for_the_results(traces, tmp_path, monkeypatch):
    """Once its held windows are written, this process closes its own reader and frees the
    memory they were held in before it waits for the workers' results (done while the
    worker ends, not after it); the bytes and summary are one process's."""
    etls, tmfs = traces["driver"]
    parent, steps = os.getpid(), []
    for owner, name in ((parallel._OwnWindows, "close"), (parallel._Places, "close_held"),
                        (parallel._Assembly, "finish")):
        def noted(self, *args, _real=getattr(owner, name), _name=name):
            if os.getpid() == parent:
                steps.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(owner, name, noted)
    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True)
    assert _output_and_summary(tmp_path, 2, etls[0], tmf_dirs=tmfs, utc=True) == one
    assert steps[:3] == ["close", "close_held", "finish"]


@pytest.mark.parametrize("cache", [True, False])
def test_waiting_for_the_places_of_its_held_windows_this_process_makes_the_summary_texts(
        traces, tmp_path, monkeypatch, cache):
    """This process, its windows all decoded and held behind the worker's first (held up
    until this one found no window left), waits for that window's size: it makes the
    summary's texts meanwhile (``prepare_summary``), not after its windows are written; the
    bytes and summary are one process's (also with the program cache off: the shared table
    let go of then too)."""
    from wpptrace.decoder.wpp import WppDecoder

    etls, tmfs = traces["driver"]
    parent, steps = os.getpid(), []
    real_prepare, real_write_all = WppDecoder.prepare_summary, parallel._Places.write_all

    def prepare(self):
        steps.append("summary texts")
        return real_prepare(self)

    def write_all(self, wait):
        real_write_all(self, wait)
        if os.getpid() == parent:
            steps.append("held windows written")

    marker = tmp_path / "waiting"
    real_take, real_check = parallel._take, parallel._Assembly.check

    def check(self):               # this process's first wait for the held window's size
        marker.touch()
        return real_check(self)

    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True, cache=cache)
    monkeypatch.setattr(WppDecoder, "prepare_summary", prepare)
    monkeypatch.setattr(parallel._Places, "write_all", write_all)
    # the worker held in its first window until this process waits for it (not merely until
    # it found no window left: the worker could then send that window's size before the wait)
    hold_up(monkeypatch, marker, "worker")
    monkeypatch.setattr(parallel, "_take", real_take)
    monkeypatch.setattr(parallel._Assembly, "check", check)
    runs = _runs_noted(monkeypatch)
    assert _output_and_summary(tmp_path, 2, etls[0], tmf_dirs=tmfs, utc=True, cache=cache) == one
    [run] = runs
    assert run.owners[1] == 1 and set(run.owners[2:]) == {0}
    assert steps == ["summary texts", "held windows written"]


@pytest.mark.parametrize("to", ["file", "stream"])
def test_the_summary_rows_and_file_are_made_before_this_process_decodes_its_last_windows(
        traces, tmp_path, monkeypatch, to):
    """This process, about to decode a window of the run's last, smaller ones, first makes
    the summary table's rows but for their counts and opens the summary's file (work of the
    run's end that would otherwise wait until its windows are all decoded, when the worker
    ends about as soon: each ms there is the run's); the bytes and summary are one process's,
    to a file (written at places) or to a stream (appended here)."""
    from wpptrace.decoder import cli_fmt, output

    etls, tmfs = traces["driver"]
    cuts = _six_windows(etls[0])
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: cuts)
    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True)
    parent, steps = os.getpid(), []
    real_rows, real_ready, real_decode = output.SummaryRows, cli_fmt._SummaryFile.ready, parallel._OwnWindows.decode

    class Rows(real_rows):
        def __init__(self, *parts):
            steps.append("rows")
            super().__init__(*parts)

    def ready(self):
        steps.append("summary file")
        real_ready(self)

    def decode(self, decoder, k, *args, **kwargs):
        if os.getpid() == parent:
            steps.append(k)
        return real_decode(self, decoder, k, *args, **kwargs)

    monkeypatch.setattr(output, "SummaryRows", Rows)
    monkeypatch.setattr(cli_fmt._SummaryFile, "ready", ready)
    monkeypatch.setattr(parallel._OwnWindows, "decode", decode)
    hold_up(monkeypatch, tmp_path / "none-left", "worker")    # this process takes every window after its first
    runs = _runs_noted(monkeypatch)
    _assert_two_jobs_give(one, to, tmp_path, etls[0], tmfs)
    [run] = runs
    assert run.owners == [0, 1, 0, 0, 0, 0] and run.in_place == (to == "file")
    # (six windows for 2 processes: every window after the first is one of the last ones)
    assert steps[:3] == ["rows", "summary file", 2]
    assert [step for step in steps if type(step) is int] == [2, 3, 4, 5]


@pytest.mark.parametrize("cache", [False, True])
def test_the_shared_table_goes_at_the_first_wait_only_with_the_program_cache_off(
        traces, tmp_path, monkeypatch, cache):
    """With fmt's program cache off, this process closes the shared table at its first wait
    for the workers, while the worker still runs (made to send its results only after that
    wait), before ``finish`` returns. With the cache on, the table stays open until the
    workers' records are added to the cache from it (``_keep_shared``) and is closed at the
    run's end. The bytes and summary are one process's either way."""
    etls, tmfs = traces["driver"]
    shares, steps = [], []
    real_share, real_results = parallel._program_share, parallel._results
    real_idle, real_finish, real_keep = parallel._Assembly._idle, parallel._Assembly.finish, parallel._keep_shared

    def program_share(processes):
        shares.append(real_share(processes))
        return shares[-1]

    def results(*args):                 # (in the worker) its last message: after the first wait
        select.select([waited_read], [], [], 60)        # (bounded: a run gone wrong fails, not hangs)
        return real_results(*args)

    def running(pid: int) -> bool:      # (not reaped: its thread reaps it)
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def idle(self):
        first = self.idle is not None
        real_idle(self)
        if first:
            steps.append(("first wait", shares[0].table.closed, tuple(running(w.pid) for w in self.workers)))
        os.write(waited_write, b"w")

    def finish(self):
        real_finish(self)
        steps.append(("finish returned", shares[0].table.closed))

    def keep_shared(decoder, workers):
        steps.append(("kept", shares[0].table.closed))
        real_keep(decoder, workers)

    one = _output_and_summary(tmp_path, 1, etls[0], tmf_dirs=tmfs, utc=True, cache=cache)
    for name, patch in (("_program_share", program_share), ("_results", results), ("_keep_shared", keep_shared)):
        monkeypatch.setattr(parallel, name, patch)
    monkeypatch.setattr(parallel._Assembly, "_idle", idle)
    monkeypatch.setattr(parallel._Assembly, "finish", finish)
    waited_read, waited_write = os.pipe()               # (the worker inherits it at its fork)
    try:
        assert _output_and_summary(tmp_path, 2, etls[0], tmf_dirs=tmfs, utc=True, cache=cache) == one
    finally:
        os.close(waited_read)
        os.close(waited_write)
    closed = not cache
    assert list(dict.fromkeys(steps)) == [     # (finish: called once more, writing at places)
        ("first wait", closed, (True,)), ("finish returned", closed), ("kept", closed)]
    assert shares[0].table.closed                       # at the end in any case


def test_sources_of_one_index_share_streams_and_flush_times(traces):
    path = traces["driver"][0][0]
    with EtlFile(path) as first, EtlFile(path) as second, EtlFile(traces["synth"][0][0]) as other:
        second.adopt_index(first)
        made, adopting, apart = FileSource(first), FileSource(second), FileSource(other)
        adopting.adopt_streams(made)
        apart.adopt_streams(made)                     # another index: its own
        streams = made.streams()
        assert adopting.streams() is streams and apart.streams() is not streams
        lo = streams[0].column("timestamp")[len(streams[0]) // 2]
        assert adopting.flushed_before(lo) == made.flushed_before(lo)
        assert made._order[1] is adopting._order[1]
        assert sum(made.flushed_before(lo)) > 0


def test_default_jobs():
    assert parallel.default_jobs(None, 1 << 30) == 1            # standard output: one process
    assert parallel.default_jobs("out.txt", 1 << 20) == 1        # a small input: one process
    assert parallel.default_jobs("out.txt", 1 << 30) == len(os.sched_getaffinity(0))  # per core
    assert parallel.default_jobs(os.devnull, 1 << 30) == 1      # a device: one process


def _forks_noted(monkeypatch) -> list[int]:
    """The pids of the processes os.fork makes from now on (in this process)."""
    forked = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return forked


def test_a_failing_worker_fails_the_run_and_leaves_the_output_alone(traces, tmp_path, monkeypatch):
    """A window that cannot be decoded in a worker (a defect) is reported with the worker's
    traceback; the output and summary keep their old contents and no temporary file or
    process is left behind."""
    from wpptrace.decoder import cli_fmt

    etls, tmfs = traces["synth"]
    real = cli_fmt._decode_sources
    parent = os.getpid()

    def failing_in_workers(decoder, writer, opts, sources, progress, window=None, view=None):
        if os.getpid() != parent:
            raise ValueError("window decoding broke")
        return real(decoder, writer, opts, sources, progress, window, view)

    monkeypatch.setattr(cli_fmt, "_decode_sources", failing_in_workers)
    forked = _forks_noted(monkeypatch)
    out, summary = tmp_path / "out.txt", tmp_path / "sum.txt"
    out.write_text("old contents\n")
    summary.write_text("old summary\n")
    with pytest.raises(RuntimeError, match="a decoding process failed(?s:.*)window decoding broke"):
        run_fmt_capture(etls[0], tmf_files=tmfs, output=str(out), summary=str(summary), jobs=2)
    assert out.read_text() == "old contents\n"
    assert summary.read_text() == "old summary\n"    # (its file made while this process waited: gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "sum.txt"]
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)               # the worker was reaped


def test_a_worker_failing_to_write_its_held_windows_fails_the_run(traces, tmp_path, monkeypatch):
    """A worker whose windows are all decoded but cannot write the ones it held at their
    places (a full disk): the run fails, though every window has its counts, with the line
    this process's own full disk gives (the output named, the Win32 name), and the output
    keeps its old contents (this process, held up in its first window, holds none and never
    waits for a place)."""
    etls, tmfs = traces["driver"]
    parent = os.getpid()
    real = parallel._Places.write_all

    def failing_in_workers(self, wait):
        if os.getpid() != parent:
            raise OSError(28, "No space left on device")
        return real(self, wait)

    monkeypatch.setattr(parallel._Places, "write_all", failing_in_workers)
    hold_up(monkeypatch, tmp_path / "out-of-windows", "parent")
    out = tmp_path / "out.txt"
    out.write_text("old contents\n")
    code, stdout, err = run_fmt_capture(etls[0], tmf_dirs=tmfs, output=str(out), jobs=2)
    assert (code, stdout) == (1, "")
    assert err.splitlines()[-1] == (f"wpptrace fmt: error: {out}: cannot write: There is not "
                                    f"enough space on the disk (ERROR_DISK_FULL)")
    assert out.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-of-windows", "out.txt"]


def test_released_workers_end_and_leave_nothing(traces, tmp_path, monkeypatch):
    """After a run, each worker (released once its windows are in the output) ends and is
    reaped; nothing is left beside the output."""
    etls, tmfs = traces["driver"]
    forked = _forks_noted(monkeypatch)
    out = tmp_path / "out.txt"
    code, _stdout, err = run_fmt_capture(etls[0], tmf_dirs=tmfs, output=str(out), utc=True, jobs=3)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert len(forked) == 2
    deadline = time.monotonic() + 30
    for pid in forked:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break                                   # ended and reaped: no zombie left
            assert time.monotonic() < deadline, f"worker {pid} still there"
            time.sleep(0.01)


def _watched_child(ends_at_once: bool) -> parallel._Worker:
    """A forked process that ends at once, or when its release pipe closes, as a watched
    ``_Worker`` (its reaping thread started)."""
    read_fd, write_fd = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:                            # (as ``_Worker.start``: only the parent holds the
            os.close(read_fd)           # release pipe's write end, so its close is an EOF here)
            os.close(write_fd)
            os.close(release_write)
            if not ends_at_once:
                os.read(release_read, 1)
        finally:
            os._exit(0)
    os.close(write_fd)
    os.close(release_read)
    worker = parallel._Worker(1, pid, read_fd, -1, release_write)
    worker.watch()
    assert worker.lock is not None
    return worker


def test_a_worker_reaped_by_its_thread_is_not_signalled_by_stop(monkeypatch):
    """A worker that ended is reaped by the thread watching it; a failing run's ``stop``
    then sends it no signal (its pid may already be another process's). One still running
    is killed and reaped by ``stop`` (under the lock the thread takes to reap it)."""
    real_reap, watched = parallel._reap_when_ended, threading.Event()

    def reap_when_ended(worker, pid):
        real_reap(worker, pid)
        watched.set()                                   # the thread's work done

    monkeypatch.setattr(parallel, "_reap_when_ended", reap_when_ended)
    worker = _watched_child(ends_at_once=True)
    pid = worker.pid
    assert watched.wait(30), f"worker {pid}'s thread did not end"
    assert worker.reaped
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)                     # ended, and reaped by the thread
    killed = []
    monkeypatch.setattr(os, "kill", lambda *args: killed.append(args))
    worker.stop()
    assert killed == []                                 # no signal to a pid maybe reused
    assert worker.reaped and worker.pid == 0 and worker.fd == worker.release_fd == -1
    monkeypatch.undo()

    worker = _watched_child(ends_at_once=False)        # blocked until released
    pid = worker.pid
    try:
        real_kill, killed = os.kill, []
        monkeypatch.setattr(os, "kill", lambda *args: (killed.append(args), real_kill(*args)))
        worker.stop()
        monkeypatch.undo()
        assert killed == [(pid, parallel._SIGKILL)] and worker.reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)                 # reaped by stop
    finally:
        monkeypatch.undo()
        with worker.lock:                               # (a failed stop: no process left behind)
            if not worker.reaped:
                worker.reaped = True
                os.kill(pid, parallel._SIGKILL)
                os.waitpid(pid, 0)


@pytest.mark.parametrize("path", ["appended", "held"])
def test_window_files_without_o_tmpfile_leave_nothing(traces, tmp_path, monkeypatch, path):
    """Where the file system has no unnamed files (O_TMPFILE), a file a run makes for
    window output (a worker's output that this process appends, or windows held past the
    memory a process holds them in) is a temporary file whose name is removed at once: the
    same bytes, nothing left beside the output."""
    from wpptrace import _outputs

    real_open, real_new_file = os.open, _outputs.new_private_file
    named = []

    def no_tmpfile(path, flags, *args, **kwargs):
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            raise IsADirectoryError(21, "Is a directory", path)  # what old kernels answer
        return real_open(path, flags, *args, **kwargs)

    def new_named_file(*args, **kwargs):
        named.append(os.getpid())
        return real_new_file(*args, **kwargs)

    etls, tmfs = traces["synth"]
    runs = _runs_noted(monkeypatch)
    outputs = {}
    for j in (1, 2):
        if j == 2:
            monkeypatch.setattr(os, "open", no_tmpfile)
            monkeypatch.setattr(_outputs, "new_private_file", new_named_file)
            if path == "appended":
                monkeypatch.setattr(parallel._Places, "for_output", classmethod(lambda *_a: None))
            else:
                monkeypatch.setattr(parallel, "_ARENA_BYTES", 64)
                hold_up(monkeypatch, tmp_path.parent / f"{tmp_path.name}-out-of-windows", "parent")
        out = tmp_path / f"out{j}.txt"
        code, _stdout, err = run_fmt_capture(etls[0], tmf_files=tmfs, output=str(out), utc=True, jobs=j)
        assert code == 0, err
        outputs[j] = out.read_bytes()
    assert outputs[2] == outputs[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out1.txt", "out2.txt"]
    [run] = runs
    assert run.in_place == (path == "held")
    if path == "appended":
        assert named and set(named) == {os.getpid()}   # the worker's file among them, made here
    fd = parallel._window_file(str(tmp_path))
    try:
        assert os.fstat(fd).st_nlink == 0 and os.fstat(fd).st_mode & 0o777 == 0o600
    finally:
        os.close(fd)


@pytest.mark.parametrize("arena", [parallel._ARENA_BYTES, 64, 0])
def test_windows_are_written_at_their_places_in_a_file(traces, tmp_path, monkeypatch, arena):
    """Into a file, each process writes its windows at their places; a window decoded
    before the windows ahead of it are sized is held in memory, past the memory in a file of
    its own (a small arena here; none at all: mapping it fails): the bytes and summary of one
    process either way, and nothing left beside the output."""
    etls, tmfs = traces["synth"]
    one = _output_and_summary(tmp_path, 1, etls[0], tmf_files=tmfs, utc=True)
    runs = _runs_noted(monkeypatch)
    marker = tmp_path.parent / f"{tmp_path.name}-out-of-windows"   # (the test lists tmp_path)
    hold_up(monkeypatch, marker, "parent")   # every worker window waits for window 0's size
    if arena:
        monkeypatch.setattr(parallel, "_ARENA_BYTES", arena)
    else:
        real_mmap = parallel.mmap.mmap

        def no_private_memory(*args, **kwargs):      # the arena (the sizes' map is shared)
            if kwargs.get("flags", 0) & parallel.mmap.MAP_PRIVATE:
                raise OSError(12, "Cannot allocate memory")
            return real_mmap(*args, **kwargs)
        monkeypatch.setattr(parallel.mmap, "mmap", no_private_memory)
    assert _output_and_summary(tmp_path, 2, etls[0], tmf_files=tmfs, utc=True) == one
    [run] = runs
    assert run.in_place and run.owners == [0] + [1] * (len(run.owners) - 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out1", "out2", "sum1", "sum2"]


@contextlib.contextmanager
def _places(tmp_path, windows: int):
    """An output file and the places of ``windows`` windows in it (closed at the end)."""
    path = tmp_path / "out.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    places = parallel._Places(fd, parallel._Sizes(windows), str(tmp_path))
    try:
        yield path, places
    finally:
        places.close()
        os.close(fd)


def test_a_held_window_is_written_a_piece_at_a_time(tmp_path, monkeypatch):
    """A held window goes into the output in pieces of at most ``_COPY_CHUNK`` bytes: the
    file system locks the file for the whole of one write, so one write of a window held
    in memory (tens of MB) would stop the other processes' writes until it ends."""
    data = bytes(range(256)) * 40                       # 10,240 bytes: three pieces
    monkeypatch.setattr(parallel, "_COPY_CHUNK", 4096)
    sizes = []
    real_pwrite = os.pwrite

    def noted_pwrite(fd, chunk, at):
        sizes.append(memoryview(chunk).nbytes)
        return real_pwrite(fd, chunk, at)
    with _places(tmp_path, 2) as (path, places):
        held = parallel._Held(places, 1)
        held.write(data)
        monkeypatch.setattr(parallel.os, "pwrite", noted_pwrite)
        held.write_at(7)
    assert sizes == [4096, 4096, 2048]
    assert path.read_bytes() == bytes(7) + data


def test_a_held_window_goes_to_its_place_once_the_windows_before_it_are_sized(tmp_path):
    """A window held while the one before it is decoded elsewhere is written at its place as
    soon as that one's size is known, and its next bytes go straight there: its memory is
    free again for the next window held, with no wait for its own end."""
    with _places(tmp_path, 3) as (path, places):
        held = parallel._Held(places, 1)
        held.write(b"first part\n")
        assert held.place is None and places.used == len(b"first part\n")
        assert held.room() is not None                 # still lent the arena
        places.sizes.set(0, 5)                         # window 0 ended: 5 bytes
        assert held.room() is None                     # settled: no memory lent any more
        assert held.place == 5 and places.used == 0
        held.write(b"second part\n")
        assert held.size == len(b"first part\nsecond part\n")
        later = parallel._Held(places, 2)              # the next window held starts at the
        assert later.memory == [0, 0]                  # arena's start again
    assert path.read_bytes() == bytes(5) + b"first part\nsecond part\n"


def test_a_window_settled_on_a_write_writes_the_held_window_before_it_first(tmp_path):
    """When a window's place becomes known while an earlier window of the same process is
    still held, the earlier one is written at its place too, and nothing stays held."""
    with _places(tmp_path, 4) as (path, places):
        one = parallel._Held(places, 1)
        one.write(b"one\n")
        places.sizes.set(1, one.size)
        places.held[1] = one                           # decoded, waiting for window 0
        two = parallel._Held(places, 2)
        two.write(b"two\n")
        places.sizes.set(0, 3)
        two.write(b"more\n")                          # window 0 is sized: both settle
        assert not places.held and places.used == 0
    assert path.read_bytes() == bytes(3) + b"one\ntwo\nmore\n"


def test_the_rest_redone_from_a_place_ends_the_file_there(tmp_path):
    """Redoing the rest from a window's place writes over what the windows from there put
    in and ends the file where the redone rest ends, shorter or not."""
    from wpptrace.decoder import output as outmod

    path = tmp_path / "out.txt"
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        writer = outmod.TextWriter(stream)
        writer.write_utf8(b"window 0\nwindow 1, written long\n")
        parallel._Places.move_to(writer, len(b"window 0\n"))
        writer.write_utf8(b"redone\n")
        parallel._Places.cut_after(writer)
    assert path.read_bytes() == b"window 0\nredone\n"


@pytest.mark.parametrize("named", [False, True])
def test_jobs_into_a_file_opened_to_append_keep_the_order(traces, tmp_path, monkeypatch, named):
    """Output to a file opened to append (``>> file``: every write lands at its end,
    wherever it was asked to go): the windows are appended here, in order, after what the
    file held; the same bytes as one process, even when a worker writes last. Also when the
    output is named but the writer is not the run's own (``named``: it opened none itself)."""
    from wpptrace.decoder import cli_fmt

    etls, tmfs = traces["driver"]
    parent = os.getpid()
    real_ready, real_all = parallel._Places.write_ready, parallel._Places.write_all
    written = tmp_path.parent / f"{tmp_path.name}-written-here"   # (the test lists tmp_path)

    def written_here(self, wait):
        real_all(self, wait)
        if os.getpid() == parent:
            written.touch()

    def worker_writes_late(self):          # had it pwritten, after every window of this process
        if os.getpid() != parent:
            deadline = time.monotonic() + 60
            while not written.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        return real_ready(self)

    monkeypatch.setattr(parallel._Places, "write_all", written_here)
    monkeypatch.setattr(parallel._Places, "write_ready", worker_writes_late)
    hold_up(monkeypatch, tmp_path / "out-of-windows", "worker")   # this process's tail first
    runs = _runs_noted(monkeypatch)
    outputs = {}
    for j in (1, 2):
        path = tmp_path / f"appended{j}.txt"
        path.write_text("what the file held\n")
        with open(path, "a", encoding="utf-8", newline="\n") as out:
            if named:                      # a caller's own writer for a named output
                monkeypatch.setattr(cli_fmt, "_open_output", lambda _opts, _out, _s=out: (_s, False))
            options = cli_fmt.FmtOptions(files=[str(etls[0])], tmf_dirs=tmfs, utc=True, jobs=j,
                                         output=str(path) if named else None)
            code = cli_fmt.run_fmt(options, out=out, err=io.StringIO())
        assert code == 0
        outputs[j] = path.read_bytes()
    assert outputs[2] == outputs[1] and outputs[1].startswith(b"what the file held\n")
    [run] = runs
    assert not run.in_place and run.owners == [0, 1] + [0] * (len(run.owners) - 2)


def test_jobs_into_a_text_stream_keep_characters_whole(traces, monkeypatch):
    """A text stream (no file to copy into) gets the workers' output through its encoder,
    a few bytes at a time here: characters cut between two reads are written whole."""
    etls, tmfs = traces["synth"]
    monkeypatch.setattr(parallel, "_COPY_CHUNK", 7)
    noted = _runs_noted(monkeypatch)
    runs = {}
    for j in (1, 2):
        code, out, err = run_fmt_capture(etls[0], tmf_files=tmfs, jobs=j, utc=True)
        assert code == 0, err
        runs[j] = out
    assert runs[2] == runs[1]
    assert not noted[0].in_place                         # appended here, through the encoder
    assert any(ord(ch) > 0x7FF for ch in runs[1])        # three-byte characters to cut


@pytest.mark.parametrize("data, whole", [
    (b"", 0), (b"abc", 3), ("é".encode(), 2), ("é".encode()[:1], 0), (b"a" + "€".encode()[:2], 1),
    (b"a" + "€".encode(), 4), ("𝄞".encode()[:3], 0), ("𝄞".encode(), 4),
    (b"ab\x80", 2),           # a stray continuation byte waits for what follows
])
def test_whole_characters(data, whole):
    assert parallel._whole_characters(bytearray(data)) == whole


def test_tmf_problems_only_a_worker_read_are_reported(tmp_path, corpus, monkeypatch):
    """A TMF file only the worker's window needs: its problems are printed as one process
    prints them (and the run keeps nothing in the program cache)."""
    import shutil

    import etlgen
    from wpptrace import tmf

    tmf_dir = tmp_path / "tmf"
    shutil.copytree(golden_traces.driver_tmf_dir(corpus), tmf_dir)
    messages = sorted(tmf.load(str(tmf_dir)).messages(), key=lambda m: (str(m.guid), m.number))
    late = messages[-1].guid                         # its messages only in the second half
    early = [m for m in messages if m.guid != late]
    path = tmf_dir.parent / "late.etl"
    events, ts = [], etlgen.T0
    for k in range(6000):
        m = early[k % len(early)] if k < 4500 or k % 2 else next(x for x in messages if x.guid == late)
        ts += 1000
        events.append((m.guid, m.number, b"", 0x10, 0x20, k % 2, ts))
    etlgen.write_messages(path, events, buffer_size=4096)
    broken = tmf_dir / f"{late}.tmf"
    broken.write_text(broken.read_text(encoding="utf-8-sig") + "this is not a TMF line\n", encoding="utf-8")
    monkeypatch.setattr(parallel, "window_shares", lambda jobs, data_bytes=0: [1.0 / jobs] * jobs)   # no tail
    monkeypatch.setenv("WPPTRACE_CACHE_DIR", str(tmp_path / "cache"))
    found = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(tmf_dir)], output=str(out), utc=True, jobs=jobs)
        assert code == 0, err
        found[jobs] = (out.read_bytes(), [line for line in err.splitlines() if "TMF entry skipped" in line])
    assert found[2] == found[1] and str(broken) in found[1][1][0]
    assert not list((tmp_path / "cache").glob("*.prg"))
    with EtlFile(str(path)) as etl:                  # the parent's window holds none of them
        cuts = parallel.cut_keys(etl, 2)
        rows = [r for items, _keys in FileSource(etl).ordered(record_view, window=(cuts[0], cuts[1]))
                for r in items]
    assert rows and all(r.message_guid != late for r in rows if r.message_guid is not None)


def test_message_keys_cross_the_pipe_as_the_decoders_keys_in_bytes():
    """The keys a worker sends (GUIDs as bytes, in the order of its count marks) are the
    decoder's keys, whichever way each message was met (by a row, by a decoded record, the
    log header), each GUID as its bytes_le."""
    import marshal
    import uuid

    from wpptrace import tmf
    from wpptrace.decoder.wpp import WppDecoder

    guids = [uuid.UUID(int=(k + 1) << 64 | 0x1234) for k in range(3)]
    decoder = WppDecoder(tmf.TmfSet(), utc=True)
    decoder._raw_entry(guids[0].bytes_le, 0)
    decoder._header_entry()
    for n in range(1, 30):
        if n % 7 == 0:
            decoder._entry(guids[n % 3], n)          # met as a record: no row key
        else:
            decoder._raw_entry(guids[n % 3].bytes_le, n)
    keys = decoder.message_keys()
    plain = decoder.plain_message_keys()
    assert plain == [(g.bytes_le if isinstance(g, uuid.UUID) else g, n) for g, n in keys]
    assert marshal.loads(marshal.dumps(plain)) == plain
    for start in (0, 1, 2, 7, 29, 30, 31):        # the ones from a message on (sent after each window)
        assert decoder.plain_message_keys(start) == plain[start:]
    assert ("header", 0) in plain and len(plain) == 31
    assert all(type(g) is bytes for g, _n in plain if g != "header")


def test_counts_by_guid_bytes_reach_the_entries_as_by_message_keys():
    """A worker's counts added by its plain keys: messages with a row entry here are found by
    their GUID bytes; the rest (unseen here, the header) come back to be added by those keys,
    zero counts left out, and the counts end as ``add_message_counts`` by UUID makes them."""
    import uuid

    from wpptrace import tmf
    from wpptrace.decoder.wpp import WppDecoder

    guids = [uuid.UUID(int=(k + 1) << 64 | 0x5678) for k in range(2)]
    keys = [("header", 0), (guids[0], 1), (guids[0], 2), (guids[1], 3), (guids[1], 4)]
    counts = [1, 5, 0, 7, 2]
    plain = [(g.bytes_le if isinstance(g, uuid.UUID) else g, n) for g, n in keys]

    def counted(via_bytes: bool) -> dict:
        decoder = WppDecoder(tmf.TmfSet(), utc=True)
        seen = decoder._raw_entry(guids[0].bytes_le, 1)            # a row of it printed here
        decoder._raw_entry(guids[0].bytes_le, 2)
        seen.count = 3
        if via_bytes:
            left = decoder.add_plain_message_counts(plain, counts)
            assert [key for key, _n in left] == [plain[0], plain[3], plain[4]]
            decoder.add_message_counts(dict(left))
        else:
            decoder.add_message_counts({key: n for key, n in zip(keys, counts) if n})
        decoder._sync_native_counts()                       # (the entries' counts brought up to date)
        return {key: entry.count for key, entry in zip(decoder.message_keys(), decoder._entries.values())}

    assert counted(True) == counted(False)
    assert counted(True)[(guids[0], 1)] == 8 and counted(True)[(guids[1], 3)] == 7


_FULL_TABLE_RUN = r"""
import os, pathlib, resource, sys
sys.path.insert(0, sys.argv[1])
from fmthelp import hold_up, run_fmt_capture
from wpptrace.decoder import parallel

class Patch:
    setattr = staticmethod(setattr)

real = parallel._Places.write_all

def write_all(self, wait):      # every descriptor taken while a process waits for its places
    fillers = []
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        real(self, wait)
    finally:
        for fd in fillers:
            os.close(fd)

resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
parallel._Places.write_all = write_all
hold_up(Patch(), pathlib.Path(sys.argv[5]), sys.argv[6])
assert "select" not in sys.modules
code, _out, err = run_fmt_capture(sys.argv[2], tmf_dirs=[sys.argv[3]], output=sys.argv[4], utc=True, jobs=2)
print(err, end="", file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("held", ["worker", "parent"])
def test_a_process_waiting_for_its_places_with_no_descriptor_left_still_ends_well(
        traces, tmp_path, held):
    """Every descriptor taken when a process of a -j 2 run, its windows held behind the
    other's first, waits for their places (a tight ``ulimit -n``): the wait needs none (no
    module loaded then), and the run gives the bytes of one process."""
    import subprocess
    import sys

    etls, tmfs = traces["driver"]
    one = tmp_path / "one.txt"
    code, _stdout, err = run_fmt_capture(etls[0], tmf_dirs=tmfs, output=str(one), utc=True, jobs=1)
    assert code == 0, err
    out = tmp_path / "two.txt"
    res = subprocess.run([sys.executable, "-c", _FULL_TABLE_RUN, str(pathlib.Path(__file__).parent),
                          str(etls[0]), str(tmfs[0]), str(out), str(tmp_path / "out-of-windows"), held],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == one.read_bytes()


def test_a_worker_sends_each_window_s_counts_with_its_end(traces, tmp_path, monkeypatch):
    """A worker's count marks, message keys, counters and read log go with each window's end,
    as this process reads them while it runs (a part of a mark that did not change since the
    worker's last window is not sent again): its last message carries none of them, only which
    windows it decoded; the bytes and summary are one process's, also when windows are redone."""
    import marshal

    etls, tmfs = traces["driver"]
    cuts = _six_windows(etls[0])
    doctored = tmp_path / "early.etl"
    _flushed_too_early(etls[0], doctored, cuts[4])               # window 4 starts too late
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: cuts)
    sent = tmp_path.parent / f"{tmp_path.name}-sent"              # (every process appends)
    real_dumps = marshal.dumps

    class Noted:
        loads = staticmethod(marshal.loads)

        @staticmethod
        def dumps(message):
            data = real_dumps(message)
            if message[0] in ("end", "done"):
                fd = os.open(sent, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, len(data).to_bytes(4, "little") + data)
                finally:
                    os.close(fd)
            return data

    for etl in (etls[0], doctored):
        one = _output_and_summary(tmp_path, 1, etl, tmf_dirs=tmfs, utc=True)
        monkeypatch.setattr(parallel, "marshal", Noted)
        hold_up(monkeypatch, tmp_path / "out-of-windows", "parent")   # the worker: windows 1 to 5
        runs = _runs_noted(monkeypatch)
        assert _output_and_summary(tmp_path, 2, etl, tmf_dirs=tmfs, utc=True) == one
        [run] = runs
        assert run.redone_from == (4 if etl == doctored else None)
        assert run.owners == [0, 1, 1, 1, 1, 1]
        data, messages = sent.read_bytes(), []
        while data:
            size = int.from_bytes(data[:4], "little")
            messages.append(marshal.loads(data[4:4 + size]))
            data = data[4 + size:]
        sent.unlink()
        (tmp_path / "out-of-windows").unlink()
        monkeypatch.undo()
        monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: cuts)
        *ends, (_done, payload) = messages
        assert [end[1] for end in ends] == [1, 2, 3, 4, 5]
        assert all(len(end[4]) == 3 and end[4][2] is not None for end in ends)   # (rows: always)
        assert all(part is not None for part in ends[0][4])
        assert ends[0][5] and sum(len(end[5]) for end in ends) + len(payload["keys"]) > len(ends[0][5])
        assert all(set(end[6]) == {"counters", "errors", "issues_dropped", "stats"} for end in ends)
        assert payload["windows"] == dict.fromkeys([1, 2, 3, 4, 5])


def test_a_worker_s_messages_wait_for_no_room_in_the_pipe(monkeypatch):
    """A worker's message longer than the room left in its pipe (this process busy with its
    own window) is written as room comes, with its next message, never waiting for it; the
    last one (``wait``) waits for room: this process reads every message whole, in order."""
    import threading

    read_fd, write_fd = os.pipe()
    reader = parallel._Worker(1, 0, read_fd, -1, -1)
    os.set_blocking(read_fd, False)
    outbox = parallel._Outbox(write_fd)
    big = ("end", 1, b"m" * 300_000)
    outbox.send(big)                                  # (returns: most of it not written yet)
    outbox.send(("begin", 2, 0))
    first = reader.receive()
    assert first == [] and outbox._pending            # the pipe full, nothing whole yet
    got = []
    while len(got) < 2:
        got += reader.receive()
        outbox.send(("end", 2, b""))                   # each send writes what the room allows
    assert got[:2] == [big, ("begin", 2, 0)]
    waiting = threading.Thread(target=outbox.send, args=(("done", b"r" * 300_000),), kwargs={"wait": True})
    waiting.start()
    deadline = time.monotonic() + 30
    while got[-1][0] != "done" and time.monotonic() < deadline:   # (read as room is needed)
        got += reader.receive()
    waiting.join()
    assert got[-1] == ("done", b"r" * 300_000) and not outbox._pending
    assert all(message == ("end", 2, b"") for message in got[2:-1])
    os.close(write_fd)
    os.close(read_fd)


class _TextWriter:
    """A writer as fmt's: ``stream`` a text stream over a byte buffer."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def flush(self) -> None:
        self.stream.flush()


@pytest.mark.parametrize("before, grown, where", [
    (0, True, "end of the file"),           # the first unsized window's text was written: kept
    (0, False, "sized end"),                # nothing past the sized windows
    (1 << 20, True, "sized end"),           # an older, longer file: its old bytes are not the run's
])
def test_a_failing_run_leaves_the_stream_where_the_written_text_ends(tmp_path, before, grown, where):
    """A run failing with its processes stopped: the stream goes where the text written at
    places ends, the first window not sized included when the file grew past what it held
    (its process stopped after writing it and before giving its size)."""
    path = tmp_path / "out"
    path.write_bytes(b"o" * before)
    with open(path, "r+", encoding="utf-8", newline="\n") as stream:
        places = parallel._Places(stream.buffer.fileno(), parallel._Sizes(3), None)
        try:
            places.sizes.set(0, 100)
            places.sizes.set(1, 50)
            os.pwrite(places.fd, b"w" * 150, 0)
            if grown:
                os.pwrite(places.fd, b"x" * 40, 150)    # window 2 at its place, never sized
            places.end_written(_TextWriter(stream))
            offset = os.lseek(places.fd, 0, os.SEEK_CUR)
        finally:
            places.close()
    size = max(before, 190 if grown else 150)
    assert offset == (size if where == "end of the file" else 150)
