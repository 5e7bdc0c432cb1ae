"""The control plane held at an exact step (test points compiled in) while other processes use
it: the endpoint thread never touches a descriptor it no longer watches, and cleaning up after
a gone host never removes what a newer session made."""
from __future__ import annotations

import provider_etlcheck
import pytest


@pytest.fixture
def out(out):
    """A directory for what control_races.c writes, its sessions in a runtime directory of this
    test's own (so the sessions it starts take slot 1, one after the other)."""
    made = out / "out"
    made.mkdir()
    return made


def test_the_endpoint_thread_never_reads_a_descriptor_it_no_longer_watches(control_races, out):
    """A session started in the slot of one just stopped replaces (closes) the connection this
    process watched the old one by, while the endpoint thread may be polling it (on a loaded
    machine it had not run since; held here). The number goes to the next descriptor the
    process opens: the thread read it, taking bytes of a ControlTrace reply (ControlTrace then
    failed with ERROR_WMI_INSTANCE_NOT_FOUND) or of the application's own data."""
    assert control_races("join-reuse", out) == {"slot_a": 1, "slot_b": 1, "untouched": 64, "of": 64}


def test_cleaning_up_after_a_gone_host_leaves_a_newer_sessions_socket(control_races, out):
    """STOP of a session whose host was killed frees its registry entry and removes its socket.
    Another process may start a session in the freed slot in between, whose host binds the same
    socket path: the cleanup must not remove that (the new session was unreachable, and its
    host, finding its socket gone, stopped itself)."""
    assert control_races("gone-reuse", out) == {"slot_a": 1, "start_b": 0, "query_b": 0, "stop_b": 0}


def test_a_stopping_host_leaves_the_socket_of_a_session_started_in_its_slot(control_races, out):
    """A host that stops frees its registry entry, then removes its socket. Another process may
    start a session in the freed slot in between, whose host binds the same socket path: the
    stopping host must not remove that (the new session was unreachable, and its host, finding
    its socket gone, stopped itself)."""
    assert control_races("stop-reuse", out) == {"slot_a": 1, "query_b": 0, "stop_b": 0}


def test_a_stopping_host_leaves_the_entry_and_socket_of_a_session_that_took_its_slot(control_races, out):
    """A running host can look gone to another process (a host in another PID namespace
    sharing the runtime directory: its pid names another process, or none, there). A session
    started there cleans up its entry and takes the slot, and its host binds the same socket
    path. When the first host stops, it must leave the registry entry and the socket alone:
    they are the newer session's (it freed that entry and removed that socket, and the newer
    session could no longer be controlled)."""
    assert control_races("judged-reuse", out) == {"slot_a": 1, "slot_b": 1, "a_ended": 1, "query_b": 0,
                                                   "stop_b": 0}


def test_a_control_request_never_reaches_a_newer_session_in_the_same_slot(control_races, out):
    """ControlTrace finds the session a handle means in the registry, then sends its request to
    the host at the slot's socket path. The session may stop meanwhile and a newer one take the
    slot, its host binding the same path: the request must not reach that host (a STOP for the
    old handle stopped the newer session; it fails as for any stopped session)."""
    assert control_races("control-reuse", out) == {"slot_a": 1, "replaced": 1, "stop_a": 4201,
                                                    "query_b": 0, "stop_b": 0}


def test_a_real_time_subscription_never_reaches_a_newer_session_in_the_same_slot(control_races, out):
    """As above for a real-time consumer: it finds the session by name in the registry, then
    subscribes at the slot's socket path. A newer session that took the slot meanwhile must not
    be subscribed to under the old one's name (the consumer got another session's events)."""
    assert control_races("subscribe-reuse", out) == {"slot_a": 1, "replaced": 1, "subscribe_a": 4201,
                                                      "query_b": 0, "stop_b": 0}


def test_session_info_for_a_handle_whose_slot_a_newer_session_took_says_not_found(control_races, out):
    """As above for wpptrace_session_info: the session a handle means stopped and a newer one
    took its slot after the query found it. The host refuses the request (another generation):
    the old session is gone, ERROR_WMI_INSTANCE_NOT_FOUND as ControlTrace says, not a session
    whose host died (it reported the old host's pid, and `session stop` a host gone)."""
    assert control_races("info-reuse", out) == {"slot_a": 1, "replaced": 1, "info_a": 4201, "flags": 0,
                                                 "host_pid": 0, "query_b": 0, "stop_b": 0}


def test_a_host_whose_caller_died_does_not_take_over_the_slot_of_a_newer_session(control_races, out):
    """The caller of StartTrace dies while its host starts: the slot it claimed counts as free
    and another process starts a session there, whose host binds the same socket path. The
    first host must then not register in that slot (it took the entry over, and kept running
    after the newer session stopped, with no entry and no socket: nobody could stop it)."""
    assert control_races("host-reuse", out) == {"slot_b": 1, "a_took_entry": 0, "query_b": 0,
                                                 "stop_b": 0}


def test_a_host_whose_caller_died_does_not_remove_the_socket_of_a_newer_session(control_races, out):
    """As above, the first host held before it binds its socket path, which the newer session's
    host has bound by then: it must not remove that socket to bind its own (the newer session
    was unreachable: its path led to a socket nobody served)."""
    assert control_races("listen-reuse", out) == {"slot_b": 1, "a_took_entry": 0, "query_b": 0,
                                                   "stop_b": 0}


def test_a_host_whose_session_fails_to_run_leaves_the_socket_of_a_newer_session(control_races, out):
    """As above, the first host held once it bound its socket path, and its session then fails
    to run: it removes its socket as it exits, but the path is the newer session's by then
    (its host bound it): that must stay (the newer session was unreachable)."""
    assert control_races("run-reuse", out) == {"slot_b": 1, "a_took_entry": 0, "query_b": 0,
                                                "stop_b": 0}


def test_a_host_whose_caller_died_does_not_empty_the_log_of_a_newer_session(control_races, out):
    """As above, the first host held as it begins, before it opens its log (s-<LoggerId>.log),
    while the newer session's host logs that it runs: the first host must not empty that log
    (it is the newer session's by then)."""
    assert control_races("log-reuse", out) == {"slot_b": 1, "a_took_entry": 0, "query_b": 0,
                                                "stop_b": 0, "b_logged": 1}


def test_a_start_that_gave_up_on_its_host_never_leaves_the_session_running_unreachable(control_races, out):
    """StartTrace waits a while for its host's answer, then gives up and frees the registry
    entry it claimed. The host may have registered the session (RUNNING) just before: it runs
    it, so StartTrace reports it started and it stays reachable (its entry was freed: the
    session kept running where nobody could find or stop it)."""
    assert control_races("late-host", out) == {"start_a": 0, "registered": 1, "query_a": 0, "stop_a": 0}


def test_session_info_of_a_live_host_slow_to_answer_says_busy_not_gone(control_races, out):
    """A host that is alive but does not answer in time (stopped here; on a loaded machine,
    slow) is not gone: wpptrace_session_info fails with ERROR_BUSY, as ControlTrace QUERY does
    for it, instead of reporting the host gone (`session stop` then said it was killed and
    cleaned up after it, and a query showed its counters as zero). Once it answers again it
    is reported as running. QueryAllTraces lists it meanwhile with what the registry holds
    (name, handle, mode; no counters), as Windows lists every session, instead of leaving it
    out (`session list` did not show it)."""
    assert control_races("slow-host", out) == {"info_a": 170, "flags": 0, "query_a": 170, "list": 0,
                                               "listed": 1, "named": 1, "info_later": 0, "flags_later": 0,
                                               "host_pid": 1, "stop_a": 0}


