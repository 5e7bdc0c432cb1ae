"""The fast path is its own extension, built for the interpreter it runs on; without it the
provider falls back to cffi and Python and writes the same records."""
from __future__ import annotations

import importlib.machinery
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from wpptrace import _core
from wpptrace.provider import _hazmat, fastpath

HERE = pathlib.Path(__file__).resolve().parent


def test_core_carries_no_fast_path_builtins():
    """The limited-API core (tagged abi3 in wheels) holds no full-API code."""
    for name in ("trace_packed", "trace_message", "register_site", "trace_site", "site_writer"):
        assert not hasattr(_core, name), name
    assert not hasattr(_core.lib, "wpptrace_py_install")


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")
def test_fast_path_file_name_carries_this_interpreters_tag():
    from wpptrace import _fastpath

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    assert sys.implementation.cache_tag.replace("-", "") in suffix.replace("-", "")
    assert _fastpath.__file__.endswith(suffix) and ".abi3." not in _fastpath.__file__
    assert _hazmat.trace_packed_raw is _fastpath.trace_packed


BLOCKED = textwrap.dedent("""
    import sys
    sys.modules["wpptrace._fastpath"] = None   # as on an interpreter the extension was not built for
    from wpptrace.provider import _hazmat, fastpath
    assert not fastpath.AVAILABLE and not _hazmat.FAST
    sys.path.insert(0, sys.argv[1])
    import fastpath_app, uuid
    from wpptrace.provider import api
    props = api.EVENT_TRACE_PROPERTIES(LogFileMode=1, LogFileName=sys.argv[2])
    session = api.StartTrace("blocked-" + uuid.uuid4().hex[:8], props)
    fastpath_app.trace.register()
    api.EnableTrace(True, 0xFFFFFFFF, 5, fastpath_app.trace.guid, session)
    fastpath_app.SITES["int32"](7)
    fastpath_app.six(-5, "six", 2**64 - 1, "w\\u00e9", 2.5, uuid.UUID(int=5))
    api.ControlTrace(session, None, None, 1)
""")


def test_without_the_extension_the_fallback_writes_the_same_records(tmp_path, pp):
    blocked = tmp_path / "blocked.etl"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, "-c", BLOCKED, str(HERE), str(blocked)], check=True, env=env)
    normal = tmp_path / "normal.etl"
    script = BLOCKED.replace('sys.modules["wpptrace._fastpath"] = None', "").replace(
        "assert not fastpath.AVAILABLE and not _hazmat.FAST", "")
    subprocess.run([sys.executable, "-c", script, str(HERE), str(normal)], check=True, env=env)
    got = pp.message_payloads(blocked)
    assert len(got) == 2 and got == pp.message_payloads(normal)
