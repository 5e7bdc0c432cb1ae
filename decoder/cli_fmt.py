"""``wpptrace fmt``: decode the WPP messages of .etl files like tracefmt (text, CSV, JSON Lines, summary).

``run_fmt(FmtOptions)`` is the one implementation behind both ``wpptrace fmt`` (GNU-style
options, this module's ``add_arguments``/``run``) and the ``tracefmt`` console command
(tracefmt's own options, ``wpptrace.decoder.tracefmt``).

Exit codes: 0 every input was read (unknown formats and format errors are counted, not
failures); 1 an input file, TMF/PDB path or output could not be used, or a file had damage
that was skipped (details on stderr); 2 bad command line.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import stat
import sys
import time
from operator import attrgetter

from wpptrace._cliutil import (RawDescriptionHelpFormatter, input_problem, not_there, program_cache_off,
                               reason)
from wpptrace._fieldclass import field, fieldclass
from wpptrace import _outputs as outputs

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import IO, Callable, Iterable, Iterator

__all__ = ["FmtOptions", "run_fmt", "add_arguments", "run", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_PROGRESS_MIN_BYTES = 4 << 20  # show a progress bar for inputs larger than this (on a terminal)


@fieldclass
class FmtOptions:
    """Everything a decode run needs; both command lines fill one of these."""

    files: list[str] = field(default_factory=list)
    realtime: str | None = None  # live session name (-rt)
    tmf_files: list[str] = field(default_factory=list)
    tmf_dirs: list[str] = field(default_factory=list)
    pdbs: list[str] = field(default_factory=list)  # PDB files (or images whose PDB is searched)
    symbol_paths: list[str] = field(default_factory=list)
    output: str | None = None  # None: standard output
    text_wanted: bool = True  # False: only the summary is (tracefmt -summaryonly; output: os.devnull)
    output_format: str = "text"  # text | csv | jsonl | parquet | arrow (decoder.arrow)
    csv_header: bool = True
    csv_quote: bool = False
    summary: str | None = None  # summary file path, None: none
    display: bool = False  # also copy the text to stdout when output is a file
    prefix: str | None = None  # None: TRACE_FORMAT_PREFIX or the default
    noprefix: bool = False
    utc: bool = False
    seq: bool = False  # tracefmt -seq: default prefix with the sequence number
    progress: str = "auto"  # auto | always | never
    verbose: bool = False  # status lines (processing completed, files written) on stderr
    prog: str = "wpptrace fmt"
    jobs: int = 1  # processes decoding one file (0: one per core for a large file into a file)
    all_records: bool = False  # parquet/arrow: rows for the records that are not WPP messages
    batch_rows: int | None = None  # parquet/arrow: rows per record batch (None: decoder.arrow's default)
    cache: bool = True  # keep compiled messages between runs (decoder.program_cache)
    # the run's process is a command line's own: what it frees is held for its next chunks
    # (csrc/heap.h; process-wide, so not for a library caller's process)
    hold_heap: bool = False


# -- inputs -------------------------------------------------------------------------------

#: options that cannot both be followed (one would do nothing, or nothing would be written):
#: the two, by the keys each front end (fmt, tracefmt) spells them with, and why
OPTION_CONFLICTS = (
    ("noprefix", "prefix", "give one"),
    ("noprefix", "seq", "give one"),
    ("seq", "prefix", "give one (%7!08x! in a prefix is the sequence number)"),
    ("summaryonly", "nosummary", "give one (together nothing would be written)"),
    ("summaryonly", "displayonly", "give one (-summaryonly writes no text)"),
    ("summaryonly", "display", "give one (-summaryonly writes no text)"),
)
#: options that mean something only beside another: (the option, the one it is for)
OPTION_NEEDS = (("csv_quote", "csv"), ("csv_header", "csv"))


def conflicting_options(given: dict[str, bool], spelled: dict[str, str]) -> str | None:
    """Why the options ``given`` (key: given or not) cannot all be followed, in the front
    end's spelling (``spelled``: key -> option; for a needed option, what it is for), else
    None."""
    for first, second, why in OPTION_CONFLICTS:
        if given.get(first) and given.get(second):
            return f"{spelled[first]} and {spelled[second]}: {why}"
    for option, needed in OPTION_NEEDS:
        if given.get(option) and not given.get(needed):
            return f"{spelled[option]} is for {spelled[needed]}"
    return None


def load_tmfs(opts: FmtOptions, err: IO[str], options: str = "-p DIR, --tmf/-tmf FILE, --pdb/-pdb"):
    """The run's TmfSet (tolerant: directories are read as their GUIDs are met), how many of
    the given TMF paths and PDBs could not be used (each said on ``err`` as an error), and how
    many paths, given or in TRACE_FORMAT_SEARCH_PATH, can be (a missing entry of that is said
    as a warning); a warning when nothing gives formats (``options``: the command's spellings
    of the TMF options)."""
    from wpptrace import tmf
    from wpptrace.tmf.loader import ENV_SEARCH_PATH, split_search_path
    from wpptrace.winerror import as_win32

    paths: list[str] = []
    problems = 0
    for path in opts.tmf_files + opts.tmf_dirs:
        if not os.path.exists(path):
            print(f"{opts.prog}: error: {not_there(path)}", file=err)
            problems += 1
            continue
        if os.path.isdir(path) and not _has_tmf_files(path):
            # Every message would print as Unknown; say why instead of leaving users guessing.
            print(f"{opts.prog}: warning: {path}: no .tmf files in this directory: messages "
                  f"without a format print as Unknown", file=err)
        paths.append(path)
    for image in opts.pdbs:
        try:
            paths.append(_find_pdb(image, opts.symbol_paths))
        except (OSError, ValueError) as exc:
            said = as_win32(exc) if isinstance(exc, OSError) else exc
            print(f"{opts.prog}: error: {image}: {_describe(said, image)}", file=err)
            problems += 1
    searched = 0
    for entry in split_search_path(os.environ.get(ENV_SEARCH_PATH)):
        if os.path.exists(entry):
            searched += 1
        else:       # (skipped, as Windows does; said, as a given path is)
            print(f"{opts.prog}: warning: {not_there(entry)} (an entry of {ENV_SEARCH_PATH})",
                  file=err)
    if not (opts.tmf_files or opts.tmf_dirs or opts.pdbs or os.environ.get(ENV_SEARCH_PATH)):
        print(f"{opts.prog}: warning: no TMF given ({options} or {ENV_SEARCH_PATH}): "
              f"messages without a format print as Unknown", file=err)
    tmfset = tmf.load(*paths, tolerant=True)
    return tmfset, problems, len(paths) + searched


def _open_cache(decoder, opts: FmtOptions, prefix: str):
    """The run's ``ProgramCache``: None for a form whose messages are not kept, or when there
    is no cache (turned off, or no private directory for it). Turned off by the environment,
    its modules are not imported: they are a part of the run's start worth saving (see
    docs/performance.md)."""
    if program_cache_off():
        return None
    from .program_cache import ProgramCache
    from .program_share import ProgramShare

    mode = ProgramShare.mode(decoder.printer_mode(opts.output_format, opts.csv_quote))
    return ProgramCache.open(decoder.tmfset.inputs, mode, (prefix, opts.utc))


def _has_tmf_files(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:      # (closed at the first TMF file found)
            return any(entry.name.lower().endswith((".tmf", ".tmc")) for entry in entries)
    except OSError:
        return True  # unreadable: the loader reports it


def _find_pdb(image: str, symbol_paths: list[str]) -> str:
    """A .pdb given directly, or the PDB matching a PE image (GUID and age, like tracefmt -i -r):
    beside the image, at its linker path, or in the symbol paths (-r, else _NT_SYMBOL_PATH)."""
    from wpptrace.tmf.errors import not_regular_file
    from wpptrace.tmf.pdb.tracepdb import pdb_for

    try:
        mode = os.stat(image).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), image) from None
    if stat.S_ISDIR(mode):
        raise FileNotFoundError("is a directory: give the .pdb file, or the image, in it")
    if not stat.S_ISREG(mode):          # a device, pipe or socket: no PDB is read from those
        raise FileNotFoundError(not_regular_file("give the .pdb file, or the image"))
    found = pdb_for(image, symbol_paths)
    if found == image and not image.lower().endswith(".pdb"):
        # neither an image nor named .pdb: given as a PDB, it must be one (not read as a TMF)
        from wpptrace.tmf.pdb.msf import MsfFile, PdbError

        try:
            MsfFile(image).close()
        except PdbError as exc:
            raise ValueError(str(exc).removeprefix(f"{exc.path}: ")) from None
    return found


class _Input:
    """One opened .etl file: the engine's source for it, and its size."""

    def __init__(self, path: str):
        from .engine import FileSource
        from .etlfile import EtlFile

        self.path = path
        self.etl = EtlFile(path)
        self.source = FileSource(self.etl)
        self.header = self.etl.header
        self.converter = self.source.clock
        try:
            self.size = os.path.getsize(path)
        except OSError:
            self.size = 0

    @property
    def buffers(self) -> int:
        """Buffers actually read (the header's BuffersWritten may be damaged)."""
        return int(self.etl.stats.buffers)

    @property
    def events_lost(self) -> int:
        if not getattr(self.header, "valid", True):
            return 0
        return int(getattr(self.header, "events_lost", 0) or 0)

    def close(self) -> None:
        self.etl.close()


def _open_live(name: str):
    """The engine's source for a running real-time session, once its header buffer is there."""
    from .engine import LiveSource

    return LiveSource.for_session(name)


# -- progress ----------------------------------------------------------------------------

class _Progress:
    """A one-line progress bar on stderr, advanced by record time within the file's time span."""

    def __init__(self, stream: IO[str], inp: _Input):
        self.stream = stream
        self.inp = inp
        header = inp.header
        convert = inp.converter.to_filetime
        self.start = int(getattr(header, "start_time", 0) or 0)
        self.end = int(getattr(header, "end_time", 0) or 0)
        self.convert = convert
        self.last = 0.0
        self.name = os.path.basename(inp.path)

    def wrap(self, chunks: Iterable[tuple[list, list]]) -> Iterator[tuple[list, list]]:
        """Pass the engine's chunks (items, raw keys) through, redrawing between them."""
        n = 0
        for items, keys in chunks:
            if keys:
                self._update(keys[-1], n)
                n += len(keys)
            yield items, keys
        self._finish()

    def _update(self, raw, count: int) -> None:
        span = self.end - self.start
        now = time.monotonic()
        if now - self.last > 0.2 and span > 0 and raw is not None:
            self.last = now
            self._draw(min(1.0, max(0.0, (self.convert(raw) - self.start) / span)), count)

    def _finish(self) -> None:
        self._draw(1.0, None)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, frac: float, count: int | None) -> None:
        width = 30
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        extra = "" if count is None else f" {count:,} records"
        self.stream.write(f"\r{self.name} [{bar}] {frac * 100:5.1f}%{extra}   ")
        self.stream.flush()


