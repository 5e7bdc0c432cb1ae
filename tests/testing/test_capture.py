"""wpptrace.testing.capture: a private session around a block, decoded with the providers' own
TMF messages; what each message carries, filtering, nesting, files kept, sessions never left."""
from __future__ import annotations

import contextlib
import datetime
import errno
import gc
import inspect
import logging
import os
import pathlib
import re
import threading
import uuid
import weakref

import pytest

from wpptrace.cli import main
from wpptrace.provider import EVENT_TRACE_CONTROL_FLUSH, EVENT_TRACE_CONTROL_QUERY, ControlTrace
from wpptrace.provider._hazmat import lib
from wpptrace.provider.logging_handler import WppHandler
from wpptrace.provider.tracing import (TRACE_LEVEL_ERROR, TRACE_LEVEL_INFORMATION,
                                       TRACE_LEVEL_WARNING, Provider, TraceWarning)
from wpptrace.testing import Capture, CaptureAssertionError, capture
from wpptrace.winerror import Win32Error

HERE = pathlib.Path(__file__).resolve().parent

trace = Provider("CaptureTests", flags=("IO", "NET"))
IO, NET = trace.flags.IO, trace.flags.NET
other = Provider("CaptureOther", flags=("ALL",))


def copy_file(n: int, path: str) -> None:
    trace.info(IO, "read %d bytes from %s", n, path)


def fail(status: int) -> None:
    trace.error(NET, "open failed: %!STATUS!", status)


def line_of(func, text: str) -> int:
    lines, start = inspect.getsourcelines(func)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_messages_carry_text_typed_args_and_the_call_site() -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    with capture(trace) as cap:
        copy_file(42, "a.txt")
        fail(0xC0000034)
    after = datetime.datetime.now(datetime.timezone.utc)
    assert cap.lost == 0 and cap.errors == []
    assert cap.texts == ["read 42 bytes from a.txt",
                         "open failed: 0xc0000034(STATUS_OBJECT_NAME_NOT_FOUND)"]
    read, failed = cap.messages
    assert tuple(read.args) == (42, "a.txt") and type(read.args[0]) is int
    assert read.args["n"] == 42 and read.args["path"] == "a.txt"
    assert read.args.names == ("n", "path")
    assert read.level == TRACE_LEVEL_INFORMATION and failed.level == TRACE_LEVEL_ERROR
    assert read.flags == "IO" and failed.flags == "NET"
    assert read.function == "copy_file" and failed.function == "fail"
    assert read.file == "test_capture.py"
    assert read.line == line_of(copy_file, "trace.info") and failed.line == line_of(fail, "trace.error")
    assert isinstance(read.guid, uuid.UUID) and read.guid == failed.guid   # one GUID per source file
    assert read.number != failed.number
    assert before - datetime.timedelta(seconds=1) <= read.timestamp <= failed.timestamp <= after
    assert read.pid == os.getpid() and read.tid == threading.get_native_id()
    assert read.status == "ok" and read.component == "CaptureTests"
    assert read.to_dict()["args"] == {"n": 42, "path": "a.txt"}


def test_only_what_the_session_enables_is_captured() -> None:
    with capture(trace, level=TRACE_LEVEL_WARNING, flags="NET") as cap:
        copy_file(1, "io-info")                       # IO: not enabled
        trace.warning(NET, "net warning %d", 2)
        trace.info(NET, "net info %d", 3)              # above the level
        fail(0)
    assert cap.texts == ["net warning 2", "open failed: STATUS_SUCCESS"]
    with capture(trace, flags=[IO, "NET"], level=TRACE_LEVEL_INFORMATION) as cap:
        copy_file(4, "x")
        trace.verbose(IO, "verbose %d", 5)
    assert cap.texts == ["read 4 bytes from x"]


def test_nothing_is_captured_outside_the_block_and_captures_follow_each_other() -> None:
    copy_file(0, "before")
    with capture(trace) as first:
        copy_file(1, "first")
    copy_file(2, "between")
    with capture(trace) as second:
        copy_file(3, "second")
    assert first.texts == ["read 1 bytes from first"]
    assert second.texts == ["read 3 bytes from second"]
    assert first.session_name != second.session_name
    assert str(os.getpid()) in first.session_name
    assert not trace.enabled()


def test_nested_captures_of_one_provider_hand_it_back() -> None:
    with capture(trace) as outer:
        copy_file(1, "outer")
        with capture(trace) as inner:
            copy_file(2, "inner")
        copy_file(3, "outer again")
    assert outer.texts == ["read 1 bytes from outer", "read 3 bytes from outer again"]
    assert inner.texts == ["read 2 bytes from inner"]


