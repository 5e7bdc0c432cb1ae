"""Shared test fixtures: the corpus of real Windows files, the test data made in this project, and
a private runtime directory for the trace sessions the tests start.

Everything a test reads is in the repository: ``tests/corpus/`` (real files made by others, with
their provenance in its README; big ``.etl`` files stored xz-compressed) and ``tests/data/``
(fixtures made here).
"""
from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import sys
import threading
from typing import Callable

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent
CORPUS_SOURCE = TESTS / "corpus"
sys.path.insert(0, str(CORPUS_SOURCE))  # its helpers: unpack (the fixture below), subsets (named file sets)
sys.path.insert(0, str(TESTS))          # session_hosts (what the clean-up below kills)

import unpack  # noqa: E402
import leftover_processes  # noqa: E402
import run_directories  # noqa: E402
from session_hosts import become_subreaper, reaper_failure  # noqa: E402


# Trace sessions run in host processes found through a per-user runtime directory: the test
# run gets its own (inherited by every process it starts), so it neither sees nor disturbs
# the user's sessions, and every host it started is killed at the end. The hosts a process
# starts are given to it when they daemonize (a pytest-xdist worker, which runs its tests and
# its clean-up, or the controller), so the clean-up kills its own hosts, never another's. One
# that could not remove its directory (a worker killed) fails the run (run_directories).
become_subreaper()
RUNTIME_DIR = run_directories.make()
os.environ["WPPTRACE_RUNTIME_DIR"] = RUNTIME_DIR
# Compiled messages kept between fmt runs (decoder.program_cache) go to a directory of the
# test run's own, not the user's cache: every fmt run of the tests after the first over the
# same TMF files takes its messages from there, so the suite checks those runs too. One left by
# a process of the run fails it, as a runtime directory does (run_directories).
CACHE_DIR = run_directories.make(run_directories.CACHE)
os.environ["WPPTRACE_CACHE_DIR"] = CACHE_DIR
os.environ.pop("WPPTRACE_NO_CACHE", None)
# The commands tests run by name (wpptrace, tracefmt, tracelog) are this environment's: its
# scripts directory first on PATH, so a run without the venv activated, or with another
# install earlier on PATH, still tests this checkout's commands.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def _clean_up() -> None:
    """This process's runtime and cache directories removed, any host serving there killed."""
    run_directories.remove(RUNTIME_DIR)
    shutil.rmtree(CACHE_DIR, ignore_errors=True)


# also when no test runs in this process (pytest-xdist's controller makes these directories
# as it imports this file, its workers their own): none is left in the temp directory
atexit.register(_clean_up)


@pytest.hookimpl(trylast=True)          # after pytest-xdist's controller ended its workers
def pytest_sessionfinish(session: pytest.Session) -> None:
    run_directories.at_run_end(session)


@pytest.fixture(scope="session", autouse=True)
def session_hosts_are_killed_at_the_end():
    yield
    # every process the tests started has ended (this one's descendants: in a pytest-xdist
    # worker its own, never the workers or the controller); looked at before the clean-up,
    # which would kill those holding the runtime directory unsaid
    left = leftover_processes.left_running(os.getpid())
    leftover_processes.kill(left)
    _clean_up()
    if left:
        pytest.fail(leftover_processes.report(left), pytrace=False)
    # the reaper went on after a failed pass; the defect is said here, failing the run
    failure = reaper_failure()
    if failure is not None:
        pytest.fail(f"reaping the processes given to this one failed: {failure}", pytrace=False)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> pathlib.Path:
    """The corpus with every file as published (the compressed ones unpacked once per session)."""
    return unpack.unpack(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def corpus_file(corpus) -> Callable[[str], pathlib.Path]:
    """``corpus_file(name)``: the corpus file with this base name (base names are unique)."""
    index: dict[str, pathlib.Path] = {}
    for path in corpus.rglob("*"):
        if path.is_file() and path.parent != corpus:  # not README.md, SHA256SUMS
            assert path.name not in index, f"two corpus files named {path.name}"
            index[path.name] = path

    def lookup(name: str) -> pathlib.Path:
        return index[name]

    return lookup


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA


class HeaderRecord:
    """The log-file header record buffer 0 of an .etl file starts with: where its
    SYSTEM_TRACE_HEADER fields are in the file (``at``, from the layouts of etl_layout.h), and
    copies of a file with that record damaged (``marker_zeroed``), written under ``directory``."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory

    @staticmethod
    def at(field: str) -> int:
        """File offset of the record's SYSTEM_TRACE_HEADER ``field`` (the record starts right
        after buffer 0's WMI_BUFFER_HEADER)."""
        from wpptrace.decoder._hazmat import BUFFER_HEADER, offsetof

        return BUFFER_HEADER.size + offsetof("SYSTEM_TRACE_HEADER", field)

    @staticmethod
    def system_header() -> range:
        """File offsets of the record's whole SYSTEM_TRACE_HEADER (marker, size, HookId,
        thread, process, times)."""
        from wpptrace.decoder._hazmat import BUFFER_HEADER, SYSTEM_HEADER

        return range(BUFFER_HEADER.size, BUFFER_HEADER.size + SYSTEM_HEADER.size)

    def marker_zeroed(self, source: pathlib.Path, edit: Callable[[bytearray], None] | None = None
                      ) -> tuple[pathlib.Path, pathlib.Path]:
        """(intact, damaged): ``source`` (a copy changed by ``edit`` first, if given), and a copy
        whose record's marker Flags byte (0xC0: TRACE_HEADER_FLAG | the fixed-size marker) is
        zeroed, which makes it no record at all to the walk, its payload untouched."""
        data = bytearray(source.read_bytes())
        flags = self.at("Flags")
        assert data[flags] == 0xC0
        intact = source
        if edit is not None:
            edit(data)
            intact = self.directory / f"intact-{source.name}"
            intact.write_bytes(bytes(data))
        data[flags] = 0
        damaged = self.directory / f"marker-{source.name}"
        damaged.write_bytes(bytes(data))
        return intact, damaged


@pytest.fixture
def header_record(tmp_path) -> HeaderRecord:
    """The log-file header record's field offsets, and damaged copies of a file (in tmp_path)."""
    return HeaderRecord(tmp_path)


@pytest.fixture
def without_blocking() -> Callable:
    """``without_blocking(call, what)``: ``call()``'s result, made in a thread; the test fails
    with "<what> blocked" if it has not returned within 30 s (a pipe's open waits for a writer:
    a regression then fails the test instead of hanging the run)."""
    def run(call: Callable, what: str):
        done: list = []
        failed: list[BaseException] = []

        def body() -> None:
            try:
                done.append(call())
            except BaseException as exc:   # (raised again in the test's thread)
                failed.append(exc)

        worker = threading.Thread(target=body, daemon=True)
        worker.start()
        worker.join(30)
        if failed:
            raise failed[0]
        assert done, f"{what} blocked"
        return done[0]
    return run


@pytest.fixture
def descriptor_lookups(monkeypatch) -> list[str]:
    """The paths ``wpptrace._outputs.descriptor_named`` is asked about (each one walk of a
    path's links), in order, from the fixture's start; clear it to count afresh."""
    from wpptrace import _outputs as outputs

    walked: list[str] = []
    real = outputs.descriptor_named

    def counting(path):
        walked.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(outputs, "descriptor_named", counting)
    return walked
