"""A forked child joins again the sessions it inherited: after a clean-up of the runtime
directory, a session of the registry made again may have the same slot, generation and socket
path as the one inherited. The JOIN carries the incarnation of the registry the session was
found in, and that host refuses it."""
from __future__ import annotations

import subprocess


def test_a_forked_childs_rejoin_is_refused_by_a_host_of_a_registry_made_again(
        build_c_program_with_test_points, out):
    """The parent was enabled by a session in another process, then the runtime directory was
    removed and another process started a session in the registry made again (same slot and
    generation). The child forked before the parent heard of the first session's end joined
    the new session's host, kept its provider enabled and watched the wrong host."""
    program = build_c_program_with_test_points("rejoin_incarnation")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, (done.stdout, done.stderr)
    words = done.stdout.split()
    said = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    # the setup holds: the other session has the first one's slot and generation
    assert said["other_slot"] == said["first_slot"]
    assert said["other_generation"] == said["first_generation"]
    assert (said["enabled"], said["other"], said["child"], said["stop"]) == (1, 0, 0, 0)
