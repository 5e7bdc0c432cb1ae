"""The runtime directory's held descriptor and its lock: fork() never waits without a bound for
a check held on the filesystem, and holding the directory again costs nothing that grows."""
from __future__ import annotations


def test_a_fork_does_not_wait_for_a_runtime_directory_check_held_on_its_parent(runtime_dir_holds, tmp_path):
    """A check of the runtime directory holds the directory's lock across the open of its parent,
    which a hung filesystem may never answer. fork() waited for that lock for as long, with
    the endpoint's, the registrations' and the attach locks held (every other thread using the
    core stopped too). It waits as long as for the registry, then forks."""
    assert runtime_dir_holds("dir-check-held", tmp_path / "rt") == {"forked": 1, "check": 0}


def test_holding_the_directory_again_at_a_number_used_before_takes_its_path_back(runtime_dir_holds, tmp_path):
    """The application closing the held descriptor again and again (two numbers taking turns):
    each time the directory was held again a new path string was made and kept for good."""
    assert runtime_dir_holds("re-held", tmp_path / "rt") == {"paths": 2}
