"""Fixtures for the provider tests: unique session names, a registered provider, the checker,
C programs built on the core."""
from __future__ import annotations

import os
import pathlib
import select
import shutil
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))   # provider_etlcheck (test helper module)

import wpptrace.provider as P  # noqa: E402


@pytest.fixture
def out(tmp_path, monkeypatch) -> pathlib.Path:
    """A directory for what a test program writes, its sessions in a runtime directory of this
    test's own."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("WPPTRACE_RUNTIME_DIR", str(runtime))
    return tmp_path


@pytest.fixture
def session_name(request) -> str:
    return f"wpptest-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


class RegisteredProvider:
    """A provider registered with RegisterTraceGuids whose ControlCallback records every call."""

    def __init__(self):
        self.control_guid = uuid.uuid4()
        self.message_guid = uuid.uuid4()
        self.calls: list[tuple] = []
        self.logger = 0
        self.handle = P.RegisterTraceGuids(self._callback, "ctx", self.control_guid, [self.message_guid])

    def _callback(self, code, context, buffer):
        import threading
        if code == P.WMI_ENABLE_EVENTS:
            self.logger = P.GetTraceLoggerHandle(buffer)
            self.calls.append((code, context, P.GetTraceEnableFlags(self.logger),
                               P.GetTraceEnableLevel(self.logger), threading.get_ident()))
        else:
            self.logger = 0
            self.calls.append((code, context, None, None, threading.get_ident()))
        return 0

    def close(self):
        P.UnregisterTraceGuids(self.handle)


@pytest.fixture
def provider():
    p = RegisteredProvider()
    yield p
    p.close()


REPO = pathlib.Path(__file__).resolve().parents[2]
C_FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-I", str(REPO / "src/wpptrace/include"),
           "-I", str(REPO / "provider/csrc")]


HERE = pathlib.Path(__file__).parent        # the test programs and their shared headers


def _core_builder(tmp_path_factory, *defines: str):
    """build(name, source_text, *flags) -> path of a C program linked with the core's sources,
    as a C user builds it (the core is compiled once per run, with `defines`); build(name)
    builds tests/provider/<name>.c, which may include the headers beside it. Every program is
    linked with tied_to_parent.c: it dies with the process that started it."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (the extension itself is built with one)"
    tmp = tmp_path_factory.mktemp("ccore")
    sources = [*sorted((REPO / "provider" / "csrc").glob("etw_*.c")), HERE / "tied_to_parent.c"]
    # one compiler per source, all at once: the machine's cores share the work
    jobs = [subprocess.Popen([cc, *C_FLAGS, *defines, "-c", str(source)], cwd=tmp) for source in sources]
    assert [job.wait() for job in jobs] == [0] * len(jobs), "the core's sources must compile"
    objects = [str(tmp / (s.stem + ".o")) for s in sources]

    def build(name: str, text: str | None = None, *flags: str) -> pathlib.Path:
        if text is None:
            text, flags = (HERE / f"{name}.c").read_text(), ("-I", str(HERE))
        (tmp / f"{name}.c").write_text(text)
        subprocess.run([cc, *C_FLAGS, *defines, *flags, str(tmp / f"{name}.c"), *objects, "-pthread",
                        "-o", str(tmp / name)], check=True)
        return tmp / name
    return build


@pytest.fixture(scope="session")
def build_c_program(tmp_path_factory):
    """build(name, source_text, *flags) -> a C program linked with the core, as users build it."""
    return _core_builder(tmp_path_factory)


@pytest.fixture(scope="session")
def build_c_program_with_test_points(tmp_path_factory):
    """The same with the core's test points compiled in (WPT_TEST_POINTS): the program can
    hold a writer at a named step of the lock-free paths to force an interleaving."""
    return _core_builder(tmp_path_factory, "-DWPT_TEST_POINTS")


def _mode_program(build, name: str):
    """tests/provider/<name>.c built with ``build``; returns run(mode, out_path) -> what it
    printed, as "name value" pairs of integers (the program must exit 0)."""
    program = build(name)

    def run(mode: str, path) -> dict[str, int]:
        out = subprocess.run([str(program), mode, str(path)], capture_output=True, text=True, timeout=60,
                             check=True).stdout.split()
        return {out[i]: int(out[i + 1]) for i in range(0, len(out), 2)}
    return run


@pytest.fixture(scope="session")
def core_faults(build_c_program):
    """core_faults(mode, out_path) -> what core_faults.c printed (writers that never finish)."""
    return _mode_program(build_c_program, "core_faults")


@pytest.fixture(scope="session")
def core_races(build_c_program_with_test_points):
    """core_races(mode, out_path) -> what core_races.c printed (writers held at test points)."""
    return _mode_program(build_c_program_with_test_points, "core_races")


