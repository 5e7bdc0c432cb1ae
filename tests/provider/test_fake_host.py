"""A real-time subscription and a control request report each way a session's host fails them
by one table: a host alive but busy or slow is ERROR_BUSY, a gone one
ERROR_WMI_INSTANCE_NOT_FOUND, one that answers what is no reply of ours ERROR_BAD_FORMAT, and a
host's own refusal comes through as it said it."""
from __future__ import annotations

import pytest

from wpptrace.winerror import CODES


@pytest.mark.parametrize("mode, subscribe, query", [
    ("busy", "ERROR_BUSY", "ERROR_BUSY"),
    ("refused", "ERROR_WMI_INSTANCE_NOT_FOUND", "ERROR_WMI_INSTANCE_NOT_FOUND"),
    ("busy-closed", "ERROR_BUSY", "ERROR_BUSY"),
    ("silent", "ERROR_BUSY", "ERROR_BUSY"),
    ("hangup", "ERROR_WMI_INSTANCE_NOT_FOUND", "ERROR_WMI_INSTANCE_NOT_FOUND"),
    ("garbage", "ERROR_BAD_FORMAT", "ERROR_BAD_FORMAT"),
    ("long", "ERROR_BAD_FORMAT", "ERROR_SUCCESS"),
    ("unbound", "ERROR_WMI_INSTANCE_NOT_FOUND", "ERROR_WMI_INSTANCE_NOT_FOUND"),
    ("backlog", "ERROR_BUSY", "ERROR_BUSY"),
])
def test_a_subscription_and_a_query_report_how_the_host_failed_them(fake_host, out, mode, subscribe, query):
    """Each failure by its own status. A subscription said ERROR_WMI_INSTANCE_NOT_FOUND for
    every one (a busy host looked like a stopped session); a request whose connection the host
    closed after refusing it (no room for another connection) said so too, and one answered
    with what is no frame of ours."""
    assert fake_host(mode, out) == {"subscribe": CODES[subscribe], "query": CODES[query]}


def test_a_host_serving_as_many_consumers_as_it_can_says_busy(fake_host, out):
    """A host serves 64 consumers of a session at a time; the next one is told ERROR_BUSY (it
    was told ERROR_OUTOFMEMORY, as if the host had run out of memory)."""
    assert fake_host("consumers", out) == {"subscribed": 64, "subscribe": CODES["ERROR_BUSY"]}


def test_an_enable_entry_naming_no_slot_is_left_alone(fake_host, out):
    """The registry is a file every process of the user can write. An enable entry whose
    LoggerId names no slot of the table indexed the table with it: listing the providers, and
    the endpoint thread of every provider process checking an ENABLE against the registry, read
    far beyond it (the traced application crashed). It names no session: nothing is enabled by
    it, the provider this process registered is listed, not enabled."""
    assert fake_host("odd-enable", out) == {"listed": 0, "providers": 1, "enabled_entries": 0, "enable": 0,
                                            "enabled": 0}


def test_a_made_up_disable_for_a_session_still_holding_the_provider_changes_nothing(fake_host, out):
    """Whoever disables a provider, stops a session or cleans up after a gone host takes the
    enables out of the registry before telling the provider processes. A DISABLE another
    process of the user makes up while the registry still holds the enable (of the provider, or
    a whole session's) disabled the provider all the same (its ControlCallback was told so, and
    it stopped logging). It changes nothing now; the session's stop still disables it."""
    assert fake_host("made-up-disable", out) == {"disable_guid": 0, "disable_all": 0, "enabled_after": 1,
                                                 "enabled_stopped": 0}


@pytest.mark.parametrize("mode, said", [("silent-flush", "ERROR_BUSY"), ("slow-flush", "ERROR_SUCCESS")])
def test_a_flush_or_update_waits_long_only_once_the_host_took_it_up(fake_host, out, mode, said):
    """A host that takes nothing up (stopped) makes FLUSH and UPDATE ERROR_BUSY within the wait
    any request has (shortened here); they held the calling thread for the long wait meant for
    the disk work (made 10 minutes here: the program's own time limit ends it first). A host that
    took them up is waited for past that wait, and answers."""
    assert fake_host(mode, out) == {"flush": CODES[said], "update": CODES[said]}
