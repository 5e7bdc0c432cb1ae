"""winerror: the Python code table equals the C core's ERROR_* defines; Win32Error carries both."""
from __future__ import annotations

import errno
import pickle

from wpptrace import winerror
from wpptrace._core import lib


def test_codes_equal_the_c_header():
    header = {name: getattr(lib, name) for name in dir(lib) if name.startswith("ERROR_")}
    assert header == winerror.CODES


def test_win32error_is_an_oserror_with_code_name_and_errno():
    err = winerror.Win32Error(winerror.ERROR_MORE_DATA, "arguments + 72 exceed the buffer", "s.etl")
    assert isinstance(err, OSError)
    assert (err.winerror, err.name, err.errno, err.filename) == (234, "ERROR_MORE_DATA", errno.EMSGSIZE, "s.etl")
    assert "ERROR_MORE_DATA (234)" in str(err) and "arguments + 72" in str(err)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.winerror, copy.name, copy.filename) == (234, "ERROR_MORE_DATA", "s.etl")


def test_check_passes_success_and_raises_the_rest():
    assert winerror.check(0) == 0
    try:
        winerror.check(6)
    except winerror.Win32Error as exc:
        assert exc.name == "ERROR_INVALID_HANDLE"
    else:
        raise AssertionError("check(6) did not raise")
    assert winerror.error_name(99999) == "ERROR_99999"
