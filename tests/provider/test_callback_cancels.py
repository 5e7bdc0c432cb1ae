"""A thread cancelled inside one ControlCallback, while the same change was still to reach the
other registrations of the GUID: those registrations hear it all the same (from the endpoint
thread), and are never listed as enabled before they did."""
from __future__ import annotations

import pytest


@pytest.fixture
def out(tmp_path, monkeypatch):
    """A directory for the session's file, and a runtime directory of this test's own."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("WPPTRACE_RUNTIME_DIR", str(runtime))
    return tmp_path


@pytest.mark.parametrize("mode", ["enable", "enable-private"])
def test_an_enable_cancelled_in_one_callback_still_reaches_the_other_registrations(callback_cancels, out, mode):
    """R1's ENABLE callback is cancelled before R2's ran. R2 counted as enabled all the same: it
    never heard the ENABLE, enabling again with the same level and flags queued nothing for
    it, and LIST said it was enabled."""
    assert callback_cancels(mode, out) == {"cancelled": 1, "r1_enables": 1, "r1_disables": 0, "r2_enables": 1,
                                           "r2_disables": 0, "listed": 1, "stop": 0}


@pytest.mark.parametrize("mode", ["disable", "disable-private"])
def test_a_disable_cancelled_in_one_callback_still_reaches_the_other_registrations(callback_cancels, out, mode):
    """R1's DISABLE callback is cancelled before R2's ran: R2 never heard the DISABLE and its
    provider went on writing into the session."""
    assert callback_cancels(mode, out) == {"cancelled": 1, "r1_enables": 1, "r1_disables": 1, "r2_enables": 1,
                                           "r2_disables": 1, "listed": 0, "stop": 0}
