"""StartTrace of a hosted session while a clean-up removed only the runtime directory's registry
file (its socket and the directory stay, so the host runs on) and this process found the
registry made again before the handle was handed out; and a start given up across a clean-up
whose slot and generation another process claimed in the registry made again."""
from __future__ import annotations

import wpptrace.provider as P

NOT_FOUND = P._lib.ERROR_WMI_INSTANCE_NOT_FOUND
BUSY = 170


def test_a_start_whose_registry_was_removed_neither_joins_nor_asks_and_stops_its_host(
        start_claim_across_clean_up, out):
    """StartTrace found the registry made again once its host answered: it joined the slot's
    session and asked it for its properties (in a registry made again the slot may be another
    process's session) before failing with ERROR_WMI_INSTANCE_NOT_FOUND. Now it does neither,
    and the host it started, which kept its socket and ran on unfindable by name, is made to
    stop."""
    assert start_claim_across_clean_up("removed", out) == {
        "start": NOT_FOUND, "handle": 0, "joins": 0, "ended": 1}


def test_a_start_whose_host_is_in_the_registry_made_again_hands_out_its_handle(
        start_claim_across_clean_up, out):
    """The registry made again holds this very host (its pid and start) in the slot, as the host
    puts its session back there: StartTrace failed all the same. Now the handle is handed out and
    names the session, which answers and stops by it."""
    assert start_claim_across_clean_up("put-back", out) == {
        "start": 0, "handle": 1, "joins": 1, "query": 0, "stop": 0, "ended": 1}


def test_a_start_given_up_across_a_clean_up_leaves_another_process_claim_alone(
        start_claim_across_clean_up, out):
    """StartTrace gave up waiting for its host; meanwhile the registry was made again and another
    process claimed the slot with the same generation there. StartTrace freed that claim, and its
    host, when it went on, took the claim for its caller's and ran its session in it. Now the
    claim stays the other process's and the host ends."""
    assert start_claim_across_clean_up("claimed", out) == {
        "start": BUSY, "handle": 0, "joins": 0, "kept": 1, "left": 1, "ended": 1}


def test_a_host_ended_across_a_clean_up_leaves_another_process_session_enabled(
        start_claim_across_clean_up, out):
    """The registry made again gave the slot and generation to another process's running session
    with a provider enabled on it, and StartTrace, finding it so, made its own host stop. The
    host, stopping as by STOP, took that session's enable out of the registry and told every
    provider to drop the session (a DISABLE for its slot and generation): the other session ran
    on with no provider, nobody told. Now a host left out of the registry held changes nothing
    there and tells no provider."""
    assert start_claim_across_clean_up("taken", out) == {
        "start": NOT_FOUND, "handle": 0, "joins": 0, "enabled": 1, "told": 0, "ended": 1}


def test_a_start_whose_registry_was_removed_stops_its_host_without_a_pidfd(
        start_claim_across_clean_up, out):
    """As the first case, but pidfd_open refused (EPERM, as an older container's seccomp profile
    gives): the host was not signalled at all, and ran on unfindable by name, nothing said. Now
    its start is checked and it is signalled by its pid."""
    assert start_claim_across_clean_up("refused", out) == {
        "start": NOT_FOUND, "handle": 0, "joins": 0, "unstopped": 0, "ended": 1}
