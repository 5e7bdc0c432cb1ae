"""Whether a -p directory holds any TMF file is decided from the first entries of its
listing: the listing is closed then, not left for the garbage collector (a ResourceWarning
under ``python -X dev`` or ``-W error``, on every Python version)."""
from __future__ import annotations

import warnings

import pytest

from wpptrace.decoder import cli_fmt
from wpptrace.tmf import cli as tmf_cli


@pytest.mark.parametrize("has_tmf_files", [cli_fmt._has_tmf_files, tmf_cli._has_tmf_files],
                         ids=["fmt", "tmf"])
def test_the_listing_is_closed_once_a_tmf_file_is_found(tmp_path, has_tmf_files):
    for name in ("a.tmf", "b.tmf", "c.txt"):
        (tmp_path / name).write_text("")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert has_tmf_files(str(tmp_path))
        assert has_tmf_files(str(tmp_path / "missing"))      # unreadable: left to the loader
    assert [str(w.message) for w in said if issubclass(w.category, ResourceWarning)] == []
