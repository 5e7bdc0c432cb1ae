"""A live view's queue is released as soon as its decoding ends (its session's buffers no
longer taken while the outputs are written), and by a run that ends before decoding it (an
output that cannot be opened): no subscription is left behind in a program calling run_fmt."""
from __future__ import annotations

import io

import pytest

from wpptrace.decoder import cli_fmt


class _Queue:
    def __init__(self, events: list) -> None:
        self.events = events

    def interrupt(self) -> None:
        self.events.append("interrupted")

    def release(self) -> None:
        self.events.append("released")


class _LiveSource:
    live = True

    def __init__(self, events: list) -> None:
        self.queue = _Queue(events)


@pytest.fixture
def events(monkeypatch) -> list:
    events: list = []
    monkeypatch.setattr(cli_fmt, "_open_live", lambda name: _LiveSource(events))
    return events


def _run(tmp_path) -> tuple[int, str]:
    err = io.StringIO()
    opts = cli_fmt.FmtOptions(files=[], realtime="LiveQueue", output=str(tmp_path / "out.txt"),
                              progress="never", cache=False)
    return cli_fmt.run_fmt(opts, out=io.StringIO(), err=err), err.getvalue()


def test_released_when_decoding_ends_before_the_outputs_are_written(events, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_fmt, "_decode_sources", lambda *args: events.append("decoded"))

    def finish(*args) -> int:
        events.append("finished")
        return 0

    monkeypatch.setattr(cli_fmt, "_finish", finish)
    assert _run(tmp_path)[0] == 0
    assert events[:3] == ["decoded", "released", "finished"]
    assert set(events[3:]) <= {"released"}      # (releasing again does nothing)


def test_released_by_a_run_that_ends_before_decoding(events, tmp_path, monkeypatch):
    def refused(opts, out):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli_fmt, "_open_output", refused)
    code, said = _run(tmp_path)
    assert code == 1 and "out.txt: cannot write: " in said
    assert events == ["released"]