def test_a_live_host_that_does_not_read_a_request_in_time_is_busy_not_gone(control_races, out):
    """As above, the host's connection full before the request is sent: the request cannot even
    be written in time. The host is alive, only busy: wpptrace_session_info and ControlTrace
    QUERY fail with ERROR_BUSY, as for a late reply, not ERROR_WMI_INSTANCE_NOT_FOUND (the
    session looked stopped while its host still ran it)."""
    assert control_races("full-host", out) == {"info_a": 170, "flags": 0, "query_a": 170, "info_later": 0,
                                               "flags_later": 0, "host_pid": 1, "stop_a": 0}


def test_a_start_that_gave_up_on_a_starting_host_leaves_nothing_behind(control_races, out):
    """StartTrace gives up waiting for its host (ERROR_BUSY) while the host has bound its socket
    and runs the session but has not registered it: the session is torn down. The host never
    registers it and ends, the slot is free, no socket is left at its path (one was), and the
    log file is the caller's alone: a header buffer, stopped cleanly, which the host never
    wrote to."""
    assert control_races("start-given-up", out) == {"start_a": 170, "host_ended": 1, "slot_free": 1,
                                                    "socket_left": 0}
    etl = out / "control-races-a.etl"
    header = provider_etlcheck.read(etl).header
    assert (header["BuffersWritten"], etl.stat().st_size) == (1, 1024)
    assert header["EndTime"] >= header["StartTime"] > 0


def test_a_host_whose_entry_another_process_freed_removes_its_socket(control_races, out):
    """A running host can look gone to another process (another PID namespace); starting a
    session there frees its entry, and the new session takes another slot. The host's socket
    then goes with its entry (it stops itself, nobody could reach it by the registry any more),
    and nothing is left at its path."""
    assert control_races("freed-stop", out) == {"slot_a": 2, "slot_b": 1, "a_ended": 1, "socket_left": 0,
                                                "query_b": 0, "stop_b": 0}


def test_a_control_request_never_reaches_a_newer_session_whose_handle_generation_wrapped(control_races, out):
    """As control-reuse, with 255 more sessions started and stopped in the slot meanwhile: the
    newer session has the old one's handle (8 bits of generation), but the request carries the
    registry's whole generation, and the newer host refuses it."""
    assert control_races("wrap-reuse", out) == {"slot_a": 1, "replaced": 1, "same_handle": 1, "stop_a": 4201,
                                                "query_b": 0, "stop_b": 0}


def test_a_host_takes_requests_of_older_builds_that_name_its_session(control_races, out):
    """A request names its session's whole generation; older builds name its low 8 bits (as
    handles carry them), or nothing. A host whose generation is past 255 answers each that
    names it, and refuses one naming another generation of its slot."""
    assert control_races("old-requests", out) == {"whole": 0, "whole_older": 4201, "low8": 0,
                                                  "low8_other": 4201, "unsaid": 0, "stop_a": 0}


def test_a_join_never_maps_a_newer_session_whose_handle_generation_wrapped(control_races, out):
    """A provider process maps a session's memory (JOIN) after it heard of the enable, and the
    session may stop meanwhile and a newer one take its slot. With 255 more sessions started
    and stopped in the slot the newer one has the old one's handle (8 bits of generation), and
    a join that named only those 8 bits mapped it: the provider was enabled with the old
    session's handle and logged into the newer session. The join names the registry's whole
    generation: the newer host refuses it, the provider is not enabled, its events fail."""
    assert control_races("join-wrap", out) == {"replaced": 1, "same_handle": 1, "enable": 0, "enabled": 0,
                                               "trace": 6, "stop_b": 0}


def test_a_handle_whose_generation_wrapped_does_not_name_a_newer_session(control_races, out):
    """A handle carries 8 bits of its session's generation: after 255 more sessions in its slot
    the next one has the same handle. This process got the handle for the old session only, so
    the handle is the old session's: gone (ERROR_WMI_INSTANCE_NOT_FOUND from ControlTrace and
    session info, ERROR_INVALID_HANDLE from EnableTrace, as for any stopped session's handle),
    where it queried, enabled and stopped the newer one. Once QueryAllTraces handed this process
    the newer session's handle, that value names it (the two cannot be told apart)."""
    assert control_races("handle-wrap", out) == {"replaced": 1, "same_handle": 1, "query_a": 4201,
                                                 "enable_a": 6, "info_a": 4201, "stop_a": 4201,
                                                 "listed": 1, "query_listed": 0, "query_b": 0, "stop_b": 0}


def test_cleaning_up_after_a_gone_host_leaves_a_newer_session_with_its_handle_enabled(control_races, out):
    """STOP of a session whose host was killed disables what this process had enabled on it.
    Meanwhile another process may start a session in the freed slot, 255 generations on (the
    same handle), and enable this process's provider for it: the cleanup must leave that
    enable alone (it matched sessions by the handle's 8 bits of generation and disabled the
    provider, which then logged nothing for the newer session)."""
    assert control_races("gone-wrap", out) == {"stop_a": 4201, "replaced": 1, "same_handle": 1, "enabled": 1,
                                               "trace": 0, "stop_b": 0}


def test_joining_a_session_whose_live_host_is_slow_to_answer_says_busy_not_gone(control_races, out):
    """A provider process maps a hosted session's memory by asking its host (JOIN). A host that
    is alive but does not answer in time (stopped here; on a loaded machine, slow) is busy, as
    every control request reports it: the join fails with ERROR_BUSY, and so does an EnableTrace
    that needed it, instead of taking the session for gone (the enable was dropped without a
    word). Once the host answers, enabling again maps the session and enables the provider."""
    assert control_races("join-busy", out) == {"attach": 170, "enable": 170, "enabled": 0, "enable_later": 0,
                                               "enabled_later": 1, "stop_a": 0}


def test_a_registry_locked_by_a_stopped_process_makes_calls_busy_not_hang(control_races, out):
    """Every process of the user locks the registry of sessions for a moment. One stopped while
    it holds the lock (SIGSTOP, a debugger's breakpoint) made ControlTrace, EnableTrace,
    StartTrace and QueryAllTraces of every other process wait forever. The wait is bounded:
    they fail with ERROR_BUSY, and work again once the lock is let go."""
    assert control_races("locked-registry", out) == {"query": 170, "enable": 170, "start": 170, "list": 170,
                                                     "stop_a": 0}


def test_a_broadcast_removes_a_gone_processs_socket_only_while_nobody_listens_there(control_races, out):
    """Telling every provider process of a change, a process removes the socket of one that
    is gone (the connection refused, no process with its pid). A new process may get the
    same pid and bind its own socket there in between: removing that left the new process
    deaf to every enable. What is removed is checked again under the registry lock, under
    which every provider process binds its socket; a socket nobody listens at still goes."""
    assert control_races("stale-peer", out) == {"new_left": 1, "new_reachable": 1, "stale_left": 0}


