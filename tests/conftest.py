"""Shared test fixtures: where the corpus and the shipped test data live."""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import tempfile

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent
# The shared corpus sits beside the clone (CI: ../shared). Tests that need files from it
# copy them into tests/data with provenance; the whole corpus is used for sweeps.
SHARED = pathlib.Path(os.environ.get("WPPTRACE_SHARED", REPO.parent / "shared")).resolve()
CORPUS = SHARED / "corpus"


# Trace sessions run in host processes found through a per-user runtime directory: the test
# run gets its own (inherited by every process it starts), so it neither sees nor disturbs
# the user's sessions, and every host it started is killed at the end.
RUNTIME_DIR = tempfile.mkdtemp(prefix="wpprt-")
os.environ["WPPTRACE_RUNTIME_DIR"] = RUNTIME_DIR


def _kill_session_hosts(directory: str) -> None:
    """SIGKILL every process serving a control socket in ``directory`` (hosts, and helper
    processes a test left behind), found by the socket inode in /proc/net/unix."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    paths = {os.path.join(directory, n) for n in names if n.endswith(".sock")}
    inodes = set()
    try:
        with open("/proc/net/unix") as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if len(parts) >= 8 and parts[7] in paths:
                    inodes.add(parts[6])
    except OSError:
        return
    me = os.getpid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == me:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            owned = any(os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] in inodes for fd in fds)
        except OSError:
            continue
        if owned:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="session", autouse=True)
def session_hosts_are_killed_at_the_end():
    yield
    _kill_session_hosts(RUNTIME_DIR)
    shutil.rmtree(RUNTIME_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def corpus() -> pathlib.Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing: expected it at {CORPUS} (set WPPTRACE_SHARED)")
    return CORPUS


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA
