"""Handles and registry entries across a clean-up of the runtime directory: the registry made
again counts claims from the start, so its sessions get the LoggerIds and generations of the old
one's; a handle handed out before names no session of another process by that value. A process
that cannot read /proc (no descriptor left) takes no live session for gone."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import wpptrace.provider as P
from provider_scripts import run_script

# With SESSION_CALLS (run_script): what these scripts share besides.
_COMMON = textwrap.dedent("""
    import shutil, threading
    from wpptrace.provider.sessions import list_sessions, providers, session_info
    runtime, out = sys.argv[1:3]

    def enabled_on():
        return [p.logger_id for p in providers() if p.guid == GUID and p.enabled]

    def names():
        return sorted(p.LoggerName for p, _ in list_sessions())

    # a clean-up of /tmp (the session's host ends), whatever the ending host made again
    # removed, then another process's session: (host gone, the CLI's start of it)
    def clean_up_then_start(host, other, file):
        shutil.rmtree(runtime)
        ended = wait_gone(host)
        shutil.rmtree(runtime, ignore_errors=True)
        return ended, cli("start", other, "-f", os.path.join(out, file))
""")

_HOSTED = _COMMON + textwrap.dedent("""
    old = P.StartTrace("hosted-s", props("s", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))
    print(*clean_up_then_start(session_info(handle=old).host_pid, "other-r", "r.etl"))
    # another process's session, in the same slot with the same generation as ours had
    print(session_info("other-r").logger_id == old & 0xFFFF)
    print(query(old), enable(old), enabled_on(), stop(old))
""")


def _printed(script: str, tmp_path) -> list[str]:
    """The lines ``script`` printed (it succeeded), with the runtime directory tmp_path/rt."""
    done = run_script(script, tmp_path / "rt", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


def _cli(tmp_path, *args: str) -> int:
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(tmp_path / "rt"))
    return subprocess.run([sys.executable, "-m", "wpptrace", "session", *args], env=env,
                          capture_output=True, timeout=60).returncode


@pytest.fixture
def others(tmp_path) -> list[str]:
    """The names of the sessions another process started in the test (the test names them
    here), stopped after it whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        _cli(tmp_path, "stop", name)