def test_a_broadcast_keeps_a_refused_socket_when_proc_cannot_be_read(control_races, out):
    """A broadcast found a provider socket refused while this process had no descriptor left
    to read /proc: the lookup of its process failed and was taken for a process that is gone,
    so the socket of a live process (refusing for a moment) was removed once descriptors were
    to be had again, and that process heard no enable after. /proc that cannot tell is not
    "gone": the socket stays."""
    assert control_races("peer-no-proc", out) == {"looked_up": 1, "left": 1}


def test_a_peer_that_connects_and_sends_nothing_does_not_hold_up_enables(control_races, out):
    """A provider process hears enables on its endpoint socket. A peer that connects and sends
    nothing held its endpoint for 2 s, one connection at a time: every enable and disable for
    every session waited behind it. Connections are served side by side: the provider is
    enabled while the silent connection is still open."""
    assert control_races("silent-peer", out) == {"enable": 0, "silent_open": 1, "child_enabled": 1,
                                                 "stop_a": 0}


def test_a_made_up_disable_naming_an_older_session_leaves_a_newer_ones_provider_enabled(control_races, out):
    """A provider process applies a DISABLE of one GUID only once the registry holds no such
    enable by its session: one made up by another process of the user changes nothing. A
    DISABLE naming an older session of the slot (its whole generation, and the handle a newer
    session 256 generations on has too) must not pass for a disable of the newer session, which
    holds the provider."""
    assert control_races("made-up-disable", out) == {"enabled": 1, "answer": 0, "still_enabled": 1, "stop_b": 0}


def test_session_info_of_a_busy_host_while_the_registry_is_locked_says_busy_not_gone(control_races, out):
    """wpptrace_session_info asks a host that does not answer in time, then whether its session
    is still registered: a registry that cannot be read in time (its lock held by a stopped
    process) took the session for stopped (ERROR_WMI_INSTANCE_NOT_FOUND). Neither can be told:
    the session is busy."""
    assert control_races("busy-both", out) == {"info_a": 170, "stop_a": 0}


def test_an_endpoint_out_of_descriptors_does_not_spin(control_races, out):
    """The endpoint thread of a process that has used up its descriptors cannot accept a
    connection (EMFILE), which stays queued and keeps the listening socket readable: polling it
    again at once spun a thread of the application at full CPU for as long as it lasted. The
    listening socket rests a while instead, and the connection is served once descriptors are
    free again."""
    got = control_races("accept-emfile", out)
    assert got["emfile"] == 1 and got["served"] == 1
    assert got["polls"] < 20


def test_a_stop_frees_the_registry_entry_even_while_another_process_holds_the_lock(control_races, out):
    """A request waits for the registry lock a bounded time and answers ERROR_BUSY. A STOP
    that gave up the same way left the session's entry RUNNING under this live process: its
    name and slot stayed taken until the process ended. Giving back waits as long as it takes
    (the holder is stopped longer than a request waits, then killed)."""
    assert control_races("release-locked", out) == {"stop_a": 0, "entry_left": 0}


def test_the_registry_lock_wait_is_counted_on_the_monotonic_clock(control_races, out):
    """The wait for the registry lock held by another thread ended at a wall-clock time: a step
    of the wall clock (read far ahead here) stretched a 300 ms wait to a day. It ends as
    counted on the monotonic clock, ERROR_BUSY."""
    assert control_races("wall-stepped", out) == {"returned": 1, "lock": 170}


def test_an_enable_the_registry_was_too_busy_to_check_is_checked_again(control_races, out):
    """A provider process checks each ENABLE it hears against the registry. When the registry
    lock was held elsewhere longer than it waits, the ENABLE was skipped (and answered as
    done): the provider stayed disabled for good. The answer is ERROR_BUSY now (the
    controller's EnableTrace reports it), and the
    endpoint thread checks again later: the provider is enabled once the lock is free."""
    got = control_races("busy-enable", out)
    assert got["at_first"] == 0 and got["later"] == 1
    assert got["answer"] == 170                       # ERROR_BUSY: the sender hears it
    # the EnableTrace itself, whose broadcast that process did not answer within its wait,
    # succeeds: the registry holds the change and the process applies it once it reads it
    # (a stopped process of the user would otherwise fail every EnableTrace)
    assert got["enable"] == 0 and got["stop_a"] == 0


def test_a_host_out_of_descriptors_does_not_spin(control_races, out):
    """A session host that has used up its descriptors cannot accept a connection (EMFILE),
    which stays queued and keeps its listening socket readable: polling it again at once kept
    the host at full CPU for as long as it lasted. The listening socket rests a while instead;
    the host still answers once the connections are gone."""
    got = control_races("host-emfile", out)
    assert 0 <= got["ticks"] < got["per_second"] * 3 // 10      # under 0.3 s of CPU in 1 s
    assert got["query"] == 0 and got["stop_a"] == 0


def test_a_disable_among_many_busy_requests_is_not_lost(control_races, out):
    """A provider process keeps the requests the registry was too busy to check and checks them
    again later. Past a few of them it kept none and only copied the registry's enables again:
    a DISABLE among them was lost and the provider stayed enabled for a session that had
    disabled it. Every request is checked again now (or the whole registry, enables and
    disables): the provider ends disabled."""
    got = control_races("busy-disable", out)
    assert got["enabled"] == 1 and got["busy"] == got["of"] == 80
    assert got["answer"] == 170                       # ERROR_BUSY: the sender hears it
    assert got["later"] == 0 and got["stop_a"] == 0


def test_a_provider_that_cannot_join_in_time_is_reported_busy_and_enabled_later(control_races, out):
    """A provider process answers an ENABLE once it has joined the session (mapped its memory).
    The broadcast waited 3 s for each answer, the JOIN up to 22 s: a host slow to answer made
    EnableTrace report success while the provider was never enabled. The JOIN the endpoint
    makes ends within the broadcast's wait: EnableTrace reports ERROR_BUSY, and the provider
    process joins again later and runs its callbacks."""
    got = control_races("broadcast-join-busy", out)
    assert got["enable"] == 170                       # ERROR_BUSY
    assert got["at_first"] == 0 and got["later"] == 1 and got["stop_a"] == 0


def test_a_request_has_one_deadline_for_sending_and_its_reply(control_races, out):
    """A request to a host is bounded by one time: sending it and awaiting the reply each had
    the whole of it, twice the intended bound. Here the time is over as the request connects
    (the program's clock jumps ahead): it fails at once, ERROR_BUSY."""
    assert control_races("request-deadline", out) == {"returned": 1, "request": 170}


def test_the_runtime_directory_is_had_while_a_thread_holds_the_registry(control_races, out):
    """Every socket path names the runtime directory, which was read under the lock a thread
    holds with the registry: a thread holding it (up to the registry's wait, or stopped in a
    debugger) held up every path, without bound. The directory once known is read without the
    lock, and the wait to resolve it is bounded (ERROR_BUSY)."""
    assert control_races("dir-while-locked", out) == {"returned": 1, "path": 0}


def test_a_forked_child_reads_only_the_private_sessions_it_inherited(control_races, out):
    """A forked child releases the private sessions of its parent. It read every one of the 64
    session entries to find them, faulting in some 65 pages in every child (each worker of
    `wpptrace fmt -j`, sessions or not). It reads only those its parent runs privately now, and
    resets only the provider registrations its parent ever made (it wrote all 1024)."""
    got = control_races("fork-sessions", out)
    got.pop("stdin_kept")
    assert got == {"registrations": 0, "without": 0, "with_private": 1, "after_stop": 0, "stop_a": 0}


