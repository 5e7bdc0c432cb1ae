"""Fleets of .etl files decoded on Dask (``pip install 'wpptrace[dask]'``).

``read_etl(paths or glob, tmf=...)`` returns a ``dask.dataframe`` of the WPP messages, with
the columns of ``wpptrace.decoder.arrow.SCHEMA`` (pandas columns backed by Arrow, so the
types survive ``to_parquet``). Partitions (``plan``): one per file, or, for a file larger than
``split_bytes``, one per time window of its ProcessTrace order (decoder.parallel's buffer-range
cut, the one ``fmt -j`` uses): buffers are independent, and within a partition the merge order
is the engine's. The windows of a file, in order, are the file's whole order.

The TMF set is loaded once on the client and sent to each worker once (on a distributed
cluster it is scattered to every worker before the partitions run, so the scheduler places
them freely), whatever the number of partitions. On a cluster the workers start importing
what the partition tasks need (pandas, pyarrow, dask.dataframe, the decoder) as soon as
``read_etl`` is called, while the client plans the job. Each partition runs
``decoder.arrow.decode_range``, which never fails for bad input: a damaged file gives its
intact records, and every problem (path, byte offset, message) becomes a row of the issues
table (``read_etl(..., issues=True)`` returns it as a second dataframe, computed from the same
tasks; a problem of a buffer read by two windows is one row). Without the issues, a partition
is one task (``dd.from_map``) that hands its frame straight to the next step (``to_parquet``).

A cluster: create a ``dask.distributed.Client`` first (``Client("tcp://scheduler:8786")``);
``read_etl`` uses whatever scheduler is current.
"""
from __future__ import annotations

import glob as _glob
import math
import os
from operator import itemgetter
from typing import Any, Iterable, Sequence

__all__ = ["read_etl", "plan", "decode_partition", "DEFAULT_SPLIT_BYTES"]

#: files larger than this are split into time windows of about this many bytes
DEFAULT_SPLIT_BYTES = 256 << 20

Window = "tuple[int | None, int | None] | None"


