"""A provider process binding its endpoint socket again after a clean-up of the runtime directory
(made again), while the process exits or forks: no socket is left behind in the directory, nor
open in the child."""
from __future__ import annotations

import pytest


@pytest.fixture
def runtime(out):
    """A runtime directory of this test's own."""
    return out / "rt"


def test_a_socket_bound_again_while_the_process_exits_is_not_left_behind(rebind_races, runtime, tmp_path):
    """The endpoint thread went on after the core's atexit handler removed the socket (none was
    there yet) and bound it in the directory made again: it stayed there once the process ended."""
    pid = rebind_races("exit", tmp_path)["pid"]
    assert not (runtime / f"p-{pid}.sock").exists()
    assert sorted(p.name for p in runtime.iterdir() if p.name.startswith("p-")) == []


def test_a_child_forked_while_the_socket_is_bound_again_has_no_copy_of_it(rebind_races, runtime, tmp_path):
    """The socket bound again was not yet where the child's fork handler closes the endpoint's
    socket: the child kept a copy of the parent's listening socket for its whole life."""
    assert rebind_races("fork", tmp_path) == {"leaked": 0}


def test_a_fork_does_not_wait_for_the_registry_while_the_socket_is_bound_again(rebind_races, runtime, tmp_path):
    """The socket was bound again with the endpoint's lock held across the wait for the registry's
    lock: with that lock held by a stopped process, fork() waited (as long as the registry's lock
    is waited for) for the endpoint's. The fork returns while the wait goes on; the socket is
    bound once the holder is gone."""
    assert rebind_races("fork_busy", tmp_path) == {"prompt": 1, "bound": 1}


def test_an_exit_does_not_wait_for_the_registry_while_the_socket_is_bound_again(rebind_races, runtime, tmp_path):
    """The same at exit: the core's handler at exit waited for the endpoint's lock. And the socket
    the thread bound once the holder let the lock go, after the core's handler at exit had run,
    was left in the directory by the process that ended before the thread removed it."""
    result = rebind_races("exit_busy", tmp_path)
    assert result == {"prompt": 1, "pid": result["pid"], "rebound": 1}
    assert not (runtime / f"p-{result['pid']}.sock").exists()
    assert sorted(p.name for p in runtime.iterdir() if p.name.startswith("p-")) == []


def test_a_directory_made_again_with_the_removed_ones_inode_number_gets_the_socket_at_once(
        rebind_races, runtime, tmp_path):
    """The directory made again had the inode number of the one the socket was bound in (a disk
    filesystem may reuse it): the endpoint took it for the directory that stayed, and put the bind
    off for five checks, as for a clean-up that removed only the files."""
    assert rebind_races("reused", tmp_path) == {"deferred": 0}