def test_a_forked_child_keeps_its_stdin(control_races, out):
    """A child forked by a process whose provider endpoint never ran (any process that loaded
    the core: `import wpptrace.provider` then os.fork or a multiprocessing worker) closed its
    descriptor 0, stdin, 64 times over: it took the endpoint's empty table of JOIN connections,
    never set to -1, for connections to close. It closes only what the endpoint opened."""
    assert control_races("fork-sessions", out)["stdin_kept"] == 1


def test_listing_sessions_holds_up_no_other_control_call(control_races, out):
    """Listing the sessions asks each host for its counters. It held the process's control
    lock across those requests: one host slow to answer (here stopped) held up every
    StartTrace, ControlTrace and EnableTrace of the process, up to the request's bound per
    session. The sessions are read under the lock and asked outside it."""
    got = control_races("list-slow-host", out)
    assert got["query_first"] == 1 and got["query"] == 0
    assert got["list"] == 0 and got["listed"] == 2
    assert got["stop_b"] == 0 and got["stop_a"] == 0


def test_session_info_of_a_slow_host_holds_up_no_other_control_call(control_races, out):
    """The same for wpptrace_session_info: its request to a host slow to answer (stopped here)
    held the control lock, and a query of this process's own private session waited for it."""
    got = control_races("info-slow-host", out)
    assert got["query_first"] == 1 and got["query"] == 0
    assert got["list"] == 0 and got["listed"] == 1
    assert got["stop_b"] == 0 and got["stop_a"] == 0


def test_a_flush_of_a_slow_host_holds_up_no_other_control_call(control_races, out):
    """The same for ControlTrace FLUSH (and UPDATE) of a session in another process: the
    request, bounded at two minutes, held the control lock all along."""
    got = control_races("flush-slow-host", out)
    assert got["query_first"] == 1 and got["query"] == 0
    assert got["list"] == 0 and got["listed"] == 1
    assert got["stop_b"] == 0 and got["stop_a"] == 0


def test_a_stop_of_a_slow_host_holds_up_no_other_control_call(control_races, out):
    """The same for ControlTrace STOP of a session in another process: the request, bounded at
    two minutes, held the control lock all along. What it changes in this process (its
    providers, its view of the session) has locks of its own."""
    got = control_races("stop-slow-host", out)
    assert got["query_first"] == 1 and got["query"] == 0
    assert got["list"] == 0 and got["listed"] == 1
    assert got["stop_b"] == 0 and got["stop_a"] == 4201             # stopped already


def test_an_older_enable_that_arrives_last_does_not_replace_a_newer_disable(control_races, out):
    """A provider process keeps the requests it could not check against the registry (its lock
    held elsewhere), one per session and GUID. Broadcasts of two controllers may arrive out of
    order: an ENABLE made before a DISABLE, arriving after it, replaced it, and once checked
    was found replaced in the registry: the DISABLE was lost and the provider stayed enabled.
    The newer request (by version) is kept: the provider ends disabled."""
    got = control_races("stale-replaces", out)
    assert got["enabled"] == 1
    assert got["disable_answer"] == got["older_answer"] == 170     # ERROR_BUSY: both waited
    assert got["later"] == 0 and got["stop_a"] == 0


def test_a_reconciliation_never_re_enables_a_provider_disabled_after_its_copy(control_races, out):
    """A provider process reconciling with the registry applies the enables of its copy one by
    one (each may wait for a JOIN). A disable made in the meantime (here by this process)
    leaves no enable behind, and the copy's older enable of the same GUID was applied after it:
    the provider was enabled again for a session that had disabled it. An enable older than the
    last disable of its GUID is old news: the provider stays disabled."""
    got = control_races("resurrect", out)
    assert got["enabled"] == 1 and got["disable"] == 0
    assert got["first"] == 1 and got["last"] == 1              # the reconciliation ran through
    assert got["enabled_after"] == 0 and got["listed_after"] == 0
    assert got["stop_a"] == 0 and got["stop_b"] == 0


def test_a_reconciliation_whose_join_is_busy_is_made_again(control_races, out):
    """A reconciliation with the registry whose JOIN of a session timed out (its host alive but
    slow) counted as done: the enable stayed undelivered and nothing tried it again, the
    provider never enabled. It is made again later (waits doubling): the provider is enabled
    once the host answers."""
    got = control_races("reconcile-busy-join", out)
    assert got["at_first"] == 0
    assert got["joins_tried"] == 1 and got["later"] == 1 and got["listed"] == 1
    assert got["stop_a"] == 0


def test_a_registration_whose_join_is_busy_is_enabled_once_the_host_answers(control_races, out):
    """A provider registered while a session that enabled its GUID has a host too slow to hand
    out its memory (JOIN timed out): the registration reported success, the enable was not
    marked undelivered (listed as enabled) and nothing tried it again. It is listed as not
    enabled until delivered, and the endpoint thread delivers it once the host answers."""
    got = control_races("register-busy", out)
    assert got["enable"] == 0 and got["register"] == 0
    assert got["listed"] == 0 and got["at_first"] == 0
    assert got["later"] == 1 and got["listed_later"] == 1
    assert got["stop_a"] == 0


def test_a_view_two_threads_retire_at_once_is_retired_once(control_races, out):
    """When a session's host goes away, the endpoint thread retires the view this process
    mapped it by, and a STOP of the same session in this process, finding the host gone,
    retires it too. Both could be past the check that it was not retired yet: the memory was
    swapped twice, the view listed twice among the retired ones and its memfd number closed a
    second time (by then maybe another descriptor of the process). One of them retires it."""
    assert control_races("retire-twice", out) == {"held": 1, "stop_a": 4201, "retired": 1}


def test_a_join_made_while_the_endpoint_closes_leaves_no_connection_open(control_races, out):
    """A JOIN keeps its connection to the host for the endpoint thread to watch. The endpoint
    may be closed (wpptrace_endpoint_close) while the JOIN is under way: the connection was
    stored all the same, watched by nobody, forgotten open by the next endpoint and kept by
    every child. It is closed: the process has the session's memory open, its endpoint's
    socket and wake-up pipe closed, and nothing more."""
    assert control_races("attach-closed", out) == {"attach": 0, "added": -2, "stop_a": 0}


def test_a_child_forked_while_a_thread_copies_the_registry_returns_from_fork(control_races, out):
    """A forked child copies the registry's enables as its endpoint starts. Forked while a
    thread of the parent held the lock of such a copy (a reconciliation, which may wait for
    the registry and for busy hosts), the child waited for a lock whose holder it has not:
    it never returned from fork. It gets the lock fresh."""
    assert control_races("fork-copying", out) == {"held": 1, "child_returned": 1}


def test_a_disable_for_one_session_never_refuses_another_sessions_enable(control_races, out):
    """A process keeps the version of the last disable it heard of, to refuse an older enable
    arriving after it. It was kept per GUID, whatever the session: disabling a provider for a
    private session that never held it (as a process's teardown does) refused a public
    session's ENABLE made earlier and arriving later, and every later copy of the registry
    too: the provider was never enabled for that session. Only that session's enables are."""
    assert control_races("other-session-disable", out) == {"disable": 0, "enable": 0, "enabled": 1,
                                                            "stop_x": 0, "stop_b": 0}


