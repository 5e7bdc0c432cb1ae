"""The application's exceptions a trace call passes on: those its signal handlers raise.

A trace call drops what it cannot write and never raises its own failures. But Python runs a
signal handler wherever the main thread happens to be, so sometimes inside a trace call (in a
value's ``__str__``, while the first call at a site reads its source), and what the handler
raises there is the application's: a deadline (SIGALRM raising TimeoutError), a shutdown
request. Taken for a value that does not convert, it would be lost, and the application would
wait for a deadline that already passed. KeyboardInterrupt and SystemExit are no
``Exception`` and pass anyway; this finds the others by the handler's frame in the traceback.
"""
from __future__ import annotations

import _signal  # signal's own functions without its enum wrapping (50x faster per call)
import inspect
import os
import sys
import threading
from typing import Any

__all__ = ["passes_on", "no_room", "call_depth", "raised_by_signal_handler"]

_SIGNALS = tuple(sorted(_signal.valid_signals()))
#: The provider's files, and the file name of the level methods and packers it makes at run time.
_OWN = (os.path.dirname(os.path.abspath(__file__)) + os.sep, "<wpptrace ")
_VARARGS = inspect.CO_VARARGS


def _code_of(handler: Any) -> Any:
    """The code object a signal handler runs first (functions, methods, partials, callables)."""
    for _ in range(4):
        code = getattr(handler, "__code__", None)
        if code is not None:
            return code
        handler = (getattr(handler, "__func__", None) or getattr(handler, "func", None)
                   or getattr(type(handler), "__call__", None))
        if handler is None:
            return None
    return None


def raised_by_signal_handler(exc: BaseException) -> bool:
    """Did a signal handler of the application raise ``exc`` (caught by the trace call's code
    in the frame where its traceback starts)?"""
    tb = exc.__traceback__
    codes = None
    while tb is not None and (tb := tb.tb_next) is not None:   # (the first frame caught it)
        code = tb.tb_frame.f_code
        # A handler is called with (signum, frame), and is none of the provider's own code:
        # the common failures (a value's __str__, the provider's checks) end here, cheaply.
        if ((code.co_argcount >= 2 or code.co_flags & _VARARGS)
                and not code.co_filename.startswith(_OWN)):
            codes = codes or set()
            codes.add(code)
    if codes is None or threading.current_thread() is not threading.main_thread():
        return False              # (Python runs signal handlers in the main thread only)
    for signum in _SIGNALS:
        try:
            handler = _signal.getsignal(signum)
        except (ValueError, OSError):
            continue
        if callable(handler) and _code_of(handler) in codes:
            return True
    return False


def call_depth() -> int:
    """The frames on the calling thread's stack (walked only on a failure path)."""
    frame, depth = sys._getframe(1), 1
    while frame.f_back is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def no_room(exc: BaseException) -> bool:
    """Did ``exc`` come of no memory or stack left for the call? A MemoryError does; a
    RecursionError only where the call came deep (more than a quarter of the recursion limit
    used where it was caught). Caught shallower, the recursion was a value's own: a ``__str__``
    that names itself, a structure nested without end. That is the call's fault, as any value
    that does not convert (dropped and reported, raised when strict), or every such call would
    be lost without a word."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RecursionError) and 4 * call_depth() > sys.getrecursionlimit()


def passes_on(exc: BaseException) -> bool:
    """Must ``exc``, caught in the provider's code, go on instead of being dropped there? So
    it is for no memory or stack left (not the call's fault: the level method counts the call
    lost, and nothing is concluded about its site; see no_room) and for what the application's
    signal handler raised meanwhile (the application's own)."""
    return no_room(exc) or raised_by_signal_handler(exc)
