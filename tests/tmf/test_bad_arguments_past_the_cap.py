"""Past a file's issue cap a bad argument line is counted without the pyparsing production
being asked what is wrong with it (20,000 bad argument lines took 5.2 s, each line through
pyparsing's error path though only the first 10,000 problems are kept)."""
from __future__ import annotations

import wpptrace.tmf as tmf
from wpptrace.tmf import grammar, model

GUID = "744151fd-b3f4-32e6-38eb-0fd11e3fb62d"


def text(bad: int) -> str:
    parts = [f"{GUID} comp // SRC=a.c\n"]
    for i in range(bad):
        parts.append(f'#typev a{i} {i} "%0m %10!d!" //   LEVEL=L\n{{\nbad argument {i}, ItemLong -- 100\n}}\n')
    parts.append(f'#typev good {bad} "%0m %10!d!" //\n{{\nn,\tItemLong\t--\t10\n}}\n')
    return "".join(parts)


def test_bad_argument_lines_past_the_cap_are_counted_without_the_production(monkeypatch):
    monkeypatch.setattr(model, "MAX_ISSUES_PER_FILE", 5)
    asked = []
    full = grammar._arg_full
    monkeypatch.setattr(grammar, "_arg_full", lambda line: asked.append(line) or full(line))
    grammar.parse_arg.cache_clear()
    tmfset = tmf.parse_text(text(40), path="bad.tmf", tolerant=True)
    assert [m.number for m in tmfset.messages()] == [40]
    assert len(tmfset.issues) == 5 and tmfset.issues_dropped == {"bad.tmf": 35}
    assert "insert number 1..99" in str(tmfset.issues[0])
    assert len(asked) == 6      # the kept five, and the first one past the cap
    # strictly, the first bad line raises as before
    try:
        tmf.parse_text(text(2), path="bad.tmf")
    except tmf.TmfError as err:
        assert err.line == 4 and "insert number 1..99" in err.message
    else:
        raise AssertionError("a bad argument line parsed")
