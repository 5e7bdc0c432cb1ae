"""Win32 error codes and the exception that carries them.

Every API in wpptrace that mirrors a Win32 function reports failure the Win32 way: the
C core returns a winerror.h code, and the Python layer raises :class:`Win32Error` with
that code (``.winerror``) and its name (``.name``). Values come from the C core's header
(``etl_layout.h``) when the extension is built; the table below is the same list for
pure-Python users and is checked against the header by the tests.
"""
from __future__ import annotations

import errno as _errno

#: name -> code for the codes the ETW APIs document and the file errors their callers meet
#: (winerror.h values).
CODES: dict[str, int] = {
    "ERROR_SUCCESS": 0,
    "ERROR_FILE_NOT_FOUND": 2,
    "ERROR_TOO_MANY_OPEN_FILES": 4,
    "ERROR_ACCESS_DENIED": 5,
    "ERROR_INVALID_HANDLE": 6,
    "ERROR_NOT_ENOUGH_MEMORY": 8,
    "ERROR_BAD_FORMAT": 11,
    "ERROR_OUTOFMEMORY": 14,
    "ERROR_BAD_LENGTH": 24,
    "ERROR_WRITE_FAULT": 29,
    "ERROR_READ_FAULT": 30,
    "ERROR_SHARING_VIOLATION": 32,
    "ERROR_HANDLE_EOF": 38,
    "ERROR_NOT_SUPPORTED": 50,
    "ERROR_INVALID_PARAMETER": 87,
    "ERROR_DISK_FULL": 112,
    "ERROR_BAD_PATHNAME": 161,
    "ERROR_BUSY": 170,
    "ERROR_ALREADY_EXISTS": 183,
    "ERROR_FILE_TOO_LARGE": 223,
    "ERROR_MORE_DATA": 234,
    "ERROR_NOACCESS": 998,
    "ERROR_CANCELLED": 1223,
    "ERROR_NO_SYSTEM_RESOURCES": 1450,
    "ERROR_INVALID_TIME": 1901,
    "ERROR_CANT_RESOLVE_FILENAME": 1921,
    "ERROR_WMI_GUID_NOT_FOUND": 4200,
    "ERROR_WMI_INSTANCE_NOT_FOUND": 4201,
    "ERROR_WMI_ALREADY_ENABLED": 4206,
    "ERROR_CTX_CLOSE_PENDING": 7007,
}
NAMES: dict[int, str] = {v: k for k, v in CODES.items()}
globals().update(CODES)

_MESSAGES = {
    0: "The operation completed successfully.",
    2: "The system cannot find the file specified.",
    4: "The system cannot open the file.",
    5: "Access is denied.",
    6: "The handle is invalid.",
    8: "Not enough memory resources are available to process this command.",
    11: "An attempt was made to load a program with an incorrect format.",
    14: "Not enough memory resources are available to complete this operation.",
    24: "The program issued a command but the command length is incorrect.",
    29: "The system cannot write to the specified device.",
    30: "The system cannot read from the specified device.",
    32: "The process cannot access the file because it is being used by another process.",
    38: "Reached the end of the file.",
    50: "The request is not supported.",
    87: "The parameter is incorrect.",
    112: "There is not enough space on the disk.",
    161: "The specified path is invalid.",
    170: "The requested resource is in use.",
    183: "Cannot create a file when that file already exists.",
    223: "The file size exceeds the limit allowed and cannot be saved.",
    234: "More data is available.",
    998: "Invalid access to memory location.",
    1223: "The operation was canceled by the user.",
    1450: "Insufficient system resources exist to complete the requested service.",
    1901: "The specified time is invalid.",
    1921: "The name of the file cannot be resolved by the system.",
    4200: "The GUID passed was not recognized as valid by a WMI data provider.",
    4201: "The instance name passed was not recognized as valid by a WMI data provider.",
    4206: "The WMI data block or event notification has already been enabled.",
    7007: "A close operation is pending on the session.",
}

