"""wpptrace.decoder: read real Windows .etl files (and ours) fast, off Windows.

Layers, bottom up (docs/architecture.md has the picture):

* ``etlfile.EtlFile``: buffers of a file (compressed or not), the log-file header facts;
* ``buffers``: one buffer from any source: expansion, record range, damage (``parse_buffer``);
* ``records``: the C record walker's output as lazy ``Record`` objects;
* ``engine``: any source (files, live sessions, buffer streams) in ProcessTrace order
  (``ordered_records``), through the one merge of ``ordering``;
* ``timestamps.TimeConverter``: raw clock -> FILETIME;
* ``open(path, tmf=...)``: typed Pythonic events (``events`` module), WPP messages decoded;
* ``format_file(path, tmf=...)``: the lines ``wpptrace fmt`` prints; ``decode_file``: the
  messages as ``DecodedMessage`` objects (``messages`` module);
* ``api``: the Win32-shaped OpenTrace / ProcessTrace / CloseTrace on the same engine;
* ``wpp``: WPP messages formatted like tracefmt, on the engine's compact rows (``wpp_rows``);
* ``to_arrow(paths, tmf=...)``: the messages as Arrow record batches (``arrow`` module, the
  ``arrow`` extra: pyarrow).
"""
from .buffers import Buffer, BufferInfo, parse_buffer
from .engine import ordered_records
from .etlfile import EtlFile, LogfileHeader
from .records import DecodeIssue, Record
from .timestamps import TimeConverter

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from .events import (ClassicEvent, Event, EventReader, HeaderEvent, ManifestEvent,
                         MessageEvent, SystemEvent, open)
    from .messages import (Args, DecodedFile, DecodedMessage, FormattedLines, decode_file,
                           format_file, load_tmf)

#: the typed-event and decoded-message API, imported when one of its names is first used:
#: ``wpptrace fmt`` imports this package for the file reader and needs neither module (3 M
#: instructions to import)
_LATER = {**dict.fromkeys(("ClassicEvent", "Event", "EventReader", "HeaderEvent", "ManifestEvent",
                           "MessageEvent", "SystemEvent", "open", "events"), "events"),
          **dict.fromkeys(("Args", "DecodedFile", "DecodedMessage", "FormattedLines", "decode_file",
                           "format_file", "load_tmf", "messages"), "messages")}


def __getattr__(name: str):
    module = _LATER.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    found = import_module(f"{__name__}.{module}")
    value = found if name == module else getattr(found, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LATER})



def to_arrow(paths, tmf=None, **options):
    """The WPP messages of ``paths`` as ``pyarrow.RecordBatch``es (``decoder.arrow.to_arrow``;
    needs the ``arrow`` extra: ``pip install 'wpptrace[arrow]'``)."""
    from .arrow import to_arrow as _to_arrow

    return _to_arrow(paths, tmf, **options)


__all__ = [
    "Args", "Buffer", "BufferInfo", "ClassicEvent", "DecodeIssue", "DecodedFile", "DecodedMessage",
    "EtlFile", "Event", "EventReader", "FormattedLines", "HeaderEvent", "LogfileHeader",
    "ManifestEvent", "MessageEvent", "Record", "SystemEvent", "TimeConverter", "decode_file",
    "format_file", "load_tmf", "open", "ordered_records", "parse_buffer", "to_arrow",
]
