"""cffi builder for ``wpptrace._core``, the one compiled extension (out-of-line API mode).

Every part of the product that has C code keeps it in ``<part>/csrc/``:

* ``*.c``      sources compiled into the extension;
* ``*.h``      headers; those not starting with ``_`` are #included in the module, and are
               what Python sees: the cffi declarations are generated from them (``cdef_text``).

What more than one part's C uses lives once in ``src/wpptrace/include/``: the on-disk ETL
layouts in ``etl_layout.h`` (declared to cffi too), C-only helpers in headers starting with
``_`` (``_utf8.h``). Python code reads structures through ``ffi.cast``/``ffi.offsetof`` and
never repeats an offset. Headers are written so that the generated text is valid cffi:
fixed-width or typedef'd types, plain typedef structs, ``#define NAME integer``. A define whose
value is an integer expression (integer literals, ``+``, ``-``, parentheses and <stdint.h>
limits such as ``INT64_MIN``) goes in as ``#define NAME ...``: its value is the one the C
compiler computes. What cffi cannot express is left out of the cdef: C++ guards, includes,
function-like and other macros, declarations taking a ``va_list``, and anything between
``/* BEGIN C ONLY`` and ``/* END C ONLY */``. A declaration or define inside any other
preprocessor conditional than the include guard is a build error naming its file and line
(the cdef cannot know which branch the compiler takes).

Run this file directly (``python src/wpptrace/_build_core.py``) to rebuild the extension in
place during development.
"""
from __future__ import annotations

import glob
import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
INCLUDE = os.path.join(HERE, "include")
# in dependency order: the decoder's row header uses the renderer's types (tmf)
PARTS = [os.path.join(ROOT, part, "csrc") for part in ("provider", "tmf", "decoder")]

#: ``#define NAME literal``, the literal maybe negative and in parentheses: ``(-1)``
_INTEGER_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(\(\s*)*(-?\s*(?:0[xX][0-9A-Fa-f]+|\d+)[uUlL]*)"
                             r"(\s*\))*\s*$")
_INTEGER_TERM = r"(?:0[xX][0-9A-Fa-f]+|\d+)[uUlL]*|U?INT(?:8|16|32|64)_(?:MIN|MAX)"
_EXPRESSION_DEFINE = re.compile(rf"^\s*#\s*define\s+(\w+)\s+[(\s+-]*(?:{_INTEGER_TERM})"
                                rf"(?:[()\s]*[+-][(\s+-]*(?:{_INTEGER_TERM}))*[)\s]*$")
_CONDITIONAL = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$")
_GUARD_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s*$")
#: the conditions of a C / C++ pair, and the branch each opens: only these (their #else the
#: other branch); any other condition naming __cplusplus is an ordinary conditional
_CPLUSPLUS = {("ifdef", "__cplusplus"): "c++", ("ifndef", "__cplusplus"): "c",
              ("if", "defined(__cplusplus)"): "c++", ("if", "defined__cplusplus"): "c++",
              ("if", "!defined(__cplusplus)"): "c", ("if", "!defined__cplusplus"): "c"}
#: the callback Python defines for the provider core (cffi-only: ``extern "Python"``)
PYTHON_CALLBACKS = 'extern "Python" uint32_t _wpptrace_control_callback(int, void *, uint32_t *, void *);'


class HeaderError(ValueError):
    """A header the cdef cannot be generated from: ``path:line: what``, one line."""


def _blank(match: re.Match) -> str:
    """A comment or C-only block as the line ends it spans, so lines keep their numbers."""
    return "\n" * match.group(0).count("\n")


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += (c == "(") - (c == ")")
        if depth < 0:
            return False
    return depth == 0


def _integer_define(line: str) -> str | None:
    """``#define NAME literal`` as cffi takes it (the literal without its parentheses), or
    None if the line is no such define."""
    match = _INTEGER_DEFINE.match(line)
    if match is None or not _balanced(line):
        return None
    return f"#define {match.group(1)} {''.join(match.group(3).split())}"


def _joined(lines: list[str]) -> list[str]:
    """The lines with each backslash continuation joined to the line it continues (which keeps
    its number; the continuation lines become empty, so numbers still match the file)."""
    out: list[str] = []
    carry: int | None = None           # the index of the line being continued
    for line in lines:
        if carry is not None:
            out[carry] = out[carry][:-1] + " " + line.strip()
            out.append("")
        else:
            out.append(line)
            carry = len(out) - 1
        if not out[carry].rstrip().endswith("\\"):
            carry = None
        else:
            out[carry] = out[carry].rstrip()
    return out


