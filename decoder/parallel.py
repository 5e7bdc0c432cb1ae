"""``fmt -j N``: one .etl file decoded by N processes, the same bytes as one process.

The ProcessTrace order of a file is a merge of its processor streams by merge key (each
stream's running maximum time). Cutting the keys at N - 1 times gives N windows; each window's
records, merged by the engine exactly as the whole file would be, are a contiguous run of the
whole order (``FileSource.ordered(view, window=...)``), so the windows' outputs written one
after the other are the whole output. This process decodes the first window into the output;
each other window is decoded by a worker process (forked: it starts with this process's TMF set
and decoder settings) into a file with no name, appended in order as it grows once the windows
before it are written (in the kernel when the output is a file). The workers' counts
(messages, Unknowns, format errors, per-message counts for the summary) and read logs
(buffers, damage: each buffer is accounted by one window) are added to this process's.
Each message is compiled by the first process that needs it, the others install its program
from a table shared across the fork (decoder.program_share). A worker starts each stream at
its first buffer flushed at or after the window's start, without reading the ones before (a
buffer is flushed after its records, as Windows writes files); where the window before it
stopped shows a record it passed, this process decodes the rest of the file itself.

The cut times come from the buffer headers' times, weighted by the bytes each buffer holds,
so the windows carry about the same work; any cut gives the same output.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import stat
import tempfile
import threading
import time
import traceback
from typing import IO, NamedTuple

from .jobs import AUTO_MIN_BYTES, default_jobs, usable_cores

__all__ = ["cut_keys", "decode_parallel", "ParallelRun", "Timeline", "default_jobs", "usable_cores", "AUTO_MIN_BYTES"]

_COPY_CHUNK = 1 << 20
#: the first window's share of an even split: its process also appends the other windows'
#: outputs (in the kernel: about 45 ms for 75 MB); at 0.97 the worker's part takes 4% more
#: instructions than this process's (1,570 M against 1,506 M; benchmarks/bench_jobs_work.py,
#: 1M-event text files), about what the copy costs this process
_FIRST_SHARE = 0.97


def cut_keys(etl, jobs: int, streams=None, first_share: float | None = None) -> list[int | None]:
    """The window bounds [None, k1, ..., None] for ``jobs`` windows: raw times at which about
    1/jobs of the data buffers' bytes have been written (``first_share``: the first window's
    share of an even split, the others sharing the rest). A buffer's header time is when it
    was flushed; its bytes are taken as written evenly since the previous flush of its stream
    (the first ones since the file's first flush). ``streams``: the file's
    ``buffer_streams`` when made."""
    from .ordering import buffer_streams

    if jobs <= 1:
        return [None, None]
    if streams is None:
        streams = buffer_streams(etl)
    columns = [(stream.column("timestamp"), stream.column("filled_bytes")) for stream in streams]
    if not any(times for times, _sizes in columns):
        return [None, None]
    # the bytes written by time t rise linearly inside each buffer's span: a sweep over the
    # spans' ends (time, change of rate, bytes at once)
    changes: list[tuple[int, float, float]] = []
    start = min(min(times) for times, _sizes in columns if times)
    total = 0.0
    for times, sizes in columns:
        previous = start
        for flushed, filled in zip(times, sizes):
            lo, hi = (previous, flushed) if previous <= flushed else (flushed, previous)
            weight = float(max(1, filled))
            total += weight
            if hi > lo:
                rate = weight / (hi - lo)
                changes += ((lo, rate, 0.0), (hi, -rate, 0.0))
            else:
                changes.append((hi, 0.0, weight))
            previous = flushed
    changes.sort()
    first = (1.0 if first_share is None else first_share) / jobs
    bounds = [total * (first + (1 - first) * (k - 1) / (jobs - 1)) for k in range(1, jobs)]
    cuts: list[int | None] = [None]
    done, rate, at, k = 0.0, 0.0, start, 0
    for t, change, lump in changes:
        reached = done + rate * (t - at)
        while k < len(bounds) and reached >= bounds[k]:   # crossed inside (at, t]
            cut = at + int((bounds[k] - done) / rate) if rate > 0 else t
            if cuts[-1] is None or cut > cuts[-1]:
                cuts.append(cut)
            k += 1
        done, rate, at = reached + lump, rate + change, t
        while k < len(bounds) and done >= bounds[k]:      # reached by a buffer's bytes at t
            if cuts[-1] is None or t > cuts[-1]:
                cuts.append(t)
            k += 1
    cuts.append(None)
    return cuts


def decode_parallel(decoder, writer, opts, inp, jobs: int, err: IO[str]) -> "ParallelRun":
    """Decode ``inp`` (cli_fmt's input) in ``jobs`` processes into ``writer``: this process
    decodes the first window straight into the writer while forked workers decode the others
    into files with no name, appended as they grow once this process's window is written; their
    counts and read logs end up in ``decoder`` and ``inp.etl`` as if this process had decoded
    the whole file. Each message is compiled by one of the processes (``ProgramShare``).
    A worker does not read the buffers its window's streams hold before its start by their
    flush times; this process checks that against where the window before ended, and
    decodes the rest itself where that was wrong (a buffer holding a record later than its
    flush): the output is the same either way."""
    from . import cli_fmt

    began = time.monotonic()
    # this process also appends the workers' outputs: its window is a little smaller
    cuts = cut_keys(inp.etl, jobs, inp.source.streams(), _FIRST_SHARE)  # reads the layout too
    windows = list(zip(cuts[:-1], cuts[1:]))
    out_dir = os.path.dirname(os.path.abspath(opts.output)) if opts.output not in (None, "-") else None
    share = _program_share()
    workers: list[_Worker] = []
    decoder.share_programs(share)
    try:
        for k in range(1, len(windows)):  # forked before this process decodes anything
            workers.append(_Worker.start(k, windows[k], inp, decoder, opts, out_dir, workers))
        forked = time.monotonic()
        cli_fmt._decode_sources(decoder, writer, opts, [inp.source], None, windows[0])
        writer.flush()
        written = time.monotonic()
        results, redone = [], None
        stops = inp.source.window_stops
        for k, worker in enumerate(workers, start=1):
            if redone is None and not _started_right(inp.source, windows[k][0], stops):
                redone = k
            if redone is not None:
                results.append(worker.discard())
                continue
            results.append(worker.append_into(writer))
            status, result = results[-1]
            stops = result["stops"] if status == "ok" else None
        if redone is not None:      # a worker started too late: this process does the rest
            cli_fmt._decode_sources(decoder, writer, opts, [inp.source], None,
                                    (windows[redone][0], None))
            writer.flush()
        appended = time.monotonic()
    finally:
        for worker in workers:
            worker.stop()
        decoder.share_programs(None)
        if share is not None:
            share.close()
    used = results if redone is None else results[:redone - 1]
    failed = [result for status, result in used if status == "error"]
    if failed:
        for worker in workers:
            worker.settle()
        raise RuntimeError(f"a decoding process failed:\n{failed[0]}")
    for _status, result in used:
        _add_result(decoder, inp.etl, result)
    mine = (share.compiled, share.installed) if share is not None else (0, 0)
    ended = [result["ended"] - began if status == "ok" else None for status, result in results]
    timeline = Timeline(forked - began, written - began, ended, appended - began,
                        time.monotonic() - began)
    return ParallelRun([mine] + [tuple(result["shared"]) if status == "ok" else (0, 0)
                                 for status, result in results], redone, timeline)


class Timeline(NamedTuple):
    """When each step of a ``decode_parallel`` call ended, in seconds from its start: the
    workers forked (the window cuts made before), this process's window written, each
    worker's window decoded (None: no result), every output appended, the call's end (the
    workers released, their counts added)."""

    forked: float
    window_written: float
    workers_ended: list[float | None]
    appended: float
    done: float


class ParallelRun(NamedTuple):
    """What ``decode_parallel`` did: (messages compiled, messages taken from another's
    record) per process, this one first; the window from which this process decoded the
    rest itself (a worker's start was wrong), or None; when its steps ended."""

    shares: list[tuple[int, int]]
    redone_from: int | None
    timeline: Timeline


def _started_right(source, lo: int, stops: dict[int, int] | None) -> bool:
    """Whether the window from ``lo`` started each stream where reading the whole stream
    would have: the buffers it did not read (``FileSource.flushed_before``) all come before
    the one where the window ending at lo stopped (``stops``: its ``window_stops``), so none
    of them holds a record at or after lo."""
    if stops is None:
        return False
    return all(skip == 0 or stops.get(stream, -1) >= skip
               for stream, skip in enumerate(source.flushed_before(lo)))


def _program_share():
    """The table the run's processes share compiled messages through; None when no shared
    memory can be had (each process then compiles the messages it prints)."""
    from .program_share import ProgramShare

    try:
        return ProgramShare()
    except (OSError, ValueError, MemoryError):
        return None


class _Worker:
    """A forked process decoding one window into a file with no name (``_window_file``, held
    by both processes); its result (counts, read log) comes back pickled through a pipe (one
    program on both ends), the pipe's end says it is done. Once its output is appended (or
    left out), this process closes the file and releases the worker: the worker holds the
    file last, so freeing its blocks (10 ms for 75 MB) happens as it ends, on its own core,
    while this process finishes the run; nothing is left to remove."""

    _POLL = 0.005   # seconds between looks at a growing output

    def __init__(self, pid: int, fd: int, file_fd: int, release_fd: int) -> None:
        self.pid, self.fd, self.file_fd, self.release_fd = pid, fd, file_fd, release_fd
        self.done = False
        self._poll = None
        self._reaper: threading.Thread | None = None

    @classmethod
    def start(cls, k: int, window, inp, decoder, opts, out_dir: str | None,
              started: list["_Worker"]) -> "_Worker":
        file_fd = _window_file(out_dir)       # there from the start: appended as it grows
        read_fd, write_fd = os.pipe()
        release_read, release_write = os.pipe()
        pid = os.fork()
        if pid == 0:                          # the worker: never returns
            os.close(read_fd)
            os.close(release_write)
            for other in started:             # the workers before it are the parent's alone
                os.close(other.release_fd)
                os.close(other.file_fd)
            _worker(k, window, inp, decoder, opts, file_fd, write_fd, release_read)
        os.close(write_fd)
        os.close(release_read)
        return cls(pid, read_fd, file_fd, release_write)

    def append_into(self, writer) -> tuple[str, object]:
        """Append the window's output to ``writer`` while the worker writes it (in the kernel
        when the output is a plain file written as UTF-8 bytes); its result once it ends."""
        fd = _raw_fd(writer)
        received, tail = bytearray(), bytearray()
        copied = 0
        while True:
            ended = self._receive(received, wait=0)
            size = os.fstat(self.file_fd).st_size   # read after: a finished worker's file is whole
            if size > copied:
                done = _copy_range(self.file_fd, copied, size - copied, fd, writer, tail)
                if not done:
                    raise OSError(f"cannot append window output at byte {copied}")
                copied += done
            elif ended:
                break
            else:
                self._receive(received, wait=self._POLL)
        if tail:
            writer.write_utf8(bytes(tail))
        self._release()
        return _unpickled(received)

    def discard(self) -> tuple[str, object]:
        """Wait for the worker to end, its output left unused; its result."""
        received = bytearray()
        while not self._receive(received, wait=self._POLL):
            pass
        self._release()
        return _unpickled(received)

    def _receive(self, received: bytearray, wait: float) -> bool:
        """Read what the worker sent; True once it closed its end (it is done)."""
        if self.done:
            return True
        if self._poll is None:
            self._poll = select.poll()               # poll: no limit on descriptor numbers
            self._poll.register(self.fd, select.POLLIN)
        timeout = int(wait * 1000)
        while self._poll.poll(timeout):
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                self.done = True
                return True
            received += chunk
            timeout = 0
        return False

    def _release(self) -> None:
        """Let the ended worker go, its output no longer needed: the file freed as the
        worker ends; reaped by a thread if it has not ended yet."""
        self._close_pipes()                  # closing the release pipe lets it end
        if self.pid:
            pid, self.pid = self.pid, 0
            try:
                reaped, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if not reaped:
                self._reaper = threading.Thread(target=_wait_quietly, args=(pid,), daemon=True,
                                                name="wpptrace-fmt-worker")
                self._reaper.start()

    def settle(self) -> None:
        """Wait until the released worker has ended (a failing run leaves no process)."""
        if self._reaper is not None:
            self._reaper.join()

    def _close_pipes(self) -> None:
        for name in ("file_fd", "release_fd", "fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def stop(self) -> None:
        """Stop and reap the worker if it is still there (this process is failing)."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0
        self._close_pipes()


def _wait_quietly(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


def _unpickled(received: bytearray) -> tuple[str, object]:
    try:
        return pickle.loads(received)
    except Exception:  # noqa: BLE001  (a worker that died before sending its result)
        return ("error", "a worker process ended without a result")


def _copy_range(src: int, at: int, count: int, fd: int | None, writer, tail: bytearray) -> int:
    """Copy ``count`` bytes of the file ``src`` from ``at`` to the output: copy_file_range
    into ``fd`` when given, else through the writer, whole characters at a time (``tail``:
    the start of a character cut by the end of what was there, written with the next bytes).
    Reads at explicit offsets: the worker writes through the same open file, at its offset."""
    copied = 0
    if fd is not None:
        try:
            while copied < count:
                done = os.copy_file_range(src, fd, count - copied, at + copied)
                if done <= 0:
                    break
                copied += done
        except OSError:
            pass
    if copied < count:
        while copied < count:
            chunk = os.pread(src, min(_COPY_CHUNK, count - copied), at + copied)
            if not chunk:
                break
            copied += len(chunk)
            tail += chunk
            whole = _whole_characters(tail)
            if whole:
                writer.write_utf8(bytes(tail[:whole]))
                del tail[:whole]
    return copied


def _whole_characters(data: bytearray) -> int:
    """The length of ``data``'s longest prefix that ends at a UTF-8 character boundary."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte < 0x80:
            return n - back + 1
        if byte >= 0xC0:           # the lead byte of the last character: is it complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return n if back >= need else n - back
    return n                      # not UTF-8 here: written as it is, its decoder will say


def _window_file(directory: str | None) -> int:
    """A new empty file with no name, read and written by descriptor, for a worker's output:
    in the output's directory (so copy_file_range can append it there; else the temporary
    directory), private to this user, freed once the last process holding it closes it.
    O_TMPFILE where the file system has it, else a temporary file whose name is removed at
    once. Nothing is left to remove after the run, whatever way it ends."""
    directory = directory or tempfile.gettempdir()
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError:
            pass                   # not on this file system: a named file, unnamed at once
    fd, path = tempfile.mkstemp(prefix=".wpptrace-fmt-", dir=directory)
    os.unlink(path)
    return fd


def _raw_fd(writer) -> int | None:
    """The file descriptor behind a text writer's stream when bytes can go there directly."""
    stream = getattr(writer, "stream", None)
    buffer = getattr(stream, "buffer", None)
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if buffer is None or encoding != "utf8" or os.linesep != "\n" or not hasattr(os, "copy_file_range"):
        return None
    try:
        stream.flush()
        buffer.flush()
        fd = buffer.fileno()
    except (OSError, AttributeError, ValueError):
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _worker(k: int, window, inp, decoder, opts, file_fd: int, result_fd: int,
            release_fd: int) -> None:
    """One window of the file, decoded into the file ``file_fd`` (held to the end: freed as
    this process ends); the counts sent back. The .etl file is opened anew (the parent's
    handle shares its offset across the fork), with the parent's buffer index. Once released
    (``release_fd`` closed by the parent, or the parent gone), the process ends. Never
    returns."""
    status = 0
    try:
        try:
            from . import cli_fmt
            from .engine import FileSource
            from .etlfile import EtlFile

            etl = EtlFile(inp.path)
            etl.adopt_index(inp.etl)
            try:
                # (64 KiB buffer: the renderer's chunks go straight to the file, as fmt's own
                # output does, not copied through the buffer)
                with open(file_fd, "w", encoding="utf-8", newline="\n", buffering=1 << 16,
                          closefd=False) as stream:
                    writer = cli_fmt._writer(opts, stream, header=k == 0)
                    source = FileSource(etl, trust_flush_times=True)   # checked by the parent
                    cli_fmt._decode_sources(decoder, writer, opts, [source], None, window)
                    writer.flush()
                result = ("ok", _result(decoder, etl, source))
            finally:
                etl.close()
        except BaseException:  # the parent reports it; a worker never raises past here
            result = ("error", traceback.format_exc())
        with os.fdopen(result_fd, "wb") as pipe:
            pipe.write(pickle.dumps(result))
        while os.read(release_fd, 1 << 12):     # until the parent lets go (or is gone)
            pass
    except BaseException:  # noqa: BLE001  (nothing to tell: the parent sees no result)
        status = 1
    finally:
        os._exit(status)


def _result(decoder, etl, source) -> dict:
    c = decoder.counters
    stats = etl.stats
    share = decoder.shared_programs
    return {
        "ended": time.monotonic(),          # the same clock in every process of the machine
        "shared": (share.compiled, share.installed) if share is not None else (0, 0),
        "stops": dict(source.window_stops),
        "counters": {name: getattr(c, name) for name in ("events", "messages", "formatted", "unknown",
                                                         "format_errors", "non_wpp", "headers")},
        "counts": decoder.message_counts(),
        "errors": [(issue.offset, issue.message) for issue in etl.errors],
        "issues_dropped": etl.issues_dropped,
        "stats": {"buffers": stats.buffers, "compressed_buffers": stats.compressed_buffers,
                  "by_kind": dict(stats.by_kind), "damaged": stats.damaged,
                  "unreadable_buffers": stats.unreadable_buffers},
    }


def _add_result(decoder, etl, result: dict) -> None:
    c = decoder.counters
    for name, value in result["counters"].items():
        setattr(c, name, getattr(c, name) + value)
    decoder.add_message_counts(result["counts"])
    for offset, message in result["errors"]:
        etl._issue(offset, message)
    etl.issues_dropped += result["issues_dropped"]
    stats = etl.stats
    for name, value in result["stats"].items():
        if name == "by_kind":
            for kind, n in value.items():
                stats.by_kind[kind] = stats.by_kind.get(kind, 0) + n
        else:
            setattr(stats, name, getattr(stats, name) + value)
