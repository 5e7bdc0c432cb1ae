"""The in-repository corpus unpacks to the files as published, and the samples are copies of it."""
from __future__ import annotations

import hashlib
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
STORED = REPO / "tests" / "corpus"
SAMPLES = REPO / "samples"


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checksums() -> dict[str, str]:
    sums = {}
    for line in (STORED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    return sums


def test_unpacked_files_equal_the_published_ones(corpus):
    sums = _checksums()
    unpacked = {p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()}
    assert unpacked - set(sums) == {"README.md", "SHA256SUMS"}
    assert set(sums) <= unpacked
    bad = [name for name, digest in sums.items() if _sha256(corpus / name) != digest]
    assert bad == []


def test_only_big_etl_files_are_stored_compressed():
    for path in STORED.rglob("*"):
        if path.suffix == ".etl":
            assert path.stat().st_size < 64 * 1024, f"{path}: store it as {path.name}.xz"
        elif path.suffix == ".xz":
            assert path.name.endswith(".etl.xz")


def test_samples_are_byte_copies_of_corpus_files(corpus_file):
    copies = [p for sub in ("wpp_capture", "driver_tmf") for p in (SAMPLES / sub).rglob("*")
              if p.suffix in (".etl", ".tmf", ".mof")]
    assert len(copies) == 14
    for path in copies:
        assert path.read_bytes() == corpus_file(path.name).read_bytes(), path
