"""A thread cancelled inside one ControlCallback, while the same change was still to reach the
other registrations of the GUID: those registrations hear it all the same (from the endpoint
thread, or, in a process without one, from the next EnableTrace), and are never listed as
enabled before they did."""
from __future__ import annotations

import pytest


ENABLE_HEARD = {"cancelled": 1, "listed_before": 0, "undelivered": 0, "heard_early": 0, "r1_enables": 1, "r1_disables": 0,
                "r2_enables": 1, "r2_disables": 0, "listed": 1, "stop": 0}
DISABLE_HEARD = {"cancelled": 1, "listed_before": 0, "undelivered": 0, "heard_early": 0, "r1_enables": 1, "r1_disables": 1,
                 "r2_enables": 1, "r2_disables": 1, "listed": 0, "stop": 0}


@pytest.mark.parametrize("mode", ["enable", "enable-private"])
def test_an_enable_cancelled_in_one_callback_still_reaches_the_other_registrations(callback_cancels, out, mode):
    """R1's ENABLE callback is cancelled before R2's ran. R2 counted as enabled all the same: it
    never heard the ENABLE, enabling again with the same level and flags queued nothing for
    it, and LIST said it was enabled. Until the endpoint thread delivered it, it is not listed as
    enabled; once the endpoint's retries are all done it heard the ENABLE once."""
    assert callback_cancels(mode, out) == ENABLE_HEARD


@pytest.mark.parametrize("mode", ["disable", "disable-private"])
def test_a_disable_cancelled_in_one_callback_still_reaches_the_other_registrations(callback_cancels, out, mode):
    """R1's DISABLE callback is cancelled before R2's ran: R2 never heard the DISABLE and its
    provider went on writing into the session."""
    assert callback_cancels(mode, out) == DISABLE_HEARD


@pytest.mark.parametrize("change", ["enable", "disable"])
def test_without_an_endpoint_thread_the_next_call_delivers_what_a_cancel_left_owed(callback_cancels, out, change):
    """No endpoint thread (the runtime directory refused once the private session started: others
    of the group may write to it; the program makes it so, then private again to stop): the change owed to R2 was lost, R2 kept
    writing into the session it was never told was disabled (or never wrote into the one that
    enabled it), and nothing counted it. It is counted as undelivered when asked. A ControlTrace
    QUERY, an UnregisterTraceGuids of another provider and a RegisterTraceGuids made by a thread
    holding the lock R2's callback takes return without running R2's callback (it ran there and
    the thread deadlocked on itself; Windows runs no other registration's callback in them); a
    later EnableTrace delivers the change, once."""
    expected = dict(ENABLE_HEARD if change == "enable" else DISABLE_HEARD, undelivered=1)
    assert callback_cancels(f"{change}-alone", out) == expected


@pytest.mark.parametrize("change", ["enable", "disable"])
def test_with_the_endpoint_closed_the_next_call_delivers_what_a_cancel_left_owed(callback_cancels, out, change):
    """The same with the endpoint closed by the application (wpptrace_endpoint_close), with no
    RegisterTraceGuids under the lock (it starts an endpoint again)."""
    expected = dict(ENABLE_HEARD if change == "enable" else DISABLE_HEARD, undelivered=1)
    assert callback_cancels(f"{change}-closed", out) == expected


@pytest.mark.parametrize("change", ["enable", "disable"])
def test_an_endpoint_closed_after_its_thread_took_a_change_owed_leaves_it_delivered(callback_cancels, out, change):
    """The endpoint is closed by another thread just after its thread took the change owed to R2
    to deliver: the thread waited a second before delivering it and ended first, and the change was
    neither delivered by a later call nor counted. It is delivered, once: by the thread before it
    ends, or by the next EnableTrace."""
    got = callback_cancels(f"{change}-closing", out)
    got.pop("heard_early")
    expected = dict(ENABLE_HEARD if change == "enable" else DISABLE_HEARD)
    expected.pop("heard_early")
    assert got == expected


@pytest.mark.parametrize("change", ["enable", "disable"])
def test_an_endpoint_closed_with_a_change_owed_it_could_not_deliver_hands_it_back(callback_cancels, out,
                                                                                  change):
    """The same, the thread's delivery finding the change busy (as a host too slow to hand out
    its session memory makes it): the thread ended with the change owed and no later call
    delivered it. It hands the change back as it ends: R2 has not heard it before the next
    EnableTrace, which delivers it, once."""
    expected = ENABLE_HEARD if change == "enable" else DISABLE_HEARD
    assert callback_cancels(f"{change}-closing-busy", out) == expected
