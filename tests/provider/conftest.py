"""Fixtures for the provider tests: unique session names, a registered provider, the checker."""
from __future__ import annotations

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))   # provider_etlcheck (test helper module)

import wpptrace.provider as P  # noqa: E402


@pytest.fixture
def session_name(request) -> str:
    return f"wpptest-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


class RegisteredProvider:
    """A provider registered with RegisterTraceGuids whose ControlCallback records every call."""

    def __init__(self):
        self.control_guid = uuid.uuid4()
        self.message_guid = uuid.uuid4()
        self.calls: list[tuple] = []
        self.logger = 0
        self.handle = P.RegisterTraceGuids(self._callback, "ctx", self.control_guid, [self.message_guid])

    def _callback(self, code, context, buffer):
        import threading
        if code == P.WMI_ENABLE_EVENTS:
            self.logger = P.GetTraceLoggerHandle(buffer)
            self.calls.append((code, context, P.GetTraceEnableFlags(self.logger),
                               P.GetTraceEnableLevel(self.logger), threading.get_ident()))
        else:
            self.logger = 0
            self.calls.append((code, context, None, None, threading.get_ident()))
        return 0

    def close(self):
        P.UnregisterTraceGuids(self.handle)


@pytest.fixture
def provider():
    p = RegisteredProvider()
    yield p
    p.close()