def test_nested_captures_of_two_providers_are_independent() -> None:
    with capture(trace) as outer:
        copy_file(1, "outer")
        with capture(other) as inner:
            other.info(other.flags.ALL, "other %d", 7)
            copy_file(2, "still outer")
    assert outer.texts == ["read 1 bytes from outer", "read 2 bytes from still outer"]
    assert inner.texts == ["other 7"]


def test_several_providers_in_one_capture() -> None:
    with capture(trace, other) as cap:
        copy_file(1, "t")
        other.info(other.flags.ALL, "other %d", 2)
    assert cap.texts == ["read 1 bytes from t", "other 2"]
    assert [m.component for m in cap.messages] == ["CaptureTests", "CaptureOther"]


def _session_exists(name: str) -> bool:
    try:
        ControlTrace(0, name, None, EVENT_TRACE_CONTROL_QUERY)
    except Win32Error as exc:
        assert exc.name == "ERROR_WMI_INSTANCE_NOT_FOUND"
        return False
    return True


def test_only_a_capture_with_a_keep_folder_has_a_one_second_flush_timer(tmp_path) -> None:
    """The flush timer is what leaves a killed process's file, with what it logged, in the keep
    folder; without one the file goes with the process anyway, and a flush every second would
    only make the file grow by a whole buffer each second."""
    def flush_timer(cap) -> int:
        return ControlTrace(0, cap.session_name, None, EVENT_TRACE_CONTROL_QUERY).FlushTimer

    with capture(trace) as plain:
        assert flush_timer(plain) == 0
    with capture(trace, keep_dir=tmp_path / "kept") as kept:
        assert flush_timer(kept) == 1


def test_a_running_capture_s_folder_is_never_taken_for_a_dead_run_s(tmp_path) -> None:
    """Two runs of one test at once into one keep folder: the second's ``~running`` folder is
    a new one, the first's (whose file its session holds) is left alone."""
    from wpptrace.testing import CaptureFactory

    first, second = (CaptureFactory("t.py::test_x", keep_dir=tmp_path) for _ in range(2))
    with first(trace) as one:
        with second(other) as two:
            assert os.path.basename(os.path.dirname(one.etl_path)) == "t.test_x~running"
            assert os.path.basename(os.path.dirname(two.etl_path)) == "t.test_x~running~2"
            copy_file(1, "first")
            other.info(other.flags.ALL, "second %d", 2)
    assert one.texts == ["read 1 bytes from first"] and two.texts == ["second 2"]


def test_asking_whether_a_dead_run_s_file_is_held_takes_no_lock_on_it(tmp_path, monkeypatch) -> None:
    """The probe only asks: a lock it took, however briefly, would make a session starting on
    that file meanwhile find it locked (ERROR_SHARING_VIOLATION). It tells a file a session
    holds, and one no lock is on."""
    from wpptrace import testing

    etl = tmp_path / "trace.etl"
    etl.write_bytes(b"")
    inode = f":{os.stat(etl).st_ino} "
    locks_seen: list[list[str]] = []
    close = os.close

    def closing(fd: int) -> None:       # what locks are on the file as the probe ends
        with open("/proc/locks") as table:
            locks_seen.append([line for line in table if inode in line])
        close(fd)
    monkeypatch.setattr(testing.os, "close", closing)
    assert testing._held(str(etl)) is False
    monkeypatch.undo()
    assert locks_seen == [[]]
    with capture(trace, keep_dir=tmp_path / "kept") as cap:
        assert testing._held(cap.etl_path) is True


def test_the_session_runs_only_inside_the_block() -> None:
    with capture(trace) as cap:
        assert _session_exists(cap.session_name) and trace.enabled(IO)
        with pytest.raises(RuntimeError, match="still running"):
            cap.assert_logged("x")
    assert not _session_exists(cap.session_name) and not trace.enabled()


