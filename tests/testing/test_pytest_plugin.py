"""The pytest plugin, as a user meets it: test files in a fresh directory outside the
repository, run by pytest (and pytest-xdist) in a subprocess, using only ``wpp_capture`` and a
``Provider``."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

from wpptrace.cli import main

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "ci_roundtrip"

APP = '''
from wpptrace.provider.tracing import Provider

trace = Provider("FreshApp", flags=("IO", "NET"))


def read(n, name):
    trace.info(trace.flags.IO, "read %d bytes from %s", n, name)
'''

TESTS = '''
import app


def test_read(wpp_capture):
    with wpp_capture(app.trace) as cap:
        app.read(42, "a.txt")
    cap.assert_logged("read %d bytes from %s", 42, "a.txt")


def test_second_capture_in_one_test(wpp_capture):
    with wpp_capture(app.trace, flags="NET") as cap:
        app.read(1, "not enabled")
    with wpp_capture(app.trace) as again:
        app.read(2, "b")
    assert cap.messages == [] and again.texts == ["read 2 bytes from b"]
'''


# a Provider declared and called in the test file itself (pytest rewrites its asserts)
INLINE = '''
from wpptrace.provider.tracing import Provider

trace = Provider("InlineTests", flags=("IO",))


def test_inline(wpp_capture):
    with wpp_capture(trace) as cap:
        trace.info(trace.flags.IO, "opened %s in %d ms", "db", 12)
    cap.assert_logged("opened %s in %d ms", "db", 12)
    assert cap.messages[0].function == "test_inline"
'''


def pytest_run(where: pathlib.Path, *args: str, **more_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "WPPTRACE_STRICT"))}
    env.update(more_env)
    # a base temporary folder of its own: the numbered ones under /tmp/pytest-of-USER are
    # shared by every pytest run of the user, and each new run deletes all but the newest
    # three, so what this run kept there could vanish before the test looks at it
    basetemp = where.with_name(f"{where.name}-basetemp")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "--basetemp", str(basetemp), *args],
                          cwd=where, capture_output=True, text=True, env=env, timeout=300)


def fresh(tmp_path_factory, **files: str) -> pathlib.Path:
    where = tmp_path_factory.mktemp("fresh")
    assert REPO not in where.parents
    for name, text in files.items():
        (where / f"{name}.py").write_text(textwrap.dedent(text))
    return where


def test_a_fresh_directory_passes_under_pytest_and_xdist(tmp_path_factory, tmp_path, capsys) -> None:
    # these tests and the CI sample's, copied outside the repository
    where = fresh(tmp_path_factory, app=APP, test_app=TESTS, test_inline=INLINE)
    for name in ("copier.py", "test_copier.py"):
        shutil.copy(SAMPLE / name, where / name)
    plain = pytest_run(where)
    assert plain.returncode == 0 and "6 passed" in plain.stdout, plain.stdout + plain.stderr
    keep = tmp_path / "captures"
    parallel = pytest_run(where, "-n", "2", "--wpp-keep", str(keep))
    assert parallel.returncode == 0 and "6 passed" in parallel.stdout, parallel.stdout + parallel.stderr
    assert not list(where.rglob("*.etl"))
    # --wpp-keep: every capture, one folder each, that wpptrace fmt decodes
    assert sorted(p.name for p in keep.iterdir()) == [
        "test_app.test_read", "test_app.test_second_capture_in_one_test",
        "test_app.test_second_capture_in_one_test~2", "test_copier.test_empty_file_warns",
        "test_copier.test_logging_records_are_captured_too", "test_copier.test_read_is_traced",
        "test_inline.test_inline"]
    folder = keep / "test_app.test_read"
    capsys.readouterr()
    assert main(["fmt", str(folder / "trace.etl"), "-p", str(folder / "tmf"), "--no-prefix"]) == 0
    assert capsys.readouterr().out == "EventTrace\nread 42 bytes from a.txt\n"
    text = (folder / "trace.txt").read_text()
    assert text.splitlines()[1].endswith("[FreshApp]read 42 bytes from a.txt")


def test_a_failing_assertion_shows_the_decoded_messages(tmp_path_factory) -> None:
    where = fresh(tmp_path_factory, app=APP, test_fail='''
        import app


        def test_wrong_count(wpp_capture):
            with wpp_capture(app.trace) as cap:
                app.read(41, "a.txt")
                app.read(7, "b.txt")
            cap.assert_logged("read %d bytes from %s", 42, "a.txt")


        def test_plain_assert(wpp_capture):
            with wpp_capture(app.trace) as cap:
                app.read(3, "c.txt")
            assert cap.texts == ["something else"]
        ''')
    run = pytest_run(where)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert ("CaptureAssertionError: expected a message matching 'read %d bytes from %s' with "
            "arguments (42, 'a.txt'), found 0") in out
    assert "INFORMATION read: read 41 bytes from a.txt  args=(41, 'a.txt')" in out
    assert "INFORMATION read: read 7 bytes from b.txt  args=(7, 'b.txt')" in out
    # a plain assert: the plugin adds the captured messages to the report
    assert "wpptrace captures" in out and "read 3 bytes from c.txt" in out
    # each failed test's capture is kept (pytest's summary may repeat a path: CI=true makes it
    # print whole messages)
    kept = {pathlib.Path(part.split(" ")[0]) for part in out.split("capture kept in ")[1:]}
    assert {k.name for k in kept} == {"test_fail.test_wrong_count", "test_fail.test_plain_assert"}
    for folder in kept:
        assert folder.parent.name == "wpp-captures"
        assert (folder / "trace.etl").is_file() and (folder / "tmf").is_dir()
    assert "testing.py" not in out                  # the helper's frames are hidden


ISOLATION = '''
import os
import pathlib
import time

import app

RENDEZVOUS = pathlib.Path(os.environ["RENDEZVOUS"])


def log_while_the_other_does(wpp_capture, token):
    with wpp_capture(app.trace) as cap:
        (RENDEZVOUS / str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(RENDEZVOUS.iterdir())) < 2:      # both workers are capturing now
            assert time.monotonic() < deadline, "the other worker never started"
            time.sleep(0.01)
        for i in range(2000):
            app.read(i, token)
        while len(list(RENDEZVOUS.iterdir())) < 4:      # and the other one logged as well
            assert time.monotonic() < deadline, "the other worker never finished"
            (RENDEZVOUS / f"done-{os.getpid()}").touch()
            time.sleep(0.01)
    assert cap.lost == 0 and len(cap.messages) == 2000
    assert {m.pid for m in cap.messages} == {os.getpid()}
    assert {m.args["name"] for m in cap.messages} == {token}


def test_one(wpp_capture):
    log_while_the_other_does(wpp_capture, "one")


def test_two(wpp_capture):
    log_while_the_other_does(wpp_capture, "two")
'''


def test_parallel_workers_never_see_each_others_events(tmp_path_factory, tmp_path, monkeypatch) -> None:
    where = fresh(tmp_path_factory, app=APP, test_iso=ISOLATION)
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    monkeypatch.setenv("RENDEZVOUS", str(rendezvous))
    run = pytest_run(where, "-n", "2")
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr
    assert len(list(rendezvous.iterdir())) == 4


CHDIR = '''
import os

import app


def test_moves_elsewhere(wpp_capture, tmp_path):
    os.chdir(tmp_path)
    with wpp_capture(app.trace) as cap:
        app.read(1, "elsewhere")
    assert cap.texts == ["read 1 bytes from elsewhere"]


def test_moves_and_fails(wpp_capture, tmp_path):
    os.chdir(tmp_path)
    with wpp_capture(app.trace) as cap:
        app.read(2, "failed elsewhere")
    assert cap.texts == []
'''


def test_kept_captures_go_where_pytest_was_started_whatever_the_test_s_working_directory(
        tmp_path_factory) -> None:
    where = fresh(tmp_path_factory, app=APP, test_chdir=CHDIR)
    run = pytest_run(where, "--wpp-keep", "keep", "-k", "elsewhere and not fails")
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    kept = where / "keep" / "test_chdir.test_moves_elsewhere" / "trace.txt"
    assert kept.read_text().splitlines()[1].endswith("read 1 bytes from elsewhere")
    # without --wpp-keep, a failed test's capture goes to wpp-captures/ of pytest's base
    # temporary folder, also when that was given as a relative path
    run = pytest_run(where, "--basetemp", "base", "-k", "fails")
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout + run.stderr
    kept = where / "base" / "wpp-captures" / "test_chdir.test_moves_and_fails" / "trace.txt"
    assert kept.read_text().splitlines()[1].endswith("read 2 bytes from failed elsewhere")


def test_an_interrupted_test_keeps_its_captures_like_a_failed_one(tmp_path_factory, tmp_path) -> None:
    where = fresh(tmp_path_factory, app=APP, test_interrupted='''
        import signal

        import app


        def test_started_without_with(wpp_capture):
            cap = wpp_capture(app.trace)
            cap.start()
            app.read(5, "before the interrupt")
            signal.raise_signal(signal.SIGINT)
            raise AssertionError("not interrupted")
        ''')
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    run = pytest_run(where, TMPDIR=str(private_tmp))
    assert run.returncode == 2 and "KeyboardInterrupt" in run.stdout, run.stdout + run.stderr
    basetemp = where.with_name(f"{where.name}-basetemp")
    folder = basetemp / "wpp-captures" / "test_interrupted.test_started_without_with"
    assert (folder / "trace.txt").read_text().splitlines()[1].endswith(
        "read 5 bytes from before the interrupt")
    assert (folder / "tmf").is_dir()
    assert not list(private_tmp.iterdir())           # the session's temporary folder is gone


def test_tests_whose_ids_make_the_same_folder_name_keep_folders_of_their_own(tmp_path_factory,
                                                                             tmp_path) -> None:
    where = fresh(tmp_path_factory, app=APP, test_ids='''
        import pytest

        import app


        @pytest.mark.parametrize("name", ["a/b", "a_b"])
        def test_param(wpp_capture, name):
            with wpp_capture(app.trace) as cap:
                app.read(3, name)
            assert cap.texts == []
        ''')
    keep = tmp_path / "keep"
    run = pytest_run(where, "-n", "2", "--wpp-keep", str(keep))
    assert run.returncode == 1 and "2 failed" in run.stdout, run.stdout + run.stderr
    # the id that had to change gets a hash of the test's node id: the same on every run
    names = {"a_b": "test_ids.test_param-a_b", "a/b": "test_ids.test_param-a_b~6049250d"}
    assert sorted(p.name for p in keep.iterdir()) == sorted(names.values())
    for name, folder in names.items():
        assert (keep / folder / "trace.txt").read_text().splitlines()[1].endswith(
            f"read 3 bytes from {name}")
        assert f"{folder}: 1 message(s) captured, 0 lost:\n  [0] INFORMATION read: read 3 bytes from {name}" \
            in run.stdout


def test_runs_that_do_not_use_the_fixture_load_nothing_of_wpptrace(tmp_path_factory) -> None:
    where = fresh(tmp_path_factory, test_plain='''
        import sys


        def test_untouched(pytestconfig):
            assert pytestconfig.pluginmanager.hasplugin("wpptrace")
            loaded = sorted(m for m in sys.modules if m.startswith("wpptrace"))
            assert loaded == ["wpptrace", "wpptrace.pytest_plugin", "wpptrace.winerror"], loaded
        ''')
    run = pytest_run(where)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    help_text = pytest_run(where, "--help").stdout
    assert "--wpp-keep=DIR" in help_text


def test_the_ci_workflow_runs_the_sample_on_ubuntu() -> None:
    workflow = (SAMPLE / ".github" / "workflows" / "roundtrip.yml").read_text()
    assert "runs-on: ubuntu-latest" in workflow
    assert "pytest -n 2 --wpp-keep wpp-captures" in workflow
    assert "path: wpp-captures/" in workflow


FIXTURE_ERRORS = '''
import pytest

import app


@pytest.fixture
def server(wpp_capture):
    with wpp_capture(app.trace):
        app.read(1, "server starting")
    raise RuntimeError("server did not start")


@pytest.fixture
def client(wpp_capture):
    yield
    with wpp_capture(app.trace):
        app.read(2, "client closing")
    assert False, "client did not close"


@pytest.fixture
def quiet(wpp_capture):
    yield
    with wpp_capture(app.trace):
        app.read(3, "quiet closing")


def test_server(server):
    pass


def test_client(client):
    pass


def test_quiet(quiet):
    pass
'''


def test_errors_in_a_fixture_s_setup_or_teardown_keep_and_report_its_captures(tmp_path_factory,
                                                                              tmp_path) -> None:
    where = fresh(tmp_path_factory, app=APP, test_fixtures=FIXTURE_ERRORS)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    run = pytest_run(where, TMPDIR=str(private_tmp))
    out = run.stdout
    assert run.returncode == 1 and "2 passed, 2 errors" in out, out + run.stderr
    assert out.count("wpptrace captures") == 2
    assert "INFORMATION read: read 1 bytes from server starting" in out
    assert "INFORMATION read: read 2 bytes from client closing" in out
    kept = where.with_name(f"{where.name}-basetemp") / "wpp-captures"
    assert sorted(p.name for p in kept.iterdir()) == ["test_fixtures.test_client",
                                                      "test_fixtures.test_server"]
    for name, text in (("client", "read 2 bytes from client closing"),
                       ("server", "read 1 bytes from server starting")):
        assert (kept / f"test_fixtures.test_{name}" / "trace.txt").read_text().splitlines()[1].endswith(text)
    assert not list(private_tmp.iterdir())           # the passing test's capture is removed


NUMBERED = '''
import pytest

import app


@pytest.mark.parametrize("x", ["1", "1-2"])
def test_t(wpp_capture, x):
    with wpp_capture(app.trace):
        app.read(1, "first " + x)
    if x == "1":
        with wpp_capture(app.trace):
            app.read(2, "second " + x)
'''


def test_a_kept_folder_s_name_is_its_test_s_and_capture_s_alone_on_every_run(tmp_path_factory) -> None:
    """``test_t[1]``'s second capture is never ``test_t[1-2]``'s first, whichever runs first, and
    a second run into the same folder replaces each test's folders instead of adding more."""
    where = fresh(tmp_path_factory, app=APP, test_col=NUMBERED)
    keep = where / "keep"
    (keep / "test_col.test_t-1~3").mkdir(parents=True)        # not a capture: left alone
    (keep / "test_col.test_t-1~3" / "notes.txt").write_text("mine")
    expected = {"test_col.test_t-1": "first 1", "test_col.test_t-1~2": "second 1",
                "test_col.test_t-1-2": "first 1-2"}
    for args in ((), ("-n", "2")):
        run = pytest_run(where, "--wpp-keep", "keep", *args)
        assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr
        found = {p.name: (p / "trace.txt").read_text().splitlines()[1].rsplit(" from ", 1)[1]
                 for p in keep.iterdir() if p.name != "test_col.test_t-1~3"}
        assert found == expected
    assert (keep / "test_col.test_t-1~3" / "notes.txt").read_text() == "mine"


