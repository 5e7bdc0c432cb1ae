"""An input that cannot be opened, as an issue row (file, offset, what): the offset is the one
the reader's error carries (``Win32Error.offset``), not a number read back out of its text."""
from __future__ import annotations

import pickle

from wpptrace import winerror
from wpptrace._cliutil import input_issue
from wpptrace.decoder.etlfile import EtlFile

import pytest


def test_a_short_file_is_an_error_at_offset_0(tmp_path):
    path = tmp_path / "short.etl"
    path.write_bytes(b"not a trace")
    with pytest.raises(winerror.Win32Error) as raised:
        EtlFile(path)
    err = raised.value
    assert (err.name, err.filename, err.offset) == ("ERROR_BAD_FORMAT", str(path), 0)
    assert str(err) == (f"ERROR_BAD_FORMAT (11): {path}: offset 0x0: expected a 72-byte "
                        f"WMI_BUFFER_HEADER, the file has 11 bytes")
    assert input_issue(str(path), err) == (
        0, "cannot read: expected a 72-byte WMI_BUFFER_HEADER, the file has 11 bytes (ERROR_BAD_FORMAT)")
    assert input_issue(str(path), pickle.loads(pickle.dumps(err)))[0] == 0


def test_the_offset_is_the_errors_not_read_from_its_text(tmp_path):
    path = tmp_path / "x.etl"
    path.write_bytes(b"")
    at = winerror.Win32Error(winerror.ERROR_BAD_FORMAT, "expected a record", filename=str(path),
                             offset=0x1230)
    assert input_issue(str(path), at) == (0x1230, "cannot read: expected a record (ERROR_BAD_FORMAT)")
    # a message that only looks like one names no offset: it is said whole
    told = OSError("offset 0x10: something else")
    assert input_issue(str(path), told) == (None, "cannot read: offset 0x10: something else")