def test_an_interrupt_stops_the_session_and_keeps_the_trace(tmp_path: pathlib.Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with capture(trace, keep_dir=tmp_path) as cap:
            copy_file(5, "interrupted")
            raise KeyboardInterrupt
    assert not _session_exists(cap.session_name) and not trace.enabled()
    assert cap.texts == ["read 5 bytes from interrupted"]
    assert cap.kept == str(tmp_path / cap.name)


def test_an_exception_keeps_a_folder_wpptrace_fmt_decodes(tmp_path: pathlib.Path, capsys) -> None:
    with pytest.raises(ValueError) as raised:
        with capture(trace, keep_dir=tmp_path, name="tests/x.py::test one") as cap:
            copy_file(6, "kept")
            fail(0xC0000022)
            raise ValueError("boom")
    folder = pathlib.Path(cap.kept)
    assert folder == tmp_path / "tests_x.py_test_one"
    assert f"wpptrace capture kept in {folder}" in raised.value.__notes__
    assert cap.etl_path == str(folder / "trace.etl")
    assert sorted(p.name for p in folder.iterdir()) == ["tmf", "trace.etl", "trace.txt"]
    capsys.readouterr()
    assert main(["fmt", str(folder / "trace.etl"), "-p", str(folder / "tmf"), "--no-prefix"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["EventTrace", "read 6 bytes from kept",
                     "open failed: 0xc0000022(STATUS_ACCESS_DENIED)"]
    text = (folder / "trace.txt").read_text().splitlines()
    assert [line.split("]", 2)[-1] for line in text[1:]] == lines[1:]


# -- a file that cannot be completed (a full disk) -------------------------------------------

def fail_writes(error: int = errno.ENOSPC) -> None:
    """Every write of a .etl file by this process fails with `error` from now on (the captures'
    sessions are private: this process writes their files)."""
    lib.wpptrace_debug_fail_file_writes(0, 1 << 30, error)


def restore_writes() -> None:
    lib.wpptrace_debug_fail_file_writes(0, 0, 0)


@contextlib.contextmanager
def writes_failing(error: int = errno.ENOSPC):
    fail_writes(error)
    try:
        yield
    finally:
        restore_writes()


def _flush(cap) -> None:
    """Write what the capture's session holds now (nothing is left to write while writes fail)."""
    ControlTrace(0, cap.session_name, None, EVENT_TRACE_CONTROL_FLUSH)


def test_a_capture_whose_file_cannot_be_completed_is_decoded_and_kept_then_raises(tmp_path) -> None:
    try:
        with pytest.raises(Win32Error) as raised:
            with capture(trace, keep_dir=tmp_path) as cap:
                copy_file(1, "written")
                _flush(cap)
                copy_file(2, "lost")
                fail_writes()
    finally:
        restore_writes()
    assert raised.value.name == "ERROR_DISK_FULL" and raised.value.properties.LogBuffersLost == 1
    assert cap.finished and cap.texts == ["read 1 bytes from written"]    # what the file holds
    assert cap.kept == str(tmp_path / cap.name) and os.path.isfile(cap.etl_path)
    assert raised.value.__notes__ == [f"wpptrace capture kept in {cap.kept}"]
    assert not _session_exists(cap.session_name) and not trace.enabled()


def test_a_block_exception_goes_on_when_the_file_cannot_be_completed_either(tmp_path) -> None:
    try:
        with pytest.raises(ValueError, match="boom") as raised:
            with capture(trace, keep_dir=tmp_path) as cap:
                copy_file(1, "lost")
                fail_writes()
                raise ValueError("boom")
    finally:
        restore_writes()
    incomplete, kept = raised.value.__notes__
    assert re.fullmatch(rf"wpptrace capture {cap.name}: its log file \S+/trace\.etl is incomplete: "
                        rf"1 buffers could not be written \(ERROR_DISK_FULL\)", incomplete), incomplete
    assert kept == f"wpptrace capture kept in {cap.kept}"
    assert cap.finished and cap.kept == str(tmp_path / cap.name)
    assert not _session_exists(cap.session_name) and not trace.enabled()


def test_an_inner_capture_whose_file_fails_gives_the_provider_back(tmp_path) -> None:
    with capture(trace) as outer:
        copy_file(1, "outer")
        _flush(outer)                        # the outer session has nothing left to write
        try:
            with pytest.raises(Win32Error) as raised:
                with capture(trace, keep_dir=tmp_path) as inner:
                    copy_file(2, "inner, lost")
                    fail_writes()
        finally:
            restore_writes()
        copy_file(3, "outer again")
    assert raised.value.name == "ERROR_DISK_FULL"
    assert outer.texts == ["read 1 bytes from outer", "read 3 bytes from outer again"]
    assert outer.lost == 0 and inner.finished and inner.kept and inner.texts == []


def _no_room(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_capture_kept_on_a_full_disk_keeps_its_file_and_says_what_it_lacks(tmp_path, monkeypatch) -> None:
    import wpptrace.testing as testing

    monkeypatch.setattr(testing, "_write_tmf_dir", _no_room)
    with pytest.raises(ValueError) as raised:
        with capture(trace, keep_dir=tmp_path, name="full") as cap:
            copy_file(1, "kept anyway")
            raise ValueError("boom")
    folder = tmp_path / "full"
    assert cap.kept == str(folder) and cap.kept_problems == "tmf/ not written: ERROR_DISK_FULL"
    assert raised.value.__notes__ == [f"wpptrace capture kept in {folder} "
                                      f"(tmf/ not written: ERROR_DISK_FULL)"]
    assert sorted(p.name for p in folder.iterdir()) == ["trace.etl", "trace.txt"]
    assert "read 1 bytes from kept anyway" in (folder / "trace.txt").read_text()
    assert "tmf/ not written: ERROR_DISK_FULL" in cap.report()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]     # no running folder left


def test_a_capture_that_cannot_be_moved_is_kept_where_it_is(tmp_path, monkeypatch) -> None:
    import wpptrace.testing as testing

    with capture(trace) as cap:
        copy_file(2, "not moved")
    first = os.path.dirname(cap.etl_path)
    monkeypatch.setattr(testing.shutil, "move", _no_room)
    assert cap.keep(tmp_path / "elsewhere") == first
    assert cap.kept_problems == f"not moved to {tmp_path / 'elsewhere'}: ERROR_DISK_FULL"
    assert list((tmp_path / "elsewhere").iterdir()) == []              # no half-made folder
    assert "read 2 bytes from not moved" in pathlib.Path(first, "trace.txt").read_text()
    # kept: never removed, also once the capture is gone (collected: a finalizer left attached
    # has run by then, as it does for a capture not kept)
    with capture(trace) as unkept:
        copy_file(3, "not kept")
    removed = os.path.dirname(unkept.etl_path)
    collected = [weakref.ref(cap), weakref.ref(unkept)]
    del cap, unkept
    gc.collect()
    assert [ref() for ref in collected] == [None, None]
    assert os.path.isdir(first) and not os.path.exists(removed)
    import shutil
    shutil.rmtree(first)


def test_a_capture_whose_start_failed_leaves_no_folder_once_a_passing_test_is_discarded(
        tmp_path, monkeypatch) -> None:
    """A start that fails (a test expecting it passes) made the capture's running folder and
    the session's file: the discard after a passing test removes them, as for any capture not
    kept, not only the finished ones."""
    from wpptrace.provider import sessions
    from wpptrace.testing import CaptureFactory

    def refused(self, *args, **kwargs):
        raise OSError("enable refused")
    monkeypatch.setattr(sessions.TraceSession, "enable", refused)
    factory = CaptureFactory("tests/x.py::test_start_fails", keep_dir=tmp_path)
    cap = factory(trace)
    with pytest.raises(OSError, match="enable refused"):
        cap.start()
    assert os.listdir(tmp_path) == [f"{factory.name}~running"]      # (what discard removes)
    factory.finish(failed=False, discard=False)         # as the pytest plugin does, then
    factory.discard()
    assert os.listdir(tmp_path) == []
    assert not cap.running and not _session_exists(cap.session_name)


def test_finishing_a_test_finishes_every_capture_then_raises_the_first_failure(tmp_path) -> None:
    from wpptrace.testing import CaptureFactory

    factory = CaptureFactory("tests/x.py::test_two", keep_dir=tmp_path)
    first, second = factory(trace), factory(other)
    first.start()
    second.start()
    copy_file(1, "lost")
    other.info(other.flags.ALL, "other %d", 2)
    with writes_failing():
        with pytest.raises(Win32Error) as raised:
            factory.finish(failed=False)
    assert raised.value.properties.LoggerName == first.session_name
    for cap in (first, second):
        assert cap.finished and cap.kept and not _session_exists(cap.session_name)
    assert not trace.enabled() and not other.enabled()


def test_captures_are_named_after_their_test_and_two_tests_never_share_a_name() -> None:
    from wpptrace.testing import CaptureFactory

    def name(nodeid: str) -> str:
        return CaptureFactory(nodeid).name

    assert name("tests/test_app.py::test_read[x]") == "tests.test_app.test_read-x"
    assert name("tests/test_app.py::TestApp::test_read") == "tests.test_app.TestApp.test_read"
    assert name("t.py::test_p[a_b]") == "t.test_p-a_b"
    # a name changed to be a folder name ends with a hash of the node id: its own, on every run
    assert name("t.py::test_p[a/b]") == "t.test_p-a_b~654ae4dc"
    assert name("t.py::test_p[a::b]") == "t.test_p-a_b~92f58bc2"
    assert name("t.py::test_p[a]]") == "t.test_p-a~53da4868"
    assert name("t.py::test_p[\u00e9]") == "t.test_p~7546e49f"
    long_a, long_b = (name(f"t.py::test_{'x' * 200}{end}") for end in "ab")
    assert long_a != long_b and len(long_a) == len(long_b) == 112
    assert len({name(f"t.py::test_p[{c}]") for c in "/:[]?* "}) == 7


def test_a_capture_that_went_well_leaves_no_file() -> None:
    with capture(trace) as cap:
        copy_file(1, "gone")
    folder = pathlib.Path(cap.etl_path).parent
    assert folder.is_dir() and cap.kept is None
    cap.discard()
    assert not folder.exists()


def test_keep_writes_the_folder_on_request(tmp_path: pathlib.Path) -> None:
    with capture(trace, keep=True, keep_dir=tmp_path, name="asked") as cap:
        copy_file(1, "asked")
    assert cap.kept == str(tmp_path / "asked")
    with capture(trace, keep=True, keep_dir=tmp_path, name="asked") as again:
        copy_file(2, "asked")
    assert again.kept == str(tmp_path / "asked~2")        # never over another capture
    tmfs = list((tmp_path / "asked" / "tmf").glob("*.tmf"))
    assert [p.stem for p in tmfs] == [str(cap.messages[0].guid)]


def test_a_relative_keep_dir_is_the_working_directory_s_when_the_capture_is_made(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative ``keep_dir`` names the folder of the working directory the capture was made
    in, even if the code under test changes directory before the capture is kept."""
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    with capture(trace, keep=True, keep_dir="kept", name="moved") as cap:
        os.chdir(tmp_path / "elsewhere")
        copy_file(1, "moved")
    assert cap.kept == str(tmp_path / "run" / "kept" / "moved")
    assert not (tmp_path / "elsewhere" / "kept").exists()


# -- assertions ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def done():
    with capture(trace) as cap:
        copy_file(42, "a.txt")
        copy_file(43, "b.txt")
        fail(0xC0000034)
    return cap


def test_assert_logged_compares_typed_arguments(done) -> None:
    assert [m.args["n"] for m in done.assert_logged("read %d bytes from %s", 42, "a.txt")] == [42]
    done.assert_logged("open failed: %!STATUS!", 0xC0000034)      # no Python rendering: shape + args
    done.assert_logged("read 43 bytes from b.txt")                  # the whole text
    done.assert_logged("read %d bytes from %s", count=2)            # the shape alone
    done.assert_logged("read %d bytes from %s", 42, "a.txt", level=TRACE_LEVEL_INFORMATION,
                       function="copy_file", flags="IO")
    done.assert_not_logged("read %d bytes from %s", 42, "b.txt")
    done.assert_not_logged("read %d bytes from %s", "42", "a.txt")     # typed: a str is not 42


def test_assert_logged_regular_expressions(done) -> None:
    assert len(done.assert_logged_re(r"read \d+ bytes")) == 2
    done.assert_logged(re.compile(r"STATUS_OBJECT_NAME"), level=TRACE_LEVEL_ERROR)
    done.assert_logged_re(r"READ 42", re.I, count=1)
    with pytest.raises(TypeError):
        done.assert_logged(re.compile("x"), 1)


def test_a_failed_assertion_lists_the_decoded_messages_and_keeps_the_capture(tmp_path) -> None:
    with capture(trace, keep_dir=tmp_path) as cap:
        copy_file(41, "a.txt")
    with pytest.raises(CaptureAssertionError) as failed:
        cap.assert_logged("read %d bytes from %s", 42, "a.txt")
    text = str(failed.value)
    assert text.startswith("expected a message matching 'read %d bytes from %s' with arguments "
                           "(42, 'a.txt'), found 0\n1 message(s) captured, 0 lost:\n")
    assert "INFORMATION copy_file: read 41 bytes from a.txt  args=(41, 'a.txt')" in text
    assert f"capture kept in {cap.kept}" in text and os.path.isfile(cap.etl_path)
    with pytest.raises(CaptureAssertionError, match=r"expected 2 message\(s\) matching .* found 1"):
        cap.assert_logged("read %d bytes from %s", count=2)
    with pytest.raises(CaptureAssertionError, match="expected no message"):
        cap.assert_not_logged(re.compile("read"))


# -- targets ---------------------------------------------------------------------------------

def test_a_logging_module_through_its_wpphandler() -> None:
    import importlib.util
    spec = importlib.util.spec_from_file_location("capture_shop", HERE / "shop.py")
    shop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shop)
    provider = Provider("Shop", flags=("LOGGING",), root=str(HERE))
    handler = WppHandler(provider=provider)
    shop.log.addHandler(handler)
    shop.log.setLevel(logging.DEBUG)
    try:
        with capture(handler) as by_handler:
            shop.place_order(7, ["tea", "cake"], 120.5)
        with capture(provider) as by_provider:          # the handler is found from its provider
            shop.place_order(8, ["pie"], 3)
    finally:
        shop.log.removeHandler(handler)
        provider.unregister()
    assert by_handler.texts == ["placing order 7 with 2 item(s)", "item tea", "item cake",
                                "large order 7: 12050 cents"]
    assert by_handler.messages[0].args == (7, 2) and by_handler.messages[1].args == ("tea",)
    assert [m.level for m in by_handler.messages] == [5, 4, 4, 3]
    assert by_handler.messages[0].function == "place_order"
    assert by_provider.texts == ["placing order 8 with 1 item(s)", "item pie"]


def test_logging_true_attaches_a_handler_for_the_block() -> None:
    log = logging.getLogger("capture.tests.plain")
    root_level = logging.getLogger().level
    handlers = list(logging.getLogger().handlers)
    with capture(logging=True) as cap:
        log.info("plain %s %d", "info", 1)
        log.debug("debug %d", 2)
    assert cap.texts == ["plain info 1", "debug 2"] and cap.messages[0].args == ("info", 1)
    assert logging.getLogger().level == root_level and logging.getLogger().handlers == handlers
    with capture(logging="capture.tests", level=TRACE_LEVEL_WARNING) as cap:
        log.info("not at this level")
        log.warning("warned %d", 3)
    assert cap.texts == ["warned 3"]
    with capture(logging=True) as outer:
        log.info("outer %d", 1)
        with capture(logging=True) as inner:
            log.info("inner %d", 2)
        log.info("outer %d", 3)
    assert outer.texts == ["outer 1", "outer 3"] and inner.texts == ["inner 2"]
    assert logging.getLogger().handlers == handlers


def test_a_control_guid_with_tmf_files(tmp_path: pathlib.Path) -> None:
    with capture(trace):
        copy_file(0, "sites seen")                     # so write_tmf has the call site
    trace.write_tmf(str(tmp_path))
    with capture(str(trace.guid), tmf=tmp_path) as cap:
        copy_file(9, "by guid")
    assert cap.texts == ["read 9 bytes from by guid"] and cap.messages[0].args["n"] == 9
    with capture(trace.guid) as unknown:                # no TMF: tracefmt's Unknown line
        copy_file(10, "no tmf")
    assert unknown.messages[0].status == "unknown"
    assert unknown.texts[0].endswith("(No Format Information found).")


def test_bad_targets_are_refused() -> None:
    with pytest.raises(TypeError, match="Provider, WppHandler or control GUID"):
        capture(42)
    with pytest.raises(ValueError, match="not a control GUID"):
        capture("nope")
    with pytest.raises(ValueError, match="given twice"):
        capture(trace, trace.guid)
    with pytest.raises(ValueError, match="at least one"):
        capture()
    with pytest.raises(ValueError, match="bare control GUID"):
        capture(trace.guid, flags="IO")
    with pytest.raises(KeyError):
        capture(trace, flags="NOPE")


def bad_value(value) -> None:
    trace.info(IO, "count %d", value)


def test_strict_mode_is_on_inside_the_capture_only() -> None:
    before = trace.strict
    with capture(trace) as cap:
        assert trace.strict is True
        with pytest.raises((TypeError, ValueError), match="test_capture.py:"):
            bad_value("not a number")
        bad_value(1)
    assert trace.strict == before and cap.texts == ["count 1"]
    with capture(trace, strict=False) as lenient:
        assert trace.strict == before
        with pytest.warns(TraceWarning, match="trace call dropped"):
            bad_value("dropped, counted")
        bad_value(2)
    assert lenient.texts == ["count 2"]
    assert trace.stats().calls_dropped >= 1


def test_a_hundred_thousand_messages_with_default_buffers() -> None:
    with capture(trace) as cap:
        for i in range(100_000):
            trace.info(IO, "message %d", i)
    assert cap.lost == 0 and cap.errors == []
    assert len(cap.messages) == 100_000
    assert [m.args[0] for m in cap.messages] == list(range(100_000))
    assert cap.messages[-1].text == "message 99999"


def test_a_format_matches_like_a_glob_of_its_literal_text() -> None:
    """Each conversion stands for any text (also none, also newlines); ``%%`` is a percent sign;
    the whole text must match. Checked against the same shape as a regular expression on every
    format and text over a small alphabet."""
    import itertools as it

    from wpptrace.testing import _Shape

    def as_regex(fmt: str) -> re.Pattern:
        return re.compile("".join("(?s:.*)" if c == "*" else re.escape(c) for c in fmt) + r"\Z", re.S)

    alphabet = "ab*"
    formats = ["".join(p) for n in range(6) for p in it.product(alphabet, repeat=n)]
    texts = ["".join(p) for n in range(6) for p in it.product("ab\n", repeat=n)]
    for glob in formats:
        shape, regex = _Shape(glob.replace("*", "%s")), as_regex(glob)
        for text in texts:
            assert shape.match(text) == (regex.match(text) is not None), (glob, text)
    assert _Shape("100%% of %d").match("100% of 7") and not _Shape("100%% of %d").match("100%% of 7")
    assert _Shape("%!STATUS! after %d tries").match("0xc000020c(X) after 3 tries")


def test_a_message_that_does_not_match_many_conversions_is_refused_in_one_pass() -> None:
    """A backtracking match takes time exponential in the conversions here (hours for 12); the
    test never finishes then."""
    from wpptrace.testing import _Shape

    text = "order 7: " + ", ".join(f"item{i}" for i in range(40))
    assert not _Shape("order %d: " + ", ".join(["%s"] * 12) + " (total %d)").match(text)
    assert _Shape("order %d: " + ", ".join(["%s"] * 12)).match(text)
    assert not _Shape(" ".join(["%s"] * 12) + "!").match(" " * 60)


#: a script: another process's capture of a control GUID, until a line comes on its stdin
TAKER = str(HERE / "capture_taker.py")


def test_a_control_guid_taken_over_by_another_process_s_capture_is_said() -> None:
    import subprocess
    import sys

    shared = Provider("CaptureTakeover", flags=("ALL",))
    with pytest.warns(Warning) as warned:
        with capture(str(shared.guid)) as cap:
            shared.info(shared.flags.ALL, "before %d", 1)
            taker = subprocess.Popen([sys.executable, TAKER, str(shared.guid)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            other = taker.stdout.readline().strip()
            shared.info(shared.flags.ALL, "after %d", 2)      # the other session's now
        taker.communicate("stop\n", timeout=60)
    assert taker.returncode == 0 and other.startswith("wpptrace-capture-")
    assert len(cap.texts) == 1 and cap.lost == 0           # what it could not see, lost 0
    assert cap.takeovers == {shared.guid: other}
    said = (f"provider {shared.guid} was taken over by session {other!r} (another capture of that "
            f"control GUID, in another test process?): what it logged after that is not in this "
            f"capture")
    assert f"warning: {said}" in cap.report().splitlines()
    from wpptrace.testing import CaptureWarning
    captured = [w for w in warned if w.category is CaptureWarning]
    assert [str(w.message) for w in captured] == [f"wpptrace capture {cap.name}: {said}"]
    # said at the test's own with line, not somewhere inside wpptrace
    with_line = line_of(test_a_control_guid_taken_over_by_another_process_s_capture_is_said,
                        "with capture(str(shared.guid)) as cap:")
    assert (captured[0].filename, captured[0].lineno) == (__file__, with_line)
    with capture(str(shared.guid)) as alone:                # nobody else: nothing said
        shared.info(shared.flags.ALL, "alone %d", 3)
    assert alone.takeovers == {} and "warning" not in alone.report()
    shared.unregister()


def test_a_takeover_warning_turned_into_an_error_comes_once_the_capture_is_done(tmp_path) -> None:
    """With warnings turned into errors (``-W error``, ``filterwarnings = error`` in CI), the
    takeover's CaptureWarning is raised only once the capture's session is stopped and its file
    decoded: no session is left running and what was logged before the takeover is there. With
    an exception of the block's own on its way, that exception is the one seen, the takeover
    said in a note on it."""
    import subprocess
    import sys
    import warnings

    from wpptrace.provider.sessions import list_sessions
    from wpptrace.testing import CaptureWarning

    shared = Provider("CaptureTakeoverAsError", flags=("ALL",))
    takers: list = []

    def taken_over(block_error: Exception | None) -> Capture:
        """A capture whose GUID another process's capture takes; what runs once it ended."""
        with capture(str(shared.guid), tmf=str(tmp_path)) as cap:
            shared.info(shared.flags.ALL, "before %d", 1)
            shared.write_tmf(str(tmp_path))
            takers.append(subprocess.Popen([sys.executable, TAKER, str(shared.guid)], text=True,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            takers[-1].stdout.readline()
            finished.append(cap)
            if block_error is not None:
                raise block_error
        return cap

    finished: list[Capture] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(CaptureWarning, match="was taken over by session 'wpptrace-capture-"):
                taken_over(None)
            running = [p.LoggerName for p, _ in list_sessions()]
            cap = finished.pop()
            assert cap.session_name not in running and not cap.running and cap.finished
            assert cap.texts == ["before 1"] and list(cap.takeovers) == [shared.guid]

            with pytest.raises(KeyError) as raised:
                taken_over(KeyError("the block's own"))
            running = [p.LoggerName for p, _ in list_sessions()]
            cap = finished.pop()
            assert raised.value.args == ("the block's own",)
            notes = getattr(raised.value, "__notes__", [])
            assert any(n.startswith(f"wpptrace capture {cap.name}: provider {shared.guid} was taken "
                                    f"over by session") for n in notes), notes
            assert cap.session_name not in running and cap.texts == ["before 1"]
    finally:
        for taker in takers:
            taker.communicate("stop\n", timeout=60)
    shared.unregister()


def _taken_by_other_processes(guids: list) -> list:
    """A capture in another process for each control GUID, started: those processes."""
    import subprocess
    import sys

    takers = []
    for guid in guids:
        takers.append(subprocess.Popen([sys.executable, TAKER, str(guid)], text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        takers[-1].stdout.readline()
    return takers


def test_the_takeovers_of_a_capture_the_test_left_running_are_said_at_the_line_that_made_it(
        tmp_path) -> None:
    """The pytest plugin stops a capture a test left running (``CaptureFactory.finish``): its
    takeovers are said at the test's line that made the capture, not inside wpptrace, and all
    of them in one warning, which ``-W error`` raises whole."""
    import warnings

    from wpptrace.testing import CaptureFactory, CaptureWarning

    first, second = Provider("CaptureLeftA", flags=("ALL",)), Provider("CaptureLeftB", flags=("ALL",))
    takers: list = []
    try:
        for as_error in (False, True):
            factory = CaptureFactory("test_left", keep_dir=tmp_path / str(as_error))
            cap = factory(str(first.guid), str(second.guid))
            cap.start()
            takers += _taken_by_other_processes([first.guid, second.guid])
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("error" if as_error else "always")
                raised = None
                try:
                    factory.finish(failed=False)
                except CaptureWarning as exc:
                    raised = exc
            assert cap.finished and set(cap.takeovers) == {first.guid, second.guid}
            said = [str(raised)] if as_error else [str(w.message) for w in warned]
            assert len(said) == 1 and said[0].startswith(f"wpptrace capture {cap.name}: "), said
            assert all(f"provider {g} was taken over by session" in said[0]
                       for g in (first.guid, second.guid)), said
            if not as_error:
                made = line_of(test_the_takeovers_of_a_capture_the_test_left_running_are_said_at_the_line_that_made_it,
                               "cap = factory(str(first.guid), str(second.guid))")
                assert (warned[0].filename, warned[0].lineno, warned[0].category) == (
                    __file__, made, CaptureWarning)
            for taker in takers:
                taker.communicate("stop\n", timeout=60)
            takers.clear()
    finally:
        for taker in takers:
            taker.communicate("stop\n", timeout=60)
    first.unregister()
    second.unregister()


def test_a_kept_capture_is_private_to_its_user_as_its_trace_is(tmp_path) -> None:
    """A kept folder, its tmf/ and every file in them: 0700 / 0600 whatever the umask lets
    through, as the session's own .etl is (the decoded text tells what the trace tells)."""
    import stat

    before = os.umask(0o022)
    try:
        with capture(trace, keep=True, keep_dir=tmp_path / "kept", name="private") as cap:
            copy_file(1, "private")
    finally:
        os.umask(before)
    folder = pathlib.Path(cap.kept)
    modes = {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
             for p in [folder, *folder.rglob("*")]}
    assert len(modes) == 5, modes             # ., trace.etl, trace.txt, tmf, tmf/<guid>.tmf
    for name, mode in modes.items():
        expected = 0o700 if (folder / name).is_dir() else 0o600
        assert mode == expected, (name, oct(mode))


forked = Provider("CaptureForked", flags=("ALL",))


def log_from(who: str, n: int) -> None:
    forked.info(forked.flags.ALL, "%s %d", who, n)


def _fork_and_log() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            log_from("child", 2)
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0


def test_a_forked_child_logs_into_a_guid_capture_not_a_private_one(tmp_path) -> None:
    """As the docs say: a private session stays the parent's (the child's call is dropped,
    not raised); capturing the control GUID with the TMF written first sees both."""
    with capture(forked) as private:
        log_from("parent", 1)
        _fork_and_log()
    assert private.texts == ["parent 1"] and private.lost == 0
    forked.write_tmf(str(tmp_path), sources=[__file__])
    with capture(str(forked.guid), tmf=tmp_path) as shared:
        log_from("parent", 1)
        _fork_and_log()
    assert sorted(shared.texts) == ["child 2", "parent 1"] and shared.lost == 0
    assert len({m.pid for m in shared.messages}) == 2


def test_left_running_finds_every_folder_a_killed_test_s_captures_leave(tmp_path) -> None:
    """What xdist's crash report names: the test's first capture (``~running``, or
    ``~running~2`` beside a live run's), its later ones (``~2~running``); not another test's,
    nor a folder without its trace.etl."""
    from wpptrace.testing import left_running

    for folder in ("t.test_a~running", "t.test_a~running~2", "t.test_a~2~running",
                   "t.test_a-x~running", "t.test_b~running"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "trace.etl").write_bytes(b"")
    (tmp_path / "t.test_a~3~running").mkdir()
    assert left_running(tmp_path, "t.py::test_a") == [
        str(tmp_path / name / "trace.etl")
        for name in ("t.test_a~2~running", "t.test_a~running", "t.test_a~running~2")]
