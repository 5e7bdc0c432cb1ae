"""The ``tracefmt`` console command: Microsoft tracefmt's command line over ``wpptrace fmt``'s engine.

Accepted options (tracefmt's spelling, single dash, case-insensitive like on Windows):
``[EtlFile ... | -f EtlFile | -rt Session] [-tmf File] [-p TmfDir] [-i Images | -pdb Pdbs]
[-r SymbolPath] [-o OutFile] [-nosummary | -summaryonly] [-display | -displayonly]
[-csv] [-csvheader] [-csvquote] [-utc | -gmt] [-noprefix] [-seq] [-prefix Template] [-progress]``.
tracefmt's ``-hires``, ``-ods``, ``-trace`` and ``-v`` are taken and ignored with a warning (what
they ask for has no counterpart here); any other dash word is refused (exit 2).

Like tracefmt, text goes to ``FmtFile.txt`` and the summary to ``FmtSum.txt`` unless ``-o``
names the output (summary then ``<output>.sum``; ``FmtSum.txt`` still when the output is a
descriptor or a device, named directly or through a link: ``-o /dev/stdout``, ``-o /dev/null``);
``-displayonly`` prints to stdout instead; ``-summaryonly`` writes no text (its completion lines
say only where the summary went).
"""
from __future__ import annotations

import argparse
import os
import stat
import sys

from wpptrace._cliutil import RawDescriptionHelpFormatter, foreign_option

from .cli_fmt import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, FmtOptions, conflicting_options, run_fmt

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["main", "build_parser", "options_from_args"]

_DEFAULT_OUTPUT = "FmtFile.txt"
_DEFAULT_SUMMARY = "FmtSum.txt"


#: tracefmt's options that are taken and ignored (with a warning): what they ask for does not
#: apply here, and a script written for Windows tracefmt still decodes
_IGNORED = {
    "-hires": "timestamps keep their usual digits",
    "-ods": "there is no debugger output here; the text goes where the other options say",
    "-trace": "no decoder diagnostics here",
    "-v": "no per-buffer output here",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # tracefmt-style usage errors: exit 2, message on stderr
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tracefmt",
        add_help=False,
        allow_abbrev=False,
        formatter_class=RawDescriptionHelpFormatter,
        description="Format the WPP trace messages of .etl files (tracefmt-compatible options).",
        epilog=(
            "Text goes to FmtFile.txt and the summary to FmtSum.txt unless -o is given\n"
            "(then <file> and <file>.sum; FmtSum.txt still for a device such as\n"
            "/dev/stdout or /dev/null). TRACE_FORMAT_PREFIX sets the prefix,\n"
            "TRACE_FORMAT_SEARCH_PATH lists TMF directories.\n"
            "exit status: 0 ok, 1 an input/output problem (see stderr), 2 bad usage"),
    )
    p.add_argument("files", nargs="*", metavar="EtlFile", help="trace log files (merged by time)")
    p.add_argument("-h", "-?", "-help", "--help", action="help", help="show this help and exit")
    p.add_argument("-f", dest="more_files", action="append", default=[], metavar="EtlFile",
                   help="a trace log file (same as a positional EtlFile)")
    p.add_argument("-rt", dest="realtime", metavar="Session", help="real-time session to format")
    p.add_argument("-tmf", dest="tmf_files", action="append", default=[], metavar="TmfFile",
                   help="TMF file")
    p.add_argument("-p", dest="tmf_dirs", action="append", default=[], metavar="TmfPath",
                   help="directories of <guid>.tmf files (';'-separated, repeatable)")
    p.add_argument("-i", dest="images", action="append", default=[], metavar="Images",
                   help="image(s) whose private PDBs hold the formats (';'-separated, repeatable)")
    p.add_argument("-pdb", dest="pdbs", action="append", default=[], metavar="Pdbs",
                   help="private PDB file(s) holding the formats (';'-separated, repeatable)")
    p.add_argument("-r", dest="symbol_paths", action="append", default=[], metavar="SymbolPath",
                   help="';'-separated directories searched for the images' PDBs")
    p.add_argument("-o", dest="output", metavar="OutFile", help="output file (summary: <OutFile>.sum)")
    p.add_argument("-nosummary", action="store_true", help="do not write the summary file")
    p.add_argument("-summaryonly", action="store_true", help="write only the summary file")
    p.add_argument("-display", action="store_true", help="also show the text on the console")
    p.add_argument("-displayonly", action="store_true", help="only show the text on the console")
    p.add_argument("-csv", action="store_true", help="CSV output (structured prefix columns)")
    p.add_argument("-csvheader", action="store_true", help="with -csv: a header row")
    p.add_argument("-csvquote", action="store_true", help="with -csv: quote every field")
    p.add_argument("-utc", "-gmt", dest="utc", action="store_true", help="timestamps in UTC")
    p.add_argument("-noprefix", action="store_true", help="omit the trace message prefix")
    p.add_argument("-seq", action="store_true", help="show sequence numbers in the prefix")
    p.add_argument("-prefix", dest="prefix", metavar="Template",
                   help="prefix template (instead of TRACE_FORMAT_PREFIX)")
    p.add_argument("-progress", action="store_true", help="progress bar on stderr even off a terminal")
    p.add_argument("-q", dest="quiet", action="store_true", help="no completion lines on stderr")
    for option, why in _IGNORED.items():
        p.add_argument(option, dest="ignored", action="append_const", const=option, default=[],
                       help=f"ignored: {why}")
    return p


