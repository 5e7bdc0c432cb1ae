"""``fmt -j N``: one .etl file decoded by N processes, the same bytes as one process.

The ProcessTrace order of a file is a merge of its processor streams by merge key (each
stream's running maximum time). Cutting the keys at some times gives windows; each window's
records, merged by the engine exactly as the whole file would be, are a contiguous run of the
whole order (``FileSource.ordered(view, window=...)``), so the windows' outputs written one
after the other are the whole output.

The file is cut into small windows (a few per process at least, a few MB of the file each,
the first one half that, the last ones smaller and smaller: ``window_shares``); each process
decodes one, then takes the next one left as it becomes free (``_Claims``): a process slowed
by others on its core, or a window heavier than its bytes said, leaves more windows to the
others, and the processes end close together. This process decodes the first window into the
output; the workers are forked (each starts with this process's TMF set and decoder
settings). When the output is a file, each process writes its windows at their places in it
(``_Places``): a window's place is known once the windows before it have their sizes, which
the processes share; one decoded before that is held in memory until then (the C renderer
prints it there). Otherwise (a pipe, a console) the workers decode into files with no name
and this process appends each window's output in window order, as it grows (``_Assembly``);
a window it takes itself goes straight into the output when every window before it is in,
else into a file of its own. Each window's counts (messages, Unknowns, format errors) and
read log (buffers, damage: each buffer is accounted by one window) are added to this
process's in window order, as they come while it decodes or waits (``_Merge``: the end has
the last window's part left), and each worker's per-message counts for the summary at the
end, so the summary and the warnings are the ones one process gives. Each message is
compiled by the first process that needs it; the others install its program from a table
shared across the fork (decoder.program_share), so a TMF file may be read by one process
only: the problems the workers met in TMF files are reported with this process's
(``WppDecoder.tmf_issues``).

A window's streams start at their first buffer flushed at or after the window's start,
without reading the ones before (a buffer is flushed after its records, as Windows writes
files); where the window before it stopped shows a record it passed, this process decodes
the rest of the file itself.

The cut times come from the buffer headers' times, weighted by the bytes each buffer holds,
so the windows carry about the work their shares say; any cut gives the same output.
"""
from __future__ import annotations

import io
import marshal
import mmap
import os
import stat
import struct
import _thread
import time
from itertools import accumulate

from wpptrace._fieldclass import fieldclass
from wpptrace.winerror import Win32Error, as_win32

from ._hazmat import ETL, address_of, wait_readable
from .buffers import ReadStats
from .jobs import AUTO_MIN_BYTES, default_jobs, usable_cores

try:   # the C module under ``signal``, which builds enums when imported (0.5 ms before the fork)
    from _signal import SIGKILL as _SIGKILL
except ImportError:
    from signal import SIGKILL as _SIGKILL

TYPE_CHECKING = False   # typing, tempfile and traceback are not imported on -j's path: 26 ms
if TYPE_CHECKING:       # before the fork, where the other processes wait
    from typing import IO

__all__ = ["cut_keys", "window_shares", "decode_parallel", "ParallelRun", "Timeline",
           "default_jobs", "usable_cores", "AUTO_MIN_BYTES"]

_COPY_CHUNK = 1 << 20
#: windows per process at least, and about the .etl bytes a window holds (the first and
#: the last ones, half that): a window decoded before its place in the output is known is
#: held in memory, and memory a process touches for the first time costs the kernel a page
#: clear (0.2-0.5 ms a MB of text on this VM), so what is held stays part of one small
#: window at a time and its memory is used again; a window costs about 0.5 ms of its own
_WINDOWS_EACH = 4
_WINDOW_BYTES = 4 << 20
_POLL = 0.005      # seconds between looks at the workers when waiting for them
_MAX_JOBS = 1024   # processes at most (the claims pipe holds every window number at once)
_FRAME = struct.Struct("<I")       # the length of a message from a worker
_CLAIM = struct.Struct("<H")       # a window number in the claims pipe
#: the memory each process may hold windows in while their places in the output are not
#: known yet (what does not fit goes to a file of its own and is copied from there)
_ARENA_BYTES = 256 << 20
_COUNTERS = ("events", "messages", "formatted", "unknown", "format_errors", "non_wpp", "headers")