def cdef_text(path: str) -> str:
    """A header as cffi cdef source (see the module docstring for what is left out). Raises
    HeaderError for what reaches the cdef from inside a preprocessor conditional other than
    the include guard and ``__cplusplus``: the cdef cannot tell which branch the compiler
    takes, so a define there would be taken whatever its condition."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\* BEGIN C ONLY.*?/\* END C ONLY \*/", _blank, text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", _blank, text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    source = _joined(text.splitlines())
    lines: list[str] = []
    # per open conditional: "guard" (the include guard), "c++" (a __cplusplus branch, left
    # out), "c" (its other branch) or the line number of any other #if
    opened: list[str | int] = []
    for number, line in enumerate(source, 1):
        cond = _CONDITIONAL.match(line)
        if cond:
            word, rest = cond.group(1), cond.group(2)
            if word in ("if", "ifdef", "ifndef"):
                following = next((x for x in source[number:] if x.strip()), "")
                guard = _GUARD_DEFINE.match(following)
                if word == "ifndef" and guard and guard.group(1) == rest.strip():
                    opened.append("guard")
                else:
                    opened.append(_CPLUSPLUS.get((word, "".join(rest.split())), number))
            elif word == "else" and opened and opened[-1] in ("c", "c++"):
                opened[-1] = "c" if opened[-1] == "c++" else "c++"
            elif word == "elif" and opened and opened[-1] in ("c", "c++"):
                opened[-1] = number         # a third branch, with a condition of its own
            elif word == "endif" and opened:
                opened.pop()
            continue
        if "c++" in opened:
            continue
        if line.lstrip().startswith("#"):
            cdef = _integer_define(line)
            if cdef is None:
                expression = _EXPRESSION_DEFINE.match(line)
                if expression and _balanced(line):
                    cdef = f"#define {expression.group(1)} ..."
            if cdef is None:
                continue                 # includes, guards, aliases, strings, macros
            line = cdef
        inside = [at for at in opened if isinstance(at, int)]
        if inside and line.strip():
            raise HeaderError(f"{path}:{number}: {line.strip()[:60]!r} is inside the "
                              f"preprocessor conditional of line {inside[-1]}; the cdef cannot "
                              f"choose its branch: move it out, or between BEGIN C ONLY and "
                              f"END C ONLY comments")
        lines.append(line)
    body = "\n".join(lines)
    # declarations cffi cannot parse (C varargs lists)
    return re.sub(r"[^;{}]*\bva_list\b[^;]*;", "", body)


def _sorted(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


#: how every source of the extension is compiled (tests/test_c_warnings.py compiles them so too)
COMPILE_ARGS = ["-O2", "-std=gnu11", "-pthread", "-fvisibility=hidden", "-Wall", "-Wextra"]
LINK_ARGS = ["-pthread"]


def _where(absolute: bool):
    return (lambda p: p) if absolute else (lambda p: os.path.relpath(p, ROOT))


def sources(absolute: bool = False) -> list[str]:
    """The C sources compiled into the extension beside the module cffi generates (relative to
    the repository root unless ``absolute``)."""
    return [_where(absolute)(s) for part in PARTS for s in _sorted(os.path.join(part, "*.c"))]


def include_dirs(absolute: bool = False) -> list[str]:
    return [_where(absolute)(p) for p in [INCLUDE, *PARTS]]


def make_builder(absolute: bool = False) -> FFI:
    """The extension's cffi builder (setup.py names this function: importing this module
    parses nothing)."""
    ffi = FFI()
    ffi.cdef(cdef_text(os.path.join(INCLUDE, "etl_layout.h")))
    headers = ["etl_layout.h"]
    for part in PARTS:
        for header in _sorted(os.path.join(part, "*.h")):
            if not os.path.basename(header).startswith("_"):
                ffi.cdef(cdef_text(header))
                headers.append(os.path.basename(header))
    ffi.cdef(PYTHON_CALLBACKS)
    ffi.set_source(
        "wpptrace._core",
        "\n".join(f'#include "{h}"' for h in headers),
        sources=sources(absolute),
        include_dirs=include_dirs(absolute),
        extra_compile_args=list(COMPILE_ARGS),
        extra_link_args=list(LINK_ARGS),
    )
    return ffi



def build_in_place(extension=None) -> str:
    """Compile an extension (default: ``wpptrace._core``) in a private temporary folder, then
    atomically replace its file in src/wpptrace under the name pip gives it (``_core.abi3.so``,
    ``_fastpath.cpython-311-....so``); returns that path. ``_build_fastpath.py`` uses it too."""
    import shutil
    import tempfile

    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    os.chdir(ROOT)
    tmp = tempfile.mkdtemp(prefix="wpptrace-build-")
    try:
        if extension is None:
            extension = make_builder(absolute=True).distutils_extension(tmp)
            extension.py_limited_api = True          # abi3, as the wheel names it
        cmd = build_ext(Distribution({"name": "wpptrace", "ext_modules": [extension]}))
        cmd.build_lib = tmp
        cmd.build_temp = os.path.join(tmp, "temp")
        cmd.ensure_finalized()
        cmd.run()
        built = cmd.get_ext_fullpath(extension.name)
        target = os.path.join(HERE, os.path.basename(built))
        os.replace(built, target)
        if extension.name == "wpptrace._core":   # an interpreter-tagged build would shadow it
            for stale in glob.glob(os.path.join(HERE, "_core.cpython-*.so")):
                os.remove(stale)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(build_in_place())
    sys.exit(0)
