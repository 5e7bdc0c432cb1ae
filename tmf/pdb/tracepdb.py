"""``wpptrace tmf from-pdb``: write tracepdb-style ``<guid>.tmf`` files (and ``<pdb>.mof``, ``.tmc``) from PDBs.

tracepdb writes one ``<message-guid>.tmf`` per message GUID and a ``<module>.mof`` describing
the control GUIDs and their flags (the layout below is the one in the corpus's real tracepdb
``.mof`` files, quirks included). Files are overwritten unless ``--append`` asks for
tracepdb's habit of appending to an existing ``<guid>.tmf``; PDBs of one run that share a
message GUID append to the ``<guid>.tmf`` the first of them wrote.
The ``Last Updated`` time is now, or ``SOURCE_DATE_EPOCH`` / ``--timestamp`` for reproducible output.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import errno
import os
import pathlib
import uuid

from wpptrace import _outputs as outputs
from wpptrace._cliutil import (add_output_dir_option, add_timestamp_option, add_verbose_option,
                                complain, iso_time, source_date_epoch)

from .msf import PdbError
from .symbols import ControlGuidRecord, PdbTraceInfo, read_pdb, read_pdb_identity, tracepdb_header
from .peimage import is_pe_image, pdb_candidates, read_codeview

__all__ = ["add_arguments", "run", "write_tmf_files", "mof_text", "tmc_text", "find_pdb_for_image",
           "pdb_for"]

_MOF_LEVELS = """\
    uint32 Flags;
    [Description ("Levels") : amended,
        ValueDescriptions{
            "Abnormal exit or termination",
            "Severe errors that need logging",
            "Warnings such as allocation failure",
            "Includes non-error cases",
            "Detailed traces from intermediate steps" } : amended,
         DefineValues{
            "TRACE_LEVEL_FATAL",
            "TRACE_LEVEL_ERROR",
            "TRACE_LEVEL_WARNING"
            "TRACE_LEVEL_INFORMATION",
            "TRACE_LEVEL_VERBOSE" },
        Values{
            "Fatal",
            "Error",
            "Warning",
            "Information",
            "Verbose" },
        ValueMap{
            "0x1",
            "0x2",
            "0x3",
            "0x4",
            "0x5" },
        ValueType("index")
    ]
    uint32 Level;
};
"""  # verbatim from tracepdb output, including its missing comma after "TRACE_LEVEL_WARNING"


def mof_text(info: PdbTraceInfo, updated: _dt.datetime | None = None) -> str | None:
    """The ``<module>.mof`` tracepdb writes for the PDB's control GUIDs (None if it has none)."""
    controls: dict[uuid.UUID, ControlGuidRecord] = {}
    for control in info.control_guids:
        controls.setdefault(control.guid, control)  # WPP_INIT_TRACING in several places: one class
    if not controls:
        return None
    module = os.path.splitext(info.pdb_name)[0]
    header = tracepdb_header(info.pdb_name, updated)
    parts = ['#pragma autorecover\n#pragma classflags("forceupdate")\n#pragma namespace("\\\\\\\\.\\\\root\\\\WMI")\n',
             "//\n// WPP Generated File\n", header, "//\n\n"]
    for control in controls.values():
        cls = module + control.name
        where = control.annotation.procedure or "?"
        parts.append(f"//ModuleName = {cls}\t (Init called in Function {where})\n")
        parts.append(f'[Dynamic,\n Description("{module}_{control.name}"),\n guid("{{{control.guid_text}}}"),\n'
                     f' locale("MS\\\\0x409")]\nclass {cls} : EventTrace\n{{\n')
        parts.append('    [Description ("Enable Flags") : amended,\n')
        parts.append(_mof_list("ValueDescriptions", [f"{f} Flag" for f in control.flags], ","))
        parts.append(_mof_list("DefineValues", list(control.flags), ","))
        parts.append(_mof_list("Values", list(control.flags), ","))
        parts.append(_mof_list("ValueMap", [f"0x{1 << i:08x}" for i in range(len(control.flags))], ": amended"))
        parts.append("    ]\n")
        parts.append(_MOF_LEVELS)
    return "".join(parts)


