"""WPP type definitions from tracewpp configuration (defaultwpp.ini and `begin_wpp config` blocks).

tracewpp maps each format-string type name (``d``, ``I64x``, ``s``, ``STATUS``, ``bool`` ...) to a
TMF item type (the MofType written into the TMF argument block) and a FormatSpec (what it writes
between ``!...!`` in the TMF format string). That mapping is data, not code: this module reads it
from the WDK's ``defaultwpp.ini`` shipped in ``tmf/data`` (and from any extra config text a project
supplies) into :class:`WppType` records. It is the ONE source of those facts for the format-spec
compiler (:mod:`wpptrace.tmf.formatspec`) and the Python provider's TMF generator.

Grammar of the commands read (everything else in the file is ignored)::

    command   ::= KEYWORD "(" arg { "," arg } ")" ";"
    KEYWORD   ::= "DEFINE_SIMPLE_TYPE" | "DEFINE_SIMPLE_TYPE_PTR" | "DEFINE_CPLX_TYPE"
                | "DEFINE_FLAVOR" | "CUSTOM_TYPE" | "TYPEMACRO"
    arg       ::= { CHAR | '"' { CHAR } '"' | "(" arg { "," arg } ")" }    ; may be empty
    comment   ::= "#" REST-OF-LINE                                         ; outside quotes
"""
from __future__ import annotations

import functools
import re

from wpptrace._fieldclass import fieldclass

from .errors import TmfError

__all__ = ["WppType", "WppIniError", "parse_wpp_config", "default_types", "lookup_type"]


class WppIniError(TmfError):
    """A malformed type definition in a tracewpp configuration text."""

    def __init__(self, message: str, *, path: str = "<string>", line: int = 0) -> None:
        super().__init__(message, path=path, line=line, column=1)

    def __reduce__(self):
        return (_rebuild_ini_error, (self.message, self.path, self.line))


def _rebuild_ini_error(message, path, line):
    return WppIniError(message, path=path, line=line)


@fieldclass(frozen=True)
class WppType:
    """One tracewpp type, flavors resolved against their base."""

    name: str                 # the name used in format strings: "d", "STATUS", "bool"
    command: str              # DEFINE_SIMPLE_TYPE, DEFINE_FLAVOR, ...
    equiv_type: str           # C type ("signed int"); "" for predefined constants
    item: str                 # TMF item type word ("ItemLong"); "" for predefined constants
    params: tuple[str, ...]   # CUSTOM_TYPE extension: ItemListByte(Low,APC,DPC) -> ("Low","APC","DPC")
    format_spec: str          # FormatSpec ("I64x", "s"); for constants the replacement text
    base: str | None          # DEFINE_FLAVOR / CUSTOM_TYPE base name
    origin: str               # "path:line"

    @property
    def item_text(self) -> str:
        """The item as written in a TMF argument line, e.g. ``ItemListByte(Low,APC,DPC)``."""
        return f"{self.item}({','.join(self.params)})" if self.params else self.item

    @property
    def is_constant(self) -> bool:
        """Predefined constants (FUNC, LEVEL, COMPNAME, MOD ...): no argument, just text."""
        return not self.item


_COMMANDS = ("DEFINE_SIMPLE_TYPE_PTR", "DEFINE_SIMPLE_TYPE", "DEFINE_CPLX_TYPE", "DEFINE_FLAVOR",
             "CUSTOM_TYPE", "TYPEMACRO")
# compiled by the first parse_wpp_config (most runs read no WPP config)
_COMMAND_PATTERN = r"\b(" + "|".join(_COMMANDS) + r")\s*\("
_ITEM_EXT_PATTERN = r"^\s*(Item\w+)\s*\((.*)\)\s*$"


def _strip_comments(text: str) -> str:
    out, in_quote = [], False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            in_quote = not in_quote
        elif ch == "#" and not in_quote:
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif ch == "\n":
            in_quote = False
        out.append(ch)
        i += 1
    return "".join(out)


def _split_args(text: str, start: int, path: str, line: int) -> tuple[list[str], int]:
    """Split the argument list that starts after '(' at ``start``; return (args, index after ')')."""
    args, cur, depth, in_quote = [], [], 0, False
    i = start
    while i < len(text):
        ch = text[i]
        if in_quote:
            cur.append(ch)
            if ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
            cur.append(ch)
        elif ch == "(":
            depth += 1
            cur.append(ch)
        elif ch == ")":
            if depth == 0:
                args.append("".join(cur).strip())
                return args, i + 1
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    raise WppIniError("unterminated argument list: expected ')'", path=path, line=line)


