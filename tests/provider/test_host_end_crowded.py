"""A host StartTrace makes stop, with no descriptor left to read its start once its pidfd is
taken."""
from __future__ import annotations

import subprocess

import pytest


def test_a_host_whose_start_cannot_be_read_after_its_pidfd_is_counted_as_not_stopped(build_c_program):
    """pidfd_open took the last free descriptor, and the host's start could not then be read
    from /proc (EMFILE): it is not known to be the host, so it is not signalled, and it was
    neither signalled nor counted, running on unfindable by name with nothing said. Now it is
    counted as a host that could not be told (wpptrace_hosts_not_stopped)."""
    program = build_c_program("host_end_crowded")
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    if done.stdout.split()[:2] == ["pidfd", "0"]:
        # an older container's seccomp profile refuses pidfd_open: the host is told by its pid
        # (supported), and the pidfd path this test is about cannot run here
        pytest.skip("pidfd_open is refused here: the host is stopped by its pid instead")
    assert done.stdout.split()[:6] == ["pidfd", "1", "signalled", "0", "unstopped", "1"]


def test_a_forked_child_does_not_report_its_parent_hosts_not_stopped(build_c_program):
    """The count of hosts that could not be told is the process's own: a child forked after its
    parent counted one reported it again at its exit."""
    program = build_c_program("host_end_crowded")
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[6:] == ["forked", "0"]
