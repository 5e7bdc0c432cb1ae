"""StartTrace's errors name the log file only when the file is what was refused: a runtime
directory that is not private to the user is said so, as the session CLI says it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from provider_scripts import run_script

_START = """
    out = sys.argv[2]
    try:
        P.StartTrace("refusals", props("app"))
        print("started")
    except P.Win32Error as exc:
        print(exc.name)
        print(exc.filename)
        print(str(exc))
"""


def _start(runtime, out) -> list[str]:
    done = run_script(_START, runtime, out)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_runtime_directory_open_to_others_is_said_so_not_blamed_on_the_log_file(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    os.chmod(runtime, 0o755)
    name, filename, text = _start(runtime, tmp_path)
    assert name == "ERROR_ACCESS_DENIED", text
    assert filename == "None" and "app.etl" not in text, text
    assert (f"the runtime directory {runtime} is not usable: its mode is 0755; it must be private "
            f"to this user (0700)") in text, text


def test_a_refused_log_file_is_named(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    os.mkfifo(tmp_path / "app.etl")      # never a session's log file
    name, filename, text = _start(runtime, tmp_path)
    assert name in ("ERROR_ACCESS_DENIED", "ERROR_BAD_PATHNAME"), text
    assert filename == str(tmp_path / "app.etl") and text.count("app.etl") == 1, text
    assert "runtime directory" not in text, text


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_registry_that_is_not_a_file_is_said_so_not_blamed_on_the_log_file(tmp_path, kind):
    """The runtime directory itself is fine but its registry is a directory or a symbolic link:
    StartTrace named the log file ("app.etl: The specified path is invalid") and session start
    the same, though the runtime directory's check knew the cause. Both now say it."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    registry = runtime / "registry"
    if kind == "directory":
        registry.mkdir()
        why = f"its registry {registry} is not a file (remove it)"
    else:
        registry.symlink_to(tmp_path / "elsewhere")
        why = f"its registry {registry} is a symbolic link; it must be a file of this user (remove it)"
    refused = f"the runtime directory {runtime} is not usable: {why}"
    name, filename, text = _start(runtime, tmp_path)
    assert name == "ERROR_BAD_PATHNAME", text
    assert filename == "None" and "app.etl" not in text, text
    assert text.endswith(f"StartTrace('refusals'): {refused}"), text
    res = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", "refusals", "-f",
                          str(tmp_path / "cli.etl")], env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)),
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr.splitlines()) == (1, [f"wpptrace session start: error: {refused}"])
    assert not (tmp_path / "cli.etl").exists() and not (tmp_path / "app.etl").exists()
