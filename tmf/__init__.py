"""wpptrace.tmf: read WPP trace message format (TMF) data from TMF/TMC files, directories and PDBs.

``load(*paths)`` gives a ``TmfSet`` keyed by (message GUID, number); ``parse_text`` parses TMF
text; ``writer.to_tmf_text`` writes tracepdb-layout text back.
"""
from __future__ import annotations

import os

from .errors import TmfError
from .model import Argument, ControlGuid, EnumDef, Message, TmfSet

__all__ = ["Argument", "ControlGuid", "EnumDef", "Message", "TmfError", "TmfSet", "load", "parse_text"]


def parse_text(text: str, path: str = "<string>", tolerant: bool = False) -> TmfSet:
    """Parse TMF text into a new TmfSet (strict by default: the first bad entry raises TmfError)."""
    from .grammar import parse_into

    tmfset = TmfSet()
    parse_into(tmfset, text, path=path, tolerant=tolerant)
    return tmfset


def load(
    *paths: "str | os.PathLike[str]",
    search_path: "str | None" = None,
    tolerant: bool = True,
    use_environment: bool = True,
) -> TmfSet:
    """Load TMF data from files, directories, .tmc and .pdb files and TRACE_FORMAT_SEARCH_PATH.

    Directories are lazy: ``<guid>.tmf`` files are parsed on the first lookup of their GUID.
    See :func:`wpptrace.tmf.loader.load`.
    """
    from .loader import load as _load

    return _load(*paths, search_path=search_path, tolerant=tolerant, use_environment=use_environment)
