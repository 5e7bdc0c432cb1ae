"""Build hook: the package list (mapped top-level folders) and the two extensions.

Metadata lives in pyproject.toml; setuptools needs code for three things only: finding
subpackages under the mapped folders, naming the cffi builder of ``wpptrace._core`` (limited
API, abi3) and the version-specific fast path ``wpptrace._fastpath`` (optional: the package
works without it).
"""
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", "wpptrace"))
from _build_fastpath import extension as fastpath_extension  # noqa: E402

PACKAGE_DIRS = {
    "wpptrace": "src/wpptrace",
    "wpptrace.provider": "provider",
    "wpptrace.decoder": "decoder",
    "wpptrace.tmf": "tmf",
}


def find_packages_in(mapping):
    packages = []
    for pkg, root in mapping.items():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            if "__init__.py" in filenames:
                rel = os.path.relpath(dirpath, root)
                packages.append(pkg if rel == "." else pkg + "." + rel.replace(os.sep, "."))
    return packages


setup(
    packages=find_packages_in(PACKAGE_DIRS),
    cffi_modules=["src/wpptrace/_build_core.py:make_builder"],
    ext_modules=[fastpath_extension()],
)
