"""A provider process's endpoint socket (p-<pid>.sock in the runtime directory) after a clean-up
of the runtime directory: bound again once the directory is made again, or once it was missing
for five checks from a directory that stayed, so that sessions of other processes reach the
providers registered before the clean-up."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_REBOUND = textwrap.dedent("""
    import os, shutil, subprocess, sys, time, uuid
    import wpptrace.provider as P
    runtime, out = sys.argv[1:3]
    control = uuid.uuid4()
    heard = []
    P.RegisterTraceGuids(lambda code, context, buffer: heard.append(code) or 0, None, control)
    socket = os.path.join(runtime, "p-%d.sock" % os.getpid())

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "wpptrace", "session", *args], capture_output=True).returncode

    def waited(done):
        deadline = time.monotonic() + 40
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)
        return done()

    if sys.argv[3] == "directory":
        shutil.rmtree(runtime)              # a clean-up of /tmp took it, with the socket
        os.mkdir(runtime, 0o700)            # made again, as another process's first use does
    else:
        os.unlink(socket)                   # a clean-up took the files, the directory stayed
    print(waited(lambda: os.path.exists(socket)))
    name = "rebound-" + uuid.uuid4().hex[:8]
    print(cli("start", name, "-f", os.path.join(out, "s.etl")), cli("enable", name, "--guid", str(control)))
    print(waited(lambda: P.WMI_ENABLE_EVENTS in heard))
    print(cli("stop", name))
""")


def test_a_provider_registered_before_a_clean_up_is_reached_once_the_directory_is_made_again(tmp_path):
    """The clean-up removed the provider's socket with the directory. The directory made again,
    the socket was not bound there again: an EnableTrace of another process's session reached
    every other process but this one, whose provider stayed disabled."""
    runtime = tmp_path / "rt"
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    done = subprocess.run([sys.executable, "-c", _REBOUND, str(runtime), str(tmp_path), "directory"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "0", "0", "True", "0"]


def test_a_provider_whose_socket_alone_a_clean_up_removed_is_reached_again(tmp_path):
    """The clean-up removed the provider's socket and left the directory (`rm dir/*`, a cleaner of
    old files). The socket was never bound again in the directory it had been bound in: an
    EnableTrace of another process's session reached every other process but this one for the
    rest of its life. It is bound again once it was missing there for five checks in a row."""
    runtime = tmp_path / "rt"
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    done = subprocess.run([sys.executable, "-c", _REBOUND, str(runtime), str(tmp_path), "files"], env=env,
                          capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "0", "0", "True", "0"]


_ENDS = textwrap.dedent("""
    import shutil, sys, uuid
    import wpptrace.provider as P
    P.RegisterTraceGuids(lambda code, context, buffer: 0, None, uuid.uuid4())   # its socket bound
    shutil.rmtree(sys.argv[1])              # a clean-up of /tmp took it, with the socket
""")


def test_a_provider_process_ending_after_a_clean_up_leaves_the_directory_removed(tmp_path):
    """At exit the process removes its socket from the runtime directory: the directory's check
    made the removed directory again for that, and it stayed behind, empty."""
    runtime = tmp_path / "rt"
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    done = subprocess.run([sys.executable, "-c", _ENDS, str(runtime)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert not runtime.exists()