RUNS = '''
import os

import app


def test_t(wpp_capture):
    with wpp_capture(app.trace):
        app.read(1, "first of run " + os.environ["RUN"])
    if os.environ["RUN"] != "1":
        with wpp_capture(app.trace):
            app.read(2, "second of run " + os.environ["RUN"])
'''


def test_a_test_s_folder_holding_other_files_is_left_alone_and_no_capture_of_the_run_lost(
        tmp_path_factory) -> None:
    """A file of the user's in a test's kept folder (a CSV decoded next to it): a later run
    leaves that folder alone and keeps its first capture beside it, under a name no other
    capture of the test has (not its second's ``~2``, which would replace it)."""
    where = fresh(tmp_path_factory, app=APP, test_runs=RUNS)
    keep = where / "keep"

    def kept() -> dict:
        return {p.name: (p / "trace.txt").read_text().splitlines()[1].rsplit(" from ", 1)[1]
                for p in keep.iterdir()}

    run = pytest_run(where, "--wpp-keep", "keep", RUN="1")
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    assert kept() == {"test_runs.test_t": "first of run 1"}
    (keep / "test_runs.test_t" / "notes.txt").write_text("mine")
    for n in (2, 3):
        run = pytest_run(where, "--wpp-keep", "keep", RUN=str(n))
        assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
        assert kept() == {"test_runs.test_t": "first of run 1",
                          "test_runs.test_t~kept": f"first of run {n}",
                          "test_runs.test_t~2": f"second of run {n}"}
        assert (keep / "test_runs.test_t" / "notes.txt").read_text() == "mine"


