"""The pytest plugin installing wpptrace brings (entry point ``pytest11``): the ``wpp_capture``
fixture and the ``--wpp-keep DIR`` option.

::

    def test_copy(wpp_capture):
        with wpp_capture(trace) as cap:
            app.copy("a.txt")
        cap.assert_logged("read %d bytes", 42)

``wpp_capture`` is :func:`wpptrace.testing.capture` with the capture named after the test.
When the test fails (also with an error in a fixture's setup or teardown), its captures are
kept (``trace.etl``, ``tmf/``, ``trace.txt``, in ``wpp-captures/`` of pytest's temporary folder)
and their decoded messages are added to the failure report (a failed ``assert_logged`` lists them itself); a test interrupted by Ctrl+C (or
``pytest.exit``) has no report, but its captures are kept there all the same. With
``--wpp-keep DIR`` every capture is kept in ``DIR``, one folder per capture, for CI artifacts (a
relative ``DIR`` is taken from the folder pytest was started in, also when a test changes the
working directory); a folder's name is its test's (``~2`` for the test's second capture), and
a later run into the same ``DIR`` replaces the test's folder of an earlier one (a folder
holding files of yours is left alone: the capture goes beside it, to ``<name>~kept``). Every
capture of the fixture has a keep folder (``DIR``, else ``wpp-captures/``), so its session
writes what its buffers hold every second: a test killed while it captures (a CI timeout, a
crashed xdist worker) leaves ``<test>~running/trace.etl`` in that folder, with what was
logged until about a second before (the latest killed run's: a later run replaces it; decode it
with the TMF that ``wpptrace tmf gen`` makes of the sources); xdist's report of the crash names
that file. Nothing of wpptrace is imported until a test asks for the fixture, so test
runs that do not use it are unchanged.
"""
from __future__ import annotations

import pathlib
from typing import Callable

import pytest

FIXTURE = "wpp_capture"
#: without ``--wpp-keep``, failed tests' captures go to this folder of the pytest process's
#: base temporary folder (each xdist worker's: ``<base>/popen-gwN/``)
FAILED_CAPTURES = "wpp-captures"
_FACTORY = pytest.StashKey[object]()
_FAILED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wpptrace", "wpptrace captures")
    group.addoption("--wpp-keep", metavar="DIR", dest="wpp_keep", default=None,
                    help="keep every wpp_capture in DIR (relative to where pytest starts): one "
                         "folder per capture with trace.etl, tmf/ and trace.txt (for CI artifacts)")


@pytest.fixture
def wpp_capture(request: pytest.FixtureRequest):
    """A factory of captures: ``with wpp_capture(provider, ...) as cap:`` takes what
    :func:`wpptrace.testing.capture` takes."""
    from wpptrace.testing import CaptureFactory

    keep_all = request.config.getoption("wpp_keep") is not None
    keep_dir = _keep_dir(request.config, request.getfixturevalue("tmp_path_factory").getbasetemp)
    factory = CaptureFactory(request.node.nodeid, keep_dir=keep_dir, keep_all=keep_all)
    request.node.stash[_FACTORY] = factory
    yield factory
    # a passing test's captures are removed once its teardown report says the teardown
    # (other fixtures' too, which may run after this) went well
    factory.finish(failed=request.node.stash.get(_FAILED, False), discard=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: "pytest.Item | None"):
    outcome = yield
    # an interrupted test (KeyboardInterrupt, pytest.exit) gets no report; its captures are kept
    # like a failed test's when the session's teardown finishes them
    if outcome.excinfo is not None and _FACTORY in item.stash:
        item.stash[_FAILED] = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    factory = item.stash.get(_FACTORY, None)
    if factory is None:
        return
    report = outcome.get_result()
    # setup and teardown errors count as failures: a fixture that captures a server's start-up
    # and raises is the usual shape
    if report.failed:
        item.stash[_FAILED] = True
        factory.keep_finished()
        text = factory.report()
        from wpptrace.testing import CaptureAssertionError

        if text and not (call.excinfo is not None and call.excinfo.errisinstance(CaptureAssertionError)):
            report.sections.append(("wpptrace captures", text))
    elif report.when == "teardown" and not item.stash.get(_FAILED, False):
        factory.discard()


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: object) -> None:
    """pytest-xdist's controller, a worker having died while it ran ``crashitem``: its report
    names the captures the test left (``<test>~running/trace.etl``), which no worker can say."""
    from wpptrace.testing import left_running

    config = getattr(sched, "config", None) or getattr(getattr(report, "node", None), "config", None)
    keep = _crash_keep_dirs(report, config)
    left = [path for folder in keep for path in left_running(folder, crashitem)]
    if left:
        report.sections.append(("wpptrace captures", "\n".join(
            [f"the test's capture, left as its worker died: {path}" for path in left]
            + ["(decode it with the TMF that `wpptrace tmf gen` makes of the sources)"])))


def _keep_dir(config: pytest.Config, basetemp: "Callable[[], pathlib.Path] | None") -> pathlib.Path:
    """Where the fixture keeps captures: ``--wpp-keep DIR`` (a relative DIR is where pytest was
    started, whatever a test's chdir did since), else FAILED_CAPTURES of ``basetemp()``, the
    pytest process's base temporary folder (beside its tmp_path folders, kept 3 runs)."""
    keep_dir = config.getoption("wpp_keep")
    if keep_dir is not None or basetemp is None:
        return config.invocation_params.dir / keep_dir
    return basetemp() / FAILED_CAPTURES


def _crash_keep_dirs(report: pytest.TestReport, config: "pytest.Config | None") -> list:
    """Where a crashed worker's fixture kept captures: _keep_dir of each worker's base
    temporary folder, the folders of the controller's."""
    if config is None:
        return []
    if config.getoption("wpp_keep") is not None:
        return [_keep_dir(config, None)]
    # the controller's base temporary folder: pytest has no public way to it outside a fixture
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return []
    workers = sorted(p for p in factory.getbasetemp().iterdir() if p.is_dir())
    return [kept for kept in (_keep_dir(config, lambda w=w: w) for w in workers) if kept.is_dir()]