def tmc_text(control: ControlGuidRecord, pdb_name: str, updated: _dt.datetime | None = None) -> str:
    """A ``<control-guid>.tmc`` (tracepdb -c). No real .tmc was available: this is the layout the
    package's .tmc reader (``wpptrace.tmf.loader.parse_tmc``) expects: the ``// PDB:`` lines,
    ``<guid> <ControlName>``, then the flag names one per line, the first being value 1."""
    return tracepdb_header(pdb_name, updated) + f"{control.guid_text} {control.name}\n" + "".join(
        f"{flag}\n" for flag in control.flags)


def _mof_list(name: str, values: list[str], tail: str) -> str:
    items = ",\n".join(f'             "{v}"' for v in values)
    return f"        {name}{{\n{items}}}{tail}\n"


def write_tmf_files(info: PdbTraceInfo, out_dir: "str | os.PathLike[str]", *,
                    updated: _dt.datetime | None = None, mof: bool = True,
                    append: bool = False, tmc: bool = False,
                    written: "set[pathlib.Path] | None" = None) -> list[pathlib.Path]:
    """Write ``<guid>.tmf`` per message GUID (and ``<pdb>.mof``) into ``out_dir``; return the paths.

    ``tmc=True`` also writes ``<control-guid>.tmc`` per control GUID, as ``tracepdb -c`` does.

    ``append=True`` does what tracepdb does with an existing ``<guid>.tmf``: adds the
    ``// PDB:`` lines and the messages again, without a second GUID line.

    ``written``: the ``<guid>.tmf`` files earlier PDBs of the same run wrote (updated here).
    Such a file is appended to whole, GUID line included (the line names this PDB's source
    file), so PDBs sharing a message GUID all end up in it, as with tracepdb.

    Raises ``OutputRefused`` before writing anything if a file to write is the PDB itself;
    each file is written whole or not at all, with the PDB's permissions at most.
    """
    out = pathlib.Path(out_dir)
    planned: list[tuple[pathlib.Path, str, bool]] = []     # path, text, append
    fresh = info.to_tmf_text_by_guid(updated)
    again = info.to_tmf_text_by_guid(updated, guid_line=False) if append else {}
    tmf_paths = []
    for guid, text in fresh.items():
        path = out / f"{guid}.tmf"
        tmf_paths.append(path)
        if written is not None and path in written:
            planned.append((path, text, True))
        elif append and path.exists():
            planned.append((path, again[guid], True))
        else:
            planned.append((path, text, False))
    if mof:
        text = mof_text(info, updated)
        if text is not None:
            planned.append((out / (os.path.splitext(info.pdb_name)[0] + ".mof"), text, False))
    if tmc:
        done: set[uuid.UUID] = set()
        for control in info.control_guids:
            if control.guid in done:
                continue
            done.add(control.guid)
            planned.append((out / f"{control.guid}.tmc", tmc_text(control, info.pdb_name, updated), False))
    outputs.check_outputs([path for path, _, _ in planned], [info.path])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:   # a file by that name (mkdir's own words would be "File exists")
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", os.fspath(out)) from None
    mode = outputs.mode_from([info.path])
    for path, text, more in planned:
        outputs.write_text(path, text, mode, append=more)
    if written is not None:
        written.update(tmf_paths)
    return [path for path, _, _ in planned]


def find_pdb_for_image(image: "str | os.PathLike[str]", symbol_paths: "list[str] | tuple[str, ...]" = ()) -> str:
    """The PDB matching a PE image (same GUID and age), searched like ``tracepdb -i ... -r``.

    Raises PdbError naming the places searched and any PDB found that does not match.
    """
    info = read_codeview(image)
    mismatched = []
    for candidate in pdb_candidates(image, info, symbol_paths):
        if not os.path.isfile(candidate):
            continue
        try:
            identity = read_pdb_identity(candidate)
        except PdbError as err:
            mismatched.append(f"{candidate} ({err.message})")
            continue
        if identity.pdb_guid == info.guid and identity.dbi_age == info.age:
            return candidate
        mismatched.append(f"{candidate} (GUID {identity.pdb_guid} age {identity.dbi_age})")
    found = "; found but not matching: " + ", ".join(mismatched) if mismatched else ""
    raise PdbError(f"no PDB matching the image (GUID {info.guid} age {info.age}, {info.pdb_name}) beside the "
                   f"image, at its linker path or in the symbol paths{found}", path=os.fspath(image),
                   expected="the PDB the image was linked with (-r DIR adds a symbol directory)")