KILLED = '''
import os
import signal
import time

import app


def test_killed(wpp_capture):
    with wpp_capture(app.trace) as cap:
        app.read(7, "before the kill")
        # the session writes what it holds within its flush period; wait for it (a test
        # without the flush would wait here until the deadline, then find nothing)
        deadline = time.monotonic() + 60
        while os.path.getsize(cap.etl_path) <= 65536 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)        # as a CI timeout or a crashed worker does


def test_ok(wpp_capture):
    with wpp_capture(app.trace):
        app.read(1, "passing")
'''


def test_a_killed_test_s_capture_is_left_in_the_keep_folder_with_what_it_logged(tmp_path_factory,
                                                                               tmp_path, capsys) -> None:
    where = fresh(tmp_path_factory, app=APP, test_killed=KILLED)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    run = pytest_run(where, "-n", "2", "--wpp-keep", "keep", TMPDIR=str(private_tmp))
    assert run.returncode == 1 and "crashed" in run.stdout, run.stdout + run.stderr
    keep = where / "keep"
    assert sorted(p.name for p in keep.iterdir()) == ["test_killed.test_killed~running",
                                                      "test_killed.test_ok"]
    assert not list(private_tmp.iterdir())
    etl = keep / "test_killed.test_killed~running" / "trace.etl"
    # the controller's report of the crash names the file (no worker is left to say it)
    assert f"the test's capture, left as its worker died: {etl}" in run.stdout, run.stdout
    assert main(["tmf", "gen", "-o", str(tmp_path / "tmf"), str(where / "app.py")]) == 0
    capsys.readouterr()
    main(["fmt", str(etl), "-p", str(tmp_path / "tmf"), "--no-prefix"])
    assert "read 7 bytes from before the kill" in capsys.readouterr().out.splitlines()


