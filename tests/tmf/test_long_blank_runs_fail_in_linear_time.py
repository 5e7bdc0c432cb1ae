"""Regression: a long run of blanks before a character that fails a line is rejected in linear time.

Patterns with two blank runs and only optional parts between them (``[ \\t]*(?:X)?[ \\t]*``) try
every split of a long blank run before giving up: an argument line ``a, Item`` + 2,000 blanks +
``x`` took a minute to reject (cubic), a GUID header ``<guid> comp`` + 60,000 blanks + ``x`` half a
minute (quadratic), and a printf spec of 20,000 zeros (flag or width digit) before a bad
conversion most of a minute. Each case runs in a child process with a bound far above what the
linear readers need (a fraction of a second) and far below what the old ones took (hours for the
cubic case, several minutes for the quadratic ones: so many of their lines), so the test fails
rather than hangs, and never flakes on a slow machine.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

GUID = "744151fd-6a44-4b8e-8bd2-2d3e8d04cd3b"
BLANKS = 60000  # a line stays under grammar.MAX_LINE (65,536 characters)
BOUND = 120     # seconds


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=BOUND)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _issues(tmp_path, text: str, numbers: tuple[int, ...]) -> list[str]:
    (tmp_path / f"{GUID}.tmf").write_text(text)
    out = _run(f"""
        import uuid, wpptrace.tmf as tmf
        tmfset = tmf.load({str(tmp_path)!r}, use_environment=False)
        for number in {numbers!r}:
            message = tmfset.lookup(uuid.UUID({GUID!r}), number)
            print(number, message.name if message is not None else None)
        for issue in tmfset.issues:
            print(str(issue).splitlines()[0])
        """)
    return out.splitlines()


def test_bad_argument_lines_with_long_blank_runs_are_rejected_at_once(tmp_path):
    bad = 16    # each entry's line: a minute at 2,000 blanks (cubic); half a minute at 60,000 if quadratic
    text = (f"{GUID} comp // SRC=a.c\n"
            + "".join(f'#typev bad{n} {n} "x %10!d!" //\n{{\ni % 7919, ItemLong{" " * BLANKS}x\n}}\n'
                      for n in range(1, bad + 1))
            + f'#typev good 99 "y %10!d!" //\n{{\ni, ItemLong -- 10\n}}\n')
    lines = _issues(tmp_path, text, (*range(1, bad + 1), 99))
    assert lines[:bad + 1] == [f"{n} None" for n in range(1, bad + 1)] + ["99 good"]
    assert lines[bad + 1:] == [f"{tmp_path / GUID}.tmf:{4 * n}:{len('i % 7919, ItemLong') + BLANKS + 1}: bad "
                               "argument line: expected \"-- N\" insert number or end of line, found 'x'"
                               for n in range(1, bad + 1)]


def test_bad_guid_headers_with_long_blank_runs_are_rejected_at_once(tmp_path):
    bad = 16    # each took half a minute
    text = (f"{GUID} comp{' ' * BLANKS}x\n" * bad
            + f"{GUID} comp // SRC=a.c\n"
            + f'#typev good 11 "y %10!d!" //\n{{\ni, ItemLong -- 10\n}}\n')
    lines = _issues(tmp_path, text, (11,))
    assert lines[0] == "11 good"
    assert lines[1:] == [f"{tmp_path / GUID}.tmf:{n}:{len(GUID) + len(' comp') + BLANKS + 1}: bad GUID header "
                         "line: expected end of text, found 'x'" for n in range(1, bad + 1)]


def test_a_bad_printf_spec_after_a_long_run_of_zeros_is_rejected_at_once():
    out = _run(f"""
        from wpptrace.tmf.formatspec import FormatSpecError, parse_printf_format, parse_tmf_format
        for parse, text in ((parse_tmf_format, "%10!" + "0" * {BLANKS} + "y!"),
                            (parse_printf_format, "%" + "0" * {BLANKS} + "y")) * 4:   # each took minutes
            try:
                parse(text)
            except FormatSpecError as err:
                print(err.column)
        """)
    assert out.split() == [str(BLANKS + 5), str(BLANKS + 2)] * 4