def pdb_for(path: str, symbol_paths: "list[str] | tuple[str, ...]" = (), *,
            use_environment: bool = True) -> str:
    """``path`` itself when it names a PDB (or anything but a PE image), else the PDB of that
    image (``find_pdb_for_image``). ``symbol_paths`` entries may hold several ';'-separated
    directories; with none given, ``_NT_SYMBOL_PATH`` is searched (``use_environment``)."""
    if path.lower().endswith(".pdb") or not is_pe_image(path):
        return path
    given = list(symbol_paths) or ([os.environ.get("_NT_SYMBOL_PATH", "")] if use_environment else [])
    return find_pdb_for_image(path, [part for entry in given for part in entry.split(";") if part])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pdbs", nargs="+", metavar="FILE",
                        help="private PDB(s) with WPP annotations, or PE images (.sys/.dll/.exe) whose PDB "
                             "is found by GUID and age (tracepdb -i)")
    parser.add_argument("-r", "--symbol-path", action="append", default=[], metavar="DIRS",
                        help="';'-separated directories where the PDBs of images are looked "
                             "for (flat or symbol-store layout; repeatable)")
    add_output_dir_option(parser, "directory for the <guid>.tmf files (default: current directory)")
    parser.add_argument("--no-mof", dest="mof", action="store_false",
                        help="do not write <pdb>.mof for the control GUIDs")
    parser.add_argument("-c", "--tmc", action="store_true",
                        help="also write <control-guid>.tmc files (as tracepdb -c)")
    add_timestamp_option(parser, "now")
    parser.add_argument("--append", action="store_true",
                        help="append to existing <guid>.tmf files as tracepdb does (no second GUID line)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on the first damaged symbol record instead of skipping that module's rest")
    add_verbose_option(parser)


def _timestamp(args: argparse.Namespace) -> _dt.datetime | None:
    if getattr(args, "timestamp", None):
        return iso_time(args.timestamp)
    return source_date_epoch()



def run(args: argparse.Namespace) -> int:
    try:
        updated = _timestamp(args)
    except ValueError as exc:
        complain("tmf from-pdb", f"bad --timestamp: {exc}")
        return 2
    status = 0
    run_tmfs: set[pathlib.Path] = set()   # <guid>.tmf files of this run: a later PDB appends
    for pdb in args.pdbs:
        try:
            image, pdb = pdb, pdb_for(pdb, args.symbol_path, use_environment=False)
            if pdb != image:
                print(f"{image}: PDB {pdb}")
            info = read_pdb(pdb, tolerant=not args.strict)
            written = write_tmf_files(info, args.output, updated=updated, mof=args.mof, append=args.append,
                                      tmc=args.tmc, written=run_tmfs)
        except (PdbError, OSError, outputs.OutputRefused) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:   # not "[Errno 2] ...: 'x'"
                from wpptrace._cliutil import reason as why
                from wpptrace.winerror import as_win32

                exc = f"{exc.filename}: {why(as_win32(exc), os.fsdecode(exc.filename))}"
            complain("tmf from-pdb", f"error: {exc}")
            status = 1
            continue
        for issue in info.issues:
            complain("tmf from-pdb", f"warning: {issue}")
        if info.issues_dropped:
            complain("tmf from-pdb", f"warning: {pdb}: {info.issues_dropped} more problems not listed")
        guids = len(info.message_guids())
        print(f"{pdb}: {len(info.messages)} messages in {guids} message GUIDs, "
              f"{len(info.control_guids)} control GUIDs; {len(written)} files written to {args.output}"
              + (f" ({info.duplicates} duplicate records merged)" if info.duplicates else "")
              + (f" ({len(info.issues) + info.issues_dropped} damaged records skipped)" if info.issues else ""))
        if not info.messages:
            reason = ("the PDB is stripped (a public PDB: trace formats are removed)" if info.stripped
                      else "the PDB is a /DEBUG:FASTLINK mini PDB (symbols stay in the .obj files)"
                      if info.mini_pdb
                      else f"{info.damaged_messages} TMF: annotations were damaged (see the warnings above)"
                      if info.damaged_messages else "no TMF: annotations in its module symbols")
            complain("tmf from-pdb", f"warning: {pdb}: no trace messages: {reason}")
        if args.verbose:
            for path in written:
                print(f"  {path}")
    return status
