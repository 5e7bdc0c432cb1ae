"""The samples' commands, pasted from their READMEs and run where they say (the repository root),
do what the READMEs say."""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def sh_block(readme: pathlib.Path) -> list[str]:
    """The lines of the first ```sh block of ``readme``."""
    block = re.search(r"```sh\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    assert block, f"{readme}: no sh block"
    return block.group(1).strip().splitlines()


def run_pasted(lines: list[str]) -> subprocess.CompletedProcess:
    """``lines`` run by bash from the repository root, with this interpreter's scripts first on
    PATH (where ``pip install`` put ``wpptrace`` and ``python``)."""
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "\n".join(lines)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_wpp_capture_decodes_as_its_readme_says():
    lines = sh_block(SAMPLES / "wpp_capture" / "README.md")
    assert lines == ["wpptrace fmt samples/wpp_capture/*.etl -p samples/wpp_capture/tmf"]
    assert f"`{lines[0]}`" in (SAMPLES / "README.md").read_text(encoding="utf-8")
    res = run_pasted(lines)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    text = res.stdout.splitlines()
    assert len(text) == 60 and sum(line.endswith("[Header]EventTrace") for line in text) == 4
    assert text[-1].endswith("[findneedle]set=[1,3]")


def test_ci_roundtrip_runs_in_place_as_its_readme_says(tmp_path):
    lines = sh_block(SAMPLES / "ci_roundtrip" / "README.md")
    assert len(lines) == 2 and "/tmp/wpp-captures" in lines[0]
    kept = tmp_path / "captures"
    res = run_pasted([line.replace("/tmp/wpp-captures", str(kept)) for line in lines])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].endswith("[Copier]read 5 bytes from a.txt")
    assert len(list(kept.iterdir())) == 3
