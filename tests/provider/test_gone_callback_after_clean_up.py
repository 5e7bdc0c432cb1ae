"""The ControlCallbacks a STOP runs when it finds a session's host gone are the application's: a
call of theirs that starts something makes the runtime directory again, as in any other
callback."""
from __future__ import annotations

import subprocess

ERROR_WMI_INSTANCE_NOT_FOUND = 4201


def test_a_gone_hosts_disable_callback_after_a_clean_up_may_start_a_session(
        build_c_program_with_test_points, out):
    """The STOP of a session whose host was killed freed its entry; a clean-up then removed the
    runtime directory, and the provider's DISABLE callback, run by that STOP, started a private
    session: it was refused, as the STOP itself never makes the directory. Now it makes it."""
    program = build_c_program_with_test_points("gone_callback_after_clean_up")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gone", "1", "stopped", str(ERROR_WMI_INSTANCE_NOT_FOUND),
                                   "called", "0", "there", "1"]
