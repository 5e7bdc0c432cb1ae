"""Regression: a bad line of a .tmc file read tolerantly is reported, not dropped silently.

The line was skipped and its error made but never added to the set's issues: the file's other
control GUIDs loaded and nothing said a line was left out.
"""
from __future__ import annotations

import uuid

import wpptrace.tmf as tmf


def test_a_bad_tmc_line_is_an_issue_and_the_rest_loads(tmp_path):
    control = uuid.UUID("6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80")
    path = tmp_path / f"{control}.tmc"
    path.write_text(f"// PDB:  drv.pdb\n{control} MyDriverTraceGuid\nTRACE_DRIVER\nnot a flag name!\nTRACE_QUEUE\n")
    for tmfset in (tmf.load(path, use_environment=False), tmf.load(tmp_path, use_environment=False)):
        assert [(c.guid, c.flags) for c in tmfset.control_guids] == [(control, ("TRACE_DRIVER", "TRACE_QUEUE"))]
        assert [str(issue).splitlines()[0] for issue in tmfset.issues] == [
            f"{path}:4:1: unexpected line in .tmc file (expected '<control-guid> <name>' or a flag name)"]
        assert tmfset.issue_counts == {str(path): {0: 1}}