def test_starting_a_session_closes_its_memory_descriptor_once(control_races, out):
    """StartTrace of a session another process hosts makes the session memory here, hands it
    to the host and lets go of it: the view closed the memfd, then the session closed the same
    number again. A descriptor another thread opened in between (an accepted connection, a
    file of the application) got that number and was closed under it. It is closed once."""
    assert control_races("memfd-reused", out) == {"start_a": 0, "opened": 64, "kept": 64,
                                                     "stop_a": 0}


def test_a_writer_committing_a_buffer_never_uses_a_memfd_number_closed_under_it(control_races, out):
    """A writer committing a new buffer's memory read the view's memfd number; STOP (or the
    host going away) retired the view meanwhile and closed the memfd, and the application
    opened a file that got the number: the writer allocated space in the application's file.
    The memory is now committed through the mapping (zero pages once retired); a kernel before
    5.14 falls back to fallocate, on the number read after the retire set it to none. From 5.14
    on the number is never used: a file handed the number while the view still holds it stays
    empty as well (before 5.14 that case is the fallback's known limit, not tried)."""
    got = control_races("commit-retire", out)
    assert got["file_size"] == 0 and got["stop_a"] == 0
    if got["fallback"]:
        assert got["held_file_size"] == -2 and got["stop_held"] == 0
    else:
        assert got["held_file_size"] == 0 and got["stop_held"] == 0


def test_a_private_sessions_stop_flushes_its_file_to_the_disk_without_the_control_lock(control_races, out):
    """The STOP of a private session flushes its file to the disk (fdatasync), which may take
    long; it did so holding the control lock, so every other control call of the application
    (QueryAllTraces here, StartTrace, EnableTrace) waited for it."""
    assert control_races("stop-sync", out) == {"listed_while_syncing": 1, "list": 0, "stop_x": 0}


def test_a_hosted_session_is_answered_while_its_stop_flushes_the_file(control_races, out):
    """A hosted session's STOP is answered once its file is flushed to the disk (so a failed
    flush is the STOP's answer), which may take long on a slow disk. The flush runs in the
    host's stopping thread: held there, the host still answers a QUERY of the session and a
    listing, and the STOP is answered once the flush is done."""
    got = control_races("host-stop-syncing", out)
    assert got == {"held": 1, "query": 0, "list": 0, "stopped_early": 0, "stop_a": 0, "host_ended": 1}


def test_a_reconciliation_joins_a_busy_host_once(control_races, out):
    """A reconciliation applies the registry's enables one by one, each joining its session
    when a provider here needs it. A host too busy to answer made every enable of its session
    wait for a JOIN of its own, in the endpoint thread (which answered nobody meanwhile), pass
    after pass. After the first JOIN found it busy, the others are kept undelivered at once."""
    assert control_races("reconcile-busy-once", out) == {"reconcile": 170, "joins": 1, "stop_a": 0}


@pytest.mark.parametrize("mode, query_a", [("query-reuse", 4201), ("list-reuse", 0),
                                           ("flush-reuse", 4201), ("update-reuse", 4201)])
def test_a_stopped_session_is_not_busy_because_a_newer_one_in_its_slot_is(control_races, out, mode, query_a):
    """QUERY (by handle, and the listing's of each session), FLUSH or UPDATE found A; A stops
    meanwhile and B takes its slot and socket path, and B's host does not answer in time. A is
    gone, not busy: QUERY, FLUSH and UPDATE said ERROR_BUSY (not ERROR_WMI_INSTANCE_NOT_FOUND)
    and the listing showed A as a busy session."""
    assert control_races(mode, out) == {"replaced": 1, "busy": 1, "query_a": query_a, "listed": 0,
                                        "query_b": 0, "stop_b": 0}


def test_a_join_that_starts_the_endpoint_can_join_again_for_the_registrys_enables(control_races, out):
    """A process whose endpoint is not running (closed, or its runtime directory was busy when
    it registered) joins a session: the join starts the endpoint, which copies the registry and
    joins the sessions of its enables. That inner join waited for the outer one's lock: the
    process hung."""
    assert control_races("attach-reentry", out) == {"start_b": 0, "enabled_on_a": 1, "stop_a": 0, "stop_b": 0}


def test_waking_the_endpoint_thread_never_writes_to_a_closed_pipes_number(control_races, out):
    """An enable left undelivered wakes the endpoint thread through its pipe; the endpoint
    closing meanwhile closed the pipe, and the byte went to whatever descriptor took the number
    (the application's own)."""
    assert control_races("wake-closed", out) == {"touched": 0}


def test_a_broadcast_reports_a_change_the_registry_took_as_done(control_races, out):
    """A change is in the registry before it is broadcast: a runtime directory that cannot be had
    in time does not undo it, and the caller was told it failed (ERROR_BUSY)."""
    assert control_races("broadcast-unresolved", out) == {"broadcast": 0}


def test_a_child_forked_while_a_view_is_retired_keeps_no_session_memory(control_races, out):
    """A fork made between a view being taken for retiring and its memory swapped: the child
    kept the session's memory mapped and its memfd open for good (the retiring thread does not
    go on in the child, and the view was taken)."""
    assert control_races("fork-retiring", out) == {"held_before": 1, "child_held": 0, "parent_held": 0,
                                                   "stop_a": 0}


def test_an_owed_enable_is_delivered_only_to_the_registrations_that_lack_it(control_races, out):
    """An enable whose session could not be joined in time (its host too slow) is owed to the
    provider's registrations; one made afterwards gets it at once. Delivered again later, it
    ran for every registration of the GUID: that one saw a second ENABLE. It runs only for the
    registrations still owed it: each sees one ENABLE."""
    got = control_races("owed-once", out)
    assert got["enable"] == 170 and got["held"] == 1 and got["register"] == 0   # ERROR_BUSY
    assert got["r2_at_once"] == 1
    assert got["r1"] == 1 and got["r2"] == 1
    assert got["r1_off"] == got["r2_off"] == 0 and got["stop_a"] == 0


def test_a_registration_never_enabled_gets_no_disable(control_races, out):
    """A session whose host was too slow to be joined enabled a provider and then disabled it:
    the registration never got the ENABLE, but got the DISABLE (an application sees a disable
    without an enable). It gets neither, then or later."""
    got = control_races("disable-owed", out)
    assert got["enable"] == 170 and got["disable"] == 0                          # ERROR_BUSY
    assert got["enables"] == got["disables"] == 0
    assert got["enables_after"] == got["disables_after"] == 0 and got["stop_a"] == 0


def test_a_disable_applied_before_its_enable_leaves_the_provider_disabled(control_races, out):
    """EnableTrace changes the registry, lets go of its locks, then applies the change in its
    own process. Another thread's disable of the same session and GUID may be applied first:
    it found nothing enabled here and left no trace, and the older enable applied after it
    enabled the provider for a session that had disabled it. Every disable is kept: the older
    enable is old news."""
    got = control_races("enable-overtaken", out)
    assert got["enable"] == 0 and got["disable"] == 0
    assert got["enables"] == 0 and got["disables"] == 0 and got["listed"] == 0
    assert got["stop_a"] == 0


