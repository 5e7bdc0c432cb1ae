"""The console commands leave what they made to the process's end unscanned, and only they:
the functions a program calls leave its collector as it was."""
from __future__ import annotations

import gc
import sys
import tomllib
from pathlib import Path

import pytest

import wpptrace.cli as cli
from wpptrace.decoder import tracefmt

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("entry, argv", [
    (cli.entry, ["wpptrace", "fmt", "{etl}", "-p", "{tmf}", "-o", "{out}"]),
    (tracefmt.entry, ["tracefmt", "{etl}", "-p", "{tmf}", "-o", "{out}", "-nosummary"]),
])
def test_command_freezes_what_it_made(entry, argv, fmt_data, fmt_tmf, tmp_path, monkeypatch,
                                      unfrozen):
    out = tmp_path / "out.txt"
    values = {"etl": fmt_data / "wppstr-sample.etl", "tmf": fmt_tmf, "out": out}
    monkeypatch.setattr(sys, "argv", [a.format(**values) for a in argv])
    assert entry() == 0
    assert gc.get_freeze_count() > 0
    assert "strtrace name=alpha id=0 tag=END" in out.read_text()


def test_main_leaves_the_collector_alone(fmt_data, fmt_tmf, tmp_path, unfrozen):
    threshold = gc.get_threshold()
    assert cli.main(["fmt", str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf),
                     "-o", str(tmp_path / "out.txt")]) == 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


def test_console_scripts_are_the_entries():
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["wpptrace"] == "wpptrace.cli:entry"
    assert scripts["tracefmt"] == "wpptrace.decoder.tracefmt:entry"
