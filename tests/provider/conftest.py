"""Fixtures for the provider tests: unique session names, a registered provider, the checker,
C programs built on the core."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
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


REPO = pathlib.Path(__file__).resolve().parents[2]
C_FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Werror", "-I", str(REPO / "src/wpptrace/include"),
           "-I", str(REPO / "provider/csrc")]


@pytest.fixture(scope="session")
def build_c_program(tmp_path_factory):
    """build(name, source_text) -> path of a C program linked with the core's sources, as a
    C user builds it (the core is compiled once per run)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (the extension itself is built with one)"
    tmp = tmp_path_factory.mktemp("ccore")
    sources = sorted((REPO / "provider" / "csrc").glob("etw_*.c"))
    subprocess.run([cc, *C_FLAGS, "-c", *map(str, sources)], cwd=tmp, check=True)
    objects = [str(tmp / (s.stem + ".o")) for s in sources]

    def build(name: str, text: str) -> pathlib.Path:
        (tmp / f"{name}.c").write_text(text)
        subprocess.run([cc, *C_FLAGS, str(tmp / f"{name}.c"), *objects, "-pthread", "-o", str(tmp / name)],
                       check=True)
        return tmp / name
    return build