def test_an_enable_overtaken_and_then_dropped_leaves_the_provider_owed_the_older_one(control_races, out):
    """Two threads apply enables of one provider; the older one's JOIN fails (its host too slow),
    then the newer one's (its session gone). The newer one put the registration back as it was
    when that call was queued: waiting for the older ENABLE, whose call had been dropped since.
    The older enable, delivered again, then found it "given" and ran nothing: the provider never
    got it. It is owed the enable, and gets it once the host answers."""
    got = control_races("cancel-overtaken", out)
    assert got["first"] == 170 and got["second"] == 0                            # ERROR_BUSY
    assert got["enables"] == 0
    assert got["enables_after"] == 1 and got["disables_after"] == 0 and got["listed"] == 1
    assert got["stop_a"] == 0


def test_a_process_lists_a_provider_enabled_only_once_the_enable_reached_it(control_races, out):
    """While an ENABLE's session is still being joined, its callback has not run: LIST (what
    other processes and the listing ask a process for) said the provider was enabled here."""
    assert control_races("cancel-overtaken", out)["listed_queued"] == 0


def test_an_enable_that_takes_a_provider_over_and_cannot_be_joined_disables_the_old_session(control_races, out):
    """Session B's enable takes over a provider enabled for A, and B's host is too slow to be
    joined. The registration was put back enabled for A while the provider's enable entry named
    B: A's disable and A's stop were then not A's to apply, and the provider kept writing into A.
    It gets A's DISABLE at once (A no longer holds it), nothing more from A, and B's ENABLE
    once B's host answers."""
    got = control_races("cancel-taken-over", out)
    assert got["enable_a"] == 0 and got["enable_b"] == 170                       # ERROR_BUSY
    assert got["disables_at_once"] == 1
    assert got["disable_a"] == 0 and got["stop_a"] == 0 and got["disables"] == 1
    assert got["enables"] == 2 and got["stop_b"] == 0 and got["disables_end"] == 2


def test_a_close_in_a_callback_while_another_close_joins_the_endpoint_thread_leaves_it_to_that_one(
        control_races, out):
    """A close made in a callback the endpoint thread runs leaves the undoing to the thread as it
    ends; another thread's close joining the thread meanwhile undoes it itself: the thread
    detached itself from that join and undid the endpoint as well."""
    assert control_races("close-joining-in-callback", out) == {"in_callback": 1, "joined": 1, "teardowns": 1,
                                                               "stop_a": 0}


def test_closing_an_endpoint_while_it_starts_waits_for_its_thread(control_races, out):
    """A new endpoint listens, then copies the registry (joins of busy hosts may take a
    while), then makes its thread. wpptrace_endpoint_close in another thread meanwhile (an
    atexit handler while a thread registers its first provider) joined the thread that did not
    exist yet: a crash inside the application. It waits for the start, which then undoes the
    endpoint; a later registration starts a new one."""
    got = control_races("close-starting", out)
    assert got["register"] == 0 and got["close_waited"] == 1 and got["close_returned"] == 1
    assert got["socket_left"] == 0
    assert got["again"] == 0 and got["restarted"] == 1 and got["closed"] == 1


def test_closing_the_endpoint_in_a_callback_of_its_copy_ends_it_once_done(control_races, out):
    """A copy of the registry applies its enables with its lock held. A callback of the
    endpoint thread's copy that closes the endpoint could not join its own thread: the close
    undid the endpoint at once, the next enable's JOIN started a new one, which copied the
    registry in the same thread and waited for its own lock forever (every later copy of the
    process too); once owed instead, two endpoint threads served one endpoint. The copy goes
    on, and the endpoint thread undoes the endpoint as it ends; none takes its place."""
    got = control_races("close-in-callback", out)
    assert got["closed"] == 1 and got["last"] == 1
    assert got["ended"] == 1 and got["socket_left"] == 0
    assert got["stop_a"] == 0 and got["stop_b"] == 0


def test_a_callback_that_unregisters_a_sibling_registration_returns(control_races, out):
    """A session that stops queues a DISABLE for each of its providers here, then runs them in
    turn in the stopping thread. A callback that unregisters another registration, whose
    DISABLE is queued behind it, waited for that call to finish: only the same thread could run
    it, so the STOP hung forever (and every control call of the process behind its lock).
    UnregisterTraceGuids waits only for callbacks running in other threads; the queued call is
    not run (the program gives the STOP 20 s, and runs under a subprocess timeout)."""
    got = control_races("unregister-sibling", out)
    assert got["returned"] == 1 and got["stop_a"] == 0 and got["disables"] == 1


def test_a_callback_never_runs_after_a_newer_one_of_its_registration(control_races, out):
    """Each thread runs the callbacks it queued without a lock. A registration's ENABLE,
    confirmed, could be invoked after a DISABLE another thread queued later had run: the
    application ended enabled with the handle of a session that had disabled it. A call older
    than one its registration already started is not run: the last callback the application
    sees is the newest change."""
    got = control_races("callback-order", out)
    assert got["register"] == 0 and got["disable"] == 0 and got["disables_first"] == 1
    assert got["last_disable"] == 1 and got["enables"] == 0 and got["disables"] == 1
    assert got["stop_a"] == 0


def test_a_child_forked_in_a_callback_of_a_copy_makes_its_own_copy_later(control_races, out):
    """A forked child starts its own endpoint as it begins, which copies the registry. Forked
    in a callback of a copy, the child's copy was made inside fork(), in the thread whose copy
    was still going on: it overwrote the buffers that copy reads and ran the application's
    callbacks before fork returned (a copy in a copy of another process's thread waited for
    its own lock forever). It is owed to the child's endpoint thread instead, which makes it
    only once the copy the child inherited is done (the child's copy lock was fresh and free:
    a copy of another thread rewrote the buffers the inherited copy still read)."""
    got = control_races("fork-in-copy", out)
    assert got["reconcile"] == 0 and got["child_second_at_fork"] == 0
    assert got["child_copied_inside"] == 0 and got["child_copied"] == 1
    assert got["second"] == 1 and got["stop_a"] == 0


def test_a_child_forked_in_a_nested_callback_can_unregister_its_provider(control_races, out):
    """A child forked in a ControlCallback keeps the forking thread's callbacks as running.
    Forked in a callback nested in another of the same registration, each was counted once
    for the registration: unwinding both took its count below zero, and the child's
    UnregisterTraceGuids waited forever. Each nesting counts."""
    got = control_races("fork-nested", out)
    assert got == {"enable": 0, "child_unregistered": 1, "stop_x": 0, "stop_y": 0}


def test_a_close_in_a_callback_never_waits_for_the_starting_endpoint(control_races, out):
    """A private session's STOP runs its DISABLE callbacks with the control lock held. One that
    closed the endpoint while another thread's registration started it waited for the start,
    whose copy ran an ENABLE callback calling EnableTrace, which waited for that lock: both
    waited forever. A close in a callback never waits: the start undoes the endpoint."""
    got = control_races("close-in-stop", out)
    assert got == {"close_waited": 0, "stop_returned": 1, "stop_p": 0, "registered": 1, "enabled": 1,
                   "socket_left": 0, "stop_a": 0}


def test_a_close_in_a_callback_never_joins_the_endpoint_thread(control_races, out):
    """A close in a private session's DISABLE callback (its STOP holds the control lock) joined
    the endpoint thread, whose own callback was calling EnableTrace, which waited for that
    lock: both waited forever. A close in a callback never joins: the thread undoes the
    endpoint as it ends."""
    got = control_races("close-in-stop-joining", out)
    assert got == {"joined": 0, "stop_returned": 1, "stop_p": 0, "enabled": 1, "socket_left": 0, "stop_a": 0}


