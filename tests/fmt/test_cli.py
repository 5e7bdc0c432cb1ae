"""The `wpptrace fmt` and `tracefmt` command lines: options, files written, exit codes, `| head`."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import uuid

import etlgen
import pytest

from wpptrace.decoder import tracefmt

EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")


def run(args, cwd=None, env=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)


def tracefmt_cmd(*args):
    return ["-m", "wpptrace.decoder.tracefmt", *map(str, args)]


def test_tracefmt_default_files_like_tracefmt(fmt_data, fmt_tmf, tmp_path):
    res = run(tracefmt_cmd(fmt_data / "wppstr-sample.etl", "-p", fmt_tmf), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    text = (tmp_path / "FmtFile.txt").read_text().splitlines()
    assert [line.split("[findneedle]")[1] for line in text[1:]] == [
        "strtrace name=alpha id=0 tag=END", "strtrace name=bravo id=1 tag=END",
        "strtrace name=charlie id=2 tag=END", "widetrace user=root role=admin"]
    summary = (tmp_path / "FmtSum.txt").read_text()
    assert summary.startswith("Files Processed:\n\t") and "Total Events  Processed 8\n" in summary
    assert "Processing completed   Buffers: 2, Events: 8, EventsLost: 0 :: Format Errors: 0, Unknowns: 0" in res.stderr
    assert "Event traces dumped to FmtFile.txt" in res.stderr


def test_tracefmt_o_nosummary_displayonly_case_insensitive(fmt_data, fmt_tmf, tmp_path):
    out = tmp_path / "result.txt"
    res = run(tracefmt_cmd(fmt_data / "wppenum-sample.etl", "-tmf",
                           fmt_tmf / "d4153fff-ac08-361f-5ed7-af1d38cd1903.tmf", "-o", out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert out.read_text().splitlines()[2].endswith("[findneedle]set=[1,3]")
    assert (tmp_path / "result.txt.sum").read_text().count("d4153fff-ac08-361f-5ed7-af1d38cd1903") == 2

    res = run(tracefmt_cmd(fmt_data / "wppenum-sample.etl", "-p", fmt_tmf, "-DisplayOnly",
                           "-NoSummary", "-noprefix", "-UTC"), cwd=tmp_path / "..")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["EventTrace", "b=0x00000001(true) irql=0x00000002(DPC)", "set=[1,3]"]

    res = run(tracefmt_cmd(fmt_data / "wppenum-sample.etl", "-p", fmt_tmf, "-displayonly",
                           "-nosummary", "-csv", "-csvheader", "-q"))
    assert res.stdout.splitlines()[0].startswith("GuidName,MessageName,ThreadId")
    assert res.stderr == ""


def test_exit_codes_and_errors_on_stderr(fmt_data, fmt_tmf, tmp_path):
    res = run(tracefmt_cmd())
    assert res.returncode == 2 and "give an .etl file" in res.stderr
    res = run(tracefmt_cmd("-nosuchoption", "x.etl"))
    assert res.returncode == 2 and "tracefmt: error: -nosuchoption: not an option this tracefmt takes" in res.stderr
    res = run(tracefmt_cmd(tmp_path / "missing.etl", "-displayonly", "-nosummary"))
    assert res.returncode == 1 and "missing.etl: cannot read:" in res.stderr
    assert "ERROR_FILE_NOT_FOUND" in res.stderr and "Traceback" not in res.stderr
    res = run(tracefmt_cmd(fmt_data / "wppstr-sample.etl", "-p", tmp_path / "nodir",
                           "-displayonly", "-nosummary"))
    assert res.returncode == 1
    assert f"tracefmt: error: {tmp_path / 'nodir'}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)\n" in res.stderr
    assert res.stderr.endswith("tracefmt: error: nothing was decoded: give TMF and PDB paths that can be read\n")
    assert res.stdout == ""     # (each of its messages would have printed as Unknown)
    res = run(["-m", "wpptrace.cli", "fmt"])
    assert res.returncode == 2 and "no .etl file given" in res.stderr
    res = run(["-m", "wpptrace.cli", "fmt", "--prefix", "%9!d", str(fmt_data / "wppstr-sample.etl")])
    assert res.returncode == 2 and "bad prefix" in res.stderr and "expected" in res.stderr
    assert "\n%9!d\n  ^" in res.stderr  # the position of the problem, under the prefix
    junk = tmp_path / "junk.etl"
    junk.write_bytes(b"not an etl file" * 100)
    res = run(["-m", "wpptrace.cli", "fmt", str(junk)])
    assert res.returncode == 1 and res.stdout == "" and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"wpptrace fmt: error: {junk}: cannot read: offset 0x0: not an "
                                 f".etl file: expected a WMI_BUFFER_HEADER")
    assert res.stderr.endswith("(ERROR_BAD_FORMAT)\n") and res.stderr.count("\n") == 1


def test_windows_only_options_are_ignored_and_unknown_ones_refused(fmt_data, fmt_tmf, tmp_path):
    """argparse read a dash word tracefmt does not know as a one-letter option with a value:
    ``-hires`` as ``-h`` (help, exit 0, nothing decoded), ``-ods`` as ``-o ds`` (output ds,
    summary ds.sum). tracefmt's -hires/-ods/-trace/-v are now ignored with a warning and any
    other dash word is refused, exit status 2, before anything is written."""
    etl = fmt_data / "wppstr-sample.etl"
    res = run(tracefmt_cmd("-seq", "-p", fmt_tmf, etl, "-nosummary", "-hires", "-o", "result.txt"),
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "tracefmt: warning: -hires ignored: timestamps keep their usual digits\n" in res.stderr
    assert "strtrace name=alpha id=0 tag=END" in (tmp_path / "result.txt").read_text()
    assert sorted(os.listdir(tmp_path)) == ["result.txt"]
    (tmp_path / "result.txt").unlink()

    res = run(tracefmt_cmd(etl, "-p", fmt_tmf, "-Displayonly", "-ODS", "/trace", "-v", "-nosummary"),
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "strtrace name=alpha id=0 tag=END" in res.stdout
    assert [line for line in res.stderr.splitlines() if "warning" in line] == [
        "tracefmt: warning: -ods ignored: there is no debugger output here; the text goes where "
        "the other options say",
        "tracefmt: warning: -trace ignored: no decoder diagnostics here",
        "tracefmt: warning: -v ignored: no per-buffer output here"]
    assert os.listdir(tmp_path) == []

    for word in ("-hiress", "-odd", "-pX", "-Seq=1", "-fx"):
        res = run(tracefmt_cmd(etl, "-p", fmt_tmf, word, "-o", "out.txt"), cwd=tmp_path)
        assert res.returncode == 2, word
        assert res.stderr.endswith(f"tracefmt: error: {word}: not an option this tracefmt takes\n")
        assert res.stdout == "" and os.listdir(tmp_path) == []
    # the value of an option may start with a dash-less word or be given glued with '='
    res = run(tracefmt_cmd(etl, "-p", fmt_tmf, "-prefix=[%2!s!] ", "-displayonly", "-nosummary"),
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1].startswith("[")


def test_realtime_option_reports_a_clear_error():
    res = run(tracefmt_cmd("-rt", "NoSuchSession", "-displayonly", "-nosummary"))
    assert res.returncode == 1
    assert "NoSuchSession" in res.stderr and "Traceback" not in res.stderr
    assert "ERROR_WMI_INSTANCE_NOT_FOUND" in res.stderr


def test_help(fmt_data):
    res = run(tracefmt_cmd("-?"))
    assert res.returncode == 0 and "-displayonly" in res.stdout and "TRACE_FORMAT_PREFIX" in res.stdout
    res = run(["-m", "wpptrace.cli", "fmt", "--help"])
    assert res.returncode == 0 and "TRACE_FORMAT_PREFIX" in res.stdout and "--format" in res.stdout


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.etl"
    etlgen.write_messages(path, ((EMITTER, 10, struct.pack("<ii", i, i), 0x10, 0x20, i & 1,
                                  etlgen.T0 + i * 100) for i in range(60_000)), buffer_size=16384)
    return path


def test_pipe_into_head_exits_quietly(big_trace, fmt_tmf):
    for cmd in (f"{sys.executable} -m wpptrace.decoder.tracefmt {big_trace} -p {fmt_tmf} "
                f"-displayonly -nosummary -q | head -3",
                f"{sys.executable} -m wpptrace.cli fmt {big_trace} -p {fmt_tmf} | head -3"):
        res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                             timeout=120)
        assert res.stdout.count("\n") == 3
        assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
        assert res.returncode == 0, res.stderr


def test_wpptrace_fmt_output_file_and_summary(big_trace, fmt_tmf, tmp_path):
    out, summary = tmp_path / "o.txt", tmp_path / "o.sum"
    res = run(["-m", "wpptrace.cli", "fmt", str(big_trace), "-p", str(fmt_tmf), "-o", str(out),
               "--summary", str(summary), "--no-prefix", "-v"])
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 60_001
    # two processor streams merged back into time order
    assert [int(line.split("id=")[1].split()[0]) for line in lines[1:]] == list(range(60_000))
    assert "Total Events  Processed 60001" in summary.read_text()
    assert "Event traces dumped to" in res.stderr


def test_progress_bar_on_request(big_trace, fmt_tmf):
    from fmthelp import run_fmt_capture

    code, out, err = run_fmt_capture(big_trace, tmf_dirs=[str(fmt_tmf)], progress="always")
    assert code == 0
    assert "big.etl [" in err and "100.0%" in err


def test_tracefmt_summary_beside_a_device_output_goes_to_fmtsum(fmt_data, fmt_tmf, tmp_path):
    """``tracefmt -o /dev/stdout`` (or /dev/null) wrote its summary to ``/dev/stdout.sum``: a
    new file among the devices (as root) or a failed run. It goes to FmtSum.txt, as with
    -displayonly and -summaryonly; the text goes to the device."""
    trace = fmt_data / "wppstr-sample.etl"
    (tmp_path / "file").mkdir()
    assert run(tracefmt_cmd(trace, "-p", fmt_tmf, "-o", "text.txt"), cwd=tmp_path / "file").returncode == 0
    text = (tmp_path / "file" / "text.txt").read_text()
    work = tmp_path / "work"
    work.mkdir()
    (work / "null").symlink_to(os.devnull)       # a device named here: <output>.sum would be made here
    (work / "out").symlink_to("/dev/stdout")     # stdout (a pipe here) through a link
    for output, shown in (("/dev/stdout", text), (os.devnull, ""), ("null", ""), ("out", text)):
        res = run(tracefmt_cmd(trace, "-p", fmt_tmf, "-o", output), cwd=work)
        assert res.returncode == 0, res.stderr
        assert res.stdout == shown and "Unknown" not in text and text.count("\n") > 1
        assert res.stderr.splitlines()[-2:] == [f"Event traces dumped to {output}",
                                                "Event Summary dumped to FmtSum.txt"]
        assert (work / "FmtSum.txt").read_text().startswith("Files Processed:")
        (work / "FmtSum.txt").unlink()
        assert sorted(os.listdir(work)) == ["null", "out"]
    opts = tracefmt.options_from_args(tracefmt.build_parser().parse_args(["a.etl", "-o", "/dev/fd/3"]))
    assert opts.output == "/dev/fd/3" and opts.summary == "FmtSum.txt"


def test_tracefmt_options_map_to_one_engine():
    parser = tracefmt.build_parser()
    args = parser.parse_args(tracefmt._lower_options(
        ["a.etl", "-f", "b.etl", "-i", "x.sys;y.sys", "-pdb", "z.pdb", "-r", "syms", "-seq",
         "-display", "-o", "out.txt", "-gmt"], parser))
    opts = tracefmt.options_from_args(args)
    assert opts.files == ["a.etl", "b.etl"]
    assert opts.pdbs == ["x.sys", "y.sys", "z.pdb"] and opts.symbol_paths == ["syms"]
    assert opts.output == "out.txt" and opts.summary == "out.txt.sum" and opts.display
    assert opts.utc and opts.seq and opts.output_format == "text"


def test_tmf_directory_without_tmf_files_warns(fmt_data, tmp_path):
    # Regression: `-p DIR` naming a directory with no .tmf files decoded everything as Unknown
    # with no hint why (exit 0, nothing on stderr).
    empty = tmp_path / "notmf"
    empty.mkdir()
    res = run(tracefmt_cmd(fmt_data / "wppstr-sample.etl", "-p", empty, "-displayonly", "-nosummary"))
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert f"{empty}: no .tmf files in this directory" in res.stderr
    assert "Unknown( 10): GUID=744151fd-b3f4-32e6-38eb-0fd11e3fb62d" in res.stdout


@pytest.mark.parametrize("given", ["-1", str(2 ** 64), "many", "{limit+1}"])
def test_jobs_outside_one_to_the_limit_is_a_usage_error(given, fmt_data, tmp_path):
    # -j 1000 forked hundreds of decoding processes, 2**64 was cut to 1024 without a word and
    # -1 ran as if no -j had been given
    from wpptrace.decoder.jobs import max_jobs

    limit = max_jobs()
    given = given.replace("{limit+1}", str(limit + 1))
    out = tmp_path / "out.txt"
    res = run(["-m", "wpptrace.cli", "fmt", "-j", given, "-o", str(out), str(fmt_data / "wppstr-sample.etl")])
    assert res.returncode == 2 and res.stdout == ""
    assert (f"wpptrace fmt: error: argument -j/--jobs: {given}: expected a whole number of processes "
            f"from 1 to {limit} (4 for each core this process may run on), or 0 for one per core "
            f"when it pays\n") in res.stderr
    assert not out.exists()


def test_jobs_at_the_limit_is_taken(fmt_data, tmp_path):
    from wpptrace.decoder.jobs import max_jobs

    res = run(["-m", "wpptrace.cli", "fmt", "-j", str(max_jobs()), "-o", str(tmp_path / "out.txt"),
               str(fmt_data / "wppstr-sample.etl")])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out.txt").read_text().count("\n") > 0


@pytest.mark.parametrize("option", ["--tmf", "-p", "--pdb"])
def test_a_tmf_path_that_cannot_be_used_keeps_the_old_output(option, fmt_data, tmp_path):
    # the run said "error: nonexist: no such TMF file or directory" and still replaced the
    # output with a decoding where every message was Unknown
    old = tmp_path / "old.txt"
    old.write_text("OLD\n")
    res = run(["-m", "wpptrace.cli", "fmt", str(fmt_data / "wppstr-sample.etl"), option, str(tmp_path / "nonexist"),
               "-o", str(old), "--summary", str(tmp_path / "sum.txt")])
    assert res.returncode == 1
    assert res.stderr.endswith("wpptrace fmt: error: nothing was decoded: give TMF and PDB paths that can be "
                               "read; the old output is kept\n")
    assert old.read_text() == "OLD\n" and not (tmp_path / "sum.txt").exists()
