"""A provider joins a session of another process with the incarnation of the registry it found
the session in, taken with its slot and generation: after a clean-up of the runtime directory, a
session of the registry made again may have the same slot, generation and socket path."""
from __future__ import annotations

import subprocess


def test_a_join_carries_the_incarnation_the_session_was_found_in(build_c_program_with_test_points, out):
    """The provider found the first session (its enable held in the registry) as it registered;
    before it joined, the runtime directory was removed and another process started a session
    with the same slot and generation in the registry made again. The JOIN took the incarnation
    from the registry again, the new one's, and the other session's host accepted it: the
    provider was enabled on another process's session."""
    program = build_c_program_with_test_points("join_incarnation")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, (done.stdout, done.stderr)
    words = done.stdout.split()
    said = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    # the setup holds: the other session has the first one's slot and generation
    assert said["other_slot"] == said["first_slot"]
    assert said["other_generation"] == said["first_generation"]
    assert (said["started"], said["other"], said["enabled"], said["stop"]) == (0, 0, 0, 0)