def _want_progress(opts: FmtOptions, inp: _Input, err: IO[str]) -> bool:
    if opts.progress == "never":
        return False
    if opts.progress == "always":
        return True
    try:
        tty = err.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and inp.size >= _PROGRESS_MIN_BYTES


# -- the run -----------------------------------------------------------------------------

def _unwritable(path: str | None) -> str | None:
    """Why an output path can be seen not to be writable before the run (None: no reason)."""
    if path is None or path == "-" or outputs.descriptor_named(path) is not None:
        return None              # (a descriptor: open_output says if it is not open)
    if os.path.isdir(path):
        return "it is a directory"
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        from wpptrace.winerror import no_directory

        return no_directory(parent)
    return None


def _open_output(opts: FmtOptions, out: IO[str]) -> tuple[IO[str], bool]:
    if opts.output is None or opts.output == "-":
        return out, False
    # a buffer smaller than a chunk of the renderer's output: each chunk goes straight to
    # the file instead of being copied through the buffer first
    return outputs.open_output(opts.output, outputs.mode_from(opts.files, outputs.PRIVATE_MODE),
                               buffering=1 << 16), True


class _Tee:
    """Write to the output file and to the console (tracefmt -display). The console's reader
    leaving (``| head``) ends the copy there, not the file's text (``left``: called then)."""

    def __init__(self, output: IO[str], console: IO[str], left: Callable[[], None]):
        self.output = output
        self.console: IO[str] | None = console
        self._left = left

    def write(self, text: str) -> None:
        self.output.write(text)
        if self.console is not None:
            try:
                self.console.write(text)
            except BrokenPipeError:
                self._console_left()

    def flush(self) -> None:
        self.output.flush()
        if self.console is not None:
            try:
                self.console.flush()
            except BrokenPipeError:
                self._console_left()

    def _console_left(self) -> None:
        self.console = None
        self._left()


class _ReaderMayLeave:
    """A writer to standard output when a summary file is asked for: the output's reader
    leaving (``fmt x.etl --summary s.txt | head``) ends the printing, not the run, which goes on
    to the end of its inputs (as tracefmt does), so that the summary counts what they hold;
    what is written after is dropped (``left``: called then); a live view, which has no end of
    its own, ends there as on a session stop. With no summary asked for, the broken pipe ends
    the run at once (the command line's quiet exit)."""

    def __init__(self, writer, left: Callable[[], None]):
        self.writer = writer
        self.stream = writer.stream
        self._left = left
        self.gone = False

    def write_utf8(self, data: bytes | memoryview) -> None:
        if not self.gone:
            self._do(self.writer.write_utf8, data)

    def write_batch(self, batch) -> None:
        if not self.gone:
            self._do(self.writer.write_batch, batch)

    def room(self) -> tuple[int, int] | None:
        return None if self.gone else self.writer.room()

    def flush(self) -> None:
        if not self.gone:
            self._do(self.writer.flush)

    def close(self) -> None:
        if not self.gone:
            self._do(self.writer.close)

    def _do(self, step: Callable, *args) -> None:
        try:
            step(*args)
        except BrokenPipeError:
            self.gone = True
            self._left()


def _writer(opts: FmtOptions, stream: IO[str], header: bool = True):
    """The writer of the chosen output format (``header``: the CSV header row, if asked for)."""
    from . import output as outmod

    if opts.output_format in COLUMNAR:
        from .arrow import ArrowFileWriter

        return ArrowFileWriter(_binary(stream), opts.output_format)
    if opts.output_format == "csv":
        return outmod.CsvWriter(stream, header=opts.csv_header and header, quote_all=opts.csv_quote)
    if opts.output_format == "jsonl":
        return outmod.JsonLinesWriter(stream)
    return outmod.TextWriter(stream)


#: output formats written as Arrow record batches (decoder.arrow, the ``arrow`` extra)
COLUMNAR = ("parquet", "arrow")


def _binary(stream):
    """The byte stream under a text output (Parquet and Arrow IPC are binary)."""
    if isinstance(stream, outputs.AtomicOutput):
        stream = stream.stream
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        raise ValueError("a binary output format needs a file or a byte stream")
    stream.flush()
    return buffer


def _columnar_option_given(opts: FmtOptions) -> str | None:
    """The first option given that only -f parquet and -f arrow take, when the format is
    another (it would do nothing there: refused, not silently ignored), else None."""
    if opts.output_format in COLUMNAR:
        return None
    if opts.all_records:
        return "--all-records"
    if opts.batch_rows is not None:
        return "--batch-rows"
    return None


