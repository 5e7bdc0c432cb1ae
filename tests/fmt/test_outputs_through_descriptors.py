"""An output path that names a descriptor the process was handed (/dev/stdout, /dev/stderr,
/dev/fd/N, a file the shell opened for it) is written through that descriptor, as standard
output is: ``fmt X.etl -o /dev/stdout >> log`` adds to ``log`` instead of renaming a new
file over it (which lost what ``log`` held), a pipe is written as a stream, and fmt -j
appends its windows in order where the descriptor appends."""
from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys

import pytest
from fmthelp import hold_up

from wpptrace import _outputs as outputs
from wpptrace.decoder import cli_fmt, parallel

OLD = b"what the log held\n"


def fmt(args, **popen) -> subprocess.CompletedProcess:
    """``wpptrace fmt ARGS`` in a process of its own (its descriptors as given in ``popen``)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([sys.executable, "-m", "wpptrace.cli", "fmt", *map(str, args)],
                          timeout=300, **popen)


@pytest.fixture(scope="module")
def decode(driver, tmp_path_factory):
    """The driver trace's arguments, and what one process writes for it to a file of its own."""
    path, tmf_dir = driver
    args = [path, "-p", tmf_dir, "--utc"]
    out = tmp_path_factory.mktemp("whole") / "out.txt"
    proc = fmt([*args, "-j", "1", "-o", out])
    assert proc.returncode == 0, proc.stderr
    return args, out.read_bytes()


def _log(tmp_path, contents: bytes = OLD):
    log = tmp_path / "log"
    log.write_bytes(contents)
    return log


@pytest.mark.parametrize("jobs", [1, 2])
def test_stdout_appending_to_a_log_keeps_it(decode, tmp_path, jobs):
    args, whole = decode
    log = _log(tmp_path)
    with open(log, "ab") as appending:
        proc = fmt([*args, "-j", jobs, "-o", "/dev/stdout"], stdout=appending)
    assert proc.returncode == 0, proc.stderr
    assert log.read_bytes() == OLD + whole
    assert os.listdir(tmp_path) == ["log"]