KILLED_AGAIN = '''
import os
import signal
import time

import app


def test_killed(wpp_capture):
    with wpp_capture(app.trace) as cap:
        app.read(int(os.environ["RUN"]), "run " + os.environ["RUN"])
        deadline = time.monotonic() + 60
        while os.path.getsize(cap.etl_path) <= 65536 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_second_killed_run_replaces_the_first_one_s_running_folder(tmp_path_factory, tmp_path,
                                                                     capsys) -> None:
    """``<test>~running`` is the latest killed run's: a dead run's folder (only its trace.etl,
    which no session holds any more) is replaced, not kept beside a ``~running~2``."""
    where = fresh(tmp_path_factory, app=APP, test_killed=KILLED_AGAIN)
    keep = where / "keep"
    assert main(["tmf", "gen", "-o", str(tmp_path / "tmf"), str(where / "app.py")]) == 0
    for n in (1, 2):
        run = pytest_run(where, "--wpp-keep", "keep", RUN=str(n))
        assert run.returncode == -9, run.stdout + run.stderr
        assert sorted(p.name for p in keep.iterdir()) == ["test_killed.test_killed~running"]
        capsys.readouterr()
        main(["fmt", str(keep / "test_killed.test_killed~running" / "trace.etl"), "-p",
              str(tmp_path / "tmf"), "--no-prefix"])
        decoded = [line for line in capsys.readouterr().out.splitlines() if line.startswith("read ")]
        assert decoded == [f"read {n} bytes from run {n}"]


LEFT_RUNNING = f'''
import subprocess
import sys