def run_fmt(opts: FmtOptions, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Decode ``opts.files`` (or a live session) and write the chosen outputs. Returns the exit code."""
    from .prefix import DEFAULT_PREFIX, SEQUENCE_PREFIX, PrefixTemplate, prefix_from_environment

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    started = time.monotonic()
    status = EXIT_OK

    if opts.realtime is not None:
        if opts.files:
            print(f"{opts.prog}: error: give .etl files or a real-time session, not both", file=err)
            return EXIT_USAGE
    elif not opts.files:
        print(f"{opts.prog}: error: no .etl file given", file=err)
        return EXIT_USAGE
    columnar_only = _columnar_option_given(opts)
    if columnar_only is not None:
        print(f"{opts.prog}: error: {columnar_only} is for -f parquet and -f arrow, not "
              f"-f {opts.output_format}", file=err)
        return EXIT_USAGE
    if opts.output_format in COLUMNAR and opts.jobs > 1:     # (0: as many as pay, here one)
        print(f"{opts.prog}: error: -j {opts.jobs} is for -f text, -f csv and -f jsonl, not "
              f"-f {opts.output_format} (written by one process)", file=err)
        return EXIT_USAGE
    # -display copies the text to stdout, unless the output is where stdout goes (-o /dev/stdout,
    # the file or pipe stdout is): there the text is shown once
    display = opts.display and opts.output not in (None, "-") and not outputs.same_file_as_stream(
        opts.output, out)
    try:  # before anything is opened for writing: no output may be an input
        outputs.check_outputs([opts.output, opts.summary], [*opts.files, *opts.tmf_files, *opts.pdbs],
                              input_dirs=opts.tmf_dirs,
                              stdout=out if opts.output in (None, "-") or display else None)
    except outputs.OutputRefused as refused:
        return outputs.fail(opts.prog, refused, err)
    for path in (opts.output, opts.summary):   # before decoding: a run that cannot end well
        problem = _unwritable(path)
        if problem:
            print(f"{opts.prog}: error: {path}: cannot write: {problem}; nothing was written",
                  file=err)
            return EXIT_FAILURE

    prefix = opts.prefix
    if prefix is None:
        prefix = prefix_from_environment()
        if prefix is not None and opts.seq:
            seq = "-seq" if opts.prog == "tracefmt" else "--seq"
            print(f"{opts.prog}: warning: {seq} does nothing: TRACE_FORMAT_PREFIX sets the "
                  f"prefix (%7!08x! in it is the sequence number)", file=err)
    if prefix is None:
        prefix = SEQUENCE_PREFIX if opts.seq else DEFAULT_PREFIX
    try:
        PrefixTemplate(prefix)
    except ValueError as exc:
        print(f"{opts.prog}: error: bad prefix {prefix!r}: {exc}", file=err)
        return EXIT_USAGE

    if opts.output_format in COLUMNAR:
        problem = _columnar_problem(opts, out)
        if problem:
            print(f"{opts.prog}: error: {problem}", file=err)
            return EXIT_USAGE

    inputs: list[_Input] = []
    for path in opts.files:
        try:
            inputs.append(_Input(path))
        except (OSError, ValueError) as exc:
            print(f"{opts.prog}: error: {input_problem(path, exc)}", file=err)
            status = EXIT_FAILURE
    if not inputs and opts.realtime is None:    # nothing to decode: that one fatal line only
        return status or EXIT_FAILURE
    live = None
    if opts.realtime is not None:   # before the formats' warnings: a session not there is all said
        try:
            live = _open_live(opts.realtime)
        except (OSError, EOFError) as exc:
            from wpptrace.provider.session_cli import live_problem

            print(f"{opts.prog}: error: {live_problem(opts.realtime, exc)}", file=err)
            return EXIT_FAILURE
    with _released(live):       # (a run that ends before decoding it too)
        return _run_opened(opts, out, err, started, status, inputs, live, prefix, display)


@contextlib.contextmanager
def _released(live):
    """The ``live`` session's queue (if any) released on leaving the block: no more of its
    buffers taken. Releasing again does nothing, so the decoding's own block (ended as soon
    as the decoding is: its buffers no longer taken while the outputs are written) may sit
    inside the run's."""
    try:
        yield
    finally:
        if live is not None:
            live.queue.release()


