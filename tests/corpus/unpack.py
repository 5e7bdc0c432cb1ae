#!/usr/bin/env python3
"""Unpack the test corpus: a copy of this directory with every ``<name>.xz`` expanded to ``<name>``.

The repository keeps the corpus files as published, except the ``.etl`` files of 64 KiB and more,
which are stored xz-compressed (``<name>.etl.xz``). The ``corpus`` test fixture unpacks them once
per test session; benchmarks and scripts call :func:`unpacked`, which keeps one unpacked copy per
corpus content in the user's cache directory. By hand::

    python3 tests/corpus/unpack.py DEST      # then: cd DEST && sha256sum -c SHA256SUMS
"""
from __future__ import annotations

import hashlib
import lzma
import os
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
COMPRESSED = ".xz"
_STAMP = ".unpacked"


def stored_files() -> list[pathlib.Path]:
    """The corpus files as stored in the repository (relative paths, sorted); not the Python
    helpers beside them (this module, subsets.py)."""
    return sorted(rel for rel in (p.relative_to(HERE) for p in HERE.rglob("*") if p.is_file())
                  if "__pycache__" not in rel.parts and not (len(rel.parts) == 1 and rel.suffix == ".py"))


def unpack(dest: "str | os.PathLike[str]") -> pathlib.Path:
    """Write the unpacked corpus into ``dest`` (created if missing) and return it."""
    root = pathlib.Path(dest)
    for rel in stored_files():
        src = HERE / rel
        target = root / (rel.with_suffix("") if rel.suffix == COMPRESSED else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.suffix == COMPRESSED:
            with lzma.open(src) as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        else:
            shutil.copyfile(src, target)
    return root


def content_key() -> str:
    """A digest of the stored corpus files (names and bytes; not the README): names one unpacked copy."""
    digest = hashlib.sha256()
    for rel in stored_files():
        if rel.name == "README.md":
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((HERE / rel).read_bytes()).digest())
    return digest.hexdigest()[:16]


def unpacked(cache: "str | os.PathLike[str] | None" = None) -> pathlib.Path:
    """An unpacked copy of the current corpus, made on first use and reused afterwards.

    It lives in ``cache`` (default: ``$XDG_CACHE_HOME/wpptrace`` or ``~/.cache/wpptrace``, private
    to the user) under a name derived from the corpus content, so a changed corpus is unpacked
    again; a copy is complete once its stamp file exists (an interrupted unpack is redone). Copies
    of older corpus versions stay until removed (``rm -r ~/.cache/wpptrace``).
    """
    key = content_key()
    base = pathlib.Path(cache) if cache is not None else _user_cache()
    root = base / f"wpptrace-corpus-{key}"
    if (root / _STAMP).is_file():
        return root
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=root.name + ".", dir=base))
    try:
        unpack(work)
        (work / _STAMP).write_text(key + "\n")
        try:
            work.rename(root)
        except OSError:  # another process finished first
            if not (root / _STAMP).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


def _user_cache() -> pathlib.Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache") / "wpptrace"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: unpack.py DEST", file=sys.stderr)
        return 2
    print(unpack(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
