"""The runtime directory is checked each time it is used, with its parent: one removed and made
again by another user, or one whose parent lets others move it, is refused; the session
command says what is wrong with it in one line."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import wpptrace.provider as P
from provider_scripts import run_script

L = P._lib
NOBODY = 65534

# What the application scripts below share besides SESSION_CALLS, put before each of them by
# _script().
_HELPERS = textwrap.dedent("""
    def start_and_stop():   # 0 if a session logging into `out` started (then stopped), else its error
        props = P.EVENT_TRACE_PROPERTIES(LogFileName=os.path.join(out, uuid.uuid4().hex + ".etl"),
                                         LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL)
        try:
            handle = P.StartTrace("rtdir-" + uuid.uuid4().hex[:8], props)
        except P.Win32Error as exc:
            return exc.winerror
        P.ControlTrace(handle, None, props, P.EVENT_TRACE_CONTROL_STOP)
        return 0

    def held_at(runtime):   # the descriptor numbers this process holds the directory open at
        return [int(n) for n in os.listdir("/proc/self/fd")
                if os.path.realpath("/proc/self/fd/" + n) == os.path.realpath(runtime)]
""")


def _script(text: str, runtime, *args, timeout: int = 60) -> subprocess.CompletedProcess:
    """Runs ``text`` (after SESSION_CALLS and _HELPERS) in a Python of its own whose runtime directory is
    ``runtime``, with ``runtime`` and ``args`` as its arguments; it must exit 0."""
    done = run_script(_HELPERS + textwrap.dedent(text), runtime, *args, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done


_APP = """
    import shutil
    runtime, out, step = sys.argv[1:4]

    print(start_and_stop())
    if step == "replaced":      # someone else's directory where ours was
        os.rename(runtime, runtime + ".old")
        os.mkdir(runtime, 0o700)
        if os.geteuid() == 0:
            os.chown(runtime, 65534, 65534)
        else:
            os.chmod(runtime, 0o755)
        print(start_and_stop(), len(os.listdir(runtime)))
    elif step == "removed":     # a clean-up of /tmp took it
        shutil.rmtree(runtime)
        print(start_and_stop(), oct(os.stat(runtime).st_mode & 0o7777))
"""


def _run(tmp_path, runtime, step: str) -> list[str]:
    return _script(_APP, runtime, tmp_path, step).stdout.split()


def _cli(tmp_path, runtime) -> subprocess.CompletedProcess:
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    return subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", "rtdir-cli", "-f",
                           str(tmp_path / "cli.etl")], env=env, capture_output=True, text=True, timeout=60)


def test_a_directory_made_again_by_someone_else_is_refused(tmp_path):
    runtime = tmp_path / "rt"
    assert _run(tmp_path, runtime, "replaced") == ["0", str(L.ERROR_ACCESS_DENIED), "0"]


def test_a_removed_directory_is_made_again_private(tmp_path):
    runtime = tmp_path / "rt"
    assert _run(tmp_path, runtime, "removed") == ["0", "0", "0o700"]


def test_a_parent_others_may_write_to_needs_the_sticky_bit(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    assert _run(tmp_path, shared / "rt", "once") == [str(L.ERROR_ACCESS_DENIED)]
    cli = _cli(tmp_path, shared / "rt")
    lines = cli.stderr.strip().splitlines()
    assert cli.returncode == 1 and len(lines) == 1
    assert f"the runtime directory {shared / 'rt'} is not usable" in lines[0]
    assert "writable by others and not sticky" in lines[0]
    os.chmod(shared, 0o1777)                # as /tmp is
    assert _run(tmp_path, shared / "rt2", "once") == ["0"]


def test_the_command_says_what_is_wrong_with_the_directory(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    os.chmod(runtime, 0o750)
    cli = _cli(tmp_path, runtime)
    assert cli.returncode == 1 and "its mode is 0750; it must be private to this user (0700)" in cli.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user needs root to make")
def test_a_directory_another_user_made_first_is_named_with_its_owner(tmp_path):
    runtime = tmp_path / "wpptrace-0"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, NOBODY, NOBODY)
    cli = _cli(tmp_path, runtime)
    lines = cli.stderr.strip().splitlines()
    assert cli.returncode == 1 and len(lines) == 1
    assert f"{runtime} is not usable: it belongs to user {NOBODY}, not to this user (0)" in lines[0]


@pytest.fixture(scope="module")
def runtime_dir_races(build_c_program_with_test_points):
    here = os.path.dirname(__file__)
    with open(os.path.join(here, "runtime_dir_races.c")) as f:
        program = build_c_program_with_test_points("runtime_dir_races", f.read(), "-I", here)

    def run(mode: str, runtime) -> dict[str, int]:
        out = subprocess.run([str(program), mode, str(runtime)], capture_output=True, text=True, timeout=60,
                             check=True).stdout.split()
        return {out[i]: int(out[i + 1]) for i in range(0, len(out), 2)}
    return run


@pytest.mark.parametrize("mode", ["listen", "registry"])
def test_what_is_made_after_the_check_is_in_the_directory_checked(runtime_dir_races, tmp_path, mode):
    """The directory's name given to one anyone may write to right after the check: the socket
    bound, or the registry made, goes into the directory that was checked (held open), never into
    the one that has its name now."""
    assert runtime_dir_races(mode, tmp_path / "rt") == {"made": 1, "in_checked": 1, "in_other": 0}


def test_without_proc_the_runtime_directory_is_not_supported_rather_than_refused(runtime_dir_races, tmp_path):
    """The directory is used through /proc/self/fd: without /proc (a chroot, a sandbox) every
    bind and connect failed, reported as ERROR_ACCESS_DENIED, as if the directory were someone
    else's. It is ERROR_NOT_SUPPORTED, said where the directory is checked."""
    assert runtime_dir_races("no-proc", tmp_path / "rt") == {"dir": 50}


