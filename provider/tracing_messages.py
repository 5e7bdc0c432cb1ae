"""Compile one trace call site into its TMF message and its argument packer.

Every ``%`` conversion (and ``%!TYPE!``) of a trace format selects a tracewpp type (see
:mod:`wpptrace.provider.tracing_types` for how Python values map onto them); the type says which
TMF item is written and how the value travels. This module turns a call site into

* the :class:`wpptrace.tmf.model.Message` tracewpp would have written for the call, and
* a packer: Python values -> the exact argument bytes TraceMessage carries, as ONE generated
  function per call site (``struct.Struct`` runs merged, strings appended), so the enabled hot
  path is one call. A value that does not take the quick form falls to a slow path that checks
  every argument and raises ``TypeError``/``ValueError`` naming the call site; nothing is
  written then. The C fast path packs the same bytes from the site's :meth:`CompiledSite.program`.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import struct
import uuid
from typing import Any, Callable, Iterable

from wpptrace.tmf import formatspec
from wpptrace.tmf.model import Argument, Message

from .tracing_interrupts import passes_on
from .tracing_sites import CallSite, ScanResult, message_guid, message_name, relative_source_path, scan_file
from .tracing_types import DEFAULT_TABLE, ArgCodec, TypeTable, python_format

__all__ = ["CompiledSite", "compile_site", "site_label", "FileMessages", "compile_scan", "compile_file"]


def site_label(source_file: str, site: CallSite) -> str:
    return f"{source_file}:{site.line} in {site.function} ({site.method}, message {site.number})"


def site_order(source_file: str, site: CallSite) -> tuple[str, int, int, int]:
    """Where the labelled site is in source order: (file, line, 1-based column, message number)."""
    return (source_file, site.line, site.column + 1, site.number)


@dataclasses.dataclass(eq=False)
class CompiledSite:
    """A call site ready to trace: identity, TMF message and packer."""

    site: CallSite
    label: str
    message: Message
    guid_le: bytes
    number: int
    nargs: int
    codecs: list[ArgCodec]
    #: pack(args: tuple) -> bytes; raises TypeError/ValueError naming the call site
    pack: Callable[[tuple], bytes] = dataclasses.field(repr=False, default=None)  # type: ignore[assignment]
    cid: int | None = None  # id of its packer program in the C fast path (register_site)
    order: tuple[str, int, int, int] = ("", 0, 0, 0)   # site_order: how its drops are listed

    def program(self) -> tuple[str, tuple]:
        """The C packer program: one type code per argument and, for code ``o``, the encoder C
        calls (see provider/pyext/fastpath.c); the same bytes as :attr:`pack`."""
        codes = "".join(c.program for c in self.codecs)
        return codes, tuple(c.encode if c.program == "o" else None for c in self.codecs)

    def check_args(self, args: tuple) -> bytes:
        """The slow path: validate every argument, raise naming the call site, or return bytes."""
        if len(args) != self.nargs:
            raise TypeError(f"{self.label}: the format {self.site.format!r} takes {self.nargs} "
                            f"argument(s), {len(args)} given")
        out = []
        for index, (codec, value) in enumerate(zip(self.codecs, args)):
            try:
                out.append(codec.encode(value))
            except Exception as exc:  # noqa: BLE001 - str()/repr() of any object may raise anything
                if passes_on(exc):
                    raise                     # no room (the call is lost, not dropped), or the application's
                kind = TypeError if isinstance(exc, TypeError) else ValueError
                text = self.site.arg_texts[index] if index < len(self.site.arg_texts) else "?"
                detail = exc if isinstance(exc, (TypeError, ValueError)) else f"{type(exc).__name__}: {exc}"
                raise kind(f"{self.label}: argument {index + 1} ({text}) for {codec.item}: {detail}") from None
        return b"".join(out)


def _build_packer(compiled: CompiledSite) -> Callable[[tuple], bytes]:
    """Generate ``pack(args)``: arity check, then one expression of struct packs and string
    encodes. Generated from the codec list only (identifiers, no user text)."""
    n = compiled.nargs
    names = [f"a{i}" for i in range(n)]
    namespace: dict[str, Any] = {"_str": str, "_slow": compiled.check_args,
                                 "_passes_on": passes_on}
    parts: list[str] = []
    run_codes: list[str] = []
    run_args: list[str] = []
    str_checks: list[str] = []
    pending_nul = 0  # a string's terminator, folded into the next struct run as pad bytes

    def settle() -> None:
        nonlocal pending_nul
        if pending_nul:
            parts.append(repr(b"\x00" * pending_nul))
            pending_nul = 0

    def flush() -> None:
        if run_codes:
            key = f"_s{len(parts)}"
            namespace[key] = struct.Struct("<" + "".join(run_codes)).pack
            parts.append(f"{key}({', '.join(run_args)})")
            run_codes.clear()
            run_args.clear()

    def add_fixed(code: str, arg: str) -> None:
        nonlocal pending_nul
        if pending_nul:
            run_codes.append(f"{pending_nul}x")
            pending_nul = 0
        run_codes.append(code)
        run_args.append(arg)

    for codec, name in zip(compiled.codecs, names):
        if codec.code is not None:
            add_fixed(codec.code, name)
        elif codec.fast == "{a}.bytes_le":
            add_fixed("16s", codec.fast.format(a=name))
        elif codec.fast is not None:
            flush()
            settle()
            parts.append(codec.fast.format(a=name))
            str_checks.append(f'type({name}) is not _str or "\\x00" in {name}')
            pending_nul = codec.terminator
        else:
            flush()
            settle()
            key = f"_c{len(parts)}"
            namespace[key] = codec.encode
            parts.append(f"{key}({name})")
    flush()
    settle()
    body = " + ".join(parts) if parts else 'b""'
    lines = ["def pack(args):", f"    if len(args) != {n}:", "        return _slow(args)"]
    if n:
        lines.append(f"    {', '.join(names)}, = args")
    if str_checks:
        lines.append(f"    if {' or '.join(str_checks)}:")
        lines.append("        return _slow(args)")
    lines.append("    try:")
    lines.append(f"        return {body}")
    # Any failure (a value's __index__, __int__ or __repr__ may raise anything): the slow path
    # says which argument failed and why, naming the call site. What the application's signal
    # handler raised meanwhile is the application's (see tracing_interrupts).
    lines.append("    except Exception as exc:")
    lines.append("        if _passes_on(exc):")
    lines.append("            raise")
    lines.append("        return _slow(args)")
    exec(compile("\n".join(lines), f"<wpptrace packer {compiled.label}>", "exec"), namespace)  # noqa: S102
    return namespace["pack"]


def compile_site(site: CallSite, *, guid: uuid.UUID, component: str, source_file: str,
                 label_path: str, table: TypeTable = DEFAULT_TABLE) -> CompiledSite:
    """Build the TMF message and packer of one call site (raises ValueError/TypeError naming it)."""
    label = site_label(label_path, site)
    try:
        fmt = python_format(site.format, table=table, component=component, file=source_file, line=site.line)
    except (formatspec.FormatSpecError, TypeError) as exc:
        raise type(exc if isinstance(exc, TypeError) else ValueError())(
            f"{label}: bad trace format {site.format!r}: {exc}") from None
    if not site.starred and len(site.arg_texts) != len(fmt.codecs):
        raise TypeError(f"{label}: the format {site.format!r} takes {len(fmt.codecs)} argument(s), "
                        f"the call passes {len(site.arg_texts)}")
    arg_names = list(site.arg_texts) if not site.starred else [f"arg{i + 1}" for i in range(len(fmt.codecs))]
    args = tuple(Argument(name=arg_names[i], item=t.item, params=t.params, insert=10 + i)
                 for i, t in enumerate(fmt.types))
    trailer = {"LEVEL": site.level_text, "FLAGS": site.flag_text, "FUNC": site.function}
    message = Message(guid=guid, number=site.number, name=message_name(source_file, site.line),
                      format=fmt.tmf_format, args=args, trailer=trailer, component=component,
                      source_file=source_file, origin=f"{label_path}:{site.line}")
    compiled = CompiledSite(site=site, label=label, message=message, guid_le=guid.bytes_le,
                            number=site.number, nargs=len(fmt.codecs), codecs=fmt.codecs,
                            order=site_order(label_path, site))
    compiled.pack = _build_packer(compiled)
    return compiled


@dataclasses.dataclass
class FileMessages:
    """All trace call sites of one source file, compiled for one provider."""

    path: str            # as given (absolute at run time)
    relative_path: str   # relative to the provider root, '/'-separated
    guid: uuid.UUID
    sites: list[CompiledSite]
    errors: list[Exception]  # sites whose format or argument count is wrong (numbers still taken)
    bad_sites: dict[tuple[int, int, int, int], Exception]
    scan: ScanResult | None = None  # what it was compiled from

    @property
    def messages(self) -> list[Message]:
        return [c.message for c in self.sites]

    # A call is found by its method, format and position: CPython's (line, end_line, column,
    # end_column) of the call, or (line,) where only lines are recorded (3.10: the file's first
    # such site spanning that line). The indexes are made once, at the first call resolved:
    # scanning the sites for each call made a file's resolving quadratic in its sites.
    def site_at(self, position: tuple, method: str, fmt: Any) -> CompiledSite | None:
        """The compiled call site of a call, if it is one."""
        if not isinstance(fmt, str) or position[0] is None:
            return None
        if len(position) == 4:
            return self._sites_by_range.get((method, str.__str__(fmt), position))
        return self._sites_by_line.get((method, str.__str__(fmt), position[0]))

    def bad_site_at(self, position: tuple, method: str, fmt: Any) -> CallSite | None:
        """The call site of a call whose compiling failed, if it is one (by its range alone
        where CPython records one)."""
        if len(position) == 4:
            return self._bad_by_range.get(position)
        if not isinstance(fmt, str) or position[0] is None:
            return None
        return self._bad_by_line.get((method, str.__str__(fmt), position[0]))

    @functools.cached_property
    def _sites_by_range(self) -> dict[tuple, CompiledSite]:
        return _first_of(((c.site.method, c.site.format, c.site.position), c) for c in self.sites)

    @functools.cached_property
    def _sites_by_line(self) -> dict[tuple, CompiledSite]:
        return _first_of(((c.site.method, c.site.format, line), c) for c in self.sites
                         for line in range(c.site.line, c.site.end_line + 1))

    @functools.cached_property
    def _bad_by_range(self) -> dict[tuple, CallSite]:
        return _first_of((site.position, site) for site in self._bad_scanned())

    @functools.cached_property
    def _bad_by_line(self) -> dict[tuple, CallSite]:
        return _first_of(((site.method, site.format, line), site) for site in self._bad_scanned()
                         for line in range(site.line, site.end_line + 1))

    def _bad_scanned(self) -> list[CallSite]:
        if not self.bad_sites or self.scan is None:
            return []
        return [site for site in self.scan.sites if site.position in self.bad_sites]


def _first_of(pairs: Iterable[tuple[Any, Any]]) -> dict:
    """{key: the first value given for it}."""
    index: dict = {}
    for key, value in pairs:
        index.setdefault(key, value)
    return index


def compile_scan(scan: ScanResult, *, control_guid: uuid.UUID, component: str, root: str,
                 table: TypeTable = DEFAULT_TABLE) -> FileMessages:
    """Compile every call site of a scanned file for one provider."""
    rel = relative_source_path(scan.path, root)
    guid = message_guid(control_guid, rel)
    base = os.path.basename(scan.path)
    sites, errors, bad = [], [], {}
    for site in scan.sites:
        try:
            sites.append(compile_site(site, guid=guid, component=component, source_file=base,
                                      label_path=rel, table=table))
        except (TypeError, ValueError) as exc:
            errors.append(exc)
            bad[site.position] = exc
    return FileMessages(scan.path, rel, guid, sites, errors, bad, scan)


def compile_file(path: str, *, control_guid: uuid.UUID, component: str, root: str,
                 table: TypeTable = DEFAULT_TABLE) -> FileMessages:
    """Scan ``path`` and compile every call site (raises ScanError if it cannot be read/parsed)."""
    return compile_scan(scan_file(path), control_guid=control_guid, component=component, root=root,
                        table=table)
