"""A process with no descriptor left cannot open /proc: what it looks up there cannot be told,
and is never taken for gone (a live writer's record given up as a dead one's)."""
from __future__ import annotations

from provider_scripts import run_script

_PENDING = """
    import threading
    from wpptrace.provider.sessions import session_info
    out = sys.argv[2]
    session = props("s")
    handle = P.StartTrace("pending-writer", session)
    reserved, done = threading.Event(), threading.Event()

    def writer():   # reserves a record (marked pending) and, alive, never commits it
        P._lib.wpptrace_debug_reserve_only(handle, 64)
        reserved.set()
        done.wait()

    thread = threading.Thread(target=writer)
    thread.start()
    reserved.wait()
    without_descriptors(lambda: P.ControlTrace(handle, None, session, P.EVENT_TRACE_CONTROL_FLUSH))
    info = session_info(handle=handle)
    print(info.records_abandoned, info.buffers_quarantined)
    done.set()
    thread.join()
    P.ControlTrace(handle, None, session, P.EVENT_TRACE_CONTROL_STOP)
    print(session.EventsLost)
"""


def test_a_live_writers_record_is_not_given_up_as_a_dead_ones_when_proc_cannot_be_read(tmp_path):
    """A flush finds a record its live writer has not committed, while the process has no
    descriptor left to read /proc: the writer was taken for gone, its record given up at once
    and the buffer put back for reuse, into which the writer could still store. A writer /proc
    cannot tell of is waited for, and its buffer, given up, is set aside (quarantined)."""
    done = run_script(_PENDING, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["1 1", "1", ""], done.stdout


_LOOKUP = """
    out = sys.argv[2]
    handle = P.StartTrace("looked-up", props("s", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))
    print(without_descriptors(lambda: query(handle)))
    print(query(handle), stop(handle))
"""


def test_a_lookup_with_no_descriptor_left_is_not_told_the_session_is_gone(tmp_path):
    """A QUERY of a running hosted session from a process at its descriptor limit cannot
    check the runtime directory: it fails, but never as ERROR_WMI_INSTANCE_NOT_FOUND (a
    directory a clean-up removed); the session is there, and answers once a descriptor is."""
    done = run_script(_LOOKUP, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    starved, after = done.stdout.split("\n")[:2]
    assert starved != "ERROR_WMI_INSTANCE_NOT_FOUND" and starved.startswith("ERROR_"), starved
    assert after == "looked-up looked-up", after


_STOP = """
    out = sys.argv[2]
    told = []
    handle = P.StartTrace("stopped-starved", props("s", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))
    registration = P.RegisterTraceGuids(lambda code, context, buffer: told.append(code) or 0, None, GUID, [GUID])
    print(enable(handle))
    print(without_descriptors(lambda: stop(handle)), told.count(P._lib.WMI_DISABLE_EVENTS))
    print(query(handle), stop(handle), told.count(P._lib.WMI_DISABLE_EVENTS))
"""


def test_a_stop_with_no_descriptor_left_says_so_and_changes_nothing(tmp_path):
    """A STOP of a running hosted session from a process at its descriptor limit: its own
    providers were told DISABLE, then the STOP failed with ERROR_BAD_PATHNAME, known without the
    host (the runtime directory could not be checked), and the session ran on without them. The
    STOP now fails first, as ERROR_TOO_MANY_OPEN_FILES, and changes nothing: the session still
    answers, and a STOP once a descriptor is free tells the providers once."""
    done = run_script(_STOP, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [
        "enabled", "ERROR_TOO_MANY_OPEN_FILES 0", "stopped-starved stopped-starved 1"], done.stdout


_STOP_KEEPING_ONE = """
    out = sys.argv[2]
    told, kept = [], []

    def callback(code, context, buffer):
        # a DISABLE that keeps a file open (to log that tracing stopped, say)
        if code == P._lib.WMI_DISABLE_EVENTS:
            kept.append(os.open("/dev/null", os.O_RDONLY))
        told.append(code)
        return 0

    handle = P.StartTrace("stopped-keeping-one", props("s", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))
    registration = P.RegisterTraceGuids(callback, None, GUID, [GUID])
    print(enable(handle))
    print(without_descriptors(lambda: stop(handle), left=2), told.count(P._lib.WMI_DISABLE_EVENTS))
    for fd in kept:
        os.close(fd)
    print(query(handle), told.count(P._lib.WMI_DISABLE_EVENTS))
"""


def test_a_stop_whose_disable_callback_takes_a_descriptor_still_stops(tmp_path):
    """A STOP of a hosted session with two descriptors free, whose provider's DISABLE callback
    keeps one file open: the STOP checked the runtime directory (two descriptors at once), told
    the providers DISABLE, then checked the directory again and made its socket, which failed
    with one descriptor left, and the session ran on without its providers. What the STOP needs
    of this process (the socket's path, the socket) is taken before DISABLE: it stops."""
    done = run_script(_STOP_KEEPING_ONE, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [
        "enabled", "stopped-keeping-one 1", "ERROR_WMI_INSTANCE_NOT_FOUND 1"], done.stdout


_START = """
    out = sys.argv[2]
    first = P.StartTrace("first", props("first", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))   # the registry mapped

    def start(name, mode):
        try:
            P.StartTrace(name, props(name, mode))
            return "started"
        except P.Win32Error as exc:
            return exc.name

    # hosted: the session memory, the log file (its directory, then the file), the host's pipe;
    # private: the log file
    print(*(without_descriptors(lambda: start("h%d" % left, P.EVENT_TRACE_FILE_MODE_SEQUENTIAL), left=left)
            for left in range(4)))
    print(*(without_descriptors(lambda: start("p%d" % left, PRIVATE), left=left) for left in range(2)))
    print(stop(first))                       # (its host would otherwise outlive the test)
"""


def test_a_start_with_no_descriptor_left_says_so_whichever_step_needed_it(tmp_path):
    """StartTrace from a process at its descriptor limit, with 0 to 3 descriptors free, fails
    at the session memory (memfd), the log file's directory or the file itself, or the host's
    pipe: each said ERROR_OUTOFMEMORY or ERROR_BAD_PATHNAME (a log file's path blamed for a
    descriptor limit). One errno is one code on every path: ERROR_TOO_MANY_OPEN_FILES."""
    done = run_script(_START, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [" ".join(["ERROR_TOO_MANY_OPEN_FILES"] * 4),
                                       " ".join(["ERROR_TOO_MANY_OPEN_FILES"] * 2), "first", ""], done.stdout


_CLI_START = """
    import argparse, io
    from wpptrace.provider import session_cli
    out = sys.argv[2]
    first = P.StartTrace("first", props("first", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))   # the registry mapped
    parser = argparse.ArgumentParser()
    session_cli.add_subcommands(parser.add_subparsers(dest="session_command"))
    args = parser.parse_args(["start", "cli-started", "-f", os.path.join(out, "cli.etl")])
    said = io.StringIO()
    # the runtime directory's check (two descriptors), then StartTrace: the session memory
    # takes one, the log file's directory the other
    code = without_descriptors(lambda: session_cli.run(args, io.StringIO(), said), left=2)
    print(code, said.getvalue().strip())
    print(stop(first))                       # (its host would otherwise outlive the test)
"""


def test_the_cli_does_not_blame_the_log_file_for_a_descriptor_limit(tmp_path):
    """`wpptrace session start -f FILE` at the descriptor limit, where the log file is the step
    that found none left: it said FILE could not be created (ERROR_BAD_PATHNAME), as for a bad
    path. It says the process has no descriptor left."""
    done = run_script(_CLI_START, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    said, stopped = done.stdout.rstrip("\n").rsplit("\n", 1)
    code, _, said = said.partition(" ")
    assert stopped == "first", done.stdout
    assert code == "1" and "ERROR_TOO_MANY_OPEN_FILES" in said, done.stdout
    assert "cli.etl" not in said and "log file" not in said, said


_LIST = """
    from wpptrace.provider import sessions
    out = sys.argv[2]
    handle = P.StartTrace("listed", props("s", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))

    def listing():
        try:
            return ",".join(p.LoggerName for p, _ in sessions.list_sessions()) or "none"
        except P.Win32Error as exc:
            return exc.name

    def providers():
        try:
            return len(sessions.providers())
        except P.Win32Error as exc:
            return exc.name

    import argparse, io
    from wpptrace.provider import session_cli
    parser = argparse.ArgumentParser()
    session_cli.add_subcommands(parser.add_subparsers(dest="session_command"))
    listed = parser.parse_args(["list"])

    def cli_list():
        said, err = io.StringIO(), io.StringIO()
        code = session_cli.run(listed, said, err)
        return code, said.getvalue().strip(), err.getvalue().strip()

    print(without_descriptors(listing), without_descriptors(providers))
    print(*without_descriptors(cli_list), sep="|")
    print(listing(), providers(), stop(handle))
"""


def test_a_listing_with_no_descriptor_left_says_so_rather_than_list_less(tmp_path):
    """Listing the sessions, or the providers, from a process at its descriptor limit: the
    running session's QUERY (and the provider processes' look-up) failed for want of a
    descriptor here, and was skipped: the listing said no session ran, and no provider was
    registered, with success. The listing fails with ERROR_TOO_MANY_OPEN_FILES."""
    done = run_script(_LIST, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == "ERROR_TOO_MANY_OPEN_FILES ERROR_TOO_MANY_OPEN_FILES", done.stdout
    code, said, err = lines[1].split("|")
    assert code == "1" and not said and "ERROR_TOO_MANY_OPEN_FILES" in err, lines[1]
    assert lines[2] == "listed 0 listed", done.stdout