def test_a_runtime_directory_with_a_long_name_is_used(tmp_path):
    """Sockets are bound through /proc/self/fd/<n>, never through the directory's name: a name
    longer than a socket address holds (108 bytes) was refused all the same."""
    runtime = tmp_path / ("r" * 60) / ("t" * 60)
    runtime.parent.mkdir(mode=0o700)
    done = _script("""
        from wpptrace.provider.sessions import TraceSession, runtime_directory
        with TraceSession("long-name", sys.argv[2]) as s:
            s.flush()
        print(runtime_directory())
    """, runtime, tmp_path / "a.etl")
    assert done.stdout.strip() == str(runtime) and len(str(runtime)) > 108


_KEEPS = """
    import shutil
    from wpptrace.provider.sessions import list_sessions, session_info
    runtime, out = sys.argv[1:3]
    mode = P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC

    def start(name):
        props = P.EVENT_TRACE_PROPERTIES(LogFileName=os.path.join(out, uuid.uuid4().hex + ".etl"),
                                         LogFileMode=mode)
        try:
            return P.StartTrace(name, props), props
        except P.Win32Error as exc:
            return exc.winerror, None

    a, props_a = start("kept-a")
    shutil.rmtree(runtime)             # a clean-up of /tmp took it, with the registry
    b, props_b = start("kept-b")       # made again
    again, _ = start("kept-a")
    print(session_info("kept-a").logger_id == session_info(handle=a).logger_id,
          session_info("kept-a").logger_id != session_info("kept-b").logger_id,
          sorted(p.LoggerName for p, _ in list_sessions()), again == P._lib.ERROR_ALREADY_EXISTS)
    P.ControlTrace(a, None, props_a, P.EVENT_TRACE_CONTROL_STOP)
    P.ControlTrace(b, None, props_b, P.EVENT_TRACE_CONTROL_STOP)
"""


def test_a_registry_made_again_after_a_clean_up_keeps_this_processs_sessions(tmp_path):
    """The runtime directory removed with the registry while a private session runs: the
    registry made again holds it, so it is found by name and listed, its name is not given
    twice and its LoggerId is not given to another session."""
    done = _script(_KEEPS, tmp_path / "rt", tmp_path)
    assert done.stdout.split() == ["True", "True", "['kept-a',", "'kept-b']", "True"]


_CLOSED = """
    runtime, out = sys.argv[1:3]

    print(start_and_stop())
    held = held_at(runtime)
    mine = os.open(os.path.join(out, "mine.txt"), os.O_RDWR | os.O_CREAT, 0o600)
    os.dup2(mine, held[0])             # the application's own file at the directory's number now
    print(len(held), start_and_stop(), os.path.realpath("/proc/self/fd/%d" % held[0]) == os.path.join(out, "mine.txt"))
"""


def test_a_closed_directory_descriptor_is_opened_again_and_its_number_left_alone(tmp_path):
    """The application closed the held descriptor and put a file of its own at its number: the
    directory is opened again under another number, and the application's file is not written
    over."""
    done = _script(_CLOSED, tmp_path / "rt", tmp_path)
    assert done.stdout.split() == ["0", "1", "0", "True"]


