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


def test_the_file_errors_of_an_error_are_none_unless_set_and_kept_through_pickling():
    """ControlTrace's errors say what the session's log files came to (properties,
    old_file_error, new_file_error); reading them on any other error raised AttributeError, and
    pickling (an error handed to another process) dropped them."""
    other = winerror.Win32Error(winerror.ERROR_ACCESS_DENIED, "EnableTrace")
    assert (other.properties, other.old_file_error, other.new_file_error) == (None, None, None)
    copy = pickle.loads(pickle.dumps(other))
    assert (copy.winerror, copy.properties, copy.old_file_error, copy.new_file_error) == (5, None, None, None)
    update = winerror.Win32Error(winerror.ERROR_DISK_FULL, "ControlTrace(2)")
    update.properties = {"LogFileName": "b.etl"}
    update.old_file_error = winerror.Win32Error(winerror.ERROR_DISK_FULL, "the log file left")
    update.new_file_error = None
    copy = pickle.loads(pickle.dumps(update))
    assert copy.winerror == 112 and copy.properties == {"LogFileName": "b.etl"} and copy.new_file_error is None
    assert copy.old_file_error.name == "ERROR_DISK_FULL"


def test_an_error_about_a_file_is_one_line_naming_the_file_once():
    """str(err) read "[Errno None] ERROR_BAD_FORMAT (11): An attempt was made to load a program
    with an incorrect format. x.etl: offset 0x0: ...: 'x.etl'": the file twice, an errno no
    Win32 code has. A reader's detail that starts with the file stands for the code's message."""
    bad = winerror.Win32Error(winerror.ERROR_BAD_FORMAT, "x.etl: offset 0x0: expected a header",
                              filename="x.etl")
    assert str(bad) == "ERROR_BAD_FORMAT (11): x.etl: offset 0x0: expected a header"
    missing = winerror.Win32Error(winerror.ERROR_FILE_NOT_FOUND, filename="x.etl")
    assert str(missing) == "ERROR_FILE_NOT_FOUND (2): x.etl: The system cannot find the file specified."
    full = winerror.Win32Error(winerror.ERROR_DISK_FULL, "writing a buffer", "x.etl")
    assert str(full) == ("ERROR_DISK_FULL (112): x.etl: There is not enough space on the disk. "
                         "writing a buffer")
    for err in (bad, missing, full):                 # the detail travels with a copy
        assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_check_passes_success_and_raises_the_rest():
    assert winerror.check(0) == 0
    try:
        winerror.check(6)
    except winerror.Win32Error as exc:
        assert exc.name == "ERROR_INVALID_HANDLE"
    else:
        raise AssertionError("check(6) did not raise")
    assert winerror.error_name(99999) == "ERROR_99999"


def test_an_error_in_words_names_its_code_and_message_not_the_call():
    """What commands and provider reports tell people: one text per code (the call that failed
    is no part of it), and other exceptions as their type and text."""
    from wpptrace.winerror import error_text, in_words

    failed = winerror.Win32Error(87, "EnableTrace")
    assert in_words(failed) == error_text(87) == "ERROR_INVALID_PARAMETER (87): The parameter is incorrect."
    assert str(failed) == f"{error_text(87)} EnableTrace"
    assert in_words(ValueError("bad")) == "ValueError: bad"
    assert error_text(9999) == "ERROR_9999 (9999): Win32 error."


def test_a_codes_message_is_public_and_the_only_way_to_it():
    """tracelog's status line and error_text give the message through error_message: no
    module outside winerror reads its private table."""
    import pathlib
    import re

    from wpptrace.provider.tracelog import _status

    assert winerror.error_message(87) == "The parameter is incorrect."
    assert winerror.error_message(9999) == "Win32 error."
    assert _status(87).endswith("87L      The parameter is incorrect.")
    root = pathlib.Path(__file__).resolve().parents[1]
    private = [f"{p.relative_to(root)}:{n}"
               for part in ("src/wpptrace", "provider", "decoder", "tmf")
               for p in sorted((root / part).rglob("*.py")) if p.name != "winerror.py"
               for n, line in enumerate(p.read_text().splitlines(), 1)
               if re.search(r"winerror import .*\b_[A-Za-z]|winerror\._[A-Za-z]", line)]
    assert private == []


def test_an_os_error_as_the_win32_error_of_its_errno(tmp_path):
    """A file that cannot be opened is named by its Win32 code, as the C core's errors are;
    an errno without one is left as it was."""
    from wpptrace.winerror import Win32Error, as_win32

    missing = as_win32(FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp_path / "x")))
    assert isinstance(missing, Win32Error) and missing.name == "ERROR_FILE_NOT_FOUND"
    assert missing.filename == str(tmp_path / "x")
    assert as_win32(PermissionError(errno.EACCES, "Permission denied")).name == "ERROR_ACCESS_DENIED"
    directory = as_win32(IsADirectoryError(errno.EISDIR, "Is a directory", str(tmp_path)))
    assert (directory.name, directory.filename) == ("ERROR_BAD_PATHNAME", str(tmp_path))
    assert str(directory) == f"ERROR_BAD_PATHNAME (161): {tmp_path}: is a directory: expected a file"
    other = OSError(errno.ENAMETOOLONG, "File name too long")
    assert as_win32(other) is other
    already = Win32Error(5)
    assert as_win32(already) is already


