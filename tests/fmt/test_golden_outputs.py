"""Every output format stays byte-identical to the released decoder's (see golden.py).

Cases: text (default, sequence, no prefix, every prefix variable and marker), CSV (with a
header, and quoted without one), JSON Lines and the summary counts, each on the real
findneedle captures (alone and merged) and on generated traces (alone and merged); plus
``wpptrace dump`` (text and JSON) of the small corpus files (tests/corpus/subsets.py).
"""
from __future__ import annotations

import pathlib

import pytest

import golden


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, pathlib.Path]:
    return golden.generated_inputs(tmp_path_factory.mktemp("golden"))


_NAMES = sorted(golden.cases({"gen-qpc": pathlib.Path("gen-qpc.etl"),
                              "gen-slowclock": pathlib.Path("gen-slowclock.etl")}))


def test_every_case_has_its_expected_output():
    on_disk = sorted(p.name[:-3] for p in golden.GOLDEN.glob("*.xz"))
    assert on_disk == _NAMES


@pytest.mark.parametrize("name", _NAMES)
def test_output_is_unchanged(name, generated, corpus, tmp_path):
    command, paths, options = golden.cases(generated, corpus)[name]
    got = golden.run_case(command, paths, options, tmp_path)
    want = golden.expected(name)
    if got != want:
        got_lines, want_lines = got.decode().splitlines(), want.decode().splitlines()
        for i, (g, w) in enumerate(zip(got_lines, want_lines)):
            assert g == w, f"{name}: line {i + 1} differs"
        assert len(got_lines) == len(want_lines), f"{name}: line count differs"
        assert got == want
