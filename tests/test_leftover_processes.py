"""A test run fails, naming them, when processes it started still run at its end: a child left
running, or an orphan of it (given to the run's process, a subreaper); a child that ends within
the grace, an ended one not waited for yet, or multiprocessing's resource tracker, which ends with
the process, is no leftover."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

import leftover_processes

TESTS = os.path.dirname(os.path.abspath(__file__))


def _sleeper(seconds: float, *more: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))",
                             str(seconds), *more])


def test_a_child_left_running_is_named_by_pid_and_command_line():
    child = _sleeper(60, "left-by-a-test")
    try:
        left = leftover_processes.left_running(os.getpid(), grace=0.3)
        assert left.get(child.pid, "").endswith("60 left-by-a-test"), left
        said = leftover_processes.report(left)
        assert f"pid {child.pid}: " in said and "left-by-a-test" in said
        leftover_processes.kill({child.pid: left[child.pid]})
        assert child.wait(10) == -9
    finally:
        child.kill()
        child.wait()


def test_an_orphan_of_a_child_is_named():
    # the child starts a grandchild and exits: the orphan is given to this process (a subreaper)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import subprocess, sys
        print(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "orphan-of-a-test"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)
    """)], capture_output=True, text=True, timeout=60, check=True)
    orphan = int(done.stdout)
    try:
        left = leftover_processes.left_running(os.getpid(), grace=0.3)
        assert "orphan-of-a-test" in left.get(orphan, ""), left
    finally:
        leftover_processes.kill({orphan: leftover_processes.command_line(orphan)})


def test_a_child_ending_within_the_grace_or_ended_is_no_leftover():
    ending, ended = _sleeper(0.5), _sleeper(0)
    try:
        os.waitid(os.P_PID, ended.pid, os.WEXITED | os.WNOWAIT)   # ended, not waited for: a zombie
        left = leftover_processes.left_running(os.getpid(), grace=10, among={ending.pid, ended.pid})
        assert left == {}, left
    finally:
        for child in (ending, ended):
            child.kill()
            child.wait()


def test_waiting_for_some_children_ends_as_they_end_whatever_else_runs():
    # another test's process (a worker's session host) runs on: waited for, it would hold the
    # wait for the whole grace
    bystander, ending, staying = _sleeper(60, "kept-by-another-test"), _sleeper(0.5), _sleeper(60)
    try:
        started = time.monotonic()
        assert leftover_processes.left_running(os.getpid(), grace=60, among={ending.pid}) == {}
        assert time.monotonic() - started < 30
        assert ending.poll() is not None
        left = leftover_processes.left_running(os.getpid(), grace=0.3, among={ending.pid, staying.pid})
        assert list(left) == [staying.pid] and bystander.poll() is None
    finally:
        for child in (bystander, ending, staying):
            child.kill()
            child.wait()


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["one-process", "xdist-worker"])
def test_a_run_that_leaves_a_child_running_fails_naming_it(tmp_path, workers):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import os, sys
        import pytest
        sys.path.insert(0, {TESTS!r})
        import leftover_processes

        @pytest.fixture(scope="session", autouse=True)
        def nothing_left_running():
            yield
            left = leftover_processes.left_running(os.getpid())
            leftover_processes.kill(left)
            if left:
                pytest.fail(leftover_processes.report(left), pytrace=False)
    """))
    (tmp_path / "test_leaves.py").write_text(textwrap.dedent("""
        import subprocess, sys

        def test_leaves_a_child():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "left-by-the-inner-run"])

        def test_waits_for_its_child():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 passed, 1 error" in out, out
    assert "1 process(es) started by the tests still running" in out, out
    assert "import time; time.sleep(60) left-by-the-inner-run" in out, out


def test_the_resource_tracker_of_multiprocessing_is_no_leftover():
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    tracker = resource_tracker._resource_tracker._pid
    assert tracker in {pid for pid, _ in _children_of_mine()}
    assert tracker not in leftover_processes.descendants(os.getpid())


def _children_of_mine() -> list[tuple[int, int]]:
    """(pid, ppid) of this process's children, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid():
            out.append((int(name), ppid))
    return out