def _run_opened(opts: FmtOptions, out: IO[str], err: IO[str], started: float, status: int,
                inputs: list, live, prefix: str, display: bool) -> int:
    """``run_fmt`` once its inputs are open (``inputs``, or the ``live`` session's source):
    the formats loaded, the outputs written. Returns the exit code."""
    from .wpp import WppDecoder

    tmfset, problems, usable = load_tmfs(opts, err)
    if problems:
        status = EXIT_FAILURE
        if not usable:   # (said above) only mistyped paths: every message would be Unknown
            kept = opts.output not in (None, "-") and os.path.isfile(opts.output)
            print(f"{opts.prog}: error: nothing was decoded: give TMF and PDB paths that can be "
                  f"read{'; the old output is kept' if kept else ''}", file=err)
            for inp in inputs:
                inp.close()
            return EXIT_FAILURE
    decoder = WppDecoder(tmfset, prefix=prefix, noprefix=opts.noprefix, utc=opts.utc)
    decoder.text_wanted = opts.text_wanted
    cache = _open_cache(decoder, opts, prefix) if opts.cache and opts.realtime is None else None
    decoder.use_cache(cache)

    try:
        stream, owned = _open_output(opts, out)
    except OSError as exc:
        from wpptrace.winerror import as_win32

        print(f"{opts.prog}: error: {opts.output}: cannot write: {reason(as_win32(exc), opts.output)}",
              file=err)
        return EXIT_FAILURE
    if owned and opts.output_format in COLUMNAR:   # before anything is written to it
        problem = _on_terminal(opts, stream)
        if problem:
            stream.close()
            print(f"{opts.prog}: error: {problem}", file=err)
            return EXIT_USAGE

    def reader_left() -> None:
        """Standard output's reader left (``| head``): what it still buffers is dropped (in a
        command line's own process: a library caller's stream is its own)."""
        if opts.hold_heap:
            _drop_unwritten(out)

    if owned and display:
        stream = _Tee(stream, out, reader_left)

    writer = _writer(opts, stream)
    target = stream.output if isinstance(stream, _Tee) else stream
    def reader_left_summary() -> None:
        """... and the run goes on for its summary alone: no more text is printed."""
        reader_left()
        decoder.text_wanted = False

    if not owned and opts.summary:
        writer = _ReaderMayLeave(writer, reader_left_summary)

    summary_file = _SummaryFile(opts) if opts.summary else None
    try:
        try:
            with _few_collections(), _held_heap(opts.hold_heap and opts.realtime is None):
                # (a file the run opened itself: not a descriptor it was handed, which may append)
                opened_here = owned and not display and getattr(target, "descriptor", None) is None
                _decode_all(decoder, writer, opts, inputs, live, err, opened_here, summary_file)
            writer.close()
            if owned:  # complete: into place (an interrupted run leaves the old file)
                target.commit(wait=False)       # the old file goes while the summary is written
        except OSError as exc:
            # a file other than the output failed (an input's device, the directory of -j's
            # window files), or a write of the output failed part-way: its disk full, the file
            # size limit passed, the device failing...: the run has no output
            line = other_file_failure(exc)
            if line is None:
                from wpptrace.winerror import write_failure

                failure = write_failure(exc)
                if failure is None:
                    raise
                where = "standard output" if opts.output in (None, "-") else opts.output
                line = f"{where}: cannot write: {reason(failure)}"
            print(f"{opts.prog}: error: {line}", file=err)
            if not owned and opts.hold_heap:   # (a command line's own process: a library
                _drop_unwritten(out)            # caller's stream and descriptor are its own)
            for inp in inputs:
                inp.close()
            return EXIT_FAILURE
        finally:
            if owned:
                target.close()
        if decoder.program_cache is not None and not tmfset.issue_counts:
            # (a run whose TMF files reported problems keeps nothing: a later run taking its
            # messages from the cache would not read those files and could not report them)
            decoder.program_cache.save()
        try:
            return _finish(decoder, opts, inputs, err, started, status, summary_file)
        finally:
            if owned:
                target.settle()
    finally:
        if summary_file is not None:
            summary_file.close()            # (not written: its temporary file removed)


def other_file_failure(exc: OSError) -> str | None:
    """``PATH: what failed`` for an error met while decoding that names a file other than the
    output: an input whose read failed (ERROR_READ_FAULT, at its offset), the directory where
    -j's window files could not be made; None for any other error."""
    from wpptrace.winerror import Win32Error

    from .parallel import WindowFileError

    if isinstance(exc, WindowFileError):
        return f"{exc.filename}: cannot make a temporary file: {reason(exc)}"
    if isinstance(exc, Win32Error) and exc.filename is not None and exc.name == "ERROR_READ_FAULT":
        return input_problem(exc.filename, exc)
    return None


