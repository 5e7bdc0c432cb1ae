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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SOURCES = [os.path.join("provider", "pyext", "fastpath.c")]
INCLUDE_DIRS = [os.path.join("src", "wpptrace", "include"), os.path.join("provider", "csrc")]
COMPILE_ARGS = ["-O2", "-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wno-unused-function"]


def extension(optional: bool = True):
    """The setuptools Extension (paths relative to the repository root, as setup.py runs)."""
    from setuptools import Extension

    return Extension("wpptrace._fastpath", sources=SOURCES, include_dirs=INCLUDE_DIRS,
                     extra_compile_args=COMPILE_ARGS, optional=optional)


def build_in_place() -> str:
    """Compile into a private temp dir, then atomically replace src/wpptrace/_fastpath*.so."""
    import shutil
    import tempfile

    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    os.chdir(ROOT)
    tmp = tempfile.mkdtemp(prefix="wpptrace-fastpath-")
    try:
        dist = Distribution({"name": "wpptrace", "ext_modules": [extension(optional=False)]})
        cmd = build_ext(dist)
        cmd.build_lib = tmp
        cmd.build_temp = os.path.join(tmp, "temp")
        cmd.ensure_finalized()
        cmd.run()
        built = cmd.get_ext_fullpath("wpptrace._fastpath")
        target = os.path.join(HERE, os.path.basename(built))
        os.replace(built, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(build_in_place())
    sys.exit(0)