def window_shares(jobs: int, data_bytes: int = 0) -> list[float]:
    """The windows' shares of the work for ``jobs`` processes and a file of ``data_bytes``:
    ``_WINDOWS_EACH`` per process or windows of ``_WINDOW_BYTES``, whichever are more. The
    first one is half the size: this process ends it while the first worker is half-way
    through its own, so from then on each process's window starts about half a window after
    the one before it, and is held in memory only until that one ends (with windows that
    end together, each is held whole). The last ``jobs`` windows' worth of the file comes
    in windows that get smaller (jobs of a half, jobs of a quarter, 2 x jobs of an eighth):
    the processes, taking them as each becomes free, end within about an eighth of a window
    of each other, where equal last windows left one process idle for up to one of them."""
    if jobs <= 1:
        return [1.0]
    n = max(_WINDOWS_EACH * jobs, -(-data_bytes // _WINDOW_BYTES))
    units = [4] + [8] * (n - 2 * jobs - 1) + [4] * jobs + [2] * jobs + [1] * (2 * jobs)
    total = sum(units)
    return [unit / total for unit in units]


def _tail_start(windows: int, jobs: int) -> int:
    """The first of the last, smaller windows (``window_shares``: 4 x ``jobs`` of them)."""
    return max(1, windows - 4 * jobs)


def cut_keys(etl, jobs: int, streams=None, shares: list[float] | None = None) -> list[int | None]:
    """The window bounds [None, k1, ..., None]: raw times at which the data buffers' bytes
    written reach each window's share (``shares``, adding up to 1; default: ``jobs`` even
    windows). A buffer's header time is when it was flushed; its bytes are taken as written
    evenly since the previous flush of its stream (the first ones since the file's first
    flush). Windows that would be empty are left out. ``streams``: the file's
    ``buffer_streams`` when made."""
    from .ordering import buffer_streams

    if shares is None:
        shares = [1.0 / jobs] * jobs if jobs > 1 else [1.0]
    if len(shares) <= 1:
        return [None, None]
    if streams is None:
        streams = buffer_streams(etl)
    cuts = _cut_times(streams, shares)
    if cuts is not None:
        return [None, *cuts, None]
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
    whole = sum(shares)
    bounds = [total * part / whole for part in accumulate(shares[:-1])]
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


def _cut_times(streams, shares: list[float]) -> list[int] | None:
    """``cut_keys``'s cuts by one C pass over the index columns (``cuts_sweep``: the same
    arithmetic, 0.05 ms against 1 ms for 808 buffers), when the streams are positions in one
    buffer index; else (or when a time needs more than 64 bits) None."""
    from ._hazmat import cut_times
    from .etlfile import BufferSubset

    if not streams or not all(type(stream) is BufferSubset for stream in streams):
        return None
    index = streams[0].parent
    if any(stream.parent is not index or stream.positions.typecode != "I" for stream in streams):
        return None
    times, sizes = index.column("timestamp"), index.column("filled_bytes")
    if times.typecode != "q" or sizes.typecode != "I":
        return None
    return cut_times(times, sizes, [stream.positions for stream in streams],
                     list(accumulate(shares[:-1])), sum(shares))


def decode_parallel(decoder, writer, opts, inp, jobs: int, err: IO[str],
                    opened_here: bool = False, waiting=None) -> "ParallelRun":
    """Decode ``inp`` (cli_fmt's input) in ``jobs`` processes into ``writer`` (see the
    module docstring): this process decodes the first window straight into the writer while
    forked workers decode theirs; the other windows go to whichever process is free; each
    window's output is written at its place by the process that decoded it (a file), or
    appended here in order as it grows. The windows' counts and read logs end
    up in ``decoder`` and ``inp.etl`` as if this process had decoded the whole file. Each
    message is compiled by one of the processes (``ProgramShare``). Where a window's start,
    taken from flush times, passed a record (a buffer holding a record later than its
    flush), this process decodes the rest itself: the output is the same either way.
    ``opened_here``: ``writer`` writes only to a file the run opened itself, not to append
    (else the output's file is asked whether it appends: ``_Places.for_output``).
    ``waiting``: called (no argument) when this process first waits for the workers, its
    windows decoded: work of the run's end done ahead (fmt's summary file opened)."""
    from . import cli_fmt
    from .wpp_rows import RowView

    began = time.monotonic()
    jobs = min(jobs, _MAX_JOBS)
    cuts = cut_keys(inp.etl, jobs, inp.source.streams(), window_shares(jobs, inp.etl.file_size))  # and the layout
    windows = list(zip(cuts[:-1], cuts[1:]))
    first = min(jobs, len(windows))           # windows given out before any is taken
    # a file of the run's own (-o) is written at places, the window files beside it; a descriptor
    # the process was handed (-o /dev/stdout, a redirect) is written to as stdout is
    from wpptrace._outputs import handed_descriptor

    own_file = opts.output not in (None, "-") and handed_descriptor(opts.output) is None
    out_dir = os.path.dirname(os.path.abspath(opts.output)) if own_file else None
    share = _program_share(first)
    claims = _Claims(range(first, len(windows)))
    workers: list[_Worker] = []
    places = _Places.for_output(writer, len(windows), out_dir, opened_here)
    own = _OwnWindows(inp, opts, out_dir)
    decoder.share_programs(share)
    try:
        for k in range(1, first):             # forked before this process decodes anything
            workers.append(_Worker.start(k, windows, claims, inp, decoder, opts, out_dir, workers, places))
        for worker in workers:                # (the thread that reaps it: started now, not at
            worker.watch()                    # the run's end, where each ms is the run's)
        forked = time.monotonic()
        view = RowView()                      # one for all this process's windows
        cli_fmt._decode_sources(decoder, writer, opts, [inp.source], None, windows[0], view)
        writer.flush()
        output = _Assembly(windows, inp.source, writer, workers, claims, places is not None)
        merge = output.merge = _Merge(decoder, inp.etl, own.results, output)
        output.idle = _idle_work(decoder, share, bool(opts.summary), waiting, merge)
        output.ahead = _ahead_work(decoder, bool(opts.summary), waiting)
        output.tail = _tail_start(len(windows), jobs)
        output.stops[0] = dict(inp.source.window_stops)
        if places is not None:
            places.sizes.set(0, places.end_of(writer))   # window 0's size: where it ends
        decoded = time.monotonic()
        if places is not None:                # each window written at its place by its decoder
            for k in iter(claims.take, None):
                output.pump()
                output.ahead_of(k)
                own.decode(decoder, k, windows[k], view, None, places)
                output.stops[k] = own.results[k]["stops"]
                places.write_ready()
                decoded = time.monotonic()
            places.write_all(output.check)   # once the windows before them are sized
            own.close()                       # done with before waiting for the workers' results:
            places.close_held()               # its reader, the memory its held windows used
            output.finish()
            output.redo = output.first_started_wrong()
        while places is None and not output.complete():   # else appended here, in order
            output.pump()
            if output.complete():
                break
            k = claims.take()
            if k is None:                     # nothing left to take: append as they come
                output.wait(_POLL)
                continue
            output.ahead_of(k)
            if k == output.next:              # every window before it is in: straight there
                if not output.started_right(k):
                    output.redo = k
                    break
                own.decode(decoder, k, windows[k], view, writer)
                output.appended_here(k, own.results[k]["stops"])
            else:
                output.place(k, *own.decode(decoder, k, windows[k], view, None))
            decoded = time.monotonic()
        redo = output.redo
        if redo is not None:
            claims.drain()                    # the workers stop after their current window
        own.close()
        output.finish()                       # every worker's results (or the reason it has none)
        limit = len(windows) if redo is None else redo
        own.forget_from(decoder, limit)       # (its windows from a redone one on)
        if places is not None:                # the output's end, or where the rest goes
            places.move_to(writer, places.sizes.start(redo if redo is not None else len(windows)))
            places.moved = True
        if redo is not None:                  # a window started too late: this process does the rest
            cli_fmt._decode_sources(decoder, writer, opts, [inp.source], None, (windows[redo][0], None))
            writer.flush()
            if places is not None:
                places.cut_after(writer)      # (the windows written after it, left out)
        appended = time.monotonic()
        for worker in workers:
            worker.release()
        _keep_shared(decoder, workers)
    finally:
        for worker in workers:
            worker.stop()
        own.close()
        claims.close()
        if places is not None:
            places.end_written(writer)        # (failing: the error line is to follow the text)
            places.close()
        _let_go_of_share(decoder, share)
    payloads = merge.end(workers, limit)
    owners = [0] * len(windows)
    for k, worker in output.decoded_by.items():
        owners[k] = worker.k
    mine = (share.compiled, share.installed) if share is not None else (0, 0)
    timeline = Timeline(forked - began, decoded - began,
                        [None if p["ended"] is None else p["ended"] - began for p in payloads],
                        appended - began, time.monotonic() - began)
    return ParallelRun([mine] + [tuple(p["shared"]) for p in payloads],
                       redo, timeline, owners, places is not None)


def _idle_work(decoder, share, summary: bool, waiting=None, merge: "_Merge | None" = None):
    """What this process does once its windows are decoded, when it first waits for the
    workers (``_Assembly.idle``), rather than after them: its messages' rows of the summary
    table made (``summary``), the workers' keys of no message looked up again if it met
    messages since they were (``merge``: their counts are added at the end), the caller's
    ``waiting`` work, and, with no program cache (which
    takes the workers' records from it at the end: ``_keep_shared``), the shared table let go
    of (a 68 MB mapping: up to 0.9 ms to unmap; a rest this process decodes itself, a window
    having started wrong, compiles its own messages)."""
    def work() -> None:
        if summary:
            decoder.prepare_summary()
        if merge is not None:
            merge.find_ahead()
        if waiting is not None:
            waiting()
        if decoder.program_cache is None:
            _let_go_of_share(decoder, share)
    return work


def _ahead_work(decoder, summary: bool, waiting=None):
    """What this process does before it decodes a window of the run's last, smaller ones
    (``_Assembly.ahead_of``) rather than once its windows are decoded: the processes end
    their last windows within about one of those of each other, so what is left for the wait
    is mostly the run's serial end, while work done here moves the windows it would have taken
    to the workers. The summary table's rows of the messages met so far made but for their
    counts (``summary``: made again at the wait only if messages are met after) and the
    caller's ``waiting`` work (fmt's summary file opened: the kernel's work, 1-2 ms)."""
    def work() -> None:
        if summary:
            decoder.prepare_summary_rows()
        if waiting is not None:
            waiting()
    return work


def _let_go_of_share(decoder, share) -> None:
    """The shared program table no longer used by this process: the decoder's programs its
    own again, the mapping closed (closing it again does nothing)."""
    decoder.share_programs(None)
    if share is not None:
        share.close()


@fieldclass(frozen=True)
class Timeline:
    """When each step of a ``decode_parallel`` call ended, in seconds from its start: the
    workers forked (the window cuts made before), this process's last window decoded, each
    worker's last window decoded, every window in the output (written or appended), the
    call's end (the workers released, the windows' counts added)."""

    forked: float
    decoded: float
    workers_decoded: list[float | None]
    appended: float
    done: float


@fieldclass(frozen=True)
class ParallelRun:
    """What ``decode_parallel`` did: (messages compiled, messages taken from another's
    record) per process, this one first; the window from which this process decoded the
    rest itself (a window's start was wrong), or None; when its steps ended; which process
    decoded each window (0: this one, k: the k-th worker); whether each process wrote its
    windows into the output file at their places (else this process appended them)."""

    shares: list[tuple[int, int]]
    redone_from: int | None
    timeline: Timeline
    owners: list[int]
    in_place: bool


def _started_right(source, lo: int, stops: dict[int, int] | None) -> bool:
    """Whether the window from ``lo`` started each stream where reading the whole stream
    would have: the buffers it did not read (``FileSource.flushed_before``) all come before
    the one where the window ending at lo stopped (``stops``: its ``window_stops``), so none
    of them holds a record at or after lo."""
    if stops is None:
        return False
    return all(skip == 0 or stops.get(stream, -1) >= skip
               for stream, skip in enumerate(source.flushed_before(lo)))


def _program_share(processes: int):
    """The table the run's ``processes`` share compiled messages through; None when no
    shared memory can be had (each process then compiles the messages it prints)."""
    from .program_share import ProgramShare

    try:
        return ProgramShare(processes=processes)
    except (OSError, ValueError, MemoryError):
        return None


class _Claims:
    """The windows left after each process's first, taken in order by whichever process is
    free first: their numbers in a pipe every process reads, two bytes at a time (a read from
    a pipe is whole and goes to one reader)."""

    def __init__(self, windows: range) -> None:
        self.fd, write_fd = os.pipe()
        try:
            data = memoryview(b"".join(_CLAIM.pack(k) for k in windows))
            while data:
                data = data[os.write(write_fd, data):]
        finally:
            os.close(write_fd)
        os.set_blocking(self.fd, False)
        self.exhausted = False      # this process found none left

    def take(self) -> int | None:
        """The next window to decode, or None: all are taken."""
        k = _take(self.fd)
        if k is None:
            self.exhausted = True
        return k

    def drain(self) -> None:
        """Take every window left (no process starts another)."""
        while self.take() is not None:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _take(fd: int) -> int | None:
    try:
        data = os.read(fd, _CLAIM.size)
    except OSError:                 # empty (BlockingIOError) or closed
        return None
    return _CLAIM.unpack(data)[0] if len(data) == _CLAIM.size else None


class _Worker:
    """A forked process decoding windows: its first window, then those it takes from the
    claims, each written at its place in the output (``_Places``), or, when this process
    appends, into a file with no name (``_window_file``, held by both processes). Its
    messages come through a pipe, each a length and a marshal (one program on both ends):
    where each window begins and ends (writing at places: with the window's counts and read
    log), then its results (which windows it decoded, or what failed; appending: each
    window's counts and read log). Once not needed, this process closes its file and
    releases the worker (closing the release pipe): the worker holds its files last, so
    freeing their blocks (10 ms for 75 MB) happens as it ends, on its own core."""

    def __init__(self, k: int, pid: int, fd: int, file_fd: int, release_fd: int) -> None:
        self.k, self.pid, self.fd, self.file_fd, self.release_fd = k, pid, fd, file_fd, release_fd
        self.finished = False                 # its pipe closed: nothing more will come
        self.payload: dict | None = None      # its results, once sent
        #: its messages (``plain_message_keys``) and each window's count marks, sent with each
        #: window's end: read while this process runs, not at the end of the run
        self.keys: list[tuple] = []
        self.marks: dict[int, tuple] = {}
        self.last_marks: tuple = (None, None, None)
        self._received = bytearray()
        #: with a reaping thread watching it (``watch``): taken to reap it, by the thread once
        #: it has ended or by ``stop``; ``reaped`` says whether one did (its pid may be reused)
        self.lock = None
        self.reaped = False

    @classmethod
    def start(cls, k: int, windows, claims: _Claims, inp, decoder, opts, out_dir: str | None,
              started: list["_Worker"], places: "_Places | None" = None) -> "_Worker":
        # a file there from the start, appended as it grows; none when the worker writes its
        # windows at their places itself
        file_fd = _window_file(out_dir) if places is None else -1
        read_fd, write_fd = os.pipe()
        release_read, release_write = os.pipe()
        pid = os.fork()
        if pid == 0:                          # the worker: never returns
            os.close(read_fd)
            os.close(release_write)
            for other in started:             # the workers before it are the parent's alone
                other._close_fds()
            _worker(k, windows, claims.fd, inp, decoder, opts, file_fd, write_fd, release_read, places)
        os.close(write_fd)
        os.close(release_read)
        os.set_blocking(read_fd, False)
        return cls(k, pid, read_fd, file_fd, release_write)

    def receive(self) -> list[tuple]:
        """The messages the worker sent since the last call (none waited for)."""
        if self.finished:
            return []
        received = self._received
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                self.finished = True
                break
            received += chunk
        messages, at = [], 0
        while len(received) - at >= _FRAME.size:
            size = _FRAME.unpack_from(received, at)[0]
            if len(received) - at - _FRAME.size < size:
                break
            at += _FRAME.size
            messages.append(marshal.loads(received[at:at + size]))
            at += size
        del received[:at]
        return messages

    def watch(self) -> None:
        """Start the thread that reaps the worker once it has ended, while the run decodes
        (``release`` then has none to start at its end: 0.3-0.8 ms, and the new thread waits
        for the interpreter, longer on a busy machine). Where the system cannot wait for a
        process's end without reaping it (no ``os.waitid``), none is started here:
        ``release`` reaps the worker if it has ended, else starts a thread that does."""
        if self.pid and self.lock is None and hasattr(os, "waitid"):
            self.lock = _thread.allocate_lock()
            _thread.start_new_thread(_reap_when_ended, (self, self.pid))

    def release(self) -> None:
        """Let the worker go, its output no longer needed: the file freed as the worker
        ends; reaped by the thread ``watch`` started (without one: here if it has ended,
        else by a thread started now)."""
        self._close_fds()                     # closing the release pipe lets it end
        if self.pid and self.lock is not None:
            self.pid = 0                      # (its watching thread reaps it)
        elif self.pid:
            pid, self.pid = self.pid, 0
            try:
                reaped, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if not reaped:
                # a bare thread: threading's start() waits until the thread runs, 4 ms at
                # the end of a run while the cores are busy with the ending worker
                _thread.start_new_thread(_wait_quietly, (pid,))

    def stop(self) -> None:
        """Stop and reap the worker if it is still there (this process is failing)."""
        if self.pid:
            if self.lock is None:
                self._kill_and_reap()
            else:
                with self.lock:               # not reaped yet: its pid is still its own
                    if not self.reaped:
                        self._kill_and_reap()
            self.pid = 0
        self._close_fds()

    def _kill_and_reap(self) -> None:
        try:
            os.kill(self.pid, _SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.reaped = True

    def _close_fds(self) -> None:
        for name in ("file_fd", "release_fd", "fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def _reap_when_ended(worker: _Worker, pid: int) -> None:
    """``_Worker.watch``'s thread: wait until the worker has ended, without reaping it (its
    pid stays its own while ``stop`` may still signal it), then reap it unless ``stop`` did."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except OSError:                   # reaped already (by ``stop``), or cannot wait: left as it is
        return
    with worker.lock:
        if not worker.reaped:
            worker.reaped = True
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def _wait_quietly(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


class _Assembly:
    """The output in window order. Window 0 is in first (this process wrote it); each later
    window is appended from the file it is decoded into (a worker's, or this process's own)
    as it grows, once every window before it is in, unless this process decoded it straight
    into the output. A window's start is checked against where the window before it stopped
    before any of it is appended (``redo``: the first window that started too late). With
    ``in_place`` (each process writes its own windows at their places) it appends nothing:
    it takes the workers' news, notes where their windows stopped, and finds failures."""

    def __init__(self, windows: list, source, writer, workers: list[_Worker], claims: _Claims,
                 in_place: bool = False) -> None:
        self.windows, self.source, self.writer = windows, source, writer
        self.workers, self.claims = workers, claims
        self.in_place = in_place      # each process writes its windows at their places
        self.next = 1                 # the first window not wholly in the output
        self.copied = 0               # of its bytes, those in the output
        self.redo: int | None = None
        self.places: dict[int, list] = {}          # window -> [file, start, end or None]
        self.stops: dict[int, dict] = {}           # window -> where its streams stopped
        self.decoded_by: dict[int, _Worker] = {worker.k: worker for worker in workers}
        self.results: dict[int, dict] = {}         # a worker's window -> its counts and read log
        self.ended: dict[int, dict] = {}           # the same, as each came (its run may yet fail)
        #: the windows' counts added to this process's as they come (``_Merge``), once set
        self.merge: _Merge | None = None
        self._sizes: dict[int, int] = {}
        self._checked = 0             # the last window whose start was checked
        self._out_fd = _raw_fd(writer)
        self._tail = bytearray()
        #: called once when this process, its windows all decoded, first waits for the
        #: workers (for their results, ``finish``; or for the sizes of the windows before its
        #: held ones, ``check``): work the run does after them anyway, done while they end
        #: (not done when every worker's results are in: it would cost more than the end's)
        self.idle = None
        #: called once before this process decodes a window from ``tail`` on (``ahead_of``):
        #: work of the run's end it can do before its last windows
        self.ahead = None
        self.tail = len(windows)
        self.keys_came = False        # a worker's keys came since ``merge`` last found them

    def complete(self) -> bool:
        return self.next >= len(self.windows) or self.redo is not None

    def ahead_of(self, k: int) -> None:
        """Do the ``ahead`` work (once) if window k, which this process is about to decode,
        is one of the last ones."""
        if self.ahead is not None and k >= self.tail:
            ahead, self.ahead = self.ahead, None
            ahead()

    def started_right(self, k: int) -> bool:
        return _started_right(self.source, self.windows[k][0], self.stops.get(k - 1))

    def place(self, k: int, fd: int, start: int, end: int, stops: dict) -> None:
        """Window k, decoded by this process into its own file at [start, end)."""
        self.places[k] = [fd, start, end]
        self.stops[k] = stops

    def appended_here(self, k: int, stops: dict) -> None:
        """Window k (the next one) was decoded by this process straight into the output."""
        self.stops[k] = stops
        self.next, self.copied = k + 1, 0

    def pump(self) -> None:
        """Take the workers' news and append what it allows."""
        # the files' sizes before the news: a window whose end has not come holds no byte of
        # the next window in its file yet
        self._sizes = {w.file_fd: os.fstat(w.file_fd).st_size for w in self.workers if w.file_fd >= 0}
        for worker in self.workers:
            for message in worker.receive():
                kind, k = message[0], message[1] if len(message) > 1 else None
                if kind == "begin":
                    self.places[k] = [worker.file_fd, message[2], None]
                    self.decoded_by[k] = worker
                elif kind == "end":
                    self.places[k][2] = message[2]
                    self.stops[k] = message[3]
                    if message[4] is not None:   # (sent with its results when this process appends)
                        worker.marks[k] = worker.last_marks = tuple(   # (a part not sent: unchanged)
                            part if part is not None else last
                            for part, last in zip(message[4], worker.last_marks))
                        self.ended[k] = message[6]
                    worker.keys += message[5]
                    self.keys_came = self.keys_came or bool(message[5])
                elif kind == "done":
                    worker.payload = k
                    worker.keys += k["keys"]
                    self.keys_came = self.keys_came or bool(k["keys"])
                    k["keys"] = worker.keys
                    windows = k["windows"]
                    for window, result in windows.items():
                        if result is None:    # (sent with its end)
                            result = windows[window] = self.ended[window]
                        else:
                            self.ended[window] = result
                        if "counts" not in result:
                            result["counts"] = worker.marks[window]
        self._append()
        if self.merge is not None:        # (news or not: this process's windows come too)
            self.merge.windows(len(self.windows))
            if self.keys_came:            # (keys of no message looked up again once its windows
                self.keys_came = False    # are decoded, if messages were met since: its first wait)
                self.merge.find_ahead(again=self.idle is None)

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for news from a worker, then pump."""
        live = [worker.fd for worker in self.workers if not worker.finished]
        # (not the select module: a shared library to load, 1.0-1.7 ms in this process, and
        # none can be loaded with no descriptor left; poll has no limit on their numbers)
        if live and not wait_readable(live, seconds):
            time.sleep(seconds)                  # (no wait to be had: looked at in turn)
        self.pump()

    def check(self) -> None:
        """Wait up to ``_POLL`` for news from a worker (this process's windows all decoded:
        its ``idle`` work first); fail if one has failed (a window before this process's
        held ones may then never get its size)."""
        self._idle()
        self.wait(_POLL)
        for worker in self.workers:
            if (worker.payload is not None and worker.payload["error"]) or \
                    (worker.finished and worker.payload is None):
                raise self._failure(worker)

    def first_started_wrong(self) -> int | None:
        """The first window whose start passed a record (see ``started_right``), or None."""
        return next((k for k in range(1, len(self.windows)) if not self.started_right(k)), None)

    def finish(self) -> None:
        """Wait for every worker's results; fail if a window the output needs has none, or
        (each process writing its windows at their places) if a worker failed once all its
        windows were decoded: writing the ones it held."""
        self.pump()
        if all(worker.finished or worker.payload is not None for worker in self.workers):
            self.idle = None          # none to wait for: what it would make is made at the end
        self._idle()
        while not all(worker.finished for worker in self.workers):
            self.wait(_POLL)
        limit = len(self.windows) if self.redo is None else self.redo
        for worker in self.workers:
            payload = worker.payload
            if payload is not None:
                self.results.update((k, r) for k, r in payload["windows"].items() if k < limit)
                if self.in_place and payload["error"] and all(
                        k in payload["windows"] for k, by in self.decoded_by.items() if by is worker):
                    raise self._failure(worker)
        for k in range(1, limit):
            worker = self.decoded_by.get(k)
            if worker is not None and k not in self.results:
                raise self._failure(worker)

    def _idle(self) -> None:
        """Do the ``idle`` work (once)."""
        if self.idle is not None:
            idle, self.idle = self.idle, None
            idle()

    def _append(self) -> None:
        while not self.in_place and not self.complete():
            k = self.next
            place = self.places.get(k)
            if place is None or place[2] is None:
                self._check_coming(k)
            if place is None:
                return
            if self._checked < k:
                if not self.started_right(k):
                    self.redo = k
                    return
                self._checked = k
            fd, start, end = place
            limit = end if end is not None else self._sizes.get(fd, start)
            want = limit - start - self.copied
            if want > 0:
                done = _copy_range(fd, start + self.copied, want, self._out_fd, self.writer, self._tail)
                if not done:
                    raise OSError(f"cannot append window {k} at byte {start + self.copied} of its file")
                self.copied += done
            if end is None or start + self.copied < end:
                return
            if self._tail:                 # (a window ends with a whole line: never, in fact)
                self.writer.write_utf8(bytes(self._tail))
                self._tail.clear()
            self.next, self.copied = k + 1, 0

    def _check_coming(self, k: int) -> None:
        """Fail when window k can no longer come: its worker has stopped talking before its
        end, or none is left to take it."""
        worker = self.decoded_by.get(k)
        if worker is not None:
            if worker.finished:
                raise self._failure(worker)
        elif self.claims.exhausted and all(w.finished for w in self.workers):
            raise self._failure(None)

    def _failure(self, worker: _Worker | None) -> Exception:
        """What the run fails with: a worker's error (its traceback), or, when it named a file
        of its own (an input it could not read, a window's file it could not make), that
        Win32Error, or when its write of the output failed (``winerror.write_failure``: no
        room, a failing device...), that error: reported as this process's own would be."""
        from wpptrace.winerror import write_failure

        payloads = [w.payload for w in ([worker] if worker else []) + self.workers
                    if w.payload is not None and w.payload["error"]]
        failure = RuntimeError("a decoding process failed:\n" + (
            payloads[0]["error"] if payloads else "a worker process ended without a result"))
        told = payloads[0].get("told") if payloads else None
        if told is not None:
            window_file, code, detail, filename, offset = told
            named = (WindowFileError if window_file else Win32Error)(code, detail, filename, offset)
            named.__cause__ = failure
            return named
        code = payloads[0]["errno"] if payloads else None
        if code is not None and write_failure(OSError(code, os.strerror(code))) is not None:
            written = OSError(code, os.strerror(code))
            written.__cause__ = failure
            return written
        return failure


class _OwnWindows:
    """The windows this process takes after its first: read with a reader of its own (its read log
    apart from the first window's, added in window order like a worker's results) and
    decoded straight into the output, or into a file of its own to be appended. Their
    counts go into this process's decoder as they are decoded; the counts from before each
    are kept (cheaply) to go back to should the windows from one on be left out."""

    def __init__(self, inp, opts, out_dir: str | None) -> None:
        self.inp, self.opts, self.out_dir = inp, opts, out_dir
        self.results: dict[int, dict] = {}
        self._before: dict[int, tuple] = {}    # window -> the per-message count marks before it
        self._etl = self._source = self._stream = self._writer = None
        self._fd = -1

    def forget_from(self, decoder, limit: int) -> None:
        """Leave out the windows from ``limit`` on: the decoder's counters less theirs (the
        workers' windows added meanwhile stay), its per-message counts as before the first of
        them this process decoded (only this process's own: the workers' are added at the end)."""
        later = [k for k in self.results if k >= limit]
        if not later:
            return
        c = decoder.counters
        for k in later:
            for name, value in self.results.pop(k)["counters"].items():
                setattr(c, name, getattr(c, name) - value)
        decoder.restore_counts(self._before[min(later)])

    def decode(self, decoder, k: int, window, view, writer,
               places: "_Places | None" = None) -> tuple[int, int, int, dict] | None:
        """Decode window k into ``writer`` (the output), or when None at its place in the
        output (``places``), or into this process's own file: then (file, start, end, stops)."""
        if self._source is None:
            from .engine import FileSource
            from .etlfile import EtlFile

            self._etl = EtlFile(self.inp.path)
            self._etl.adopt_index(self.inp.etl)
            self._source = FileSource(self._etl, trust_flush_times=True)
            self._source.adopt_streams(self.inp.source)
        self._before[k] = decoder.count_marks()
        if places is not None:
            self.results[k] = places.decode(k, decoder, self._source, self.opts, view, window)[0]
            return None
        placed = writer is None
        if placed:
            writer = self._own_writer()
            start = os.fstat(self._fd).st_size
        result = self.results[k] = _decode_window(decoder, self._source, writer, self.opts, view, window)
        return (self._fd, start, os.fstat(self._fd).st_size, result["stops"]) if placed else None

    def _own_writer(self):
        if self._writer is None:
            from . import cli_fmt

            self._fd = _window_file(self.out_dir)
            self._stream = open(self._fd, "w", encoding="utf-8", newline="\n", buffering=1 << 16,
                                closefd=False)
            self._writer = cli_fmt._writer(self.opts, self._stream, header=False)
        return self._writer

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._etl is not None:
            self._etl.close()
            self._etl = None


def _keep_shared(decoder, workers: list) -> None:
    """Add the messages the workers compiled to the run's program cache (this process added
    its own); keep nothing when a worker's TMF files reported problems."""
    if decoder.program_cache is None:
        return
    payloads = [worker.payload for worker in workers]
    if any(payload is None or payload.get("tmf_issues") for payload in payloads):
        decoder.use_cache(None)
        return
    for payload in payloads:
        decoder.cache_shared([key for key in payload["keys"] if isinstance(key[0], bytes)])


def _decode_window(decoder, source, writer, opts, view, window) -> dict:
    """Decode one window of ``source`` into ``writer`` (flushed): what it added to the
    decoder's counters and to the reader's log, where its streams stopped, and the
    per-message counts so far (a ``count_marks`` mark: cumulative and cheap to take; made
    one int per message only for the window whose counts are used)."""
    from . import cli_fmt

    etl = source.etl
    before = _snapshot(decoder, etl)
    cli_fmt._decode_sources(decoder, writer, opts, [source], None, window, view)
    writer.flush()
    after = _snapshot(decoder, etl)
    return {
        "stops": dict(source.window_stops),
        "counters": {name: after["counters"][name] - before["counters"][name] for name in _COUNTERS},
        "counts": decoder.count_marks(),
        "errors": [(issue.offset, issue.message) for issue in etl.errors[before["errors"]:]],
        "issues_dropped": after["issues_dropped"] - before["issues_dropped"],
        "stats": {name: ({kind: n - before["stats"][name].get(kind, 0) for kind, n in value.items()}
                         if isinstance(value, dict) else value - before["stats"][name])
                  for name, value in after["stats"].items()},
    }


def _counters(decoder) -> dict[str, int]:
    c = decoder.counters
    return {name: getattr(c, name) for name in _COUNTERS}


def _snapshot(decoder, etl) -> dict:
    stats = etl.stats
    values = {name: getattr(stats, name) for name in ReadStats.__match_args__}
    return {
        "counters": _counters(decoder),
        "errors": len(etl.errors),
        "issues_dropped": etl.issues_dropped,
        "stats": {name: dict(value) if isinstance(value, dict) else value for name, value in values.items()},
    }


class _Merge:
    """The windows' counts and read logs added to this process's (its decoder's, and its
    reader's ``etl``) as if it had read them all, as they come rather than once the last one
    is in: each window's counters and read log in window order (the warnings as one process
    says them), once every window before it is in and it started right (a window from one that
    started wrong on is left out: see ``_Assembly.redo``), while this process decodes its
    windows or waits. At the end (``end``): what is left of them, and each worker's
    per-message counts (cumulative) at its last window used, added at once
    (``WppDecoder.add_plain_message_counts``) to the messages found as the keys came
    (``find_ahead``)."""

    def __init__(self, decoder, etl, own: dict[int, dict], output: "_Assembly") -> None:
        self.decoder, self.etl, self.own, self.output = decoder, etl, own, output
        self.next = 1                 # the first window not added yet
        #: worker -> the messages of its keys so far, found ahead (``find_ahead``)
        self.found: dict = {}

    def find_ahead(self, again: bool = True) -> None:
        """Find the messages of the workers' keys come so far, for ``end``: as they come, while
        this process decodes its windows or waits, not after the workers' last results.
        ``again``: the keys of no message found before are looked up again if messages were
        met since (once this process's windows are decoded: its first wait), else left as they
        are until then (a message found keeps its place)."""
        for worker in self.output.workers:
            found = self.found.get(worker)
            if worker.keys:
                self.found[worker] = self.decoder.find_plain_messages(worker.keys, found, again)

    def windows(self, limit: int, checked: bool = True) -> None:
        """Add the windows from ``next`` on that are in, up to ``limit``; ``checked``: only while
        each started right (not known at the end: every window before ``limit`` did)."""
        output, own = self.output, self.own
        while self.next < limit:
            k = self.next
            mine = own.get(k)
            result = mine if mine is not None else output.ended.get(k) if checked else output.results[k]
            if result is None or (checked and not output.started_right(k)):
                return
            if mine is None:          # (this process's own are in its counts already)
                _add_counters(self.decoder, result)
            _add_reads(self.etl, result)
            self.next = k + 1

    def end(self, workers: list, limit: int) -> list[dict]:
        """Add what is left of the windows before ``limit`` (each one is in) and the workers'
        per-message counts; the workers' payloads (an empty one for a worker that sent none)."""
        from .wpp import mark_counts

        decoder = self.decoder
        self.windows(limit, checked=False)
        payloads = [worker.payload or {"windows": {}, "ended": None, "shared": (0, 0)} for worker in workers]
        for payload in payloads:              # (reported with this process's at the end)
            decoder.note_tmf_issues(payload.get("tmf_issues") or (), payload.get("tmf_issue_counts"))
        for worker, payload in zip(workers, payloads):   # per-message counts: cumulative, at its last window used
            used = [k for k in payload["windows"] if k < limit]
            if used:
                marks = payload["windows"][max(used)]["counts"]
                left = decoder.add_plain_message_counts(payload["keys"], mark_counts(marks),
                                                        self.found.get(worker))
                if left:                      # messages this process printed no row of
                    decoder.add_message_counts(dict(left))
        return payloads


def _add_counters(decoder, result: dict) -> None:
    c = decoder.counters
    for name, value in result["counters"].items():
        setattr(c, name, getattr(c, name) + value)


def _add_reads(etl, result: dict) -> None:
    for offset, message in result["errors"]:
        etl._issue(offset, message)
    etl.issues_dropped += result["issues_dropped"]
    stats = etl.stats
    for name, value in result["stats"].items():
        if isinstance(value, dict):                 # counts by kind
            totals = getattr(stats, name)
            for kind, n in value.items():
                totals[kind] = totals.get(kind, 0) + n
        else:
            setattr(stats, name, getattr(stats, name) + value)


def _results(decoder, windows: dict[int, dict], error: str | None, sent: int,
             failed_errno: int | None = None, told: tuple | None = None) -> dict:
    """What a worker sends once it has decoded its last window: each window's results (its
    count marks were sent with its end), its messages not sent yet (``plain_message_keys``
    from ``sent`` on), what failed (and its errno, an OSError's; ``told``: a Win32Error naming
    a file of its own, not the output's, as ``_told`` gives it), when it ended, the messages
    it compiled and installed, and how many TMF problems it met."""
    share = decoder.shared_programs
    return {
        "windows": windows, "keys": decoder.plain_message_keys(sent), "error": error,
        "errno": failed_errno, "told": told,
        "ended": time.monotonic(),      # the same clock in every process of the machine
        "shared": (share.compiled, share.installed) if share is not None else (0, 0),
        "tmf_issues": [issue.fields() for issue in getattr(decoder.tmfset, "issues", ())],
        "tmf_issue_counts": dict(getattr(decoder.tmfset, "issue_counts", {}))}


class _Outbox:
    """A worker's messages to this process, written without waiting: what the pipe has no
    room for yet (this process reads between its own windows) goes with the next message,
    or when waited for (``flush``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pending = bytearray()
        os.set_blocking(fd, False)

    def send(self, message, wait: bool = False) -> None:
        data = marshal.dumps(message)
        self._pending += _FRAME.pack(len(data))
        self._pending += data
        self._write()
        if wait:
            self.flush()

    def flush(self) -> None:
        """Write everything pending, waiting for room."""
        if self._pending:
            os.set_blocking(self.fd, True)
            try:
                _send_all(self.fd, self._pending)
            finally:
                self._pending.clear()
                os.set_blocking(self.fd, False)

    def _write(self) -> None:
        pending = self._pending
        while pending:
            try:
                written = os.write(self.fd, pending)
            except BlockingIOError:
                return
            del pending[:written]


def _send_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _worker(k: int, windows: list, claims_fd: int, inp, decoder, opts, file_fd: int,
            result_fd: int, release_fd: int, places: "_Places | None" = None) -> None:
    """Windows of the file decoded into the file ``file_fd`` (held to the end: freed as this
    process ends), or with ``places`` each at its place in the output: window k, then those
    taken from the claims; where each begins and ends and their results sent back. The .etl
    file is opened anew (the parent's handle shares its offset across the fork), with the
    parent's buffer index. Once released (``release_fd`` closed by the parent, or the
    parent gone), the process ends. Never returns."""
    status = 0
    try:
        results: dict[int, dict] = {}
        error = failed_errno = told = None
        outbox = _Outbox(result_fd)
        sent = 0                              # messages whose keys were sent
        sent_marks: tuple = (None, None, None)   # the last window's count marks
        try:
            from . import cli_fmt
            from .engine import FileSource
            from .etlfile import EtlFile
            from .wpp_rows import RowView

            share = decoder.shared_programs
            if share is not None:
                share.join(k)                 # (its number in the meeting over first messages)
            etl = EtlFile(inp.path)
            etl.adopt_index(inp.etl)
            stream = None
            try:
                source = FileSource(etl, trust_flush_times=True)   # checked by the parent
                source.adopt_streams(inp.source)      # (made before the fork)
                view = RowView()
                if places is None:
                    # (64 KiB buffer: the renderer's chunks go straight to the file, as fmt's
                    # own output does, not copied through the buffer)
                    stream = open(file_fd, "w", encoding="utf-8", newline="\n", buffering=1 << 16,
                                  closefd=False)
                    writer = cli_fmt._writer(opts, stream, header=False)
                window: int | None = k
                while window is not None:
                    if places is None:        # (the parent appends the window as it grows)
                        outbox.send(("begin", window, os.fstat(file_fd).st_size), wait=True)
                        result = _decode_window(decoder, source, writer, opts, view, windows[window])
                        end = os.fstat(file_fd).st_size
                    else:
                        outbox.send(("begin", window, 0))
                        result, end = places.decode(window, decoder, source, opts, view, windows[window])
                    if places is None:        # (the parent appends: every message sent whole now)
                        outbox.send(("end", window, end, result["stops"], None, [], None), wait=True)
                        results[window] = result
                    else:
                        # its count marks and the messages met since the last window's end (the
                        # parent has them before the end of the run, the last window's aside)
                        keys = decoder.plain_message_keys(sent)
                        sent += len(keys)
                        marks = result.pop("counts")   # (its parts made again only when they changed)
                        changed = tuple(None if part is last else part
                                        for part, last in zip(marks, sent_marks))
                        sent_marks = marks
                        # (its counters and read log too: this process adds them while it waits)
                        outbox.send(("end", window, end, result.pop("stops"), changed, keys, result))
                        results[window] = None        # (all of it sent with its end)
                    if places is not None:
                        places.write_ready()
                    window = _take(claims_fd)
                if places is not None:
                    places.write_all(lambda: _wait_unless_released(release_fd))
            finally:
                if stream is not None:
                    stream.close()
                etl.close()
        except BaseException as exc:  # the parent reports it; a worker never raises past here
            import traceback

            error = traceback.format_exc()
            failed_errno = exc.errno if isinstance(exc, OSError) else None
            told = _told(exc)
        outbox.send(("done", _results(decoder, results, error, sent, failed_errno, told)), wait=True)
        os.close(result_fd)
        while os.read(release_fd, 1 << 12):     # until the parent lets go (or is gone)
            pass
    except BaseException:  # noqa: BLE001  (nothing to tell: the parent sees no result)
        status = 1
    finally:
        os._exit(status)


def _told(exc: BaseException) -> tuple | None:
    """A Win32Error that names a file of its own (an input that could not be read, a window's
    file that could not be made) as marshal carries it to the parent; None for any other."""
    if not isinstance(exc, Win32Error) or exc.filename is None:
        return None
    return (isinstance(exc, WindowFileError), exc.winerror, exc.detail, exc.filename, exc.offset)


def _wait_unless_released(release_fd: int) -> None:
    """Wait a moment for the sizes of the windows before this worker's held ones; fail if
    the parent let go of it meanwhile (it failed, or is gone). No ``select``: loading it in a
    forked process needs a free descriptor, and could wait for ever on a lock another thread
    of the parent held at the fork (a program that embeds the decoder)."""
    time.sleep(0.001)
    os.set_blocking(release_fd, False)
    try:
        os.read(release_fd, 1)            # b"": closed (the parent writes nothing into it)
    except BlockingIOError:
        return                            # still held
    finally:
        os.set_blocking(release_fd, True)
    raise RuntimeError("released before its windows had their places in the output")


class _Sizes:
    """Each window's output size in bytes, in memory the run's processes share (mapped
    before the fork); -1 until known. Window 0's is where it ends in the output (the output
    may start with a header)."""

    def __init__(self, windows: int) -> None:
        self._map = mmap.mmap(-1, 8 * max(1, windows))        # shared, anonymous
        self._sizes = memoryview(self._map).cast("q")        # (aligned 8-byte stores: whole)
        for k in range(windows):
            self._sizes[k] = -1

    def set(self, k: int, size: int) -> None:
        self._sizes[k] = size

    def start(self, k: int) -> int | None:
        """Where window k starts in the output, once every window before it has its size."""
        total = 0
        for size in self._sizes[:k]:
            if size < 0:
                return None
            total += size
        return total

    def sized_end(self) -> int:
        """Where the windows sized in a row from the first end in the output."""
        total = 0
        for size in self._sizes:
            if size < 0:
                break
            total += size
        return total

    def close(self) -> None:
        self._sizes.release()
        self._map.close()


class _Places:
    """The output, when it is a file: each process writes its windows at their places in
    it, so no window's bytes are copied a second time. A window's place is known once every
    window before it has its size (``_Sizes``); a window decoded before that is held in this
    process's memory (``_ARENA_BYTES``, used again from its start once nothing is held;
    past it, a file of its own), where the renderer prints it (``_Held.room``), and written
    as soon as its place is known."""

    def __init__(self, fd: int, sizes: _Sizes, out_dir: str | None) -> None:
        self.fd, self.sizes, self.out_dir = fd, sizes, out_dir
        self.held: dict[int, _Held] = {}
        self.used = 0                 # of the arena, by the held windows
        self.address = 0              # of the arena's first byte
        self._arena: mmap.mmap | None = None
        self._spill_fd = -1
        self.moved = False            # the stream put at the output's end (or the redone rest)
        try:                          # what the file held before the windows: its growth is theirs
            self.size_before: int | None = os.fstat(fd).st_size
        except OSError:
            self.size_before = None

    @classmethod
    def for_output(cls, writer, windows: int, out_dir: str | None,
                   opened_here: bool = False) -> "_Places | None":
        """Places in ``writer``'s file; None when its output is not a file that writes go to
        where they are asked to (a file opened to append, ``>>``, takes every write at its end).
        ``opened_here``: the run opened the file itself (``-o``), not to append: not asked
        (``fcntl``'s import would cost 0.15 ms before the fork, where every process waits)."""
        fd = _raw_fd(writer)
        if fd is None or not hasattr(os, "pwrite") or (not opened_here and _appends(fd)):
            return None
        return cls(fd, _Sizes(windows), out_dir)

    def end_of(self, writer) -> int:
        """Where what ``writer`` wrote ends in the output file (flushed)."""
        _flush_writer(writer)
        return os.lseek(self.fd, 0, os.SEEK_CUR)

    def decode(self, k: int, decoder, source, opts, view, window) -> tuple[dict, int]:
        """Decode window k (``_decode_window``) at its place when known, else held until it
        is; its size published. (its results, its size)"""
        from . import cli_fmt

        start = self.sizes.start(k)
        # a held window's bytes go to memory (no buffer before it): its writer lends that
        # memory to the renderer, which prints each chunk where it is to be held
        raw = _AtPlace(self.fd, start) if start is not None else _Held(self, k)
        stream = io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16) if start is not None else raw,
                                  encoding="utf-8", newline="\n")
        result = _decode_window(decoder, source, cli_fmt._writer(opts, stream, header=False),
                                opts, view, window)
        stream.flush()
        size = raw.size
        stream.close()
        self.sizes.set(k, size)
        if isinstance(raw, _Held) and raw.place is None:
            self.held[k] = raw
        return result, size

    def write_ready(self) -> None:
        """Write the held windows whose places are known (in order: a later one's place
        needs the earlier ones' sizes)."""
        for k in sorted(self.held):
            start = self.sizes.start(k)
            if start is None:
                break
            self.held.pop(k).write_at(start)
        if not self.held:
            self.used = 0

    def write_all(self, wait) -> None:
        """Write every held window, calling ``wait()`` while one's place is not known yet."""
        self.write_ready()
        while self.held:
            wait()
            self.write_ready()

    def arena(self) -> mmap.mmap | None:
        if self._arena is None:
            try:
                self._arena = mmap.mmap(-1, _ARENA_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            except (OSError, ValueError, AttributeError, OverflowError):
                self._arena = False          # no room to be had: held windows go to the file
            else:
                if hasattr(mmap, "MADV_HUGEPAGE"):   # fewer page faults (where the system allows)
                    try:
                        self._arena.madvise(mmap.MADV_HUGEPAGE)
                    except OSError:
                        pass
                self.address = address_of(self._arena)
        return self._arena or None

    def spill_fd(self) -> int:
        if self._spill_fd < 0:
            self._spill_fd = _window_file(self.out_dir)
        return self._spill_fd

    @staticmethod
    def move_to(writer, position: int) -> None:
        """Put ``writer``'s stream at ``position`` of the output."""
        _flush_writer(writer).seek(position)

    def end_written(self, writer) -> None:
        """A run failing before ``move_to`` (every process stopped): put ``writer``'s stream
        where the text the processes wrote ends. The stream's open file may be stderr's too
        (``> log 2>&1``): the error line then follows the text instead of going where this
        process's first window ended, over the windows after it. No window is written past the
        windows sized in a row from the first (its place needs them) but the first one not
        sized, written at its place by a process stopped before it gave its size: where the
        file grew past what it held before the run, its end is where that text ends; the file
        ends sooner when the last sized window was held and not written."""
        if self.moved or self.sizes.start(1) is None:   # (window 0 unsized: written in order)
            return
        try:
            size = os.fstat(self.fd).st_size
            end = min(self.sizes.sized_end(), size)
            if self.size_before is not None and size > max(end, self.size_before):
                end = size
            if end > os.lseek(self.fd, 0, os.SEEK_CUR):
                self.move_to(writer, end)
                self.moved = True
        except (OSError, ValueError):      # the run's own error is the one to tell
            pass

    @staticmethod
    def cut_after(writer) -> None:
        """End the output where ``writer`` is."""
        _flush_writer(writer).truncate()

    def close_held(self) -> None:
        """Free what held windows are kept in (their memory, their file): none is held."""
        if self._arena:
            self._arena.close()
        self._arena = None
        if self._spill_fd >= 0:
            os.close(self._spill_fd)
            self._spill_fd = -1

    def close(self) -> None:
        self.close_held()
        self.sizes.close()


def _appends(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:            # no fcntl: no O_APPEND to find out about, nor pwrite
        return True
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def _flush_writer(writer):
    """Flush a writer down to its file; its stream's byte buffer."""
    writer.flush()
    stream = writer.stream
    stream.flush()
    buffer = stream.buffer
    buffer.flush()
    return buffer


class _AtPlace(io.RawIOBase):
    """A window's bytes written straight at their place in the output file."""

    def __init__(self, fd: int, start: int) -> None:
        super().__init__()
        self.fd, self.start, self.size = fd, start, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = _pwrite_all(self.fd, data, self.start + self.size)
        self.size += n
        return n


class _Held(io.BufferedIOBase):
    """Window k's bytes until its place is known: in the arena from where the held windows
    end, then (past the arena) at the end of the process's own file. Itself the buffer of
    its text stream (every write taken whole): ``room()`` lends the arena past the end to
    the renderer, and bytes written from where they are to go are not copied. Once the
    windows before it are sized (they often are before it ends), what it holds is written
    at its place and the rest goes straight there: its memory is free for the next window
    held, so a process touches little memory for the first time (each MB of it costs a
    page clear)."""

    def __init__(self, places: _Places, k: int) -> None:
        super().__init__()
        self.places, self.k = places, k
        self.memory = [places.used, places.used]      # [start, end) in the arena
        self.file: list[int] | None = None            # [start, end) in the file
        self.place: int | None = None                 # where it starts, once written there
        self.placed = 0                               # bytes written at its place

    @property
    def size(self) -> int:
        return (self.memory[1] - self.memory[0] + (self.file[1] - self.file[0] if self.file else 0)
                + self.placed)

    def writable(self) -> bool:
        return True

    def room(self) -> tuple[int, int] | None:
        """(address, bytes) of the arena from where the next bytes go, or None once they go
        to a file."""
        if self.place is not None or self._settle():
            return None
        places = self.places
        arena = places.arena() if self.file is None else None
        if arena is None:
            return None
        end = self.memory[1]
        return places.address + end, len(arena) - end

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        places = self.places
        if self.place is not None:
            self.placed += _pwrite_all(places.fd, view, self.place + self.placed)
            return n
        if self.file is None:
            arena = places.arena()
            end = self.memory[1]
            if arena is not None and end + n <= len(arena):
                if address_of(view) != places.address + end:   # else printed there
                    arena[end:end + n] = view
                self.memory[1] = places.used = end + n
                self._settle()
                return n
            at = os.lseek(places.spill_fd(), 0, os.SEEK_END)
            self.file = [at, at]
        _pwrite_all(places.spill_fd(), view, self.file[1])
        self.file[1] += n
        self._settle()
        return n

    def _settle(self) -> bool:
        """Write what is held at the window's place once that is known (the held windows
        before it first), and free its memory; whether it was."""
        places = self.places
        start = places.sizes.start(self.k)
        if start is None:
            return False
        places.write_ready()                          # the earlier ones: their places are known
        self.write_at(start)
        self.placed = self.size
        self.place = start
        places.used = self.memory[0]                  # the newest held: its memory is the top
        self.memory = [self.memory[0], self.memory[0]]
        self.file = None
        if not places.held:
            places.used = 0
        return True

    def write_at(self, start: int) -> None:
        places = self.places
        lo, hi = self.memory
        if hi > lo:
            view = memoryview(places.arena())[lo:hi]
            try:
                # a piece at a time: the file system locks the file for the whole of a write,
                # and the other processes' writes to it would wait for all of a window's bytes
                for at in range(0, hi - lo, _COPY_CHUNK):
                    _pwrite_all(places.fd, view[at:at + _COPY_CHUNK], start + at)
            finally:
                view.release()
        if self.file is not None:
            at, end = self.file
            _copy_at(places.spill_fd(), at, end - at, places.fd, start + hi - lo)


def _pwrite_all(fd: int, data, at: int) -> int:
    view = memoryview(data).cast("B")
    done = 0
    while done < view.nbytes:
        done += os.pwrite(fd, view[done:], at + done)
    return done


def _kernel_copy(src: int, at: int, count: int, dst: int, to: int | None) -> int:
    """Bytes of file ``src`` from ``at`` copied into file ``dst`` by copy_file_range (at
    ``to``, or at ``dst``'s own offset when None), up to ``count``: fewer where the kernel
    cannot (another file system, a file opened to append, no copy_file_range)."""
    done = 0
    try:
        while done < count:
            n = os.copy_file_range(src, dst, count - done, at + done,
                                   None if to is None else to + done)
            if n <= 0:
                break
            done += n
    except (OSError, AttributeError):
        pass
    return done


def _copy_at(src: int, at: int, count: int, dst: int, to: int) -> None:
    """Copy ``count`` bytes of file ``src`` from ``at`` into file ``dst`` at ``to``: in the
    kernel where it can, else through this process."""
    done = _kernel_copy(src, at, count, dst, to)
    while done < count:
        chunk = os.pread(src, min(_COPY_CHUNK, count - done), at + done)
        if not chunk:
            raise OSError(f"a held window's file ends at byte {at + done}, {count - done} bytes early")
        done += _pwrite_all(dst, chunk, to + done)


def _copy_range(src: int, at: int, count: int, fd: int | None, writer, tail: bytearray) -> int:
    """Copy ``count`` bytes of the file ``src`` from ``at`` to the output: copy_file_range
    into ``fd`` when given, else through the writer, whole characters at a time (``tail``:
    the start of a character cut by the end of what was there, written with the next bytes).
    Reads at explicit offsets: the worker writes through the same open file, at its offset."""
    copied = _kernel_copy(src, at, count, fd, None) if fd is not None else 0
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
    if directory is None:
        import tempfile

        directory = tempfile.gettempdir()
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError:
            pass                   # not on this file system: a named file, unnamed at once
    from wpptrace._outputs import new_private_file

    try:
        fd, path = new_private_file(directory, ".wpptrace-fmt-", "")
    except OSError as exc:
        raise WindowFileError.of(exc, directory) from exc
    os.unlink(path)
    return fd


class WindowFileError(Win32Error):
    """No file for a window's text could be made in the directory ``filename`` (the output's,
    or the temporary directory): said as that directory's problem, not the output's."""

    @classmethod
    def of(cls, exc: OSError, directory: str) -> "WindowFileError":
        failure = as_win32(exc)
        code = failure.winerror if isinstance(failure, Win32Error) else ETL.ERROR_ACCESS_DENIED
        return cls(code, None if failure is not exc else exc.strerror, filename=directory)


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
