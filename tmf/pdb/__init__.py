"""WPP trace formats from PDB files and the PE images that name them, as tracepdb reads them.

One module per structure family:

- :mod:`.msf`: the MSF 7.0 container (pages, stream directory, streams) and :class:`PdbError`;
- :mod:`.symbols`: PDB info and DBI streams, module symbol streams, the ``TMF:``/``TMC:``
  S_ANNOTATION records and the messages and control GUIDs they hold;
- :mod:`.types`: the type stream (TPI), for the enums ``ItemEnum`` arguments name;
- :mod:`.peimage`: a PE image's CodeView (RSDS) record, which names the PDB it was linked with;
- :mod:`.tracepdb`: ``wpptrace tmf from-pdb``, the tracepdb-style ``.tmf``/``.tmc``/``.mof`` writer.

The names below are the reading API: ``read_pdb`` gives the raw records, ``load_pdb`` a TmfSet.
"""
from __future__ import annotations

from .msf import PdbError
from .symbols import (Annotation, ControlGuidRecord, PdbTraceInfo, TraceMessageRecord, load_pdb,
                      message_from_annotation, read_pdb, read_pdb_identity, tracepdb_header)

__all__ = [
    "PdbError", "Annotation", "TraceMessageRecord", "ControlGuidRecord", "PdbTraceInfo",
    "read_pdb", "read_pdb_identity", "load_pdb", "tracepdb_header", "message_from_annotation",
]