def test_an_errno_and_a_code_paired_both_ways_map_back_to_each_other():
    """One table of named pairs gives both directions: a file error read as its Win32 code
    carries the errno it came from."""
    from wpptrace.winerror import Win32Error, as_win32

    for name, code in (("ENOENT", "ERROR_FILE_NOT_FOUND"), ("EACCES", "ERROR_ACCESS_DENIED"),
                       ("EMFILE", "ERROR_TOO_MANY_OPEN_FILES"), ("ENOSPC", "ERROR_DISK_FULL"),
                       ("ELOOP", "ERROR_CANT_RESOLVE_FILENAME")):
        err = as_win32(OSError(getattr(errno, name), name))
        assert isinstance(err, Win32Error) and err.name == code
        assert errno.errorcode[err.errno] == name


def test_a_write_without_room_names_its_win32_code():
    """A full disk (or quota) and a file past the size limit, as fmt names a write that failed."""
    from wpptrace.winerror import as_win32

    for number, name in ((errno.ENOSPC, "ERROR_DISK_FULL"), (errno.EDQUOT, "ERROR_DISK_FULL"),
                         (errno.EFBIG, "ERROR_FILE_TOO_LARGE")):
        err = as_win32(OSError(number, "os text"))
        assert err.name == name
    assert winerror.Win32Error(winerror.ERROR_FILE_TOO_LARGE).errno == errno.EFBIG
    assert winerror.error_text(223) == ("ERROR_FILE_TOO_LARGE (223): The file size exceeds the "
                                        "limit allowed and cannot be saved.")


def test_an_error_at_a_file_offset_carries_the_file_the_offset_and_what():
    """A reader's error about a place in a file says ``FILE: offset 0xN: what`` and keeps the
    three apart (``filename``, ``offset``, ``detail``) for callers that list them as columns;
    they used to parse the offset back out of the text. Other errors have no offset."""
    bad = winerror.Win32Error(winerror.ERROR_BAD_FORMAT, "expected a header", filename="x.etl",
                              offset=0x48)
    assert str(bad) == "ERROR_BAD_FORMAT (11): x.etl: offset 0x48: expected a header"
    assert bad.strerror.endswith(" x.etl: offset 0x48: expected a header")
    assert (bad.filename, bad.offset, bad.detail) == ("x.etl", 0x48, "expected a header")
    copy = pickle.loads(pickle.dumps(bad))
    assert (str(copy), copy.filename, copy.offset, copy.detail) == (str(bad), "x.etl", 0x48,
                                                                    "expected a header")
    assert winerror.Win32Error(winerror.ERROR_DISK_FULL, "x", "x.etl").offset is None


def test_a_failed_write_is_a_write_fault():
    """EIO met writing to an open file is ERROR_WRITE_FAULT (as the C core names it); met
    elsewhere (a read) it has no code."""
    from wpptrace.winerror import as_win32

    failed = OSError(errno.EIO, "os text")
    assert as_win32(failed, writing=True).name == "ERROR_WRITE_FAULT"
    assert as_win32(failed) is failed
    assert as_win32(OSError(errno.ENOSPC, "os text"), writing=True).name == "ERROR_DISK_FULL"


def test_the_errno_table_decides_what_a_failed_write_is():
    """No room (disk full, quota, file size limit), the device failing, writing refused are
    write failures, by their Win32 code; anything else (a missing file, a process that could
    not be made) is not, and a Win32Error keeps its own code."""
    from wpptrace.winerror import Win32Error, write_failure

    told = {name: write_failure(OSError(getattr(errno, name), "os text", "out.txt"))
            for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EACCES", "EPERM", "EROFS", "ENOENT", "EAGAIN")}
    assert {name: failure and (failure.name, failure.filename) for name, failure in told.items()} == {
        "ENOSPC": ("ERROR_DISK_FULL", "out.txt"), "EDQUOT": ("ERROR_DISK_FULL", "out.txt"),
        "EFBIG": ("ERROR_FILE_TOO_LARGE", "out.txt"), "EIO": ("ERROR_WRITE_FAULT", "out.txt"),
        "EACCES": ("ERROR_ACCESS_DENIED", "out.txt"), "EPERM": ("ERROR_ACCESS_DENIED", "out.txt"),
        "EROFS": ("ERROR_ACCESS_DENIED", "out.txt"), "ENOENT": None, "EAGAIN": None}
    full = Win32Error(winerror.ERROR_DISK_FULL, None, "x.etl")
    assert write_failure(full) is full
    assert write_failure(Win32Error(winerror.ERROR_BAD_FORMAT, None, "x.etl")) is None


def test_a_detail_at_an_offset_keeps_its_own_trailing_colon():
    """The detail is told as given after the file and offset, whatever it ends with; none:
    the file and offset alone."""
    err = winerror.Win32Error(winerror.ERROR_BAD_FORMAT, "expected a key:", "x.etl", offset=0x10)
    assert str(err) == "ERROR_BAD_FORMAT (11): x.etl: offset 0x10: expected a key:"
    bare = winerror.Win32Error(winerror.ERROR_BAD_FORMAT, None, "x.etl", offset=0x10)
    assert str(bare) == "ERROR_BAD_FORMAT (11): x.etl: offset 0x10"