@pytest.fixture(scope="session")
def control_races(build_c_program_with_test_points):
    """control_races(mode, out_dir) -> what control_races.c printed (the endpoint thread held at
    a test point while the control plane is used)."""
    return _mode_program(build_c_program_with_test_points, "control_races")


@pytest.fixture(scope="session")
def fake_host(build_c_program_with_test_points):
    """fake_host(mode, out_dir) -> what fake_host.c printed (a real-time subscription to a
    session whose host answers as the mode says)."""
    return _mode_program(build_c_program_with_test_points, "fake_host")


@pytest.fixture(scope="session")
def session_clock(build_c_program_with_test_points):
    """session_clock(mode, out_dir) -> what session_clock.c printed (sessions started with the
    core's clock reads held, or after a wall-clock step)."""
    return _mode_program(build_c_program_with_test_points, "session_clock")


SAMPLE = REPO / "samples" / "c_program"


@pytest.fixture(scope="session")
def wppdemo(build_c_program) -> pathlib.Path:
    """samples/c_program/wppdemo built as its README says (``wppdemo --provider [ROUNDS
    [THREADS]]`` traces for a session in another process)."""
    return build_c_program("wppdemo", (SAMPLE / "wppdemo.c").read_text(), "-I", str(SAMPLE))


PATIENCE = 20.0


class App:
    """A provider process (xproc_app.py) driven through its stdin, read through its stdout."""

    def __init__(self, control: uuid.UUID, message: uuid.UUID, *extra: str):
        self.proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "xproc_app.py"), str(control),
                                      str(message), *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.pid = self.proc.pid
        self.lines: list[list[str]] = []
        self._pending = b""

    def send(self, command: str) -> None:
        self.proc.stdin.write(command.encode() + b"\n")

    def read_line(self, timeout: float) -> list[str] | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"provider process {self.pid} exited ({self.proc.poll()})")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode().split()

    def expect(self, word: str, timeout: float = PATIENCE) -> list[str]:
        """The next line starting with ``word`` (lines before it are kept in self.lines)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"no {word!r} from provider process {self.pid}; saw {self.lines}")
            self.lines.append(line)
            if line and line[0] == word:
                return line

    def expect_all(self, words: set[str], timeout: float = PATIENCE) -> dict[str, list[str]]:
        """The next lines starting with each of ``words``, in any order."""
        found: dict[str, list[str]] = {}
        deadline = time.monotonic() + timeout
        while set(found) != words:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"no {words - set(found)} from provider process {self.pid}; saw {self.lines}")
            self.lines.append(line)
            if line and line[0] in words:
                found.setdefault(line[0], line)
        return found

    def quiet(self, timeout: float = 0.3) -> list[list[str]]:
        """Lines printed within ``timeout`` (none expected)."""
        out = []
        while (line := self.read_line(timeout)) is not None:
            out.append(line)
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


@pytest.fixture
def apps():
    started: list[App] = []

    def start(control: uuid.UUID, message: uuid.UUID, *extra: str) -> App:
        app = App(control, message, *extra)
        started.append(app)
        return app
    yield start
    for app in started:
        app.close()




@pytest.fixture(scope="session")
def rebind_races(build_c_program_with_test_points):
    """rebind_races(mode, out_dir) -> what rebind_races.c printed (a provider process binding its
    socket again after a clean-up while it exits or forks)."""
    return _mode_program(build_c_program_with_test_points, "rebind_races")


@pytest.fixture(scope="session")
def callback_cancels(build_c_program_with_test_points):
    """callback_cancels(mode, out_dir) -> what callback_cancels.c printed (a thread cancelled in
    one ControlCallback of a change other registrations still had to hear)."""
    return _mode_program(build_c_program_with_test_points, "callback_cancels")


@pytest.fixture(scope="session")
def start_claim_across_clean_up(build_c_program_with_test_points):
    """start_claim_across_clean_up(mode, out_dir) -> what start_claim_across_clean_up.c printed
    (StartTrace of a hosted session across a clean-up found before its handle is handed out)."""
    return _mode_program(build_c_program_with_test_points, "start_claim_across_clean_up")


@pytest.fixture(scope="session")
def application_threads(build_c_program_with_test_points):
    """application_threads(mode, out_dir) -> what application_threads.c printed (the count of
    the application's threads made while the core's threads end and start)."""
    return _mode_program(build_c_program_with_test_points, "application_threads")


@pytest.fixture(scope="session")
def runtime_dir_holds(build_c_program_with_test_points):
    """runtime_dir_holds(mode, runtime_dir) -> what runtime_dir_holds.c printed (the runtime
    directory's held descriptor and its lock)."""
    return _mode_program(build_c_program_with_test_points, "runtime_dir_holds")