#: Win32 code name and POSIX errno name, and which way the pair is read: _TO_ERRNO gives the
#: errno a Win32Error carries for its code (so errno-based handling works on it too),
#: _FROM_ERRNO the code ``as_win32`` names an OSError met opening, reading or writing a file
#: by (the nearest code the table has); _BOTH, either way. The first pair for a name wins.
#: _WRITING marks how a write to an open file fails (``write_failure``): no room for it, the
#: device failing, writing refused; its errno is read as its code when writing, even where it
#: is no _FROM_ERRNO pair (EIO is ERROR_WRITE_FAULT for a write, as the C core names one).
_TO_ERRNO, _FROM_ERRNO, _BOTH, _WRITING = 1, 2, 3, 4
_ERRNO_PAIRS = (
    ("ERROR_FILE_NOT_FOUND", "ENOENT", _BOTH),
    ("ERROR_TOO_MANY_OPEN_FILES", "EMFILE", _BOTH),
    ("ERROR_TOO_MANY_OPEN_FILES", "ENFILE", _FROM_ERRNO),
    ("ERROR_ACCESS_DENIED", "EACCES", _BOTH | _WRITING),
    ("ERROR_ACCESS_DENIED", "EPERM", _FROM_ERRNO | _WRITING),
    ("ERROR_ACCESS_DENIED", "EROFS", _FROM_ERRNO | _WRITING),
    ("ERROR_INVALID_HANDLE", "EBADF", _TO_ERRNO),
    ("ERROR_NOT_ENOUGH_MEMORY", "ENOMEM", _TO_ERRNO),
    ("ERROR_OUTOFMEMORY", "ENOMEM", _TO_ERRNO),
    ("ERROR_BAD_LENGTH", "EINVAL", _TO_ERRNO),
    ("ERROR_WRITE_FAULT", "EIO", _TO_ERRNO | _WRITING),
    ("ERROR_NOT_SUPPORTED", "ENOTSUP", _TO_ERRNO),
    ("ERROR_INVALID_PARAMETER", "EINVAL", _TO_ERRNO),
    ("ERROR_DISK_FULL", "ENOSPC", _BOTH | _WRITING),
    ("ERROR_DISK_FULL", "EDQUOT", _FROM_ERRNO | _WRITING),   # the user's quota of the disk: as full
    ("ERROR_FILE_TOO_LARGE", "EFBIG", _BOTH | _WRITING),
    ("ERROR_BAD_PATHNAME", "ENOENT", _TO_ERRNO),
    ("ERROR_BAD_PATHNAME", "EISDIR", _FROM_ERRNO),     # a directory where a file is expected
    ("ERROR_BUSY", "EBUSY", _TO_ERRNO),
    ("ERROR_ALREADY_EXISTS", "EEXIST", _TO_ERRNO),
    ("ERROR_MORE_DATA", "EMSGSIZE", _TO_ERRNO),
    ("ERROR_NOACCESS", "EFAULT", _TO_ERRNO),
    ("ERROR_CANCELLED", "ECANCELED", _TO_ERRNO),
    ("ERROR_CANT_RESOLVE_FILENAME", "ELOOP", _BOTH),      # a loop of symbolic links
)
_ERRNO_OF: dict[int, int] = {}          # Win32 code -> errno
_CODE_OF_ERRNO: dict[int, int] = {}     # errno -> Win32 code
_CODE_OF_WRITE_ERRNO: dict[int, int] = {}   # errno of a failed write -> Win32 code
for _name, _errno_name, _way in _ERRNO_PAIRS:
    if _way & _TO_ERRNO:
        _ERRNO_OF.setdefault(CODES[_name], getattr(_errno, _errno_name))
    if _way & _FROM_ERRNO:
        _CODE_OF_ERRNO.setdefault(getattr(_errno, _errno_name), CODES[_name])
    if _way & _WRITING:
        _CODE_OF_WRITE_ERRNO.setdefault(getattr(_errno, _errno_name), CODES[_name])
_WRITE_FAILURES = frozenset(_CODE_OF_WRITE_ERRNO.values())
del _name, _errno_name, _way


def error_name(code: int) -> str:
    """The winerror.h name of ``code`` (``"ERROR_<n>"`` if not in the table)."""
    return NAMES.get(code, f"ERROR_{code}")


def error_message(code: int) -> str:
    """The Windows message of a Win32 code (``"Win32 error."`` if not in the table)."""
    return _MESSAGES.get(code, "Win32 error.")


def error_text(code: int) -> str:
    """``NAME (code): message`` of a Win32 code, as messages to people show it."""
    return f"{error_name(code)} ({code}): {error_message(code)}"


def in_words(exc: BaseException) -> str:
    """An exception in plain words: a Win32 error as its code's name, number and message
    (without the call that failed), anything else as its type and text."""
    if isinstance(exc, Win32Error):
        return error_text(exc.winerror)
    return f"{type(exc).__name__}: {exc}"