def test_a_thread_cancelled_while_it_starts_the_endpoint_finishes_the_start(control_races, out):
    """A new endpoint copies the registry before its thread is made; the copy waits for hosts
    in poll and recv, where a cancelled thread stopped: the start was left unfinished and every
    later close waited for it forever. The start is not cancelled midway; the thread is
    cancelled after it."""
    got = control_races("cancel-starting", out)
    assert got == {"registered": 0, "cancelled": 1, "closed": 1, "socket_left": 0}


def test_two_closes_of_the_endpoint_join_its_thread_once(control_races, out):
    """wpptrace_endpoint_close tells the endpoint thread to end, then joins it. A close in
    another thread meanwhile (an atexit handler and the application's own) joined the same
    thread again, which is undefined, and undid the endpoint while the thread still ran. It
    waits for the first close and returns once that is done."""
    got = control_races("close-twice", out)
    assert got == {"second_waited": 1, "returned_early": 0, "closed": 1}


def test_a_reconciliation_with_no_room_for_an_enable_settles(control_races, out):
    """A process keeps at most 1024 enables. A reconciliation with the registry that found no
    room for one counted as unfinished and was made again, pass after pass, for as long as the
    table stayed full (ERROR_BUSY each time). The enable is dropped and counted once (each pass
    counted it again); the first pass reports it (ERROR_NOT_ENOUGH_MEMORY), and the
    reconciliation is done. wpptrace_enables_dropped tells how many."""
    got = control_races("full-table", out)
    assert got["filled"] == 1024
    assert got["first"] == 8 and got["second"] == 0                            # reported once
    assert got["dropped"] == 1                                                 # counted once
    assert got["stop_x"] == 0 and got["stop_a"] == 0


def test_a_sessions_registry_generation_is_read_atomically(control_races, out):
    """The endpoint thread (reconciling with the registry) and the handle checks of
    GetTraceEnableFlags read a session's registry generation without the control lock under
    which StartTrace writes it: a data race. It is an atomic object."""
    assert control_races("generation-atomic", out) == {"atomic": 1}



def test_a_reconciliation_never_enables_what_this_process_disabled_before_holding_it(control_races, out):
    """As above, for an enable this process had not heard of yet: the registry held it (for
    A), and the reconciliation's copy was read before this process disabled it. The disable,
    made while the copy was applied, found nothing enabled here to compare with, and the copy's
    older enable was applied after it: the provider was enabled for a session that had
    disabled it. A disable made while a copy is applied makes its older enables old news."""
    got = control_races("copy-after-disable", out)
    assert got["disable"] == 0 and got["last"] == 1           # the reconciliation ran through
    assert got["enabled_after"] == 0 and got["listed_after"] == 0
    assert got["stop_a"] == 0 and got["stop_b"] == 0


def test_a_child_forked_in_a_callback_of_the_endpoint_thread_has_one_endpoint_loop(control_races, out):
    """A child forked in a callback the endpoint thread runs starts its own endpoint thread;
    the forking thread, a copy of the endpoint thread, went back into the endpoint's loop when
    the callback returned: two threads served the child's endpoint (its requests, retries and
    descriptors) with no lock in common. The copy leaves the loop. While a thread of the child's
    own runs, the child's endpoint stays and serves: the copy closed it at once, and a provider
    the child inherited heard no enable again. Once that thread returned, the copy closes the
    endpoint and the child ends as a process whose last thread returned does."""
    got = control_races("fork-on-endpoint", out)
    assert got == {"two_loops": 0, "copy_ended": 0, "child_socket": 1, "enable": 0, "child_served": 1,
                   "child_status": 0, "child_socket_left": 0, "stop_b": 0, "stop_a": 0}


def test_a_child_forked_in_a_callback_of_the_endpoint_thread_ends_when_the_callback_returns(control_races, out):
    """The child's callback returns and nothing else runs in it: the child's own endpoint
    thread, every signal blocked in it, kept the process alive forever (SIGTERM too), its socket
    still answering. The copy of the forking thread closes the child's endpoint as it leaves,
    so the child ends as a process whose last thread returned does."""
    got = control_races("fork-on-endpoint-returns", out)
    assert got == {"child_ended": 1, "child_status": 0, "child_socket_left": 0, "stop_a": 0}


def test_a_close_cancelled_as_it_joins_the_endpoint_thread_finishes(control_races, out):
    """wpptrace_endpoint_close joins the endpoint thread (pthread_join: a cancellation point).
    Cancelled there, it left the close marked as joining: every later close (Python's atexit
    among them) waited forever. Cancellation is held off for the whole close."""
    got = control_races("cancel-joining", out)
    assert got == {"cancelled": 1, "closed": 1, "socket_left": 0, "forked": 1}


def test_a_thread_blocked_in_its_own_callback_during_enable_trace_can_be_cancelled(control_races, out):
    """EnableTrace runs this process's ControlCallbacks in the calling thread. The whole call
    ran with cancellation held off, the application's callback too: a thread stuck in it could
    not be cancelled. The callback runs with the caller's cancellation state; cancelled there,
    the call leaves nothing locked, counted as running or open."""
    got = control_races("cancel-in-callback", out)
    assert got == {"ended_in_callback": 1, "cancelled": 1, "unregistered": 0, "registered": 0,
                   "unregistered_other": 0, "fds_kept": 1, "stop_a": 0}


def test_an_unregistration_waiting_for_another_threads_callback_can_be_cancelled(control_races, out):
    """UnregisterTraceGuids waits until the registration's callbacks in other threads return:
    application code. Held off for the whole call, a thread waiting there could not be
    cancelled. Cancelled in that wait, it lets go of the registrations' lock."""
    got = control_races("cancel-unregister-waiting", out)
    assert got == {"ended_waiting": 1, "cancelled": 1, "enable": 0, "registered": 0, "unregistered": 0,
                   "fds_kept": 1, "stop_a": 0}


def test_a_forked_child_does_not_count_its_parents_refused_session_memory(control_races, out):
    """A process that refused a session's memory (not sealed) forks. The count was inherited,
    so the child reported its parent's refusal again at its exit. The child's count starts at
    0, and the session its parent counted is not counted again there (its endpoint's copy of
    the registry refuses it once more)."""
    got = control_races("refused-view-fork", out)
    assert got == {"refused": 1, "child_refused": 0, "stop_a": 0}


def test_a_close_cancelled_while_it_waits_for_another_leaves_fork_usable(control_races, out):
    """A second close waits for the one joining the endpoint thread (pthread_cond_wait: a
    cancellation point). Cancelled there, it returned holding the endpoint's lock, and every
    fork() then waited forever."""
    got = control_races("cancel-close-waiting", out)
    assert got == {"cancelled": 1, "forked": 1, "socket_left": 0}


def test_a_registration_cancelled_in_its_join_leaves_fork_usable(control_races, out):
    """A registration of a provider a session of another process enabled joins that session
    (poll and recv with the attach lock held). Cancelled there, the thread kept the lock, and
    every fork() then waited forever. The join is not cancelled midway."""
    got = control_races("cancel-join", out)
    assert got == {"registered": 0, "cancelled": 1, "forked": 1, "stop_a": 0}


