"""A session host whose runtime directory a clean-up removed while it ran: it ends, and it does
not make the directory (nor a registry in it) again as it leaves the registry."""
from __future__ import annotations

import subprocess

from provider_scripts import run_script

ERROR_WMI_INSTANCE_NOT_FOUND = 4201

_REMOVED = """
    import shutil
    from wpptrace.provider.sessions import session_info
    runtime, out = sys.argv[1:3]

    handle = P.StartTrace("ends-with-dir", props("s", P.EVENT_TRACE_FILE_MODE_SEQUENTIAL))
    host = session_info(handle=handle).host_pid
    shutil.rmtree(runtime)                   # a clean-up of /tmp: its socket gone, the host stops
    print(wait_gone(host), os.path.exists(runtime))
"""


def test_a_host_ending_after_its_directory_was_removed_does_not_make_it_again(tmp_path):
    """The host stopped once it found its socket removed with the directory, and leaving the
    registry (its enables taken out, its entry freed) made the directory again, with an empty
    registry, which stayed behind."""
    runtime = tmp_path / "rt"
    done = run_script(_REMOVED, runtime, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert not runtime.exists()


def test_a_host_whose_start_failed_as_the_registry_alone_was_removed_ends(
        build_c_program_with_test_points, out):
    """A clean-up removed the registry file alone while StartTrace waited for its host: the host
    registered in the removed registry and answered, the caller found the registry made again
    and failed (the handle would name another process's session there). The host, its socket
    still in the directory, ran on where nobody could find or stop it."""
    program = build_c_program_with_test_points("start_registry_removed")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["start", str(ERROR_WMI_INSTANCE_NOT_FOUND), "ended", "1"]


def test_a_host_found_registered_after_its_start_was_given_up_on_ends_as_the_registry_alone_was_removed(
        build_c_program_with_test_points, out):
    """StartTrace gave up waiting for its host's answer, then found the host had registered the
    session (RUNNING) and took it as started; a clean-up had removed the registry file alone
    meanwhile, so it failed. No answer had brought the host's pid: the host, its socket still in
    the directory, ran on where nobody could find or stop it."""
    program = build_c_program_with_test_points("start_registry_removed")
    done = subprocess.run([str(program), str(out), "late"], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["start", str(ERROR_WMI_INSTANCE_NOT_FOUND), "ended", "1"]
