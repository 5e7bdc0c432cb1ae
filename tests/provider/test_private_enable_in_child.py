"""A forked child's provider never joins a session for an enable it inherited from its parent's
private session: that session has no host and is the parent's alone, and after a clean-up of the
runtime directory a session of another process may have its slot, generation and socket path."""
from __future__ import annotations

import subprocess


def test_a_child_provider_does_not_join_for_its_parents_private_session(build_c_program_with_test_points, out):
    """The parent enabled the GUID on its private session (the enable kept no incarnation) and
    forked; in the child the runtime directory was removed and another process started a session
    with the same slot and generation in the registry made again. The child's provider joined
    that session as it registered, unchecked: it was enabled on another process's session."""
    program = build_c_program_with_test_points("private_enable_in_child")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, (done.stdout, done.stderr)
    words = done.stdout.split()
    said = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    # the setup holds: the other session has the private one's slot and generation
    assert said["other_slot"] == said["private_slot"]
    assert said["other_generation"] == said["private_generation"]
    assert (said["started"], said["enabled_on"], said["other"], said["enabled"], said["stop"]) == (0, 0, 0, 0, 0)
