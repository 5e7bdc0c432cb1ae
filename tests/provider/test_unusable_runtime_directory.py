"""A STOP by name where the runtime directory or its registry is there but cannot be used: the
call says what is wrong; only a directory (or registry) that is not there means no session."""
from __future__ import annotations

import os
import subprocess
import sys

from provider_scripts import run_script

_STOP_BY_NAME = """
    out = sys.argv[2]

    def by_name(code):
        try:
            P.ControlTrace(0, "somebody", props("q"), code)
            return "done"
        except P.Win32Error as exc:
            return exc.name

    print(by_name(P.EVENT_TRACE_CONTROL_STOP), by_name(P.EVENT_TRACE_CONTROL_QUERY))
"""


def _stop(runtime, tmp_path):
    done = run_script(_STOP_BY_NAME, runtime, tmp_path)
    assert done.returncode == 0, done.stderr
    cli = subprocess.run([sys.executable, "-m", "wpptrace", "session", "stop", "somebody"], capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)))
    return done.stdout.strip(), cli


def test_a_registry_that_is_a_symbolic_link_is_said_so_not_taken_for_no_session(tmp_path):
    """The runtime directory's `registry` is a symbolic link (never followed): ControlTrace by
    name said no session named so was running (ERROR_WMI_INSTANCE_NOT_FOUND), while the
    session's info said ERROR_BAD_PATHNAME. Both say ERROR_BAD_PATHNAME, and the CLI names the
    link."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    (tmp_path / "elsewhere").write_bytes(b"")
    (runtime / "registry").symlink_to(tmp_path / "elsewhere")
    said, cli = _stop(runtime, tmp_path)
    assert said == "ERROR_BAD_PATHNAME ERROR_BAD_PATHNAME", said
    assert cli.returncode == 1 and "no session" not in cli.stderr, cli.stderr
    assert "registry" in cli.stderr and "symbolic link" in cli.stderr, cli.stderr


def test_a_runtime_directory_whose_parent_cannot_be_reached_is_said_so(tmp_path):
    """The runtime directory's parent is a loop of symbolic links (ELOOP): not a directory found
    missing, so not "no session"."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    runtime = tmp_path / "loop" / "rt"
    said, cli = _stop(runtime, tmp_path)
    assert said == "ERROR_BAD_PATHNAME ERROR_BAD_PATHNAME", said
    assert cli.returncode == 1 and "no session" not in cli.stderr, cli.stderr
    assert "symbolic links" in cli.stderr, cli.stderr