def _pairs(program, tmp_path, *args: str, timeout: float = 180) -> dict[str, int]:
    """The "name value" pairs a test program printed (it succeeded), run with DIR OUT PYTHON."""
    done = subprocess.run([str(program), str(tmp_path / "rt"), str(tmp_path), sys.executable, *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.returncode, done.stderr)
    out = done.stdout.split()
    return dict(zip(out[::2], map(int, out[1::2])))


def test_a_handle_from_before_a_clean_up_does_not_reach_a_new_session_of_its_value(tmp_path, others):
    """A hosted session's handle, its host ended by a clean-up of the runtime directory; another
    process starts a session in the registry made again, which gets the same LoggerId and
    generation. The old handle is not that session's: QUERY finds no session, EnableTrace
    refuses it (no enable lands on the other session), STOP leaves the other session running."""
    others.append("other-r")
    assert _printed(_HOSTED, tmp_path) == [
        "True 0", "True",
        "ERROR_WMI_INSTANCE_NOT_FOUND ERROR_INVALID_HANDLE [] ERROR_WMI_INSTANCE_NOT_FOUND", ""]
    assert _cli(tmp_path, "query", "other-r") == 0           # still runs after that process ended


_FORKED_AFTER_CLEAN_UP = _COMMON + textwrap.dedent("""
    a = P.StartTrace("parent-a", props("a"))
    shutil.rmtree(runtime)                   # a clean-up of /tmp; this process does not look yet
    print(cli("start", "other-b", "-f", os.path.join(out, "b.etl")), flush=True)
""")

_CHILD_ENDS = _FORKED_AFTER_CLEAN_UP + textwrap.dedent("""
    pid = os.fork()
    if pid == 0:
        import wpptrace.provider.api as api
        stop_call = api.ControlTrace
        def said(handle, *rest):             # what the child's exit asks for
            print("stop at exit", handle == a, flush=True)
            return stop_call(handle, *rest)
        api.ControlTrace = said
        sys.exit(0)                          # a child that simply ends: atexit runs
    os.waitpid(pid, 0)
    # another process's session, in the same slot with the same generation as ours
    print(cli("query", "other-b"), session_info("other-b").logger_id == a & 0xFFFF)
    print(stop(a), cli("stop", "other-b"))
""")


def test_a_forked_childs_exit_stops_no_session_of_another_process(tmp_path, others):
    """A private session's process, after a clean-up of the runtime directory it has not found
    yet (another process's session then took the same LoggerId and generation), forks a child
    that simply ends. The child's exit stopped its parent's private sessions by their handles:
    the other process's session stopped. The child stops none; its parent's session runs on."""
    others.append("other-b")
    assert _printed(_CHILD_ENDS, tmp_path) == ["0", "0 True", "parent-a 0", ""]


_CHILD_USES_PRIVATE = _FORKED_AFTER_CLEAN_UP + textwrap.dedent("""
    pid = os.fork()
    if pid == 0:
        print(query(a), enable(a), stop(a), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print(cli("query", "other-b"), enabled_on(), query(a))
    print(stop(a), cli("stop", "other-b"))
""")


def test_a_forked_child_does_not_reach_another_session_by_its_parents_private_handle(tmp_path, others):
    """The same, the child using the handle of its parent's private session: it named the other
    process's session (QUERY answered, EnableTrace enabled it, STOP stopped it), since the child
    never found the registry it came from removed. In the child it names no session."""
    others.append("other-b")
    assert _printed(_CHILD_USES_PRIVATE, tmp_path) == [
        "0", "ERROR_WMI_INSTANCE_NOT_FOUND ERROR_INVALID_HANDLE ERROR_WMI_INSTANCE_NOT_FOUND",
        "0 [] parent-a", "parent-a 0", ""]


_CHILD_USES_HOSTED = _COMMON + textwrap.dedent("""
    print(cli("start", "hosted-s", "-f", os.path.join(out, "s.etl")))
    old = P.ControlTrace(0, "hosted-s", props("q"), P.EVENT_TRACE_CONTROL_QUERY).HistoricalContext
    print(*clean_up_then_start(session_info(handle=old).host_pid, "other-b", "b.etl"), flush=True)
    pid = os.fork()
    if pid == 0:
        print(enable(old), query(old), stop(old), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print(cli("query", "other-b"), enabled_on(), session_info("other-b").logger_id == old & 0xFFFF)
""")


def test_a_forked_child_does_not_reach_another_session_by_a_hosted_handle_from_before(tmp_path, others):
    """A handle of another process's session, whose host a clean-up ended; another process's
    session took its LoggerId and generation in the registry made again. A child forked before
    this process used the registry again enabled its provider on that session by the old
    handle (and could stop it): it never found the registry removed. There the handle names no
    session."""
    others.append("other-b")
    assert _printed(_CHILD_USES_HOSTED, tmp_path) == [
        "0", "True 0",
        "ERROR_INVALID_HANDLE ERROR_WMI_INSTANCE_NOT_FOUND ERROR_WMI_INSTANCE_NOT_FOUND",
        "0 [] True", ""]


_DISPLACED = _COMMON + textwrap.dedent("""
    a = P.StartTrace("displaced-a", props("a"))
    shutil.rmtree(runtime)                   # a clean-up of /tmp took it, with the registry
    print(cli("start", "other-b", "-f", os.path.join(out, "b.etl")), names())   # LoggerId 1 taken first
""")

_NO_PROC_FOR_OURS = _DISPLACED + textwrap.dedent("""
    # any exclusive use of the registry looks again at the session left out
    print(without_descriptors(lambda: enable((1 << 24) | 2)))
    print(names(), query(a))                 # ours still runs: the other session stays unlisted here
    print(stop(a), names(), cli("stop", "other-b"))
""")


def test_a_session_left_out_is_not_forgotten_when_proc_cannot_be_read(tmp_path, others):
    """A session of this process left out of the registry made again runs on; the registry is
    used while the process has no descriptor left to read /proc. It was taken for stopped and
    forgotten: the other session of its LoggerId was listed, with this session's properties
    (its handle named this session). Whether it runs is told from this process's own state."""
    others.append("other-b")
    assert _printed(_NO_PROC_FOR_OURS, tmp_path) == ["0 []", "ERROR_INVALID_HANDLE", "[] displaced-a",
                                       "displaced-a ['other-b'] 0", ""]


_NO_PROC_FOR_OTHERS = _COMMON + textwrap.dedent("""
    print(cli("start", "other-c", "-f", os.path.join(out, "c.etl")), names())
    def start():
        try:
            P.StartTrace("mine", props("mine"))
            return "started"
        except P.Win32Error as exc:
            return "refused"
    without_descriptors(start)               # its claim of a slot looks at every entry
    print(names(), cli("query", "other-c"))
""")


def test_a_claim_without_descriptors_frees_no_live_session(tmp_path, others):
    """StartTrace while the process has no descriptor left to read /proc: every other process's
    session looked gone, and the claim freed their entries and removed their sockets (the
    sessions could no longer be found, and their hosts stopped). An entry whose process cannot be
    looked up is alive."""
    others.append("other-c")
    assert _printed(_NO_PROC_FOR_OTHERS, tmp_path) == ["0 ['other-c']", "['other-c'] 0", ""]


_LATE_CALLBACK = _DISPLACED + textwrap.dedent("""
    called = threading.Event()
    P.RegisterTraceGuids(lambda code, context, buffer: called.set() or 0, None, GUID)
    print(stop(a))                           # (no listing here: it hands the value out for the other)
    # the other session (LoggerId and generation as ours had) enables this process's provider:
    # its ControlCallback gets the very value of our stopped session's handle
    print(cli("enable", "other-b", "--guid", str(GUID)), called.wait(60), query(a), enable(a))
    print(cli("stop", "other-b"))
""")


def test_a_controlcallback_does_not_make_a_stopped_sessions_handle_name_another(tmp_path, others):
    """A session left out of the registry made again stopped: its handle is stale, though the
    other session of its LoggerId has the same value. A ControlCallback for the other session
    (or one queued for ours and run after it stopped) made the value this process's handle of
    the other session again: the stopped session's handle then queried and enabled it."""
    others.append("other-b")
    assert _printed(_LATE_CALLBACK, tmp_path) == [
        "0 []", "displaced-a",
        "0 True ERROR_WMI_INSTANCE_NOT_FOUND ERROR_INVALID_HANDLE", "0", ""]


def _test_point_program(build, name: str):
    """tests/provider/<name>.c built with the core's test points (clean_up_calls.h beside it)."""
    here = os.path.dirname(__file__)
    with open(os.path.join(here, name + ".c")) as f:
        return build(name, f.read(), "-I", here)


@pytest.fixture(scope="module")
def displaced_stopping(build_c_program_with_test_points):
    return _test_point_program(build_c_program_with_test_points, "displaced_stopping")


def test_enabletrace_refuses_a_left_out_sessions_handle_while_it_stops(displaced_stopping, tmp_path, others):
    """A private session left out of the registry made again after a clean-up (another
    process's session took its LoggerId there first, with the same generation) is STOPPING:
    it is not found as running here, and its handle is not stale yet. EnableTrace on its handle
    then (from the thread stopping it, which holds the control lock) enabled the provider on the
    other process's session; it is refused, and the other session runs on."""
    others.append("other-b")
    assert _pairs(displaced_stopping, tmp_path, timeout=120) == {
        "displaced": 1, "other_id": 1, "enable": P._lib.ERROR_INVALID_HANDLE, "stopping": 1, "held_by": 0,
        "other": 0}


@pytest.fixture(scope="module")
def clean_up_handout(build_c_program_with_test_points):
    return _test_point_program(build_c_program_with_test_points, "clean_up_handout")


@pytest.mark.parametrize("held", ["query", "info"])
def test_a_handle_found_before_a_clean_up_is_not_handed_out_after_it(clean_up_handout, held, tmp_path,
                                                                     others):
    """ControlTrace by the handle of another process's session found the session in the
    registry, let go of its lock, and only then handed the handle out and asked the host. A
    clean-up in between (found by this process, which made its handles stale; the session's
    host ended; another process's session took its LoggerId and generation in the registry made
    again) was undone: the handout made the handle name the other session again, and the
    request reached that session's host at the same socket path (so did a session info: it
    described the other session). The request finds no session, the handle stays stale, and the
    other session runs on."""
    others.extend(["other-b", "hosted-s"])
    not_found = P._lib.ERROR_WMI_INSTANCE_NOT_FOUND
    assert _pairs(clean_up_handout, tmp_path, held) == {
        "started": 0, "ended": 1, "other": 0, "same_id": 1,
        "held": not_found, "query": not_found, "stop": not_found, "running": 0}


@pytest.fixture(scope="module")
def callback_after_clean_up(build_c_program_with_test_points):
    return _test_point_program(build_c_program_with_test_points, "callback_after_clean_up")


def test_a_callback_queued_before_a_clean_up_does_not_hand_its_handle_out_after_it(
        callback_after_clean_up, tmp_path, others):
    """Another process enabled this process's provider on its session; the ControlCallback was
    queued, then a clean-up came (found by this process, which made its handles stale; the
    session's host ended; another process's session took its LoggerId and generation in the
    registry made again), then the callback ran. Its handle, never handed out here before, was
    handed out by the callback: it named the other session (QUERY answered, EnableTrace enabled
    it). It names no session."""
    others.extend(["other-b", "hosted-s"])
    assert _pairs(callback_after_clean_up, tmp_path) == {
        "started": 0, "enabled": 0, "ended": 1, "other": 0, "same_id": 1, "called": 1,
        "query": P._lib.ERROR_WMI_INSTANCE_NOT_FOUND, "enable": P._lib.ERROR_INVALID_HANDLE, "running": 0}


@pytest.fixture(scope="module")
def start_after_clean_up(build_c_program_with_test_points):
    return _test_point_program(build_c_program_with_test_points, "start_after_clean_up")


def test_starttrace_across_a_clean_up_hands_out_no_handle_of_another_session(start_after_clean_up, tmp_path,
                                                                           others):
    """StartTrace of a hosted session: its host answered, the registry's lock was let go, and
    only then was the handle handed out. A clean-up in between (found by this process, which
    made its handles stale; the session's host ended; another process's session took its
    LoggerId and generation in the registry made again) was undone: StartTrace succeeded with a
    handle that named the other session. It fails with ERROR_WMI_INSTANCE_NOT_FOUND (its
    session ended with the directory), hands out no handle, and the other session runs on."""
    others.extend(["other-b", "hosted-s"])
    assert _pairs(start_after_clean_up, tmp_path) == {
        "ended": 1, "other": 0, "same_id": 1, "start": P._lib.ERROR_WMI_INSTANCE_NOT_FOUND,
        "handle": 0, "names": 0, "running": 0}