class Win32Error(OSError):
    """A Win32 API failure: ``winerror`` is the code, ``name`` its winerror.h name.

    ``errno`` is the nearest POSIX errno (or None); ``strerror`` is the Windows message (then
    ``detail``: where, what was expected, or the call that failed); ``str(err)`` is one line.
    A reader's error about a place in a file has its byte ``offset`` (else None): ``detail``
    is then what was expected there, and the text says ``FILE: offset 0xN: detail``.
    ControlTrace's errors also say what the session's log files came to (see api.ControlTrace):
    ``properties``, ``old_file_error`` and ``new_file_error``, None on every other error.
    """

    properties = None
    old_file_error: Win32Error | None = None
    new_file_error: Win32Error | None = None
    _KEPT = ("properties", "old_file_error", "new_file_error")

    def __init__(self, code: int, detail: str | None = None, filename: str | None = None,
                 offset: int | None = None):
        self.winerror = int(code)
        self.name = error_name(self.winerror)
        self.detail = detail or None
        self.offset = offset
        text = error_text(self.winerror)
        said = self._said(filename)
        if said:
            text += f" {said}"
        if filename is None:
            super().__init__(_ERRNO_OF.get(self.winerror), text)
        else:
            super().__init__(_ERRNO_OF.get(self.winerror), text, filename)
        self.winerror = int(code)  # OSError.__init__ resets it on some platforms

    def __str__(self) -> str:
        """One line: the code's name and number, the file once, then what went wrong.

        A detail that starts with the file (``"PATH: offset 0x0: expected ..."``, a reader's
        own sentence) stands for the code's message, which may not fit ("An attempt was made
        to load a program ..." for a damaged .etl file); otherwise the message, then the
        detail (the call that failed). OSError's ``"[Errno N] ...: 'PATH'"`` named the file
        twice and an errno no Win32 code has."""
        said = f"{self.name} ({self.winerror}): "
        filename = self.filename
        detail = self._said(filename)
        if filename is not None and detail and detail.startswith(f"{filename}: "):
            return said + detail
        where = f"{filename}: " if filename is not None else ""
        return said + where + error_message(self.winerror) + (f" {detail}" if detail else "")

    def _said(self, filename: str | None) -> str | None:
        """The detail as told: at an offset, after the file and the offset."""
        if self.offset is None:
            return self.detail
        where = f"{filename}: " if filename is not None else ""
        said = f"{where}offset {self.offset:#x}"
        return f"{said}: {self.detail}" if self.detail else said

    def __reduce__(self):
        # what ControlTrace set is kept (an error handed to another process, e.g. by multiprocessing)
        kept = {name: self.__dict__[name] for name in self._KEPT if name in self.__dict__}
        return (type(self), (self.winerror, self.detail, self.filename, self.offset), kept or None)


def no_directory(parent: str) -> str:
    """What is wrong with a path to be made whose directory ``parent`` is not there, in the
    one wording every command uses."""
    return f"there is no directory {parent}"


def as_win32(exc: OSError, writing: bool = False) -> OSError:
    """``exc`` as the Win32Error of the nearest code for its errno (``filename`` kept), for a
    message that names it as every other file problem is named; ``exc`` itself if it is one
    already or its errno has no such code. ``writing``: ``exc`` was met writing to an open
    file, where the table's write failures are read too (EIO: ERROR_WRITE_FAULT)."""
    if isinstance(exc, Win32Error):
        return exc
    code = _CODE_OF_ERRNO.get(exc.errno)
    if code is None and writing:
        code = _CODE_OF_WRITE_ERRNO.get(exc.errno)
    if code is None:
        return exc
    detail = None
    if exc.errno == _errno.EISDIR:      # the code's message alone does not say what is wrong
        where = f"{exc.filename}: " if exc.filename else ""
        detail = f"{where}is a directory: expected a file"
    return Win32Error(code, detail, filename=exc.filename)


def write_failure(exc: OSError) -> Win32Error | None:
    """``exc`` as the Win32Error of a write to an open file that failed (the table's
    _WRITING codes: no room for it, the device failing, writing refused), None if it is no
    such failure (a process that could not be made, say: told as any other error)."""
    failure = as_win32(exc, writing=True)
    return failure if isinstance(failure, Win32Error) and failure.winerror in _WRITE_FAILURES else None


def check(code: int, detail: str | None = None, filename: str | None = None) -> int:
    """Raise :class:`Win32Error` unless ``code`` is ERROR_SUCCESS; return it otherwise."""
    if code:
        raise Win32Error(code, detail, filename)
    return code
