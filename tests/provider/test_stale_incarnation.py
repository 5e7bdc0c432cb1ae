"""A control request for a session found in a registry that a clean-up removed, sent once a
session of the registry made again has the same slot, generation and socket path: the request
carries the incarnation of the registry it was found in, and that host refuses it."""
from __future__ import annotations

import subprocess

import pytest

ERROR_WMI_INSTANCE_NOT_FOUND = 4201
ERROR_INVALID_PARAMETER = 87
ERROR_BAD_FORMAT = 11


@pytest.fixture
def stale_incarnation(build_c_program_with_test_points, out):
    """run(mode) -> what stale_incarnation.c printed, its runtime directory this test's own."""
    program = build_c_program_with_test_points("stale_incarnation")

    def run(mode: str) -> list[str]:
        done = subprocess.run([str(program), str(out), mode], capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()
    return run


def test_a_query_found_in_a_removed_registry_is_refused_by_the_new_host(stale_incarnation):
    """The QUERY found its session, then the runtime directory was removed and another process
    started a session in the registry made again (slot 1, generation 1, as the one found). This
    process never opened that registry, so nothing told it of the clean-up: the new session's
    host answered the QUERY with its own properties."""
    assert stale_incarnation("query") == ["found", "0", "asked", str(ERROR_WMI_INSTANCE_NOT_FOUND), "name", "-",
                                          "other", "0", "stop", "0"]


def test_a_subscription_found_in_a_removed_registry_is_refused_by_the_new_host(stale_incarnation):
    """The same for a real-time subscription by name: it was served the other session's buffers."""
    assert stale_incarnation("subscribe") == ["found", "0", "asked", str(ERROR_WMI_INSTANCE_NOT_FOUND),
                                              "name", "-", "other", "0", "stop", "0"]


def test_requests_with_an_incarnation_are_read_as_the_builder_lays_them_out(build_c_program, out):
    """One builder lays out a request with the incarnation in front (for control requests and
    the real-time subscription alike) and the host reads it back: the same incarnation is
    answered, another refused as not found (a STOP too: the session runs on), a payload cut
    short refused as malformed, and a payload longer than any request's never sent."""
    runtime = out / "rt"
    program = build_c_program("host_requests")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert dict(zip(words[::2], map(int, words[1::2]))) == {
        "plain": 0, "same": 0, "other": ERROR_WMI_INSTANCE_NOT_FOUND, "update": 0,
        "toolong": ERROR_INVALID_PARAMETER,
        "short0": ERROR_INVALID_PARAMETER, "short1": ERROR_INVALID_PARAMETER,
        "short2": ERROR_INVALID_PARAMETER, "short3": ERROR_INVALID_PARAMETER,
        "cut": ERROR_INVALID_PARAMETER, "otherstop": ERROR_WMI_INSTANCE_NOT_FOUND, "stop": 0}
    log = (runtime / "s-1.log").read_text() if (runtime / "s-1.log").exists() else ""
    assert "malformed QUERY request (kind 0x10001," in log, log


def test_a_flush_or_update_of_a_client_of_an_earlier_build_gets_its_reply(build_c_program, out):
    """A client built before hosts said they took a FLUSH or UPDATE up reads one frame, the
    reply: the frame it did not know made it ERROR_BAD_FORMAT, though the host had flushed, or
    switched the file. The host says it only to a caller that asks (a request bit), and does
    to one that does."""
    program = build_c_program("host_requests")
    done = subprocess.run([str(program), str(out), "older-client"], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert dict(zip(words[::2], map(int, words[1::2]))) == {
        "flush": 0, "flushnamed": 1, "update": 0, "switched": 1,
        "asked": ERROR_BAD_FORMAT, "toldfirst": 1, "stop": 0}
    assert (out / "switched.etl").exists()