def _unquote(arg: str) -> str:
    arg = arg.strip()
    if len(arg) >= 2 and arg[0] == '"' and arg[-1] == '"':
        return arg[1:-1]
    return arg


def parse_wpp_config(text: str, path: str = "<string>",
                     base_types: dict[str, WppType] | None = None) -> dict[str, WppType]:
    """Read the type commands of a tracewpp config text; flavors resolve against earlier types
    (``base_types`` first, e.g. the defaults, then this text in order). Returns name -> WppType
    for the types defined in ``text`` merged over ``base_types``."""
    types: dict[str, WppType] = dict(base_types or {})
    clean = _strip_comments(text)
    line, counted = 1, 0
    for m in re.finditer(_COMMAND_PATTERN, clean):
        line += clean.count("\n", counted, m.start())  # incremental: linear in the text size
        counted = m.start()
        args, _ = _split_args(clean, m.end(), path, line)
        command, origin = m.group(1), f"{path}:{line}"
        if not args or not args[0]:
            raise WppIniError(f"{command} without a type name", path=path, line=line)
        name = args[0]
        get = lambda k: _unquote(args[k]) if len(args) > k else ""  # noqa: E731
        if command in ("DEFINE_SIMPLE_TYPE", "DEFINE_SIMPLE_TYPE_PTR"):
            # (Name, EquivType, MofType, FormatSpec, Sig, Priority[, ManifestType])
            types[name] = WppType(name, command, get(1), get(2), (), get(3), None, origin)
        elif command == "DEFINE_CPLX_TYPE":
            # (Name, MacroName, EquivType, MofType, FormatSpec, Sig, Priority[, ...])
            types[name] = WppType(name, command, get(2), get(3), (), get(4), None, origin)
        elif command == "DEFINE_FLAVOR":
            # (Name, Base[, MofType, FormatSpec, ManifestType]): blanks inherit from the base
            base = types.get(get(1))
            if base is None:
                raise WppIniError(f"DEFINE_FLAVOR({name}): unknown base type {get(1)!r}",
                                  path=path, line=line)
            types[name] = WppType(name, command, base.equiv_type, get(2) or base.item,
                                  base.params, get(3) or base.format_spec, base.name, origin)
        else:  # CUSTOM_TYPE / TYPEMACRO (Name, ItemX(ext)[, FormatSpec])
            ext = re.match(_ITEM_EXT_PATTERN, get(1), re.S)
            if ext is None:
                raise WppIniError(f"{command}({name}): expected ItemX(extension), got {get(1)!r}",
                                  path=path, line=line)
            item, params = ext.group(1), tuple(p.strip() for p in ext.group(2).split(","))
            base = types.get(item)
            spec = get(2) or (base.format_spec if base else "s")
            types[name] = WppType(name, command, base.equiv_type if base else "", item, params,
                                  spec, item, origin)
    return types


@functools.lru_cache(maxsize=1)
def default_types() -> dict[str, WppType]:
    """The WDK's built-in types (tmf/data/defaultwpp.ini), parsed once."""
    import importlib.resources   # once per process, and not every run needs the WPP types

    text = importlib.resources.files("wpptrace.tmf").joinpath("data/defaultwpp.ini").read_text("ascii")
    return parse_wpp_config(text, path="defaultwpp.ini")


@functools.lru_cache(maxsize=1)
def _folded() -> dict[str, list[WppType]]:
    folded: dict[str, list[WppType]] = {}
    for t in default_types().values():
        folded.setdefault(t.name.lower(), []).append(t)
    return folded


def lookup_type(name: str, types: dict[str, WppType] | None = None) -> WppType | None:
    """Find a type by its format-string name: exact first, then case-insensitively when that is
    unambiguous (so ``%!SID!`` finds ``sid`` but ``%!bool!`` never becomes ``BOOLEAN``)."""
    table = default_types() if types is None else types
    found = table.get(name)
    if found is not None:
        return found
    if types is None:
        cands = _folded().get(name.lower(), [])
    else:
        cands = [t for t in table.values() if t.name.lower() == name.lower()]
    return cands[0] if len(cands) == 1 else None