def _drop_unwritten(stream) -> None:
    """Forget what a standard output that could not be written still buffers (flushed at
    the process's end, it would fail again, in a traceback)."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):
        return
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class _SummaryFile:
    """The summary's file (``--summary``), opened (its temporary file made) by ``ready`` ahead
    of its text where the run has time to spare: fmt -j's parent, waiting for its workers'
    last results (else it is opened when written). At the end of a run, making the file
    costs 1-2 ms of the kernel's, up to 12 ms while the old output is being removed. A failed
    run or a SIGTERM removes it; a process killed by SIGKILL during the wait leaves it beside
    the summary (``.NAME.<12 hex digits>.partial``), as it leaves the output's."""

    def __init__(self, opts: FmtOptions) -> None:
        self.path, self.files = opts.summary, opts.files
        self._output: outputs.AtomicOutput | None = None
        self._tried = False

    def ready(self) -> None:
        """Open it now (once; what fails is tried again, and told, when it is written): a
        regular file, or none yet, only (opening a FIFO waits for its reader, who may be
        reading the output first)."""
        if self._tried:
            return
        self._tried = True
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                return
        except FileNotFoundError:
            pass
        except OSError:
            return
        try:
            self._output = self._open()
        except OSError:
            pass

    def write(self, text: str) -> None:
        """Write ``text`` as the whole file and put it in place."""
        output, self._output = self._output, None
        with output if output is not None else self._open() as fh:
            fh.write(text)

    def close(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    def _open(self) -> outputs.AtomicOutput:
        return outputs.open_output(self.path, outputs.mode_from(self.files, outputs.PRIVATE_MODE))


def _decode_all(decoder, writer, opts: FmtOptions, inputs: list, live, err: IO[str],
                opened_here: bool, summary_file: _SummaryFile | None) -> None:
    """Feed every input (or the ``live`` session's source, released once decoded) through
    the engine and the decoder into the writer (``opened_here``: the writer writes only to
    the output file this run opened itself, not to append; ``summary_file``: readied while
    -j's parent waits)."""
    if live is not None:
        sources = [live]
    else:
        sources = [inp.source for inp in inputs]
        if len(inputs) == 1:
            from .jobs import default_jobs

            jobs = opts.jobs if opts.jobs > 0 else default_jobs(opts.output, inputs[0].size)
            if jobs > 1 and opts.output_format not in COLUMNAR:   # -j: text outputs
                from .parallel import decode_parallel

                decode_parallel(decoder, writer, opts, inputs[0], jobs, err, opened_here,
                                summary_file.ready if summary_file is not None else None)
                return
    progress = None
    if len(inputs) == 1 and _want_progress(opts, inputs[0], err):
        progress = _Progress(err, inputs[0])
    try:
        with _released(live), _ctrl_c_ends([source.queue for source in sources if source.live]):
            _decode_sources(decoder, writer, opts, sources, progress)
    except KeyboardInterrupt:
        if live is None:
            raise
        # Ctrl-C (or SIGTERM) is how a live view ends: what was decoded is written out as on a session stop


@contextlib.contextmanager
def _ctrl_c_ends(queues: list):
    """Ctrl-C ends a live view between two buffers (``interrupt``) rather than as an exception
    raised wherever the loop happens to be (a buffer taken from the session and not yet
    decoded would be lost with it). A second Ctrl-C interrupts as usual. SIGTERM (how a
    service manager or a CI job stops a program) ends it the same way, its output written; a
    second one leaves as it would have. Only where Python's own handlers are in place, in the
    main thread (a program embedding ``run_fmt`` keeps its own)."""
    if not queues:   # files: nothing to end early (and no signal module to import)
        yield
        return
    import signal
    import threading

    from wpptrace._outputs import term_as_exit

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.default_int_handler
    term = signal.getsignal(signal.SIGTERM)
    if term == signal.SIG_DFL or term_as_exit(term):
        previous[signal.SIGTERM] = term

    def ended(signum, frame):
        signal.signal(signum, previous[signum])
        for queue in queues:
            queue.interrupt()

    for signum in previous:
        signal.signal(signum, ended)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _decode_sources(decoder, writer, opts: FmtOptions, sources: list, progress,
                    window: tuple[int | None, int | None] | None = None, view=None) -> None:
    """The engine's merged chunks of ``sources``, through the decoder's one formatting loop,
    written in the chosen format (``window``: only that time window of the one source, see
    decoder.parallel; ``view``: the ``RowView`` to read rows with, one per process for all
    its windows, so the messages' programs are bound to its keys once)."""
    from .engine import merge_sources
    from .wpp_rows import RowView

    def ordered(view):
        if window is not None:
            return sources[0].ordered(view, window=window)
        return merge_sources([(source, view) for source in sources])

    # a live view is watched as it comes: its lines leave with each batch, even into a pipe
    live = any(source.live for source in sources)

    def shown() -> None:
        """Send a live view's batch on; when its reader has left (``| head`` with a summary
        asked for: a file run decodes on to its end) the view ends as on a session stop."""
        writer.flush()
        if isinstance(writer, _ReaderMayLeave) and writer.gone:
            for source in sources:
                if source.live:
                    source.queue.interrupt()

    if view is None:
        view = RowView()
    chunks = ordered(view)
    if progress is not None:
        chunks = progress.wrap(chunks)
    if opts.output_format in COLUMNAR:
        from .arrow import DEFAULT_BATCH_ROWS, ROW_GROUP_ROWS, ArrowBuilder

        rows = DEFAULT_BATCH_ROWS if opts.batch_rows is None else opts.batch_rows
        if opts.output_format == "parquet":
            # Parquet is written a row group at a time: a larger batch would only be held whole
            rows = min(rows, ROW_GROUP_ROWS)
        builder = ArrowBuilder(decoder, all_records=opts.all_records, eager=live,
                               batch_rows=rows)
        for batch in builder.batches(chunks, view):
            writer.write_batch(batch)
            if live:
                shown()
        return
    write = writer.write_utf8
    # a writer holding its bytes in memory lends it: the renderer prints each chunk there
    room = getattr(writer, "room", None)
    for out in decoder.format(chunks, view, opts.output_format, opts.csv_quote, room):
        write(out)
        if live:
            shown()


def _columnar_problem(opts: FmtOptions, out: IO[str]) -> str | None:
    """Why a Parquet / Arrow output cannot be written as asked (None: it can)."""
    try:
        import pyarrow  # noqa: F401  (the optional extra)
    except ImportError:
        return (f"-f {opts.output_format} needs pyarrow: pip install 'wpptrace[arrow]'")
    if opts.display:
        return f"-f {opts.output_format} is binary: it cannot be copied to the console"
    to_stdout = opts.output in (None, "-")
    if opts.output_format == "parquet" and to_stdout:
        return "-f parquet needs an output file (-o FILE); -f arrow writes a stream to stdout"
    if to_stdout:
        try:
            if out.isatty():
                return "-f arrow writes binary: redirect stdout or give -o FILE"
        except (AttributeError, ValueError):
            pass
        if getattr(out, "buffer", None) is None:
            return "-f arrow needs a byte stream for stdout"
    # (an output on a terminal, -o /dev/stdout or /dev/tty, is refused once open: _on_terminal)
    if opts.batch_rows is not None:      # the builder's own check, asked before anything is read
        from .arrow import checked_batch_rows

        try:
            checked_batch_rows(opts.batch_rows, "--batch-rows")
        except ValueError as exc:
            return str(exc)
    return None


def _on_terminal(opts: FmtOptions, stream) -> str | None:
    """Why a binary output cannot go to the opened output ``stream``: it is a terminal
    (``-o /dev/stdout`` on one, ``-o /dev/tty``, ``-o /dev/pts/N``), as ``-f arrow`` with no
    ``-o`` is refused on one; None where it can."""
    try:
        terminal = stream.isatty()
    except (AttributeError, OSError, ValueError):
        terminal = False
    if not terminal:
        return None
    fix = "redirect it or give -o FILE" if outputs.descriptor_named(opts.output) is not None else "give -o FILE"
    return f"-f {opts.output_format} writes binary: {opts.output} is a terminal; {fix}"


def report_tmf_issues(issues: list, dropped: int, prog: str, err: IO[str]) -> None:
    """The TMF entries skipped (``issues``: TmfError), the first 20 in file order, then how
    many more: past those 20, and ``dropped`` (counted, not kept)."""
    # TMF files are read lazily, when a message of theirs is first met (with fmt -j, in this
    # process's window first, then the others'): their problems are reported in file order
    issues = sorted(issues, key=attrgetter("path", "line", "column"))
    for issue in issues[:20]:
        print(f"{prog}: warning: TMF entry skipped: {issue}", file=err)
    more = max(0, len(issues) - 20) + dropped
    if more:
        print(f"{prog}: warning: {more} more TMF entries skipped", file=err)


def _finish(decoder, opts: FmtOptions, inputs: list, err: IO[str], started: float, status: int,
            summary_file: _SummaryFile | None) -> int:
    """Report read problems, write the summary file (through ``summary_file``, given when
    ``opts.summary`` is) and the completion lines; the exit code."""
    from . import output as outmod
    from .etlfile import unclean_stop_text

    issues = decoder.tmf_issues()
    report_tmf_issues(issues, decoder.tmf_issues_dropped(issues), opts.prog, err)
    notices = []
    for inp in inputs:
        # in file order: the order buffers are read in depends on the merge, and fmt -j
        # reads them in other processes, each window's after the window before it
        listed = sorted(inp.etl.errors, key=attrgetter("offset"))[:20]
        for issue in listed:
            print(f"{opts.prog}: warning: {issue}", file=err)
        more = len(inp.etl.errors) - len(listed) + inp.etl.issues_dropped
        if more:
            print(f"{opts.prog}: warning: {inp.path}: {more} more problems not listed", file=err)
        if inp.etl.errors:
            status = status or EXIT_FAILURE
        missing = inp.etl.unclean_stop()
        if missing is not None:
            notices.append(f"{inp.path}: {unclean_stop_text(missing)}")
        inp.close()

    counters = decoder.counters
    summary = outmod.Summary(
        files=[inp.path for inp in inputs] or [f"(real-time session {opts.realtime})"],
        buffers=sum(inp.buffers for inp in inputs),
        events=counters.events,
        events_lost=sum(inp.events_lost for inp in inputs),
        format_errors=counters.format_errors,
        formats_unknown=counters.unknown,
        records_damaged=sum(inp.etl.stats.damaged for inp in inputs),
        buffers_skipped=sum(inp.etl.stats.unreadable_buffers for inp in inputs),
        elapsed_seconds=time.monotonic() - started,
    )
    if opts.summary:
        try:
            body = decoder.prepared_summary()     # (fmt -j: made while it waited, but the counts)
            text = (outmod.summary_text(summary, body=body) if body is not None else
                    outmod.summary_text(summary, decoder.summary_table()))
            summary_file.write(text)
        except OSError as exc:
            from wpptrace.winerror import as_win32

            print(f"{opts.prog}: error: {opts.summary}: cannot write the summary: "
                  f"{reason(as_win32(exc, writing=True), opts.summary)}", file=err)
            status = EXIT_FAILURE
    if opts.verbose:
        damage = (" :: Damaged Records: %d, Skipped Buffers: %d"
                  % (summary.records_damaged, summary.buffers_skipped)
                  if summary.records_damaged or summary.buffers_skipped else "")
        print("Processing completed   Buffers: %d, Events: %d, EventsLost: %d :: Format Errors: %d, "
              "Unknowns: %d%s" % (summary.buffers, summary.events, summary.events_lost,
                                  summary.format_errors, summary.formats_unknown, damage), file=err)
        if counters.non_wpp:
            print("Skipped %d non-WPP records" % counters.non_wpp, file=err)
        if opts.output and opts.text_wanted:
            print(f"Event traces dumped to {opts.output}", file=err)
        if opts.summary:
            print(f"Event Summary dumped to {opts.summary}", file=err)
        for notice in notices:
            print(notice, file=err)
    return status


@contextlib.contextmanager
def _few_collections():
    """Collect garbage rarely while decoding: the loop makes millions of short-lived tuples and
    strings but no reference cycles, and generation-0 passes over them cost a quarter of the
    run. Objects from before the run are frozen (not rescanned); everything is restored after.
    What the run made (compiled messages, up to 100,000 young objects) goes to the oldest
    generation unscanned: restoring the threshold would otherwise scan it all at once."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.freeze()
        gc.set_threshold(*threshold)
        gc.unfreeze()


@contextlib.contextmanager
def _held_heap(hold: bool = True):
    """Keep the memory freed while decoding files for the next chunks (``hold_heap``: each
    chunk's blocks would otherwise come back as fresh pages, a page fault each); glibc's
    default thresholds after (its adaptive one stays off: only a command line's own process,
    which ends with the run, holds). A live view is not held: it runs for hours, its chunks
    are small, and what it frees goes back."""
    from ._hazmat import hold_heap

    held = hold and hold_heap(True)
    try:
        yield
    finally:
        if held:
            hold_heap(False)


def _describe(exc: BaseException, path: str | None = None) -> str:
    """A one-line reason: Win32 errors as 'detail or text (ERROR_NAME)', others as their
    message; ``path`` (named first by the caller) left out of its start."""
    text = reason(exc, path)
    return text[len(path) + 2:] if path and text.startswith(f"{path}: ") else text


# -- wpptrace fmt command line ------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = RawDescriptionHelpFormatter
    parser.description = (
        "Decode the WPP (TraceMessage) records of .etl files into tracefmt text, CSV or JSON\n"
        "Lines, using TMF files, directories or private PDBs. Messages without a format print\n"
        "tracefmt's 'Unknown( N): GUID=...' line; messages whose arguments don't fit print a\n"
        "format-error line; both are counted and the run goes on.")
    parser.epilog = (
        "environment:\n"
        "  TRACE_FORMAT_PREFIX       prefix template (default \"[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]\")\n"
        "  TRACE_FORMAT_SEARCH_PATH  ';'-separated TMF directories searched for <guid>.tmf\n"
        "prefix variables: %1 component, %2 message name, %3 TID, %4 time, %5 kernel time,\n"
        "  %6 user time, %7 sequence, %8 PID, %9 CPU; markers %!FUNC! %!LEVEL! %!FLAGS!\n"
        "  %!COMPNAME! %!SUBCOMP! %!FILE! %!LINE!\n"
        "exit status: 0 ok, 1 an input/output problem (see stderr), 2 bad usage")
    parser.add_argument("files", nargs="*", metavar="FILE", help=".etl files (merged by time)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("-f", "--format", dest="output_format",
                        choices=("text", "csv", "jsonl", *COLUMNAR), default="text",
                        help="output format (default: text); parquet (needs -o) and arrow (an "
                             "Arrow IPC stream) need the arrow extra: pip install "
                             "'wpptrace[arrow]'")
    parser.add_argument("--all-records", action="store_true",
                        help="parquet/arrow: also a row per record that is not a WPP message "
                             "(status 'record', its header fields)")
    parser.add_argument("--batch-rows", type=int, metavar="N",
                        help="parquet/arrow: rows per record batch, 1 or more (default 65536)")
    parser.add_argument("--tmf", action="append", default=[], metavar="FILE",
                        help="a TMF file (repeatable)")
    parser.add_argument("-p", "--tmf-path", action="append", default=[], metavar="DIR",
                        help="a directory of <guid>.tmf files (repeatable)")
    parser.add_argument("--pdb", action="append", default=[], metavar="PDB_OR_IMAGE",
                        help="a private PDB, or an image whose PDB is looked up (repeatable)")
    parser.add_argument("-r", "--symbol-path", action="append", default=[], metavar="DIRS",
                        help="';'-separated directories searched for images' PDBs (repeatable)")
    parser.add_argument("--prefix", metavar="TEMPLATE",
                        help="prefix template (overrides TRACE_FORMAT_PREFIX)")
    parser.add_argument("--no-prefix", dest="noprefix", action="store_true",
                        help="no prefix (message text only)")
    parser.add_argument("--seq", action="store_true", help="default prefix with sequence numbers")
    parser.add_argument("--utc", action="store_true", help="timestamps in UTC (default: local time)")
    parser.add_argument("--summary", metavar="FILE", help="write a tracefmt summary (FmtSum layout)")
    parser.add_argument("--no-csv-header", dest="csv_header", action="store_false",
                        help="CSV without the header row")
    parser.add_argument("--csv-quote", action="store_true", help="quote every CSV field")
    from .jobs import jobs_option

    parser.add_argument("-j", "--jobs", type=jobs_option, default=0, metavar="N",
                        help="processes decoding one file into text, CSV or JSON Lines, at most "
                             "4 per core (default, or 0: one per core for a file of 16 MB or more "
                             "written to a file, else 1; parquet/arrow: one)")
    parser.add_argument("--no-cache", dest="cache", action="store_false",
                        help="compile every message this run needs, and keep none of them for the "
                             "next run (see also WPPTRACE_NO_CACHE, WPPTRACE_CACHE_DIR)")
    parser.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                        help="progress bar on stderr (auto: big files on a terminal)")
    parser.add_argument("--rt", dest="realtime", metavar="SESSION",
                        help="decode a running real-time session (one started with --realtime) "
                             "instead of files, as it comes; Ctrl-C or SIGTERM ends it")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print tracefmt's completion lines on stderr")


def _conflicting_options(args: argparse.Namespace) -> str | None:
    """Why options given together cannot all be followed (one would be ignored), else None."""
    given = {"noprefix": args.noprefix, "prefix": args.prefix is not None, "seq": args.seq,
             "csv": args.output_format == "csv", "csv_quote": args.csv_quote,
             "csv_header": not args.csv_header}
    return conflicting_options(given, {
        "noprefix": "--no-prefix", "prefix": "--prefix", "seq": "--seq",
        "csv": f"-f csv, not -f {args.output_format}", "csv_quote": "--csv-quote",
        "csv_header": "--no-csv-header"})


def run(args: argparse.Namespace) -> int:
    conflict = _conflicting_options(args)
    if conflict:
        print(f"wpptrace fmt: error: {conflict}", file=sys.stderr)
        return EXIT_USAGE
    opts = FmtOptions(
        files=list(args.files), realtime=args.realtime, tmf_files=list(args.tmf),
        tmf_dirs=list(args.tmf_path), pdbs=list(args.pdb),
        symbol_paths=list(args.symbol_path), output=args.output,
        output_format=args.output_format, csv_header=args.csv_header, csv_quote=args.csv_quote,
        summary=args.summary, prefix=args.prefix, noprefix=args.noprefix, utc=args.utc,
        seq=args.seq, progress=args.progress, verbose=args.verbose, prog="wpptrace fmt",
        jobs=args.jobs, all_records=args.all_records, batch_rows=args.batch_rows,
        cache=args.cache, hold_heap=True)
    return run_fmt(opts)
