"""Outputs are never more readable than their inputs, and that is all they take of them: the
inputs' missing write bits were carried over too, so a decode of a read-only capture (0444,
as archived captures and corpora are) made read-only outputs (``fmt -f parquet -o e.parquet``
0444, where the text redirected by the shell was 0644). The user's umask decides an
output's mode, with the group's and others' bits dropped where an input does not let them
read it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from wpptrace import _outputs as outputs

DATA = os.path.join(os.path.dirname(__file__), "corpus", "wpp", "guscatalano__findneedle")  # captures + tmf/


@pytest.fixture
def umask():
    """Set the umask for a test (process-wide: the commands it runs inherit it)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("modes, mask, expected", [
    ([0o444], 0o022, 0o644),            # read-only: the user's umask, as a shell's `>`
    ([0o444], 0o002, 0o664),
    ([0o444], 0o077, 0o600),
    ([0o400], 0o022, 0o600),            # private and read-only: private, writable
    ([0o440], 0o022, 0o640),            # the group may read it: the group may read the output
    ([0o600], 0o022, 0o600),
    ([0o644], 0o022, 0o644),
    ([0o644], 0o027, 0o640),
    ([0o644, 0o440], 0o002, 0o660),     # every input readable by the group, one not by others
    ([0o644, 0o600], 0o022, 0o600),
], ids=lambda value: "-".join(map(oct, value)) if isinstance(value, list) else oct(value))
def test_mode_from_takes_readability_only(modes, mask, expected, tmp_path, umask):
    paths = []
    for number, mode in enumerate(modes):
        path = tmp_path / f"in{number}.etl"
        path.write_bytes(b"")
        path.chmod(mode)
        paths.append(path)
    umask(mask)
    assert oct(outputs.mode_from(paths)) == oct(expected)
    assert outputs.mode_from([tmp_path / "missing"], outputs.PRIVATE_MODE) == outputs.PRIVATE_MODE


def test_fmt_outputs_of_a_read_only_capture_are_the_users(tmp_path, umask):
    capture = tmp_path / "capture.etl"
    shutil.copy(os.path.join(DATA, "wppemitter-sample.etl"), capture)
    capture.chmod(0o444)
    forms = ["text", "csv", "jsonl"]
    try:
        import pyarrow  # noqa: F401
        forms += ["parquet", "arrow"]
    except ImportError:
        pass
    for mask, expected in ((0o022, 0o644), (0o077, 0o600)):
        umask(mask)
        for form in forms:
            out, summary = tmp_path / f"out.{form}", tmp_path / f"sum.{form}"
            proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "fmt", str(capture), "-p",
                                   os.path.join(DATA, "tmf"), "-f", form, "-o", str(out),
                                   "--summary", str(summary)],
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            assert (form, oct(out.stat().st_mode & 0o777), oct(summary.stat().st_mode & 0o777)) == (
                form, oct(expected), oct(expected))
            out.unlink()
            summary.unlink()
