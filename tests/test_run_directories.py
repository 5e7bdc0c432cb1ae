"""A test run fails, naming them, when directories of its own (runtime directories
``wpprt-<run's tag>-*`` and fmt's program caches ``wppcache-<run's tag>-*``) are still there at
its end: a process of the run (a worker killed, a process ended by os._exit) that did not
remove its own. They are removed then. A directory its process removes as it exits (after the
run's last hook began) is no leftover, nor is another run's."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

import run_directories

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("kind", [run_directories.RUNTIME, run_directories.CACHE])
def test_a_directory_made_is_of_this_run_and_removed(kind):
    """Either kind is of this run."""
    made = run_directories.make(kind)
    try:
        assert os.path.basename(made).startswith(f"{kind}{run_directories.TAG}-")
        assert made in run_directories._of_run() and made in run_directories.left(grace=0)
        assert os.stat(made).st_mode & 0o777 == 0o700
    finally:
        run_directories.remove(made)
    assert not os.path.exists(made) and made not in run_directories.left(grace=0)


@pytest.mark.parametrize("workers, leave", [([], run_directories.RUNTIME), (["-n", "1"], run_directories.RUNTIME),
                                             ([], run_directories.CACHE), ([], None), (["-n", "1"], None)],
                         ids=["one-process-one-left", "xdist-worker-one-left", "one-process-cache-left",
                              "one-process-none-left", "xdist-worker-none-left"])
def test_a_run_that_leaves_a_directory_fails_naming_it(tmp_path, workers, leave):
    """``leave``: the kind of directory a process of the nested run leaves (None: none)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    other_run = [tempfile.mkdtemp(prefix=f"{mine}anotherrun-", dir=temp) for mine in ("wpprt-", "wppcache-")]
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import atexit, sys
        sys.path.insert(0, {TESTS!r})
        import pytest
        import run_directories

        atexit.register(run_directories.remove, run_directories.make())   # only as it exits

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session):
            run_directories.at_run_end(session)
    """))
    (tmp_path / "test_leaves.py").write_text(textwrap.dedent(f"""
        import os, subprocess, sys

        def test_maybe_leaves_one():
            if os.environ.get("LEAVE"):     # a process of the run ending without removing its own
                subprocess.run([sys.executable, "-c", "import os, sys; sys.path.insert(0, {TESTS!r}); "
                                "import run_directories; print(run_directories.make({leave!r})); "
                                "os._exit(0)"],
                               stdout=open(os.environ["LEAVE"], "w"), check=True)
    """))
    said = tmp_path / "left.txt"
    env = {k: v for k, v in os.environ.items() if k != run_directories.VARIABLE}
    env.update(TMPDIR=str(temp), **({"LEAVE": str(said)} if leave else {}))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers,
                          str(tmp_path / "test_leaves.py")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    out = run.stdout + run.stderr
    assert sorted(name for name in os.listdir(temp) if name.startswith(("wpprt-", "wppcache-"))) == sorted(
        map(os.path.basename, other_run)), out
    if not leave:
        assert run.returncode == 0 and "of this run still there" not in out, out
        return
    left = said.read_text().strip()
    assert os.path.basename(left).startswith(leave) and not os.path.exists(left)
    assert run.returncode == 1, out
    assert "1 directory of this run still there at its end" in out and left in out, out
    assert "1 passed in " in run.stdout.rstrip().splitlines()[-1], out    # (the test itself passed)
