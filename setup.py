"""Build hook: the package list (mapped top-level folders) and the one cffi extension.

Metadata lives in pyproject.toml; setuptools needs code for two things only:
finding subpackages under the mapped folders and naming the cffi builder.
"""
import os

from setuptools import setup

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
    cffi_modules=["src/wpptrace/_build_core.py:ffibuilder"],
)