from wpptrace.provider.tracing import Provider

shared = Provider("LeftRunning", flags=("ALL",))
TAKER = {str(REPO / "tests" / "testing" / "capture_taker.py")!r}
takers = []


def test_left(wpp_capture):
    wpp_capture(str(shared.guid)).start()
    takers.append(subprocess.Popen([sys.executable, TAKER, str(shared.guid)], text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    takers[-1].stdout.readline()


def test_after():
    for taker in takers:
        taker.communicate("stop\\n", timeout=60)
'''


def test_the_takeover_of_a_capture_the_plugin_stops_is_said_at_the_test_s_line(tmp_path_factory) -> None:
    """A test leaves its capture running, another process's capture takes its control GUID:
    the plugin's stop says so at the test's line that made the capture (pytest's warnings
    summary names it), not at a line inside wpptrace."""
    where = fresh(tmp_path_factory, test_left=LEFT_RUNNING)
    run = pytest_run(where, "-W", "always::wpptrace.testing.CaptureWarning")
    assert run.returncode == 0 and "2 passed, 1 warning" in run.stdout, run.stdout + run.stderr
    made = next(i for i, line in enumerate((where / "test_left.py").read_text().splitlines(), 1)
                if "wpp_capture(str(shared.guid)).start()" in line)
    assert f"test_left.py:{made}: CaptureWarning: wpptrace capture test_left.test_left: provider " in run.stdout
    assert "testing.py" not in run.stdout
