"""``fmt -j N``: one .etl file decoded by N processes, the same bytes as one process.

The ProcessTrace order of a file is a merge of its processor streams by merge key (each
stream's running maximum time). Cutting the keys at N - 1 times gives N windows; each window's
records, merged by the engine exactly as the whole file would be, are a contiguous run of the
whole order (``FileSource.ordered(view, window=...)``), so the windows' outputs written one
after the other are the whole output. This process decodes the first window into the output;
each other window is decoded by a worker process (forked: it starts with this process's TMF set
and decoder settings) into a temporary file, appended in order afterwards (in the kernel when
the output is a file). The workers' counts (messages, Unknowns, format errors, per-message
counts for the summary) and read logs (buffers, damage: each buffer is accounted by one
window) are added to this process's.

The cut times come from the buffer headers' times, weighted by the bytes each buffer holds,
so the windows carry about the same work; any cut gives the same output.
"""
from __future__ import annotations

import multiprocessing
import os
import stat
import tempfile
import traceback
from typing import IO

__all__ = ["cut_keys", "decode_parallel", "default_jobs", "AUTO_MIN_BYTES"]

#: inputs this large are decoded by one process per core when the output is a file
AUTO_MIN_BYTES = 16 << 20
_COPY_CHUNK = 1 << 20
_SPREAD = 8  # points per buffer when placing its bytes in time


def default_jobs(output: str | None, size: int) -> int:
    """The number of processes ``fmt`` uses when not told: one per core (the cores this
    process may run on) for a large input written to a regular file (or one to be made), else
    one: standard output, pipes and devices such as /dev/null get one process."""
    if output in (None, "-") or size < AUTO_MIN_BYTES:
        return 1
    try:
        if not stat.S_ISREG(os.stat(output).st_mode):
            return 1
    except OSError:
        pass                                     # not there yet: a file to be made
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores)


def cut_keys(etl, jobs: int) -> list[int | None]:
    """The window bounds [None, k1, ..., None] for ``jobs`` windows: raw times at which about
    1/jobs of the data buffers' bytes have been written. A buffer's header time is when it was
    flushed; its records lie between the previous flush of its stream and that time, spread
    evenly for this estimate."""
    from .ordering import buffer_streams

    streams = buffer_streams(etl)
    times = [info.timestamp for stream in streams for info in stream]
    if jobs <= 1 or not times:
        return [None, None]
    points: list[tuple[int, float]] = []
    start = min(times)
    for stream in streams:
        previous = start
        for info in stream:
            lo, hi = sorted((previous, info.timestamp))
            weight = max(1, info.filled_bytes) / _SPREAD
            points += [(lo + (hi - lo) * (2 * k + 1) // (2 * _SPREAD), weight) for k in range(_SPREAD)]
            previous = info.timestamp
    points.sort()
    total = sum(weight for _t, weight in points)
    cuts: list[int | None] = [None]
    done, k = 0.0, 1
    for t, weight in points:
        done += weight
        while k < jobs and done * jobs >= total * k:
            if cuts[-1] is None or t > cuts[-1]:
                cuts.append(t)
            k += 1
    cuts.append(None)
    return cuts


def decode_parallel(decoder, writer, opts, inp, jobs: int, err: IO[str]) -> None:
    """Decode ``inp`` (cli_fmt's input) in ``jobs`` processes into ``writer``: this process
    decodes the first window straight into the writer while forked workers decode the others
    into temporary files, appended afterwards; their counts and read logs end up in
    ``decoder`` and ``inp.etl`` as if this process had decoded the whole file."""
    from . import cli_fmt

    cuts = cut_keys(inp.etl, jobs)  # also reads the file's layout (its facts and problems) here
    windows = list(zip(cuts[:-1], cuts[1:]))
    context = multiprocessing.get_context("fork")
    out_dir = os.path.dirname(os.path.abspath(opts.output)) if opts.output not in (None, "-") else None
    with tempfile.TemporaryDirectory(prefix=".wpptrace-fmt-", dir=out_dir) as tmp:
        paths = [os.path.join(tmp, f"window{k}") for k in range(len(windows))]
        workers = []
        try:
            for k in range(1, len(windows)):  # forked before this process decodes anything
                receive, send = context.Pipe(duplex=False)
                proc = context.Process(target=_worker, name=f"wpptrace-fmt-{k}",
                                       args=(k, windows[k], inp.path, decoder, opts, paths[k], send))
                proc.start()
                send.close()
                workers.append((proc, receive))
            cli_fmt._decode_sources(decoder, writer, opts, [inp.source], None, windows[0])
            results = []
            for proc, receive in workers:
                try:
                    results.append(receive.recv())
                except EOFError:
                    results.append(("error", "a worker process ended without a result"))
                proc.join()
        finally:
            for proc, _receive in workers:
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        failed = [r[1] for r in results if r[0] == "error"]
        if failed:
            raise RuntimeError(f"{opts.prog}: a decoding process failed:\n{failed[0]}")
        writer.flush()
        for path in paths[1:]:
            _copy_into(writer, path)
    for _status, result in results:
        _add_result(decoder, inp.etl, result)


def _copy_into(writer, path: str) -> None:
    """Append a window's output: in the kernel when the output is a plain file written as
    UTF-8 bytes (copy_file_range), else through the writer."""
    fd = _raw_fd(writer)
    with open(path, "rb") as src:
        copied = 0
        if fd is not None:
            size = os.fstat(src.fileno()).st_size
            try:
                while copied < size:
                    done = os.copy_file_range(src.fileno(), fd, size - copied)
                    if done <= 0:
                        break
                    copied += done
            except OSError:
                pass
            src.seek(copied)
        while chunk := src.read(_COPY_CHUNK):
            writer.write_utf8(chunk)


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


def _worker(k: int, window, path: str, decoder, opts, out_path: str, send) -> None:
    """One window of the file, decoded into ``out_path``; the counts sent back."""
    try:
        from . import cli_fmt
        from .engine import FileSource
        from .etlfile import EtlFile

        etl = EtlFile(path)
        try:
            with open(out_path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as stream:
                writer = cli_fmt._writer(opts, stream, header=k == 0)
                cli_fmt._decode_sources(decoder, writer, opts, [FileSource(etl)], None, window)
                writer.flush()
            send.send(("ok", _result(decoder, etl)))
        finally:
            etl.close()
    except BaseException:  # the parent reports it; a worker never raises past here
        send.send(("error", traceback.format_exc()))
    finally:
        send.close()
        os._exit(0)


def _result(decoder, etl) -> dict:
    c = decoder.counters
    stats = etl.stats
    return {
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
