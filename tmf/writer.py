"""TMF writer: model -> TMF text in tracepdb's layout (header line, #typev lines, { arg lines })."""
from __future__ import annotations

import datetime
from typing import Iterable

from .model import EnumDef, Message, TmfSet

__all__ = ["to_tmf_text", "format_message", "format_header"]

_U64 = (1 << 64) - 1


def format_header(message: Message) -> str:
    return f"{message.guid} {message.component or 'Unknown'} // SRC={message.source_file} MJ= MN="


def _trailer_text(trailer: dict[str, str]) -> str:
    words = []
    for key, value in trailer.items():
        words.append(value if key == "" else f"{key}={value}")
    return " ".join(words)


def format_message(message: Message) -> list[str]:
    """The #typev line, "{", one line per argument and "}"; tracepdb puts 3 spaces after "//"."""
    keyword = "#type" if message.legacy else "#typev"
    lines = [f'{keyword} {message.name} {message.number} "{message.format}" //   {_trailer_text(message.trailer)}'.rstrip()]
    lines.append("{")
    for arg in message.args:
        params = f"({','.join(arg.params)})" if arg.params else ""
        lines.append(f"{arg.name}, {arg.item}{params} -- {arg.insert}")
    lines.append("}")
    return lines


def _format_enum(enum: EnumDef) -> list[str]:
    lines = [f"#enumv {enum.name}", "{"]
    lines += [f"{name},0x{value & _U64:X}" for value, name in enum.values.items()]
    lines.append("}")
    return lines


def to_tmf_text(
    source: "TmfSet | Iterable[Message]",
    *,
    enums: Iterable[EnumDef] | None = None,
    pdb_name: str | None = None,
    tool: str = "wpptrace",
    when: datetime.datetime | None = None,
) -> str:
    """TMF text for ``source`` (a TmfSet: its messages and enums; or messages in the order given).

    Messages are grouped by GUID (first-seen GUID order); a header line is written whenever the
    (GUID, component, source file) changes. With ``pdb_name`` the two ``// PDB:`` comment lines
    tracepdb writes come first. Enum definitions follow the messages, as DumpEnumsToTMF writes them.
    """
    if isinstance(source, TmfSet):
        messages = list(source.messages())
        enum_defs = list(source.enums()) if enums is None else list(enums)
    else:
        messages = list(source)
        enum_defs = list(enums or ())
    lines: list[str] = []
    if pdb_name is not None:
        stamp = (when or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d:%H:%M:%S")
        millis = (when.microsecond // 1000) if when else 0
        lines.append(f"// PDB:  {pdb_name}")
        lines.append(f"// PDB:  Last Updated :{stamp}:{millis:03d} (UTC) [{tool}]")
    by_guid: dict[object, list[Message]] = {}
    for message in messages:
        by_guid.setdefault(message.guid, []).append(message)
    for group in by_guid.values():
        context = None
        for message in group:
            key = (message.guid, message.component, message.source_file)
            if key != context:
                lines.append(format_header(message))
                context = key
            lines += format_message(message)
    for enum in enum_defs:
        lines += _format_enum(enum)
    return "\n".join(lines) + "\n" if lines else ""