def _expand(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Paths and glob patterns (``**`` recursive) -> the files, in the order given (each
    pattern's matches sorted). A pattern without matches or a missing path raises
    FileNotFoundError: a fleet job should not silently read nothing."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if _glob.has_magic(text):
            matches = sorted(p for p in _glob.glob(text, recursive=True) if os.path.isfile(p))
            if not matches:
                raise FileNotFoundError(f"no file matches {text}")
            out += matches
        elif os.path.exists(text):
            out.append(text)
        else:
            raise FileNotFoundError(f".etl file not found: {text}")
    return out


def plan(paths: str | os.PathLike | Iterable[str | os.PathLike],
         split_bytes: int = DEFAULT_SPLIT_BYTES) -> list[tuple[str, Any]]:
    """The partitions of a fleet: (path, window) per partition, window None for a whole file,
    else (lo, hi) raw merge keys (None: unbounded) of ``decoder.parallel.cut_keys``. Only
    files larger than ``split_bytes`` are opened here (to read their buffer index); a file
    that cannot be read is one partition, whose decoding reports why."""
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder.parallel import cut_keys

    if split_bytes < 1:
        raise ValueError(f"split_bytes must be positive, not {split_bytes}")
    parts: list[tuple[str, Any]] = []
    for path in _expand(paths):
        size = os.path.getsize(path)
        if size <= split_bytes:
            parts.append((path, None))
            continue
        try:
            with EtlFile(path) as etl:
                cuts = cut_keys(etl, math.ceil(size / split_bytes))
        except Exception:               # reported by the partition's own decoding
            parts.append((path, None))
            continue
        windows = list(zip(cuts[:-1], cuts[1:]))
        parts += [(path, w if len(windows) > 1 else None) for w in windows]
    return parts


def decode_partition(path: str, window, tmfset, all_records: bool = False):
    """One partition as pandas frames (records, issues): ``decode_range`` with Arrow-backed
    columns. The unit of work on a worker; also usable from any other engine."""
    import pandas as pd

    from wpptrace.decoder.arrow import decode_range

    table, issues = decode_range(path, window, tmfset, all_records=all_records)
    return (table.to_pandas(types_mapper=pd.ArrowDtype),
            issues.to_pandas(types_mapper=pd.ArrowDtype))


def _loaded(tmf):
    """A TMF set with every message read (workers need no TMF files of their own)."""
    from wpptrace.decoder import load_tmf

    tmfset = load_tmf(tmf)
    for _message in tmfset.messages():
        pass
    return tmfset


def _client():
    """The current distributed client, or None (Dask's local schedulers)."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


#: what a worker's partition tasks import (pandas, pyarrow's Parquet writer, dask.dataframe and
#: its Parquet engine, the decoder): ~1 s on a fresh worker
_TASK_MODULES = ("pandas", "pyarrow.parquet", "dask.dataframe", "dask.dataframe.io.parquet",
                 "wpptrace.decoder.arrow")


def _import_task_modules() -> None:
    import importlib

    for name in _TASK_MODULES:
        try:
            importlib.import_module(name)
        except Exception:       # the task that needs it reports the reason
            pass


async def _prepare_worker() -> None:
    """Imports the partition tasks need, in a thread of the worker's, so its event loop
    stays free."""
    import asyncio

    await asyncio.to_thread(_import_task_modules)


def _prepare_workers(client) -> None:
    """Start the workers' imports before the client plans the job (its own import of
    dask.dataframe and the TMF set's loading take ~1.3 s): the two overlap instead of a fresh
    worker's first task waiting for them. Returns at once; a worker that cannot is skipped."""
    try:
        client.run(_prepare_worker, wait=False, on_error="ignore")
    except Exception:
        pass


def _scattered(client, tmfset):
    """A future of the TMF set copied to every worker once up front (so no worker waits for,
    or is chosen for, holding it); hashing it for a key would cost ~0.1 s."""
    return client.scatter(tmfset, broadcast=True, hash=False)


def _records(part: tuple[str, Any], tmfset, all_records: bool):
    """One partition's records (the function ``read_etl`` maps over the partitions; its
    issues are not asked for, so they stay Arrow)."""
    import pandas as pd

    from wpptrace.decoder.arrow import decode_range

    path, window = part
    table, _issues = decode_range(path, window, tmfset, all_records=all_records)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def read_etl(paths: str | os.PathLike | Sequence[str | os.PathLike], tmf: Any = None, *,
             split_bytes: int = DEFAULT_SPLIT_BYTES, all_records: bool = False,
             issues: bool = False):
    """The WPP messages of a fleet of .etl files as a ``dask.dataframe.DataFrame`` (see the
    module docstring). ``paths``: files and glob patterns; ``tmf``: what
    :func:`wpptrace.decoder.load_tmf` takes; ``split_bytes``: the size above which a file is
    decoded as several partitions; ``all_records``: rows for the non-WPP records too.
    With ``issues=True``, returns (records, issues): the issues dataframe has the columns
    etl, offset, message, one row per problem met (damage skipped, unreadable files)."""
    client = _client()
    if client is not None:
        _prepare_workers(client)

    import dask
    import dask.dataframe as dd
    import pandas as pd

    from wpptrace.decoder.arrow import ISSUES_SCHEMA, SCHEMA

    parts = plan(paths, split_bytes)
    tmfset = _loaded(tmf)
    future = None if client is None else _scattered(client, tmfset)
    meta = SCHEMA.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    if not issues:
        # a task per partition, straight into what follows (to_parquet...); the columns are
        # Arrow's already: no string conversion step
        with dask.config.set({"dataframe.convert-string": False}):
            return dd.from_map(_records, parts, tmfset=tmfset if future is None else future,
                               all_records=all_records, meta=meta, enforce_metadata=False)
    # records and issues from the same tasks; a constant TMF set is one node of the graph
    shipped = future if future is not None else dask.delayed(tmfset, pure=True, traverse=False)
    outputs = [dask.delayed(decode_partition, pure=True, nout=2)(path, window, shipped,
                                                                  all_records)
               for path, window in parts]
    records = dd.from_delayed([dask.delayed(itemgetter(0))(o) for o in outputs], meta=meta,
                              verify_meta=False)
    issue_meta = ISSUES_SCHEMA.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    problems = dd.from_delayed([dask.delayed(itemgetter(1))(o) for o in outputs],
                               meta=issue_meta, verify_meta=False)
    # a buffer at a window's edge is read by both windows: its problems are reported once
    return records, problems.drop_duplicates(split_out=1)
