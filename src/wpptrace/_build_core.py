"""cffi builder for ``wpptrace._core``, the one compiled extension (out-of-line API mode).

Every part of the product that has C code keeps it in ``<part>/csrc/``:

* ``*.c``      sources compiled into the extension;
* ``*.h``      headers; those not starting with ``_`` are #included in the module;
* ``*.cdef``   the declarations Python sees (cffi syntax), beside the header they mirror.

The on-disk ETL layouts live once, in ``src/wpptrace/include/etl_layout.h``. That header is
written in the subset of C that cffi's cdef parser accepts, so it *is* the cdef for the
layouts: Python code reads structures through ``ffi.cast``/``ffi.offsetof`` and never
repeats an offset.

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
PARTS = [os.path.join(ROOT, part, "csrc") for part in ("provider", "decoder")]

_PREPROCESSOR_KEEP = re.compile(r"^\s*#\s*define\s+\w+\s+")


def cdef_text(path: str) -> str:
    """A header as cdef source: drop include guards, includes and function-like macros."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\* BEGIN C ONLY.*?/\* END C ONLY \*/", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not _PREPROCESSOR_KEEP.match(stripped):
            continue
        if stripped.startswith("#define") and "(" in stripped.split()[1]:
            continue  # function-like macro
        lines.append(line)
    return "\n".join(lines)


def _sorted(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def make_builder(absolute: bool = False) -> FFI:
    where = (lambda p: p) if absolute else (lambda p: os.path.relpath(p, ROOT))
    ffi = FFI()
    ffi.cdef(cdef_text(os.path.join(INCLUDE, "etl_layout.h")))
    headers = ["etl_layout.h"]
    sources: list[str] = []
    for part in PARTS:
        for cdef in _sorted(os.path.join(part, "*.cdef")):
            ffi.cdef(open(cdef, encoding="utf-8").read())
        headers += [os.path.basename(h) for h in _sorted(os.path.join(part, "*.h"))
                    if not os.path.basename(h).startswith("_")]
        sources += _sorted(os.path.join(part, "*.c"))
    ffi.set_source(
        "wpptrace._core",
        "\n".join(f'#include "{h}"' for h in headers),
        sources=[where(s) for s in sources],
        include_dirs=[where(INCLUDE)] + [where(p) for p in PARTS],
        extra_compile_args=["-O2", "-std=gnu11", "-pthread", "-fvisibility=hidden",
                            "-Wall", "-Wno-unused-function"],
        extra_link_args=["-pthread"],
    )
    return ffi


ffibuilder = make_builder()


def build_in_place() -> str:
    """Compile into a private temp dir, then atomically replace src/wpptrace/_core*.so."""
    import shutil
    import tempfile

    os.chdir(ROOT)
    tmp = tempfile.mkdtemp(prefix="wpptrace-build-", dir=os.path.join(ROOT, "build") if os.path.isdir(os.path.join(ROOT, "build")) else None)
    try:
        built = make_builder(absolute=True).compile(tmpdir=tmp, verbose=False)
        target = os.path.join(HERE, os.path.basename(built))
        os.replace(built, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(build_in_place())
    sys.exit(0)
