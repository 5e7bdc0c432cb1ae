"""The error lines the README quotes start as the commands print them: the program's name
(``wpptrace fmt``, ``tracefmt``) then ``error:``, not a shortened ``fmt: error:``."""
from __future__ import annotations

import pathlib
import re

from wpptrace.cli import main

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_fmt_names_itself_wpptrace_fmt(tmp_path, capsys):
    assert main(["fmt", str(tmp_path / "missing.etl")]) == 1
    assert capsys.readouterr().err.startswith(f"wpptrace fmt: error: {tmp_path / 'missing.etl'}: cannot read: ")


def test_every_quoted_error_line_starts_with_a_program_name():
    text = " ".join(README.read_text(encoding="utf-8").split())
    prefixes = re.findall(r"`([^`]*?): error: ", text)
    assert prefixes
    for prefix in prefixes:
        assert prefix in ("tracefmt", "tracelog") or re.fullmatch(r"wpptrace [a-z]+( [a-z]+)?", prefix), prefix
