"""A provider process for the cross-process tests, driven one command per stdin line.

    python xproc_app.py CONTROL_GUID MESSAGE_GUID [pythonic]

Reports its ControlCallbacks on stdout ("enable LOGGERID FLAGS LEVEL", "disable") and answers
commands: "register", "unregister", "log COUNT THREADS" (each thread logs COUNT messages whose
arguments are pid, thread index and i; answers "logged OK DROPPED INVALID"), "fork COUNT"
(a forked child logs COUNT messages with the inherited logger handle and answers "child
OK"), "forkwatch" (a forked child stays, reports its own callbacks as "child-enable ..." /
"child-disable" and logs 10 messages on each enable; answers "forked PID"), "reserve" (a
record reserved and never completed, as by a writer killed mid-write; answers "reserved
RC"), "failalloc N" (the core's next N allocations fail; answers "failing"), "exit". With "pythonic" the provider is a wpptrace Provider instead
of a raw RegisterTraceGuids registration.
"""
from __future__ import annotations

import os
import struct
import sys
import threading
import time
import uuid

import wpptrace.provider as P

CONTROL, MESSAGE = uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2])
PYTHONIC = sys.argv[3:] == ["pythonic"]
state = {"logger": 0, "registration": None, "provider": None, "child": False}


def say(*words) -> None:
    prefix = "child-" if state["child"] else ""
    sys.stdout.write(prefix + " ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def callback(code, context, buffer):
    if code == P.WMI_ENABLE_EVENTS:
        handle = P.GetTraceLoggerHandle(buffer)
        state["logger"] = handle
        say("enable", handle & 0xFFFF, P.GetTraceEnableFlags(handle), P.GetTraceEnableLevel(handle))
        if state["child"]:
            for i in range(10):
                P.trace_packed(handle, 0x2B, MESSAGE.bytes_le, 77, struct.pack("<III", os.getpid(), 77, i))
    elif code == P.WMI_DISABLE_EVENTS:
        state["logger"] = 0
        say("disable")
    return 0


def register() -> None:
    if PYTHONIC:
        from wpptrace.provider.tracing import Provider

        provider = Provider("XprocApp", guid=CONTROL, flags=("APP",), register=False)
        original = provider._control_callback

        def watched(code, context, buffer):
            result = original(code, context, buffer)
            callback(code, context, buffer)
            return result
        provider._control_callback = watched
        provider.register()
        state["provider"] = provider
    else:
        state["registration"] = P.RegisterTraceGuids(callback, None, CONTROL, [MESSAGE])
    say("registered")


def log(count: int, threads: int) -> None:
    totals = [0, 0, 0]
    lock = threading.Lock()
    pid = os.getpid()

    def work(t: int) -> None:
        ok = dropped = invalid = 0
        for i in range(count):
            payload = struct.pack("<III", pid, t, i)
            rc = P.trace_packed(state["logger"], 0x2B, MESSAGE.bytes_le, 10 + t, payload)
            if rc == 0:
                ok += 1
            elif rc in (P._lib.ERROR_NOT_ENOUGH_MEMORY, P._lib.ERROR_OUTOFMEMORY):
                dropped += 1
            else:
                invalid += 1
        with lock:
            totals[0] += ok
            totals[1] += dropped
            totals[2] += invalid

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    say("logged", *totals)


def log_pythonic(count: int) -> None:
    provider = state["provider"]
    for i in range(count):
        provider.info(provider.flags.APP, "pythonic %d", i)
    say("logged", count, provider.events_dropped, 0)


def fork_and_log(count: int) -> None:
    pid = os.fork()
    if pid == 0:
        ok = 0
        for i in range(count):
            payload = struct.pack("<III", os.getpid(), 99, i)
            ok += P.trace_packed(state["logger"], 0x2B, MESSAGE.bytes_le, 99, payload) == 0
        os._exit(0 if ok == count else 1)
    _, status = os.waitpid(pid, 0)
    say("child", count if os.waitstatus_to_exitcode(status) == 0 else -1, pid)


def fork_and_watch() -> None:
    pid = os.fork()
    if pid == 0:
        state["child"] = True
        deadline = time.monotonic() + 30     # never outlives a test for long
        while time.monotonic() < deadline:
            time.sleep(0.05)
        os._exit(0)
    say("forked", pid)


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    command = words[0]
    if command == "register":
        register()
    elif command == "unregister":
        if state["registration"] is not None:
            P.UnregisterTraceGuids(state["registration"])
        say("unregistered")
    elif command == "log":
        if PYTHONIC:
            log_pythonic(int(words[1]))
        else:
            log(int(words[1]), int(words[2]))
    elif command == "fork":
        fork_and_log(int(words[1]))
    elif command == "forkwatch":
        fork_and_watch()
    elif command == "failalloc":
        P._lib.wpptrace_debug_fail_allocations(int(words[1]))
        say("failing")
    elif command == "reserve":
        say("reserved", P._lib.wpptrace_debug_reserve_only(state["logger"], 64))
    elif command == "exit":
        break
