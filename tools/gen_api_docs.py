"""Write docs/api.md, the API reference, from the modules' own docstrings and signatures.

One section per module (its docstring, then every name of its ``__all__`` with its signature
and docstring; classes with their public methods and properties). ``--check`` compares
instead of writing (tests/testing/test_api_docs.py runs it: the page never drifts from the
code). Run from anywhere: ``python tools/gen_api_docs.py``.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import re
import sys
import textwrap
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "api.md"

#: (module, what it is for), in page order
SECTIONS = [
    ("wpptrace.provider.tracing", "instrument Python code as a WPP provider"),
    ("wpptrace.provider.logging_handler", "the `logging` handler writing WPP messages"),
    ("wpptrace.testing", "round-trip tests: capture and assert on decoded messages"),
    ("wpptrace.pytest_plugin", "the pytest plugin (`wpp_capture`, `--wpp-keep`)"),
    ("wpptrace.decoder", "read .etl files and decode WPP messages from Python"),
]
#: names a section documents besides (or instead of) ``__all__``
EXTRA = {"wpptrace.pytest_plugin": ["wpp_capture"]}

HEADER = """# API reference

Generated from the docstrings by `python tools/gen_api_docs.py` (a test checks that this page
matches the code). Sections: {toc}.
"""


def markdown(doc: str | None) -> str:
    """A reST-flavoured docstring as Markdown: ``code``, :role:`name`, ``::`` blocks."""
    if not doc:
        return ""
    text = inspect.cleandoc(doc)
    text = re.sub(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            head = line.rstrip()[:-2].rstrip()
            if head:
                out.append(head + ":")
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            if out and out[-1].strip():
                out.append("")
            out += ["```python", *textwrap.dedent("\n".join(block)).splitlines(), "```", ""]
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip()


class _Annotation(str):
    """An annotation kept as text (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def _plain(sig: inspect.Signature) -> inspect.Signature:
    def ann(a: Any) -> Any:
        return _Annotation(a.strip("'\"")) if isinstance(a, str) else a
    params = [p.replace(annotation=ann(p.annotation)) for p in sig.parameters.values()
              if not p.name.startswith("_")]
    return sig.replace(parameters=params, return_annotation=ann(sig.return_annotation))


def signature(obj: Any) -> str:
    try:
        text = str(_plain(inspect.signature(obj)))
    except (TypeError, ValueError):
        text = getattr(obj, "__text_signature__", None) or "(...)"
        text = text.replace("$self, ", "").replace("($self)", "()")
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _is_ours(cls: type) -> bool:
    return cls.__module__.startswith("wpptrace")


def members(cls: type, documented: dict[type, str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Public methods and properties defined by wpptrace classes of the MRO, subclass first,
    up to the bases documented on the page themselves (returned by name)."""
    seen: dict[str, Any] = {}
    inherited: list[str] = []
    for base in cls.__mro__:
        if base is object or not _is_ours(base):
            continue
        if base is not cls and base in documented:
            inherited.append(documented[base])
            break
        for name, value in vars(base).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(value, (property, classmethod, staticmethod)) or inspect.isroutine(value):
                seen[name] = value
    return list(seen.items()), inherited


def _is_fixture(obj: Any) -> bool:
    return type(obj).__name__ == "FixtureFunctionDefinition" or hasattr(obj, "_pytestfixturefunction")


def documented_names(module: Any) -> list[str]:
    return list(getattr(module, "__all__", ())) + EXTRA.get(module.__name__, [])


def _member_doc(name: str, value: Any) -> list[str]:
    if isinstance(value, property):
        head, doc = f"- **`{name}`** (property)", value.__doc__
    else:
        func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        kind = " (class method)" if isinstance(value, classmethod) else \
            " (static method)" if isinstance(value, staticmethod) else ""
        sig = signature(func)
        if not isinstance(value, staticmethod):
            sig = re.sub(r"^\((?:self|cls)(?:, )?", "(", sig)
        head, doc = f"- **`{name}{sig}`**{kind}", func.__doc__
    text = markdown(doc)
    if not text:
        return [head]
    first, *rest = text.split("\n")
    return [f"{head}: {first}", *("  " + line if line else "" for line in rest)]


def entry(module: Any, name: str, documented: dict[type, str]) -> list[str]:
    obj = getattr(module, name)
    if _is_fixture(obj):
        return [f"### fixture `{name}`", "", markdown(obj.__doc__)]
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            head = f"### exception `{name}({obj.__bases__[0].__name__})`"
        else:
            head = f"### class `{name}{re.sub(r' -> .*$', '', signature(obj))}`"
        lines = [head, "", markdown(obj.__doc__)]
        found, inherited = members(obj, documented)
        items = [line for member, value in found for line in _member_doc(member, value)]
        items += [f"- and the members of `{base}`" for base in inherited]
        if items and not issubclass(obj, BaseException):
            lines += ["", *items]
        return lines
    if inspect.isroutine(obj):
        return [f"### `{name}{signature(obj)}`", "", markdown(obj.__doc__)]
    return [f"### `{name} = {obj!r}`"]


def render() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    modules = [(importlib.import_module(name), purpose) for name, purpose in SECTIONS]
    toc = ", ".join(f"[`{m.__name__}`](#{m.__name__.replace('.', '')}) ({purpose})"
                    for m, purpose in modules)
    parts = [HEADER.format(toc=toc)]
    for module, _purpose in modules:
        parts.append(f"## {module.__name__}\n\n{markdown(module.__doc__)}\n")
        names = documented_names(module)
        documented = {getattr(module, n): n for n in names if inspect.isclass(getattr(module, n))}
        for name in names:
            parts.append("\n".join(entry(module, name, documented)).rstrip() + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/api.md differs from what the code gives")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python tools/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