def test_a_registration_cancelled_in_a_join_that_ends_busy_leaves_fork_and_close_usable(control_races, out):
    """As above, but the session's host does not answer the join in time (ERROR_BUSY): the
    registration leaves the enable to the endpoint thread and wakes it, writing to its pipe (a
    cancellation point) with the endpoint's lock held. The cancel held off during the join
    acted there: the lock stayed held, and every fork() and close then waited forever."""
    got = control_races("cancel-join-busy", out)
    assert got == {"registered": 0, "cancelled": 1, "forked": 1, "closed": 1, "stop_a": 0}


def test_an_unregistration_cancelled_while_it_waits_for_a_callback_leaves_fork_usable(control_races, out):
    """UnregisterTraceGuids waits (pthread_cond_wait, a cancellation point) for a callback
    another thread runs. Cancelled there, the thread came back holding the registrations' lock,
    and every fork() then waited forever. The wait is for the application's code, so it stays
    cancellable; cancelled there, the call lets go of the lock (it returned first if the callback
    did; 99: it never returned)."""
    got = control_races("cancel-unregister", out)
    assert got["unregistered"] in (0, 99)
    assert {k: got[k] for k in ("cancelled", "forked", "stop_x")} == {"cancelled": 1, "forked": 1, "stop_x": 0}


@pytest.mark.parametrize("mode", ["cancel-query-all", "cancel-list-sessions", "cancel-session-info"])
def test_a_listing_cancelled_while_it_waits_for_a_host_leaves_nothing_open(control_races, out, mode):
    """QueryAllTraces, wpptrace_list_sessions and wpptrace_session_info wait for a host's reply
    (poll and recv: cancellation points) on a connection of their own. Cancelled there, the
    thread left that descriptor open for good. The calls are not cancelled midway: the cancel
    acts once the call returned."""
    got = control_races(mode, out)
    assert got == {"listed": 0, "cancelled": 1, "fds_left": 0, "queried": 1, "query_a": 0, "stop_a": 0}


def test_a_registration_after_a_close_in_a_callback_keeps_the_endpoint(control_races, out):
    """A close made in a callback returns at once and leaves the undoing to the endpoint
    thread. A registration after it found the endpoint still running and started none; then
    the thread undid it: the registration reported success, and no session of another process
    could ever enable the provider. The registration withdraws the close."""
    got = control_races("close-then-register", out)
    assert got == {"enable": 0, "socket_kept": 1, "start_c": 0, "enables": 1, "stop_x": 0, "stop_c": 0}


def test_a_child_forked_in_a_copy_that_never_returns_to_it_keeps_its_endpoint_serving(control_races, out):
    """A child forked in a callback of a registry copy that never returns into it (a worker that
    ends with _exit) holds that copy's lock for good. Its endpoint thread, owing a copy of its
    own, waited for that lock forever: no enable or disable reached the child again. The
    endpoint thread never waits for the lock; the copy stays owed."""
    got = control_races("fork-in-copy-stays", out)
    assert got == {"reconcile": 0, "served_before": 1, "enable": 0, "child_enabled": 1, "stop_b": 0,
                   "stop_a": 0}


def test_an_enable_a_child_never_gets_from_a_copy_that_never_returns_is_counted(control_races, out):
    """A child forked in a callback of a registry copy that never returns into it holds that
    copy's lock for good: the second enable, which only that copy would bring (the copy the
    child's endpoint owes waits for it), never reached the child, and nothing counted it. The
    child counts it as withheld, once however often it asks; the parent's copy goes on and
    delivers it there."""
    got = control_races("fork-in-copy-withheld", out)
    assert got == {"reconcile": 0, "child_withheld": 1, "child_withheld_again": 1, "child_second": 0,
                   "second": 1, "withheld": 0, "stop_a": 0}


def test_a_child_forked_while_a_view_is_retired_does_not_keep_its_memory(control_races, out):
    """A view replaced by a newer one was taken out of its slot before it was listed as being
    swapped: a child forked in between found it neither, and kept the session's memory mapped
    (and its memfd open) until it exited. Both happen at once, under the swap lock."""
    got = control_races("fork-while-retiring", out)
    assert got == {"forked": 1, "child_kept_mapping": 0, "replaced": 1, "released": 1}


def test_a_session_memory_not_sealed_against_shrinking_is_refused(control_races, out):
    """A host hands out its session's memory file sealed against shrinking (a file shrunk
    under the view faults the application's writes) and against further seals. A view of a
    file without either seal is refused as a bad view (ERROR_BAD_FORMAT), never mapped."""
    assert control_races("unsealed-view", out) == {"sealed": 0, "unsealed": 11, "shrink_only": 11}


def test_a_stop_cancelled_while_flushing_its_file_still_closes_it(control_races, out):
    """The thread of a STOP of a private session is cancelled while the session's file is
    being flushed to the disk (after the control lock is released): the STOP still closes the
    file and answers."""
    assert control_races("stop-sync-cancel", out) == {"open_before": 1, "open_after": 0, "stop_x": 0}


def test_a_child_forked_twelve_callbacks_deep_counts_every_one_as_running(control_races, out):
    """A child forked in a ControlCallback nested 12 deep (each enables the provider for the
    next private session) keeps all 12 as running: with the 11 inner ones returned, an
    UnregisterTraceGuids from another thread of the child waits for the outermost (counting
    only the first 8, it returned at once, and the callback's context could be freed while
    still in use)."""
    got = control_races("fork-deep", out)
    assert got == {"enable": 0, "depth": 12, "child": 1, "stopped": 1}


@pytest.mark.parametrize("mode", ["cancel-runtime-directory", "cancel-host-log-path"])
def test_a_call_cancelled_while_it_checks_the_runtime_directory_leaves_it_usable(control_races, out, mode):
    """Each use of the runtime directory checks it (open, openat and close: cancellation
    points) with the directory's lock held. Cancelled there, the thread left the lock held,
    and every later use of the directory in the process (every control call) waited for it,
    then failed with ERROR_BUSY; the parent's descriptor stayed open. The check is not
    cancelled midway: the cancel acts once the call returned."""
    got = control_races(mode, out)
    assert got == {"first": 0, "called": 0, "cancelled": 1, "fds_left": 0, "again": 0, "found": 0}


@pytest.mark.parametrize("mode", ["cancel-enumerate", "cancel-subscribe"])
def test_an_enumeration_or_subscription_cancelled_midway_leaves_nothing_open(control_races, out, mode):
    """EnumerateTraceGuids connects to each provider process and waits for its reply, the
    runtime directory open as it reads it; wpptrace_rt_subscribe connects to the session's host
    and waits for its answer (connect, poll and recv: cancellation points). Cancelled there, the
    thread left those descriptors open for good (and, waiting for the registry's lock, that lock
    held). The calls are not cancelled midway: the cancel acts once the call returned."""
    got = control_races(mode, out)
    if mode == "cancel-enumerate":      # one provider, registered by another process
        assert got == {"first": 0, "called": 0, "cancelled": 1, "fds_left": 0, "again": 0, "found": 1}
    else:                               # A logs to a file: no real-time subscription
        assert got == {"first": 4201, "called": 4201, "cancelled": 1, "fds_left": 0, "again": 4201,
                       "found": 0, "stop_a": 0}
