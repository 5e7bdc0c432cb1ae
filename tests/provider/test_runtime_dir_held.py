"""The runtime directory held through one descriptor: a fork that goes on without its lock
while a check holds it again at another number."""
from __future__ import annotations

import os
import subprocess


def test_a_fork_during_a_check_leaves_the_child_paths_to_the_runtime_directory(
        build_c_program_with_test_points, tmp_path):
    """The application closed the descriptor the runtime directory was held at (another
    directory of its own took the number); a check opened the directory again at another number
    and was held between storing the descriptor and storing its path. A fork that gave up
    waiting for the check's lock then left the child the new descriptor with the old number's
    path, for good (its checks found the descriptor right and never wrote the path): its paths
    in the runtime directory went to the application's directory. The child holds the runtime
    directory again."""
    here = os.path.dirname(__file__)
    with open(os.path.join(here, "fork_held_dir.c")) as f:
        program = build_c_program_with_test_points("fork_held_dir", f.read(), "-I", here)
    runtime, other = tmp_path / "rt", tmp_path / "other"
    other.mkdir(mode=0o700)
    done = subprocess.run([str(program), str(runtime), str(other)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr)
    out = done.stdout.split()
    assert dict(zip(out[::2], map(int, out[1::2]))) == {"parent": 1, "forked": 1, "child": 1}


def test_a_directory_made_again_with_the_removed_ones_inode_number_is_held(
        build_c_program_with_test_points, tmp_path):
    """The runtime directory held is removed, and the one made again at its name has the inode
    number of the removed one (a disk filesystem may reuse it). The check took the two for the
    same directory and kept the removed one: nothing could be made in it (the registry was not
    made, sockets not bound). A held directory with no name left is another: the new one is
    held, and the registry lands in it."""
    here = os.path.dirname(__file__)
    with open(os.path.join(here, "runtime_dir_made_again.c")) as f:
        program = build_c_program_with_test_points("runtime_dir_made_again", f.read(), "-I", here)
    done = subprocess.run([str(program), str(tmp_path / "rt")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr)
    out = done.stdout.split()
    assert dict(zip(out[::2], map(int, out[1::2]))) == {"registry": 0, "landed": 1}
