"""WPP messages decoded for Python callers, on the engine and formatter ``wpptrace fmt`` uses.

* ``load_tmf(tmf)``: TMF data given the way fmt takes it (directories, .tmf/.tmc files, PDBs or
  the images whose PDB is looked up), or a ``TmfSet`` / TMF ``Message`` objects;
* ``format_file(path, tmf=..., prefix=None)``: the lines ``wpptrace fmt`` prints, one by one;
* ``decode_file(path, tmf=...)``: one ``DecodedMessage`` per WPP record;
* ``DecodedMessage`` and ``Args``: what ``decoder.open(path, tmf=...)`` message events and
  ``wpptrace.testing`` captures carry (text, typed arguments, the TMF's markers).
"""
from __future__ import annotations

import os

from wpptrace._fieldclass import fieldclass

from ._hazmat import constants
from .timestamps import filetime_to_datetime

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import datetime as _dt
    from typing import Any, Iterable, Iterator, Sequence

__all__ = ["Args", "DecodedFile", "DecodedMessage", "FormattedLines", "decode_file", "format_file",
           "load_tmf", "trace_level"]

#: TRACE_LEVEL_* names (evntrace.h) and the ``logging`` level names a WppHandler writes
_LEVELS = constants("TRACE_LEVEL_")
_LEVELS.update({"TRACE_LEVEL_FATAL": _LEVELS["TRACE_LEVEL_CRITICAL"], "CRITICAL": 1, "FATAL": 1,
                "ERROR": 2, "WARNING": 3, "WARN": 3, "INFO": 4, "DEBUG": 5, "NOTSET": 5})


def trace_level(text: str | None) -> int | None:
    """The level a TMF ``LEVEL=`` value stands for: a TRACE_LEVEL_* name, a ``logging`` level
    name (``INFO``, ``logging.INFO``) or a number; None when it names something else."""
    if not text:
        return None
    word = text.strip()
    if word.startswith("logging."):
        word = word[len("logging."):]
    if word in _LEVELS:
        return _LEVELS[word]
    try:
        return int(word, 0)
    except ValueError:
        return None


