"""A session host that cannot start a thread for a STOP's work (its process at the thread limit)
does that work itself: the STOP is answered, the log file complete."""
from __future__ import annotations

import errno
import subprocess

import provider_etlcheck as etlcheck


def test_a_stop_is_answered_when_the_host_has_no_thread_for_it(build_c_program_with_test_points, out):
    """The host ran the stop in its serve loop, then joined a thread it never started (a
    pthread_t never set: what its stack held there): it died before answering, and the STOP
    said the session was not found. It logs that the serve loop did the work."""
    program = build_c_program_with_test_points("stopper_refused")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["stop", "0"]
    contents = etlcheck.read(out / "stopper-refused.etl")
    assert contents.header["EndTime"] != 0
    assert [int.from_bytes(m.args, "little") for m in contents.messages] == list(range(20))
    said = [line.split(" ", 1)[1] for log in (out / "rt").glob("s-*.log") for line in log.read_text().splitlines()
            if "no thread" in line]
    assert said == [f"no thread for the STOP's work (error {errno.EAGAIN}): done in the serve loop, which "
                    "answers nothing else meanwhile"]
