"""Builder of ``wpptrace._fastpath``, the Python fast path of the provider (a plain CPython
extension, built for the interpreter that builds it).

``wpptrace._core`` (see ``_build_core.py``) is built on the limited API and tagged abi3, so one
build serves every CPython version. The fast path needs the full API (METH_FASTCALL builtins,
str internals, the calling frame), so it is a separate extension whose file name carries the
interpreter's tag (``_fastpath.cpython-311-x86_64-linux-gnu.so``): another interpreter version
never loads it and falls back to the pure-Python path instead of failing on a missing symbol.
It holds no copy of the C core: ``wpptrace.provider.fastpath`` passes it the addresses of the
core functions it calls.

Run this file directly (``python src/wpptrace/_build_fastpath.py``) to rebuild it in place
during development; ``pip install`` builds it through ``setup.py``.
"""
from __future__ import annotations

import os
import sys

SOURCES = [os.path.join("provider", "pyext", "fastpath.c")]
INCLUDE_DIRS = [os.path.join("src", "wpptrace", "include"), os.path.join("provider", "csrc")]
COMPILE_ARGS = ["-O2", "-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra"]


def extension(optional: bool = True):
    """The setuptools Extension (paths relative to the repository root, as setup.py runs)."""
    from setuptools import Extension

    return Extension("wpptrace._fastpath", sources=SOURCES, include_dirs=INCLUDE_DIRS,
                     extra_compile_args=COMPILE_ARGS, optional=optional)


if __name__ == "__main__":
    from _build_core import build_in_place

    print(build_in_place(extension(optional=False)))
    sys.exit(0)