class Args(tuple):
    """A message's typed argument values in insert order; ``args["name"]`` finds one by its
    TMF argument name (the expression written at the call site: ``n``, ``path``...)."""

    names: tuple[str, ...]
    types: tuple[str, ...]

    def __new__(cls, values: Iterable[Any] = (), names: Iterable[str] = (),
                types: Iterable[str] = ()) -> "Args":
        self = super().__new__(cls, values)
        self.names = tuple(names)
        self.types = tuple(types)
        return self

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self.names.index(key))
            except ValueError:
                raise KeyError(f"no argument named {key!r} (arguments: "
                               f"{', '.join(self.names) or 'none'})") from None
        return tuple.__getitem__(self, key)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of the argument ``name``, else ``default``."""
        try:
            return self[name]
        except KeyError:
            return default

    def as_dict(self) -> dict[str, Any]:
        """{name: value}, the first of repeated names winning."""
        out: dict[str, Any] = {}
        for name, value in zip(self.names, self):
            out.setdefault(name, value)
        return out

    def __reduce__(self):
        return Args, (tuple(self), self.names, self.types)

    @staticmethod
    def of_signature(names: tuple[str, ...], types: tuple[str, ...]) -> type["Args"]:
        """The ``Args`` class of one argument signature, as a namedtuple is of its fields:
        ``names`` and ``types`` are class attributes, so making its values (``cls(values)``)
        is making a tuple."""
        return type("Args", (Args,), {"__slots__": (), "__new__": tuple.__new__,
                                      "__module__": __name__, "names": names, "types": types})


class DecodedMessage:
    """One WPP message: what tracefmt prints and what the TMF says about its call site.

    ``text`` is the message text without the prefix; ``args`` the typed values; ``level`` the
    TRACE_LEVEL_* number when the TMF's ``LEVEL=`` names one (``level_name`` is the text as
    written), ``flags`` the TMF's ``FLAGS=`` text, ``function``/``file``/``line`` the call
    site; ``guid``/``number`` the message identity; ``timestamp`` an aware UTC datetime
    (``filetime`` the FILETIME; None past year 9999); ``pid``, ``tid``, ``cpu``, ``sequence``
    from the record; ``component``/``name`` the prefix's %1 and %2. ``status`` is ``"ok"``,
    ``"unknown"`` (no format: ``text`` is tracefmt's Unknown line) or ``"format-error"``
    (``error`` says why). Fields are read from the formatter's result when first used.
    """

    __slots__ = ("_m", "_args")

    def __init__(self, message: Any) -> None:
        self._m = message            # the formatter's WppMessage
        self._args = None

    @classmethod
    def from_wpp(cls, message: Any) -> "DecodedMessage":
        """From the formatter's ``WppMessage``."""
        return cls(message)

    text = property(lambda self: self._m.text, doc="the message text, without the prefix")
    guid = property(lambda self: self._m.guid, doc="the message GUID")
    number = property(lambda self: self._m.number, doc="the message number")
    level_name = property(lambda self: self._m.level, doc="the TMF's LEVEL= text")
    flags = property(lambda self: self._m.flags, doc="the TMF's FLAGS= text")
    function = property(lambda self: self._m.function, doc="the TMF's FUNC= text")
    file = property(lambda self: self._m.source_file, doc="the source file the TMF names")
    component = property(lambda self: self._m.component, doc="the component (prefix %1)")
    name = property(lambda self: self._m.name,
                    doc="the message name (prefix %2; a message without a format: its number)")
    filetime = property(lambda self: self._m.filetime, doc="the FILETIME of the record")
    pid = property(lambda self: self._m.process_id, doc="the process id")
    tid = property(lambda self: self._m.thread_id, doc="the thread id")
    cpu = property(lambda self: self._m.cpu, doc="the processor number")
    sequence = property(lambda self: self._m.sequence, doc="the sequence number (0 if none)")
    status = property(lambda self: self._m.status, doc='"ok", "unknown" or "format-error"')
    error = property(lambda self: self._m.error, doc="why a format-error message failed")

    @property
    def args(self) -> Args:
        """The typed argument values in insert order (``args["name"]`` by TMF name)."""
        args = self._args
        if args is None:
            triples = self._m.args
            names, types, values = zip(*triples) if triples else ((), (), ())
            args = self._args = Args(values, names, types)
        return args

    _source_line = property(lambda self: self._m.source_line)     # the TMF's LINE= text

    @property
    def level(self) -> int | None:
        """The TRACE_LEVEL_* number the TMF's LEVEL= names (None if it names none)."""
        return trace_level(self.level_name)

    @property
    def line(self) -> int | None:
        """The source line the TMF gives (from the message name), if any."""
        line = self._source_line
        return int(line) if str(line).isdigit() else None

    @property
    def timestamp(self) -> _dt.datetime | None:
        """When the message was logged, as an aware UTC datetime (None for a time past year
        9999, which a datetime cannot hold: ``filetime`` has it)."""
        filetime = self.filetime
        return filetime_to_datetime(filetime) if filetime is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The message as a dict of Python values (the keys of ``wpptrace fmt -f jsonl``,
        with ``args`` as {name: value})."""
        return {
            "timestamp": self.timestamp, "filetime": self.filetime, "guid": self.guid,
            "number": self.number, "status": self.status, "component": self.component,
            "name": self.name, "file": self.file, "line": self.line, "function": self.function,
            "level": self.level, "level_name": self.level_name, "flags": self.flags,
            "processor": self.cpu, "thread_id": self.tid, "process_id": self.pid,
            "sequence": self.sequence, "text": self.text, "args": self.args.as_dict(),
            **({"error": self.error} if self.error else {}),
        }

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<DecodedMessage {self.guid}#{self.number} {self.text!r}>"


# -- TMF data ----------------------------------------------------------------------------

def load_tmf(tmf: Any = None, *, symbol_paths: Sequence[str] = ()):
    """A ``TmfSet`` from what fmt's ``-p``/``--tmf``/``--pdb`` take: a path or a list of paths
    (directories of ``<guid>.tmf``, .tmf/.tmc files, PDBs, or PE images whose PDB is found
    beside them, at their linker path or in ``symbol_paths``/``_NT_SYMBOL_PATH``). A
    ``TmfSet`` or TMF ``Message`` objects may be mixed in. TRACE_FORMAT_SEARCH_PATH is read
    too, as fmt does. Entries a TMF file could not give are in the set's ``issues``; a path
    that does not exist raises FileNotFoundError."""
    from wpptrace import tmf as tmfmod

    if isinstance(tmf, tmfmod.TmfSet):
        return tmf
    items = [] if tmf is None else [tmf] if isinstance(tmf, (str, os.PathLike)) else list(tmf)
    paths: list[str] = []
    sets, messages = [], []
    for item in items:
        if isinstance(item, tmfmod.TmfSet):
            sets.append(item)
        elif isinstance(item, tmfmod.Message):
            messages.append(item)
        else:
            paths.append(_tmf_path(os.fspath(item), symbol_paths))
    tmfset = tmfmod.load(*paths, tolerant=True)
    for other in sets:
        tmfset.update(other, priority=1)
    for message in messages:
        tmfset.add_message(message, priority=1)
    return tmfset


def _tmf_path(path: str, symbol_paths: Sequence[str]) -> str:
    from wpptrace.tmf.pdb.tracepdb import pdb_for

    if not os.path.exists(path):
        raise FileNotFoundError(f"TMF path not found: {path}")
    if os.path.isdir(path) or path.lower().endswith((".tmf", ".tmc")):
        return path
    return pdb_for(path, symbol_paths)


# -- whole files ---------------------------------------------------------------------------

def _paths(path: Any) -> list[str]:
    if isinstance(path, (str, os.PathLike)):
        return [os.fspath(path)]
    return [os.fspath(p) for p in path]


def open_files(paths: Sequence[str], *, skip_unreadable: bool = False) -> tuple[list, list]:
    """``EtlFile``s for ``paths``, and a ``DecodeIssue`` for each left out, both in the order
    given. A file that cannot be opened raises (those already opened closed), or with
    ``skip_unreadable`` is left out and said as ``wpptrace fmt`` says it
    (``_cliutil.input_issue``)."""
    files, unreadable = _open_files(paths, skip_unreadable)
    return files, [issue for issue, _exc in unreadable]


def _open_files(paths: Sequence[str], skip_unreadable: bool) -> tuple[list, list]:
    """``open_files``, each file left out as (its ``DecodeIssue``, the error opening it)."""
    from .etlfile import EtlFile

    files: list = []
    unreadable: list = []
    try:
        for path in paths:
            try:
                files.append(EtlFile(path))
            except (OSError, ValueError) as exc:
                if not skip_unreadable:
                    raise
                from wpptrace._cliutil import input_issue

                from .records import DecodeIssue

                unreadable.append((DecodeIssue(path, *input_issue(path, exc)), exc))
    except BaseException:
        for etl in files:
            etl.close()
        raise
    return files, unreadable


class DecodingRun:
    """What one decoding run of whole files yields, iterated once (also in a ``with`` block).
    ``counters`` (messages, unknown, format errors...) and ``errors`` (damage skipped in the
    files, with offsets) fill as it goes; the files close when the items run out.
    ``skip_unreadable``: a file that cannot be opened is left out and is an error of the run
    (else it raises, the files opened before it closed)."""

    def __init__(self, paths: Sequence[str], decoder: Any, *, skip_unreadable: bool = False) -> None:
        self.decoder = decoder
        self._files, left_out = _open_files(paths, skip_unreadable)
        self._unreadable = [issue for issue, _exc in left_out]
        self._first_failure = left_out[0][1] if left_out else None   # what opening it raised
        self._items: Iterator[Any] = iter(())

    def _raise_if_none_opened(self) -> None:
        """Raise the first input's error (the Win32Error naming the file that fmt reports) when
        inputs were given and none of them could be opened: an empty result would pass for an
        empty trace. The one-shot functions call it; a fleet's partition reports the file as an
        issue row instead."""
        if self._files or self._first_failure is None:
            return
        raise self._first_failure

    def _start(self, items: Iterator[Any]) -> None:
        self._items = self._closing(items)

    def _closing(self, items: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from items
        finally:
            self.close()

    @property
    def counters(self):
        """The formatter's counts so far (``messages``, ``unknown``, ``format_errors``...)."""
        return self.decoder.counters

    @property
    def errors(self) -> list:
        """The files left out (``skip_unreadable``), then the damage skipped in the files so
        far, file by file, in the order it was met (``DecodeIssue``: file, offset, what)."""
        return [*self._unreadable, *(issue for etl in self._files for issue in etl.errors)]

    def __iter__(self) -> Iterator[Any]:
        return self._items

    def __next__(self) -> Any:
        return next(self._items)

    def close(self) -> None:
        """Close the files (done when the items run out, or on leaving a ``with`` block)."""
        for etl in self._files:
            etl.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._items.close()
        self.close()


class FormattedLines(DecodingRun):
    """The lines of ``format_file``; iterate once. ``counters`` (messages, unknown, format
    errors...) and ``errors`` (a file that cannot be read at all, left out as fmt leaves it
    out; damage skipped in the files, with offsets) fill as it goes."""

    def __init__(self, paths: list[str], tmfset: Any, prefix: str | None, noprefix: bool,
                 utc: bool) -> None:
        from .engine import FileSource, merge_sources
        from .prefix import DEFAULT_PREFIX, prefix_from_environment
        from .wpp import WppDecoder
        from .wpp_rows import RowView

        if prefix is None:
            prefix = prefix_from_environment()
        super().__init__(paths, WppDecoder(tmfset, prefix=DEFAULT_PREFIX if prefix is None
                                           else prefix, noprefix=noprefix, utc=utc),
                         skip_unreadable=True)
        view = RowView()
        chunks = merge_sources([(FileSource(etl), view) for etl in self._files])
        self._start(_lines(self.decoder.format(chunks, view, "text")))


def _lines(texts: Iterator[bytes]) -> Iterator[str]:
    """The renderer's UTF-8 text, chunk by chunk, as the lines fmt writes (a message with
    line breaks in its text makes several)."""
    for text in texts:
        lines = str(text, "utf-8", "replace").split("\n")
        lines.pop()                 # the text ends with a line break
        yield from lines


def format_file(path: Any, tmf: Any = None, prefix: str | None = None, *, noprefix: bool = False,
                utc: bool = False) -> FormattedLines:
    """The output lines of ``wpptrace fmt`` for ``path`` (one .etl, or several merged by time),
    without line ends, in order: the header's ``EventTrace`` line, then one line per WPP
    message (more for a message whose text holds line breaks, as fmt prints it). ``tmf`` as :func:`load_tmf` takes it; ``prefix`` a tracefmt prefix template
    (default: TRACE_FORMAT_PREFIX, else tracefmt's); ``noprefix``/``utc`` as fmt's
    ``--no-prefix``/``--utc``. The same engine and formatting loop as the command. A file
    that cannot be read at all is left out, as fmt leaves it out: said in the result's
    ``errors`` (file, offset, what), as ``to_arrow`` says it. When none of the files can be
    read, fmt fails, and so does this: it raises the first one's ``Win32Error`` (the file
    named, the code fmt reports)."""
    lines = FormattedLines(_paths(path), load_tmf(tmf), prefix, noprefix, utc)
    lines._raise_if_none_opened()
    return lines


@fieldclass
class DecodedFile:
    """What ``decode_file`` read: the WPP messages, the decoder's counters (messages,
    unknown, format errors...), the damage skipped (with offsets) and the EventsLost the
    files' headers report."""

    messages: list[DecodedMessage]
    counters: Any
    errors: list
    events_lost: int


def decode_file(path: Any, tmf: Any = None) -> DecodedFile:
    """Every WPP message of ``path`` (one .etl, or several merged by time as fmt does) as a
    ``DecodedMessage``, in ProcessTrace order; ``tmf`` as :func:`load_tmf` takes it. A file
    that cannot be read at all is left out and said first in ``errors``, as ``format_file``
    does; when none can be read, the first one's ``Win32Error`` is raised."""
    from .engine import FileSource, merge_sources
    from .wpp import WppDecoder
    from .wpp_rows import RowView

    run = DecodingRun(_paths(path), WppDecoder(load_tmf(tmf)), skip_unreadable=True)
    run._raise_if_none_opened()
    try:
        view = RowView()
        chunks = merge_sources([(FileSource(etl), view) for etl in run._files])
        out: list[DecodedMessage] = []
        for messages in run.decoder.format(chunks, view, "messages"):
            out += messages
        lost = sum(int(getattr(etl.header, "events_lost", 0) or 0) for etl in run._files
                   if getattr(etl.header, "valid", True))
        return DecodedFile(out, run.counters, run.errors, lost)
    finally:
        run.close()
