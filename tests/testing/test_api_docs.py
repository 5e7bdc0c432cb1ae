"""docs/api.md is what tools/gen_api_docs.py makes from the code, and every public name it
covers has a docstring: the reference cannot drift from the API."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "tools" / "gen_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_matches_the_code(gen) -> None:
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == gen.render(), "docs/api.md is out of date: run python tools/gen_api_docs.py"


def test_every_public_name_is_documented(gen) -> None:
    missing = []
    for module_name, _ in gen.SECTIONS:
        module = importlib.import_module(module_name)
        if not (module.__doc__ or "").strip():
            missing.append(module_name)
        names = gen.documented_names(module)
        assert names, module_name
        for name in names:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isroutine(obj) or gen._is_fixture(obj)) \
                    and not (obj.__doc__ or "").strip():
                missing.append(f"{module_name}.{name}")
    assert missing == []


@pytest.mark.parametrize("module_name", ["wpptrace.testing", "wpptrace.decoder.messages"])
def test_every_member_of_the_testing_and_decoding_classes_is_documented(gen, module_name) -> None:
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        cls = getattr(module, name)
        if inspect.isclass(cls):
            found, _ = gen.members(cls, {})
            missing += [f"{name}.{member}" for member, value in found
                        if not (getattr(getattr(value, "__func__", value), "__doc__", "") or "").strip()]
    assert missing == []


def test_docstrings_render_as_markdown(gen) -> None:
    text = gen.markdown('''Head:

    Example::

        with capture(trace) as cap:
            run()

    See :func:`wpptrace.testing.capture` and ``cap.texts``.
    ''')
    assert text == ("Head:\n\nExample:\n\n```python\nwith capture(trace) as cap:\n    run()\n```\n\n"
                    "See `wpptrace.testing.capture` and `cap.texts`.")


def test_the_readme_example_is_the_ci_samples_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing with wpptrace", 1)[1].split("\n## ", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    sample = (ROOT / "samples" / "ci_roundtrip" / "test_copier.py").read_text(encoding="utf-8")
    lines = [line for line in example.splitlines() if line.strip()]
    assert len(lines) == 6 and "\n".join(lines) in "\n".join(l for l in sample.splitlines() if l.strip())