@pytest.mark.parametrize("name", ["/dev/fd/{n}", "/proc/self/fd/{n}"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_descriptor_appending_to_a_log_keeps_it(decode, tmp_path, jobs, name):
    args, whole = decode
    log = _log(tmp_path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        proc = fmt([*args, "-j", jobs, "-o", name.format(n=fd), "--summary", tmp_path / "sum"],
                   pass_fds=[fd])
    finally:
        os.close(fd)
    assert proc.returncode == 0, proc.stderr.decode()
    assert log.read_bytes() == OLD + whole and proc.stdout == b""
    assert sorted(os.listdir(tmp_path)) == ["log", "sum"]


def test_a_redirected_file_named_as_output_is_appended_to(decode, tmp_path):
    """``fmt X.etl -o log >> log``: the file the shell opened is written through its descriptor."""
    args, whole = decode
    log = _log(tmp_path)
    with open(log, "ab") as appending:
        proc = fmt([*args, "-j", 2, "-o", log], stdout=appending)
    assert proc.returncode == 0, proc.stderr
    assert log.read_bytes() == OLD + whole
    assert os.listdir(tmp_path) == ["log"]


def test_stdout_to_a_pipe_is_written_as_a_stream(decode):
    args, whole = decode
    for jobs in (1, 2):
        proc = fmt([*args, "-j", jobs, "-o", "/dev/stdout"])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == whole


def test_stdout_opened_to_write_goes_on_from_its_offset(decode, tmp_path):
    """``{ echo first; fmt -o /dev/stdout; } > log``: the output follows what the shell's
    descriptor wrote; fmt -j writes its windows at their places after it."""
    args, whole = decode
    log = tmp_path / "log"
    for jobs in (1, 2):
        with open(log, "wb") as truncated:
            truncated.write(b"first\n")
            truncated.flush()
            proc = fmt([*args, "-j", jobs, "-o", "/dev/stdout"], stdout=truncated)
        assert proc.returncode == 0, proc.stderr
        assert log.read_bytes() == b"first\n" + whole
    assert os.listdir(tmp_path) == ["log"]


def test_the_summary_to_stderr_appending_to_a_log_keeps_it(decode, tmp_path):
    args, _whole = decode
    log = _log(tmp_path)
    with open(log, "ab") as appending:
        proc = fmt([*args, "-o", os.devnull, "--summary", "/dev/stderr"], stderr=appending)
    assert proc.returncode == 0
    text = log.read_bytes()
    assert text.startswith(OLD) and b"Files Processed:" in text[len(OLD):]
    assert os.listdir(tmp_path) == ["log"]

    proc = fmt([*args, "-o", os.devnull, "--summary", "/dev/stderr"])      # into a pipe
    assert proc.returncode == 0 and proc.stderr.startswith(b"Files Processed:"), proc.stderr


def test_jobs_append_their_windows_through_the_descriptor_in_order(decode, tmp_path, monkeypatch):
    """In this process: several windows, none written at a place (the descriptor appends),
    even when the worker's windows are decoded before this process's first one."""
    args, whole = decode
    path, tmf_dir = args[0], args[2]
    hold_up(monkeypatch, tmp_path.parent / f"{tmp_path.name}-out-of-windows", "parent")
    runs = []
    real = parallel.decode_parallel
    monkeypatch.setattr(parallel, "decode_parallel", lambda *a, **k: runs.append(real(*a, **k)))
    log = _log(tmp_path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        opts = cli_fmt.FmtOptions(files=[str(path)], tmf_dirs=[str(tmf_dir)], utc=True, jobs=2,
                                  output=f"/dev/fd/{fd}")
        assert cli_fmt.run_fmt(opts, out=io.StringIO(), err=io.StringIO()) == 0
        os.fstat(fd)                       # still open: the run wrote through a copy of it
    finally:
        os.close(fd)
    assert log.read_bytes() == OLD + whole
    [run] = runs
    assert not run.in_place and run.owners == [0] + [1] * (len(run.owners) - 1)


def test_a_descriptor_on_an_input_is_refused(decode, tmp_path, driver):
    args, _whole = decode
    with open(driver[0], "ab") as appending:
        before = os.fstat(appending.fileno()).st_size
        proc = fmt([*args, "-o", "/dev/stdout"], stdout=appending)
        assert os.fstat(appending.fileno()).st_size == before
    assert proc.returncode == 1 and b"refusing to write /dev/stdout" in proc.stderr


def test_a_descriptor_open_for_reading_is_not_written(decode, tmp_path):
    args, _whole = decode
    log = _log(tmp_path)
    with open(log, "rb") as reading:
        proc = fmt([*args, "-o", "/dev/stdin"], stdin=reading)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == (
        "wpptrace fmt: error: /dev/stdin: cannot write: the descriptor is open for reading only")
    assert log.read_bytes() == OLD and os.listdir(tmp_path) == ["log"]


def test_write_text_through_a_descriptor_adds_only_its_text(tmp_path):
    log = _log(tmp_path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        for text in ("one\n", "two\n"):
            outputs.write_text(f"/dev/fd/{fd}", text, 0o600, append=True)
    finally:
        os.close(fd)
    assert log.read_bytes() == OLD + b"one\ntwo\n"


def test_handed_descriptors(tmp_path):
    assert outputs.handed_descriptor("/dev/stdout") == 1
    assert outputs.handed_descriptor("/dev/stderr") == 2
    assert outputs.handed_descriptor("/dev/fd/7") == 7
    assert outputs.handed_descriptor(f"/proc/{os.getpid()}/fd/9") == 9
    assert outputs.handed_descriptor(tmp_path / "new.txt") is None
    mine = tmp_path / "mine.txt"
    with open(mine, "a") as own:        # opened here (closed on exec): an ordinary output
        assert outputs.handed_descriptor(mine) is None
        os.set_inheritable(own.fileno(), True)
        assert outputs.handed_descriptor(mine) == own.fileno()


def test_a_descriptor_is_named_through_symbolic_links(tmp_path):
    # resolved whole, /dev/stdout's link chain ends at "pipe:[N]", a terminal or the file it is on
    (tmp_path / "out").symlink_to("/dev/stdout")
    (tmp_path / "fd7").symlink_to("/dev/fd/7")
    (tmp_path / "again").symlink_to("fd7")                                 # relative, two links
    (tmp_path / "dev").symlink_to("/dev")
    (tmp_path / "file").write_text("")
    (tmp_path / "to-file").symlink_to("file")
    (tmp_path / "loop").symlink_to("loop")
    for path, fd in (("out", 1), ("fd7", 7), ("again", 7), ("dev/stderr", 2),
                     ("to-file", None), ("file", None), ("loop", None), ("missing", None)):
        assert outputs.descriptor_named(tmp_path / path) == fd, path
    assert outputs.handed_descriptor(tmp_path / "again") == 7


def test_links_are_followed_from_where_they_really_are(tmp_path):
    """A link's directory is resolved before its target is read, as the kernel does: links
    in the directory part are followed, and a relative target is taken from the link's real
    directory, not from the path as written."""
    (tmp_path / "fdlink").symlink_to("/dev/fd")            # /proc/<this process>/fd
    (tmp_path / "d").symlink_to("/dev")
    (tmp_path / "q" / "w").mkdir(parents=True)
    (tmp_path / "a").symlink_to(tmp_path / "q" / "w")
    # read from tmp_path/a, the target would be /dev/stdout; from tmp_path/q/w, where the link
    # is, it is a missing dev/stdout under the first directory of tmp_path
    up = "../" * len(tmp_path.parts)
    (tmp_path / "q" / "w" / "out2").symlink_to(up + "dev/stdout")
    assert not (tmp_path / "a" / "out2").exists()
    for path, fd in (("fdlink/1", 1), ("fdlink/7", 7), ("d/fd/2", 2), ("d/stdout", 1), ("a/out2", None)):
        assert outputs.descriptor_named(tmp_path / path) == fd, path


def test_dot_dot_after_a_link_is_taken_where_the_link_leads(tmp_path, monkeypatch):
    """``sym/../x`` with ``sym -> real/sub`` is ``real/x`` to the kernel (``..`` of where the
    link leads), not ``./x`` as the path reads when ``..`` is taken away by its text: the file
    an output of that path is written to, the descriptor handed on it and the stream it is
    compared with are those of ``real/x``."""
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "sym").symlink_to("real/sub")
    (tmp_path / "x").write_bytes(b"")
    (tmp_path / "real" / "x").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    path = "sym/../x"
    assert os.path.samestat(os.stat(path), os.stat("real/x"))          # the kernel's answer
    assert not os.path.samestat(os.stat(path), os.stat("x"))
    with open("x", "ab") as beside, open("real/x", "ab") as there:
        os.set_inheritable(beside.fileno(), True)
        assert outputs.handed_descriptor(path) is None
        assert not outputs.same_file_as_stream(path, beside)
        assert outputs.same_file_as_stream(path, there)
        os.set_inheritable(there.fileno(), True)
        assert outputs.handed_descriptor(path) == there.fileno()


def test_a_descriptor_name_reached_only_by_taking_dot_dot_from_the_text_is_not_one(tmp_path, capfd):
    """``lnk/../../dev/stdout`` reads as /dev/stdout when '..' is taken from the text, but the
    kernel takes '..' of where ``lnk`` leads: when that is a file of its own, it is neither
    descriptor 1 nor standard output's file, and an output of that path is written there."""
    up = len(tmp_path.parts)                  # from tmp_path/lnk, as many '..' reach / in the text
    deep = tmp_path.joinpath(*["d"] * up)     # and from where lnk leads, tmp_path
    deep.mkdir(parents=True)
    (tmp_path / "lnk").symlink_to(deep)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "stdout").write_bytes(b"")
    path = str(tmp_path / "lnk") + "/.." * up + "/dev/stdout"
    assert os.path.normpath(path) == "/dev/stdout"
    assert os.path.samestat(os.stat(path), os.stat(tmp_path / "dev" / "stdout"))  # the kernel's answer
    assert outputs.descriptor_named(path) is None and outputs.handed_descriptor(path) is None
    assert not outputs.same_file_as_stream(path, sys.stdout)
    with outputs.open_output(path, 0o600) as out:
        out.write("there")
    assert (tmp_path / "dev" / "stdout").read_text() == "there" and capfd.readouterr().out == ""


def test_each_path_s_links_are_walked_once(tmp_path, descriptor_lookups):
    """What an output path names (its descriptor, its file, whether that is special, the
    descriptor it is written through) comes from one walk of its links per path checked or
    opened."""
    walked = descriptor_lookups
    (tmp_path / "in.etl").write_bytes(b"")
    (tmp_path / "out").symlink_to("/dev/stdout")
    log, summary = str(tmp_path / "log"), str(tmp_path / "out")
    outputs.check_outputs([log, summary, "/dev/null"], [tmp_path / "in.etl"])
    assert sorted(walked) == sorted([str(tmp_path / "in.etl"), log, summary, "/dev/null"])
    walked.clear()
    with outputs.open_output(log, 0o600) as out:
        out.write("x")
    assert walked == [log] and (tmp_path / "log").read_text() == "x"
    walked.clear()
    with outputs.open_output("/dev/null", 0o600) as out:           # special: written in place
        out.write("x")
    assert walked == ["/dev/null"]


def test_the_proc_names_of_this_process_only(tmp_path):
    assert outputs.descriptor_named("/proc/self/fd/5") == 5
    assert outputs.descriptor_named(f"/proc/{os.getpid()}/fd/6") == 6
    assert outputs.descriptor_named("/proc/thread-self/fd/4") == 4
    assert outputs.descriptor_named(f"/proc/{os.getpid()}/task/{os.getpid()}/fd/3") == 3
    other = os.getppid()
    assert other != os.getpid()
    assert outputs.descriptor_named(f"/proc/{other}/fd/1") is None       # its own descriptor 1
    assert outputs.descriptor_named(f"/proc/{other}/task/{other}/fd/1") is None
    (tmp_path / "theirs").symlink_to(f"/proc/{other}/fd")
    assert outputs.descriptor_named(tmp_path / "theirs" / "1") is None


def test_a_descriptor_not_open_is_said_so(decode, tmp_path):
    args, _whole = decode
    proc = fmt([*args, "-o", "/dev/fd/9"], cwd=tmp_path)
    assert proc.returncode == 1 and os.listdir(tmp_path) == []
    assert proc.stderr.decode().strip() == (
        "wpptrace fmt: error: /dev/fd/9: cannot write: no descriptor 9 is open")


def _summary_after(text: bytes, whole: bytes) -> bytes:
    """What follows the decoded text ``whole`` at the start of ``text`` (which must be there)."""
    assert text[:len(whole)] == whole
    return text[len(whole):]


@pytest.mark.parametrize("jobs", [1, 2])
def test_stdout_and_stderr_of_one_open_file_take_the_text_then_the_summary(decode, tmp_path, jobs):
    """``fmt X.etl -o /dev/stdout --summary /dev/stderr > log 2>&1``: one open file (one offset)
    written through two descriptors takes each write where the last ended, as any program's
    stdout and stderr do: the text, then the summary, then the completion lines; nothing lost."""
    args, whole = decode
    log = tmp_path / "log"
    with open(log, "wb") as both:
        proc = fmt([*args, "-j", jobs, "-o", "/dev/stdout", "--summary", "/dev/stderr", "-v"],
                   stdout=both, stderr=both)
    text = log.read_bytes()
    assert proc.returncode == 0, text[-400:]
    rest = _summary_after(text, whole).decode()
    assert rest.startswith("Files Processed:\n") and "Total Events  Processed" in rest
    assert rest.rstrip("\n").splitlines()[-2:] == ["Event traces dumped to /dev/stdout",
                                                   "Event Summary dumped to /dev/stderr"]
    assert os.listdir(tmp_path) == ["log"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_summary_to_stdout_follows_the_text_on_stdout(decode, tmp_path, jobs):
    """``fmt X.etl --summary /dev/stdout > log`` and ``--summary /dev/stderr > log 2>&1``."""
    args, whole = decode
    log = tmp_path / "log"
    for summary, shared in (("/dev/stdout", False), ("/dev/stderr", True)):
        with open(log, "wb") as out:
            proc = fmt([*args, "-j", jobs, "--summary", summary], stdout=out,
                       stderr=out if shared else subprocess.PIPE)
        assert proc.returncode == 0, proc.stderr
        assert _summary_after(log.read_bytes(), whole).startswith(b"Files Processed:\n")


def test_stdout_and_stderr_both_appending_to_a_log_keep_it(decode, tmp_path):
    """``>> log 2>> log``: two opens of the log, both appending: nothing is overwritten."""
    args, whole = decode
    log = _log(tmp_path)
    with open(log, "ab") as out, open(log, "ab") as err:
        proc = fmt([*args, "-j", 2, "-o", "/dev/stdout", "--summary", "/dev/stderr"],
                   stdout=out, stderr=err)
    assert proc.returncode == 0
    rest = _summary_after(log.read_bytes(), OLD + whole)
    assert rest.startswith(b"Files Processed:\n") and b"Total Events  Processed" in rest


def test_two_opens_of_one_file_that_would_overwrite_each_other_are_refused(decode, tmp_path):
    """``> log 2> log``: each descriptor writes from its own offset, so the summary would be
    written over the text: refused before anything is written (the refusal is all there is)."""
    args, _whole = decode
    log = tmp_path / "log"
    with open(log, "wb") as out, open(log, "wb") as err:
        proc = fmt([*args, "-o", "/dev/stdout", "--summary", "/dev/stderr"], stdout=out, stderr=err)
    assert proc.returncode == 1
    assert log.read_bytes() == (b"wpptrace fmt: error: refusing to write /dev/stderr: it is the same "
                                b"file as the output /dev/stdout; nothing was written\n")


class Descriptors:
    """Descriptors a test opens, each named as /dev/fd/N (``numbers``: in the order opened)."""

    def __init__(self) -> None:
        self.numbers: list[int] = []

    def open(self, path, flags: int) -> str:
        return self._named(os.open(path, flags))

    def dup(self, name: str) -> str:
        """Another descriptor of the open file ``name`` (/dev/fd/N) is on: one file offset."""
        return self._named(os.dup(int(name.rpartition("/")[2])))

    def _named(self, n: int) -> str:
        self.numbers.append(n)
        return f"/dev/fd/{n}"


@pytest.fixture
def descriptors():
    """The descriptors a test opens, closed when it ends."""
    opened = Descriptors()
    try:
        yield opened
    finally:
        for n in opened.numbers:
            os.close(n)


def test_outputs_through_descriptors_of_one_file_are_checked_by_what_they_share(tmp_path, descriptors):
    log = tmp_path / "log"
    log.write_bytes(b"")
    append = os.O_WRONLY | os.O_APPEND

    def check(*paths):
        """check_outputs(paths); it changes nothing: each descriptor's flags as they were."""
        before = [fcntl.fcntl(n, fcntl.F_GETFL) for n in descriptors.numbers]
        try:
            outputs.check_outputs(paths, [])
        finally:
            assert [fcntl.fcntl(n, fcntl.F_GETFL) for n in descriptors.numbers[:len(before)]] == before

    one = descriptors.open(log, os.O_WRONLY)
    check(one, descriptors.dup(one))                                       # one open file
    check(one, one)                                                        # one descriptor
    check(descriptors.open(log, append), descriptors.open(log, append))
    other = descriptors.open(log, os.O_WRONLY)
    with pytest.raises(outputs.OutputRefused, match="same file as the output"):
        check(one, other)                                                  # two offsets
    with pytest.raises(outputs.OutputRefused, match="same file as the output"):
        check(one, log)                                                    # one made anew by name


def test_the_probe_of_one_open_file_puts_the_flag_back_whatever_happens(tmp_path, monkeypatch):
    """Whether two descriptors are one open file is seen by flipping O_NONBLOCK on one: an
    exception arriving as the flip returns (Ctrl-C) still has it put back."""
    log = tmp_path / "log"
    log.write_bytes(b"")
    a, b = os.open(log, os.O_WRONLY), os.open(log, os.O_WRONLY)
    try:
        flags = fcntl.fcntl(a, fcntl.F_GETFL)
        real = fcntl.fcntl

        def interrupted(fd, cmd, arg=0):
            result = real(fd, cmd, arg)
            if cmd == fcntl.F_SETFL and arg != flags:
                raise KeyboardInterrupt
            return result
        monkeypatch.setattr(fcntl, "fcntl", interrupted)
        with pytest.raises(KeyboardInterrupt):
            outputs.check_outputs([f"/dev/fd/{a}", f"/dev/fd/{b}"], [])
        monkeypatch.undo()
        assert [fcntl.fcntl(a, fcntl.F_GETFL), fcntl.fcntl(b, fcntl.F_GETFL)] == [flags, flags]
    finally:
        os.close(a)
        os.close(b)


def tracefmt(args, **popen) -> subprocess.CompletedProcess:
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    args = ["-utc" if arg == "--utc" else arg for arg in map(str, args)]   # tracefmt's spelling
    return subprocess.run([sys.executable, "-m", "wpptrace.decoder.tracefmt", *args],
                          stdin=subprocess.DEVNULL, timeout=300, **popen)


def test_display_into_the_output_itself_shows_the_text_once(decode, tmp_path):
    """``tracefmt -display -o /dev/stdout``: the output is the console (or the file or pipe
    stdout goes to): the text is there once, not once as output and once as display."""
    args, whole = decode
    base = [*args, "-nosummary", "-q", "-display"]
    proc = tracefmt([*base, "-o", "/dev/stdout"])                          # a pipe
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == whole
    proc = tracefmt([*base, "-o", "/dev/stderr"], stderr=subprocess.STDOUT)   # 2>&1 | ...
    assert proc.returncode == 0 and proc.stdout == whole
    log = _log(tmp_path)
    for target in ("/dev/stdout", log):                                    # >> log
        with open(log, "ab") as appending:
            proc = tracefmt([*base, "-o", target], stdout=appending)
        assert proc.returncode == 0, proc.stderr
    assert log.read_bytes() == OLD + whole + whole
    with open(log, "wb") as truncated:                                      # > log
        proc = tracefmt([*base, "-o", "/dev/stdout"], stdout=truncated)
    assert proc.returncode == 0, proc.stderr
    assert log.read_bytes() == whole and os.listdir(tmp_path) == ["log"]


def test_display_beside_an_output_file_still_copies_the_text(decode, tmp_path):
    args, whole = decode
    out = tmp_path / "out.txt"
    proc = tracefmt([*args, "-nosummary", "-q", "-display", "-o", out])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == whole and out.read_bytes() == whole


#: ``wpptrace ARGS`` in which the run fails once every window is written (fmt -j: in this process)
FAILING_AFTER_THE_WINDOWS = """
import sys
from wpptrace.decoder import parallel
real = parallel._Assembly.finish
def finish(self):
    real(self)
    raise RuntimeError("broke after the windows")
parallel._Assembly.finish = finish
from wpptrace.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("summary", [False, True])
def test_a_failing_jobs_run_puts_its_error_after_the_text_it_wrote(decode, tmp_path, summary):
    """``fmt -j 2 > log 2>&1`` (and ``-o /dev/stdout --summary /dev/stderr``): each process
    writes its windows at their places; when the run then fails, the error line follows the
    text written rather than going where this process's first window ended, over the others."""
    args, whole = decode
    log = tmp_path / "log"
    more = ["-o", "/dev/stdout", "--summary", "/dev/stderr"] if summary else []
    with open(log, "wb") as both:
        proc = subprocess.run([sys.executable, "-c", FAILING_AFTER_THE_WINDOWS, "fmt", *map(str, args),
                               "-j", "2", *more], stdin=subprocess.DEVNULL, stdout=both, stderr=both,
                              timeout=300)
    assert proc.returncode == 1
    assert log.read_bytes() == whole + b"wpptrace fmt: error: broke after the windows\n"


def test_a_jobs_run_failing_early_leaves_the_offset_at_the_end_of_what_it_wrote(decode, tmp_path,
                                                                                monkeypatch):
    """Failing before the workers are done: whatever windows were written at their places,
    the descriptor's offset is where the written text ends (nothing written past it)."""
    args, whole = decode
    path, tmf_dir = args[0], args[2]
    monkeypatch.setattr(parallel._Assembly, "finish", lambda self: (_ for _ in ()).throw(
        RuntimeError("broke before the workers ended")))
    runs = []
    real = parallel._Places.for_output
    monkeypatch.setattr(parallel._Places, "for_output", classmethod(
        lambda cls, *a, **k: runs.append(real(*a, **k)) or runs[-1]))
    log = tmp_path / "log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.set_inheritable(fd, True)
        opts = cli_fmt.FmtOptions(files=[str(path)], tmf_dirs=[str(tmf_dir)], utc=True, jobs=2,
                                  output=f"/dev/fd/{fd}")
        with pytest.raises(RuntimeError, match="broke before the workers ended"):
            cli_fmt.run_fmt(opts, out=io.StringIO(), err=io.StringIO())
        assert runs and runs[0] is not None            # written at places
        text = log.read_bytes()
        assert 0 < len(text) <= len(whole) and os.lseek(fd, 0, os.SEEK_CUR) == len(text)
        # (a window held by the worker when it was stopped was never written: zeros there)
        assert all(got in (want, 0) for got, want in zip(text, whole))
        assert text.strip(b"\0")                         # and some window was written
    finally:
        os.close(fd)


def _without_proc(monkeypatch) -> None:
    """As where /proc is not mounted: /dev/stdout, /dev/fd are links into /proc/self, not there."""
    def through_proc(path, follow: bool) -> bool:
        name = os.path.abspath(os.fsdecode(path))
        return name.startswith(("/proc/", "/dev/fd/")) or name == "/dev/fd" and follow or \
            follow and name in ("/dev/stdin", "/dev/stdout", "/dev/stderr")

    for name, follow in (("stat", True), ("lstat", False), ("listdir", True)):
        real = getattr(os, name)

        def gone(path=".", *args, real=real, follow=follow, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and through_proc(path, follow):
                raise FileNotFoundError(2, "No such file or directory", path)
            return real(path, *args, **kwargs)
        monkeypatch.setattr(os, name, gone)


def test_outputs_through_descriptors_are_checked_without_proc(tmp_path, monkeypatch, descriptors):
    """Without /proc, what /dev/fd/N (/dev/stdout) names is what descriptor N is open on:
    ``-o /dev/stdout --summary /dev/stderr > log 2> log`` is still refused, and so is
    ``-o /dev/stdout >> x.etl``."""
    log, etl = tmp_path / "log", tmp_path / "x.etl"
    log.write_bytes(b"")
    etl.write_bytes(b"")
    _without_proc(monkeypatch)
    with pytest.raises(FileNotFoundError):                                 # (as without /proc)
        os.stat("/dev/stdout")
    one, other = descriptors.open(log, os.O_WRONLY), descriptors.open(log, os.O_WRONLY)
    with pytest.raises(outputs.OutputRefused, match="same file as the output"):
        outputs.check_outputs([one, other], [])                            # two offsets
    outputs.check_outputs([one, descriptors.dup(one)], [])                 # one open file
    with pytest.raises(outputs.OutputRefused, match="same file as the input"):
        outputs.check_outputs([descriptors.open(etl, os.O_WRONLY | os.O_APPEND)], [etl])
    assert cli_fmt._unwritable(one) is None                               # (no /dev/fd directory)
