"""StartTrace's errors name the log file only when the file is what was refused: a runtime
directory that is not private to the user is said so, as the session CLI says it."""
from __future__ import annotations

import os

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
