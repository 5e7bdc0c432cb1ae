"""Session log files are private to their user (mode 0600), even when the path existed before."""
from __future__ import annotations

import os
import stat
import uuid

from wpptrace import provider as etw


def _record_one(path: str) -> None:
    props = etw.EVENT_TRACE_PROPERTIES(BufferSize=4, MinimumBuffers=2, MaximumBuffers=4,
                                       LogFileMode=etw.EVENT_TRACE_FILE_MODE_SEQUENTIAL,
                                       LogFileName=path)
    session = etw.StartTrace(f"privacy-{uuid.uuid4()}", props)
    etw.ControlTrace(session, None, props, etw.EVENT_TRACE_CONTROL_STOP)


def test_new_log_file_is_private(tmp_path):
    path = str(tmp_path / "new.etl")
    _record_one(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_existing_world_readable_file_is_narrowed(tmp_path):
    path = tmp_path / "old.etl"
    path.write_bytes(b"stale")
    os.chmod(path, 0o644)
    _record_one(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.stat().st_size > 5  # truncated and rewritten as a real trace
