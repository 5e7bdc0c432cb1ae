"""Named subsets of the corpus that several tests share (paths relative to the corpus root)."""
from __future__ import annotations

DRIVER_TMF = "tmf/nefarius__Nefarius.Utilities.ETW/tmf"
FINDNEEDLE = "wpp/guscatalano__findneedle"

#: Ten of the driver TMFs (tracepdb output for the BthPS3 / BthPS3PSM / DsHidMini drivers and the
#: DMF libraries), each chosen for a shape the TMF reader must handle.
DRIVER_SAMPLE = tuple(f"{DRIVER_TMF}/{guid}.tmf" for guid in (
    "6a170eb6-8ee4-3b09-243f-4a1356054f8d",  # raw inner quotes in a format
    "d47178e4-703b-3465-f330-63f5cfd64eb4",  # message numbers start at 13, with gaps
    "be80de12-e54c-3cd4-5447-17602f7cac8e",  # number 19 repeated for a fin$0 funclet
    "ca66b9c0-97d7-3776-3daf-3296492866aa",  # from BthPS3PSM.pdb, whose cvdump excerpt the corpus has
    "03fb1cb4-1c81-30e9-50db-4ecb4f47594e",  # same PDB; ItemListByte, ItemPWString
    "13024be3-4b84-3755-d706-51020667de4f",  # ItemDouble, ItemWINERROR, ItemLongLong
    "028f1450-e0d5-3b03-31cd-6226d77778f9",  # ItemLongLongXX
    "0b6c077e-f983-3543-6bbc-baec3455628b",  # component "sys", a single tracepdb run
    "a3210761-4ce2-3dcc-7574-aabc25a63d48",  # ItemWString
    "87140dc3-05eb-3f8c-a1be-42661f4f939d",  # ItemULongLong
))

#: The four findneedle WPP captures (their TMFs are in FINDNEEDLE/tmf).
FINDNEEDLE_CAPTURES = tuple(f"{FINDNEEDLE}/{name}" for name in (
    "wppemitter-sample.etl", "wppenum-sample.etl", "wppstr-sample.etl", "wpptypes-sample.etl"))

#: Small real files of every kind (WPP, manifest, TraceLogging, compressed, 32-bit, circular,
#: events lost), for tests that run each file through a whole command.
SMALL_FILES = FINDNEEDLE_CAPTURES + (
    "etl/airbus-cert__etl-parser/lxcore_kernel.etl",
    "etl/jtmoon79__super-speedy-syslog-searcher/WindowsUpdate.20251008.140245.443.8.etl",
    "etl/jtmoon79__super-speedy-syslog-searcher/waasmedic.20251005_113019_195.etl",
    "etl/microsoft__krabsetw/powershell.etl",
    "etl/microsoft__perfview/SelfDescribingSingleEvent.etl",
    "etl/microsoft__perfview/primitive-types.etl",
    "etl/microsoft__perfview/smallEtlFile.etl",
)
