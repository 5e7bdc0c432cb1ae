"""What the wpptrace subcommands share: common options, the 'Last Updated' time, stderr messages."""
from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import datetime as _dt


def terminal_width() -> int:
    """The terminal's columns as ``shutil.get_terminal_size`` finds them ($COLUMNS, then
    standard output's terminal, else 80), without importing shutil: argparse imports it
    (with bz2 and lzma, about 9 ms) in the first option added to a parser given no width."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, at ``terminal_width()``."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_width() - 2 if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``HelpFormatter`` with descriptions and epilogs kept as written."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser laid out by ``HelpFormatter`` unless told otherwise; the parsers of
    its subcommands are of this class too."""

    def __init__(self, *args, formatter_class: type = HelpFormatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def add_output_dir_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``-o/--output/-p DIR`` (tracepdb's -p spelling too), default the current directory."""
    parser.add_argument("-o", "--output", "-p", dest="output", default=".", metavar="DIR", help=help)


def add_timestamp_option(parser: argparse.ArgumentParser, fallback: str) -> None:
    """``--timestamp ISO8601``: the 'Last Updated' time written into generated files."""
    parser.add_argument("--timestamp", metavar="ISO8601",
                        help=f"'Last Updated' time to write (default: $SOURCE_DATE_EPOCH or {fallback})")


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="list every file written")


def iso_time(text: str) -> _dt.datetime:
    """An ISO 8601 time; without a zone it is UTC. Raises ValueError."""
    import datetime as _dt  # here: the commands that take no time do not import it

    when = _dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def program_cache_off() -> bool:
    """Whether $WPPTRACE_NO_CACHE turns fmt's program cache off (set, and not "0"). Here, not
    in the cache's module: fmt asks it before importing that."""
    return os.environ.get("WPPTRACE_NO_CACHE", "") not in ("", "0")


def source_date_epoch() -> _dt.datetime | None:
    """$SOURCE_DATE_EPOCH (reproducible builds) as a UTC time, None if unset or not a number."""
    import datetime as _dt

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch.isdigit() else None


def reason(exc: BaseException, path: str | None = None) -> str:
    """Why an operation failed, in one line: a Win32 error as its detail (where, what was
    expected) or else its message, then its name in parentheses; other errors as their
    message. ``path``: the file it was about, left out of the detail when it starts with it
    (the caller names the file first)."""
    name = getattr(exc, "name", None)
    text = getattr(exc, "strerror", None)
    if not (name and text):
        text = text or str(exc) or type(exc).__name__
        return text.rstrip(".") if isinstance(exc, OSError) else text
    from .winerror import error_text

    said = error_text(exc.winerror)
    if text.startswith(said):   # "NAME (code): message." then the detail, if any
        text = text[len(said):].strip() or said.partition(": ")[2]
    if path and text.startswith(f"{path}: "):
        text = text[len(path) + 2:]
    text = text.rstrip(".")
    return text if name in text else f"{text} ({name})"


def not_there(path: str) -> str:
    """``PATH: why`` for a file or folder given that is not there, as every command says it
    (the Win32 message and name of ERROR_FILE_NOT_FOUND, the path once)."""
    import errno
    import os

    from .winerror import as_win32

    return f"{path}: {reason(as_win32(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)), path)}"


def input_problem(path: str, exc: BaseException) -> str:
    """``PATH: what is wrong with it`` for an input that could not be opened: a directory
    named where a file was expected says so, and what to give instead."""
    import os
    import stat

    if os.path.isdir(path):
        return f"{path}: is a directory: give the .etl files in it ({os.path.join(path, '*.etl')})"
    try:
        mode = os.stat(path).st_mode
        streamed = not (stat.S_ISREG(mode) or stat.S_ISBLK(mode))
    except OSError:
        streamed = path == "-"          # no such file: meant as standard input
    if streamed:
        return (f"{path}: cannot read: an .etl file is read at its buffers' offsets: give a file, "
                f"not a pipe or standard input")
    return f"{path}: cannot read: {reason(exc, path)}"


def input_issue(path: str, exc: BaseException) -> tuple[int | None, str]:
    """An input that could not be opened as an issue row: (the byte offset the reader's error
    carries (``Win32Error.offset``), None when it has none; ``input_problem``'s text after the
    file's name, that offset left out), so the row and fmt's line say the same."""
    from .winerror import Win32Error

    offset = exc.offset if isinstance(exc, Win32Error) else None
    if offset is not None:      # what was expected there, without the file and the offset
        exc = Win32Error(exc.winerror, exc.detail)
    return offset, input_problem(path, exc)[len(path) + 2:]


def utf8_text(text: str) -> str:
    """``text`` as any UTF-8 output holds it: a byte of a file name that is not UTF-8 (which
    os.fsdecode keeps as a lone surrogate U+DC80..U+DCFF) written as ``\\xNN``, another lone
    surrogate as ``\\uNNNN``; ``text`` itself when it has neither."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(f"\\x{ord(ch) - 0xdc00:02x}" if 0xdc80 <= ord(ch) <= 0xdcff else
                       f"\\u{ord(ch):04x}" if 0xd800 <= ord(ch) <= 0xdfff else ch for ch in text)
    return text


def complain(command: str, message: object) -> None:
    """``wpptrace <command>: <message>`` on stderr."""
    print(f"wpptrace {command}: {message}", file=sys.stderr)


def foreign_option(argv: list[str], parser: argparse.ArgumentParser) -> str | None:
    """The first one-dash word of ``argv`` that is none of ``parser``'s options (nor the value of
    the option before it), else None. argparse reads such a word as a known one-letter option
    and a value glued to it (tracefmt's ``-hires`` as ``-h``, tracelog's ``-fio`` as ``-f io``)."""
    options = parser._option_string_actions
    takes_value = False
    for arg in argv:
        if takes_value:
            takes_value = False
            continue
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            continue
        action = options.get(arg.split("=", 1)[0])
        if action is None or ("=" in arg and action.nargs == 0):
            return arg
        takes_value = "=" not in arg and action.nargs != 0
    return None