_DISPLACED = """
    import shutil, subprocess
    from wpptrace.provider.sessions import list_sessions
    runtime, out = sys.argv[1:3]

    a = P.StartTrace("displaced-a", props("a"))
    shutil.rmtree(runtime)                           # a clean-up of /tmp took it, with the registry
    print(cli("start", "other-b", "-f", os.path.join(out, "b.etl")))   # another process, LoggerId 1 first
    print(sorted(p.LoggerName for p, _ in list_sessions()), query(a),
          getattr(P._lib, "wpptrace_sessions_displaced", lambda: -1)())
    c = P.StartTrace("displaced-c", props("c"))
    P.ControlTrace(a, None, props("a"), P.EVENT_TRACE_CONTROL_STOP)
    print(cli("query", "other-b"), query(a), enable(a))   # its session untouched; our handle not its
    P.ControlTrace(c, None, props("c"), P.EVENT_TRACE_CONTROL_STOP)
    print(query(a), sorted(p.LoggerName for p, _ in list_sessions()))   # ours gone: its session listed
    print(cli("stop", "other-b"))
"""


def test_a_session_whose_logger_id_another_process_took_in_the_registry_made_again(tmp_path):
    """The runtime directory removed with the registry while a private session runs (LoggerId
    1), and another process makes it again and starts a session there first (LoggerId 1, the
    same generation): this process's session cannot be put back under its LoggerId. It runs on
    (found by its handle), is said once at exit, stopping it leaves the other session's entry and
    socket alone, and its handle is never taken for the other session; once it stopped, the other
    session is listed again."""
    done = _script(_DISPLACED, tmp_path / "rt", tmp_path, timeout=120)
    assert done.stdout.split("\n") == ["0", "[] displaced-a 1", "0 ERROR_WMI_INSTANCE_NOT_FOUND ERROR_INVALID_HANDLE",
                                       "ERROR_WMI_INSTANCE_NOT_FOUND ['other-b']", "0", ""], done.stdout
    assert done.stderr.splitlines() == [
        "wpptrace: 1 session of this process was left out of the registry made again after a clean-up of "
        "the runtime directory (another session took its LoggerId there first): it ran on, but other "
        "processes could not find or list it"]


_MOVED = """
    runtime, mine = sys.argv[1:3]
    P.RegisterTraceGuids(lambda code, context, buffer: 0, None, uuid.uuid4())   # its socket bound
    socket = "p-%d.sock" % os.getpid()
    held = held_at(runtime)
    os.mkdir(mine, 0o700)
    open(os.path.join(mine, socket), "w").close()
    os.dup2(os.open(mine, os.O_RDONLY | os.O_DIRECTORY), held[0])   # the application's directory there now
    print(len(held), os.path.exists(os.path.join(runtime, socket)), socket)
"""


def test_the_endpoint_socket_is_removed_from_the_runtime_directory_not_the_number_it_was_bound_at(tmp_path):
    """A provider process's socket was bound when the runtime directory was held at a number;
    the application then put a directory of its own at that number. At exit the socket was
    removed through the old number: the application's file of the same name went, and the
    socket stayed behind. It is removed from the runtime directory, by its name there."""
    runtime, mine = tmp_path / "rt", tmp_path / "mine"
    done = _script(_MOVED, runtime, mine)
    held, bound, socket = done.stdout.split()
    assert (held, bound) == ("1", "True")
    assert [p.name for p in mine.iterdir()] == [socket]
    assert not any(p.name.startswith("p-") for p in runtime.iterdir())


def test_a_runtime_directory_that_is_a_file_is_said_alike_by_every_command(tmp_path):
    """WPPTRACE_RUNTIME_DIR naming a regular file: session start said "it is not a
    directory", while query, list, fmt --rt and relay said "access denied (is the runtime
    directory ... private to this user?)" or only the call that failed. Every one now says
    what session start says, with the Win32 name."""
    runtime = tmp_path / "afile"
    runtime.write_text("")
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    refused = f"the runtime directory {runtime} is not usable: it is not a directory"
    for args, said in [
            (["session", "start", "X", "--realtime"], f"wpptrace session start: error: {refused}"),
            (["session", "query", "X"], f"wpptrace session query: error: {refused} (ERROR_ACCESS_DENIED)"),
            (["session", "list"],
             f"wpptrace session list: error: cannot list providers: {refused} (ERROR_ACCESS_DENIED)"),
            (["fmt", "--rt", "X", "-p", str(tmp_path)],
             f"wpptrace fmt: error: real-time session 'X': {refused} (ERROR_ACCESS_DENIED)"),
            (["relay", "X", "--to", "127.0.0.1:9", "-q"],
             f"wpptrace relay: real-time session 'X': {refused} (ERROR_ACCESS_DENIED)")]:
        res = subprocess.run([sys.executable, "-m", "wpptrace", *args], env=env, capture_output=True,
                             text=True, timeout=60)
        assert (res.returncode, res.stderr.splitlines()[-1:]) == (1, [said]), args