def _is_device(path: str) -> bool:
    """Whether ``path`` names a descriptor (/dev/stdout, /dev/fd/N) or a device (/dev/null, a
    terminal): no file is made there, and ``<path>.sum`` would be a new file among the devices."""
    from wpptrace._outputs import descriptor_named

    if descriptor_named(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def _conflicting_options(args: argparse.Namespace) -> str | None:
    """Why options given together cannot all be followed (a run that writes nothing, more
    than -summaryonly says, or an option that would do nothing), else None: fmt's table."""
    given = {"noprefix": args.noprefix, "prefix": args.prefix is not None, "seq": args.seq,
             "summaryonly": args.summaryonly, "nosummary": args.nosummary,
             "display": args.display, "displayonly": args.displayonly, "csv": args.csv,
             "csv_quote": args.csvquote, "csv_header": args.csvheader}
    return conflicting_options(given, {
        "noprefix": "-noprefix", "prefix": "-prefix", "seq": "-seq", "summaryonly": "-summaryonly",
        "nosummary": "-nosummary", "display": "-display", "displayonly": "-displayonly",
        "csv": "-csv output: give -csv too", "csv_quote": "-csvquote", "csv_header": "-csvheader"})


def options_from_args(args: argparse.Namespace) -> FmtOptions:
    files = list(args.files) + list(args.more_files)
    pdbs = [path for group in args.images + args.pdbs for path in group.split(";") if path]
    summary_only = args.summaryonly
    display_only = args.displayonly
    if display_only:
        output = None  # the console
    elif summary_only:
        output = os.devnull
    else:
        output = args.output or _DEFAULT_OUTPUT
    if args.nosummary:
        summary = None
    elif args.output and not _is_device(args.output):
        summary = args.output + ".sum"
    else:   # (-o /dev/stdout, /dev/null: as with -displayonly and -summaryonly, not /dev/null.sum)
        summary = _DEFAULT_SUMMARY
    return FmtOptions(
        files=files, realtime=args.realtime, tmf_files=list(args.tmf_files),
        tmf_dirs=[path for group in args.tmf_dirs for path in group.split(";") if path], pdbs=pdbs,
        symbol_paths=list(args.symbol_paths), output=output,
        text_wanted=display_only or not summary_only,
        output_format="csv" if args.csv else "text", csv_header=args.csvheader,
        csv_quote=args.csvquote, summary=summary, display=args.display, prefix=args.prefix,
        noprefix=args.noprefix, utc=args.utc, seq=args.seq,
        progress="always" if args.progress else "auto", verbose=not args.quiet, prog="tracefmt",
        hold_heap=True)


def _lower_options(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """tracefmt options are case-insensitive (-displayonly, -DisplayOnly, -UTC ...); a dash word
    that is no tracefmt option is a usage error (argparse would read ``-hires`` as ``-h``)."""
    known = {opt.lower(): opt for action in parser._actions for opt in action.option_strings}
    out = []
    for arg in argv:
        if arg.startswith("-") and arg.lower() in known:
            out.append(known[arg.lower()])
        elif arg.startswith("/") and len(arg) > 1 and "-" + arg[1:].lower() in known:
            out.append(known["-" + arg[1:].lower()])  # tracefmt also takes /option
        else:
            out.append(arg)
    foreign = foreign_option(out, parser)
    if foreign is not None:
        parser.error(f"{foreign}: not an option this tracefmt takes")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_lower_options(argv, parser))
        conflict = _conflicting_options(args)
        if conflict:
            parser.error(conflict)
    except SystemExit as exc:  # --help or a usage error
        return int(exc.code or 0)
    for option in dict.fromkeys(args.ignored):
        print(f"tracefmt: warning: {option} ignored: {_IGNORED[option]}", file=sys.stderr)
    opts = options_from_args(args)
    if not opts.files and opts.realtime is None:
        parser.print_usage(sys.stderr)
        print("tracefmt: error: give an .etl file (or -rt Session)", file=sys.stderr)
        return EXIT_USAGE
    from wpptrace._stdout import StandardOutputFailed, guarded_stdout

    try:
        with guarded_stdout(wrap=False):    # (run_fmt tells its own failed writes)
            return run_fmt(opts)
    except StandardOutputFailed as exc:     # (started with standard output closed)
        print(f"tracefmt: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # `tracefmt -displayonly -nosummary x.etl | head`: the reader left; stop quietly
        # (with a summary to write, run_fmt counts on to the end and writes it)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        print("tracefmt: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: a message, not a traceback
        if os.environ.get("WPPTRACE_TRACEBACK"):
            raise
        print(f"tracefmt: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def entry() -> int:
    """:func:`main` on ``sys.argv``; what it made is left to the process's end unscanned
    (``wpptrace.cli.leaving``)."""
    from wpptrace.cli import leaving

    return leaving(main())


def command() -> NoReturn:
    """The ``tracefmt`` console command: :func:`entry`, then the process ends at once with its
    status (``wpptrace.cli.ended``: its outputs are closed when it returns)."""
    from wpptrace.cli import ended

    ended(entry())


if __name__ == "__main__":
    command()
