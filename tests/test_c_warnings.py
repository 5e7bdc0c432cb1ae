"""Every C source the build or the tests compile is clean under the warnings of -Wall -Wextra
that find defects: each is compiled through the flags and include directories of its own build
(the extensions' builders, the provider tests' builder, the sample's command) with
-Werror=<warning> for each warning of GATED, so one of them fails here with its file and line.

The builds themselves warn (-Wall -Wextra) and never fail on a warning: a newer compiler adds
warnings to those groups (gcc 13 -Wenum-int-mismatch, gcc 14 -Wcalloc-transposed-args ...), and
one of them in a user's build must print, not stop the build or the tests. For the same reason
this test fails only on the warnings it names: the list is fixed, taken from those gcc 12's -Wall
-Wextra turn on, and a warning that a later compiler adds prints without failing. A compiler
that does not know a warning of the list (clang has no -Wclobbered, -Wmaybe-uninitialized ...)
is not asked for it; the ones every supported compiler knows are asserted to be asked for.

Some warnings (-Wclobbered, -Wmaybe-uninitialized, -Wstringop-overflow) come only from the
optimiser, and -fsyntax-only misses even an unused static function: every source is compiled.
The extensions' sources that no test builds are compiled as ``pip install`` compiles them,
optimisation included. The provider core (which the provider tests build optimised, with and
without its test points), the C test programs, the sample and the cffi module (cffi's wrappers
around the headers: seconds of the optimiser for none of the project's code) are compiled with
their flags and -O0, which is quick.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CC = shutil.which("cc") or shutil.which("gcc")
TEST_POINTS = "-DWPT_TEST_POINTS"
TIMEOUT = 120                    #: seconds one compiler may take
QUICK = ["-O0"]                  #: after a build's flags: its warnings without the optimiser's time
#: C sources no build or test of the project compiles: the PDB fixtures' sources are built by
#: hand for Windows (clang --target=*-windows-msvc, MSVC extensions), see their build_fixtures.py
NOT_BUILT_HERE = REPO / "tests" / "data" / "pdb" / "recipe"
SAMPLE = REPO / "samples" / "c_program"

#: the warnings that fail the test: those gcc 12's -Wall -Wextra turn on (``gcc -Q --help=warning
#: -Wall -Wextra``) that find defects or code that reads as something it is not, each asked for by
#: name (at the level -Wall -Wextra give it where it has levels); and -Wshadow, in neither group,
#: which the sources are kept clean under too
GATED = (
    "address", "array-bounds", "bool-compare", "bool-operation", "cast-function-type", "char-subscripts",
    "clobbered", "comment", "dangling-else", "empty-body", "enum-compare", "enum-conversion", "format",
    "format-extra-args", "format-overflow", "format-truncation", "format-zero-length", "ignored-qualifiers",
    "implicit-fallthrough", "implicit-function-declaration", "implicit-int", "infinite-recursion",
    "int-in-bool-context", "logical-not-parentheses", "main", "maybe-uninitialized", "memset-elt-size",
    "memset-transposed-args", "misleading-indentation", "mismatched-dealloc", "missing-braces",
    "missing-field-initializers", "nonnull", "nonnull-compare", "old-style-declaration", "override-init",
    "parentheses", "pointer-sign", "restrict", "return-type", "sequence-point", "sign-compare",
    "sizeof-array-div", "sizeof-pointer-div", "sizeof-pointer-memaccess", "string-compare",
    "stringop-truncation", "switch", "tautological-compare", "type-limits", "uninitialized",
    "unused-but-set-parameter", "unused-but-set-variable", "unused-function", "unused-label",
    "unused-local-typedefs", "unused-parameter", "unused-value", "unused-variable", "use-after-free",
    "shadow",
)
#: of GATED, those gcc and clang both know: asked for on any compiler the test runs with
EVERYWHERE = {
    "address", "bool-operation", "cast-function-type", "char-subscripts", "comment", "dangling-else",
    "empty-body", "enum-compare", "format", "implicit-fallthrough", "implicit-function-declaration",
    "infinite-recursion", "int-in-bool-context", "logical-not-parentheses", "misleading-indentation",
    "missing-braces", "missing-field-initializers", "parentheses", "return-type", "sequence-point",
    "sign-compare", "sizeof-pointer-memaccess", "switch", "tautological-compare", "uninitialized",
    "unused-but-set-parameter", "unused-but-set-variable", "unused-function", "unused-label",
    "unused-parameter", "unused-value", "unused-variable", "shadow",
}

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (the extensions need one to build)")


@functools.cache
def _module(relative: str):
    path = REPO / relative
    spec = importlib.util.spec_from_file_location("c_warnings_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _test_c_flags() -> list[str]:
    """The provider tests' flags (their builder's, in tests/provider/conftest.py)."""
    return list(_module("tests/provider/conftest.py").C_FLAGS)


def _extension_jobs(tmp: pathlib.Path) -> list[tuple[str, list[str]]]:
    """The two extensions' sources with their builders' flags (the cffi module generated into
    tmp): the builders' data, read without setuptools or distutils, which a fresh virtual
    environment of Python 3.12 has neither of."""
    core, fastpath = _module("src/wpptrace/_build_core.py"), _module("src/wpptrace/_build_fastpath.py")
    module = tmp / "_core.c"
    core.make_builder(absolute=True).emit_c_code(str(module))
    python = f"-I{sysconfig.get_paths()['include']}"
    builds = [([str(module), *core.sources(absolute=True)], core.include_dirs(absolute=True), core.COMPILE_ARGS),
              (fastpath.SOURCES, fastpath.INCLUDE_DIRS, fastpath.COMPILE_ARGS)]
    jobs = []
    for sources, include_dirs, compile_args in builds:
        flags = [*compile_args, *(f"-I{REPO / d}" for d in include_dirs), python]
        for source in map(REPO.joinpath, sources):
            optimised_elsewhere = REPO / "provider" / "csrc" in source.parents or tmp in source.parents
            jobs.append((str(source), [*flags, *QUICK] if optimised_elsewhere else flags))
    return jobs


def _readme_flags() -> list[str]:
    """The sample's compile flags as the build command of its README gives them (``cc -O2
    -I...``: the compiler's own C standard, optimised), paths relative to the repository."""
    commands = [line for line in (SAMPLE / "README.md").read_text().splitlines()
                if line.startswith("cc ") and "wppdemo.c" in line]
    assert len(commands) == 1, "samples/c_program/README.md: one cc command building wppdemo.c"
    words = shlex.split(commands[0].split("&&")[0])
    return [w for w in words[1:] if w.startswith(("-O", "-I", "-D", "-std", "-f"))]


def _quick_jobs() -> list[tuple[str, list[str]]]:
    """What the provider tests build: the core with its test points, every C test program
    (each given the test points' declarations: a superset of what those built without them
    see) and the sample, with those flags and as its README builds it."""
    flags = [*_test_c_flags(), *QUICK]
    provider_tests = REPO / "tests" / "provider"
    return ([(str(s), [*flags, TEST_POINTS]) for s in sorted((REPO / "provider" / "csrc").glob("etw_*.c"))]
            + [(str(s), [*flags, TEST_POINTS, "-I", str(provider_tests)]) for s in sorted(provider_tests.glob("*.c"))]
            + [(str(SAMPLE / "wppdemo.c"), [*flags, "-I", str(SAMPLE)]),
               (str(SAMPLE / "wppdemo.c"), _readme_flags())])


def _known(warnings: tuple[str, ...]) -> list[str]:
    """Of ``warnings``, those the compiler takes as -Werror=<name> after -Wall -Wextra without a
    word (gcc refuses a name it does not know, clang warns of it)."""
    probes = []
    try:
        for w in warnings:
            probes.append((w, subprocess.Popen([CC, "-Wall", "-Wextra", f"-Werror={w}", "-fsyntax-only", "-x", "c",
                                                os.devnull], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                               text=True)))
        return [w for w, proc in probes if proc.communicate(timeout=TIMEOUT)[0] == "" and proc.returncode == 0]
    finally:
        _end(proc for _, proc in probes)


@functools.cache
def _gate() -> list[str]:
    return [f"-Werror={w}" for w in _known(GATED)]


def _warnings(jobs: list[tuple[str, list[str]]]) -> list[str]:
    """What the compiler said of each source that did not compile under the gate, two at a
    time."""
    said, running = [], []
    try:
        for source, flags in jobs:
            if len(running) >= 2:
                said.append(_finish(*running[0]))
                running.pop(0)
            command = [CC, *flags, "-Wall", "-Wextra", *_gate(), "-c", "-o", os.devnull, source]
            running.append((source, subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True)))
        while running:
            said.append(_finish(*running[0]))
            running.pop(0)
    finally:
        _end(proc for _, proc in running)
    return [s for s in said if s]


def _finish(source: str, proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=TIMEOUT)
    return f"{source}:\n{out}" if proc.returncode else ""


def _end(procs) -> None:
    """Kill and wait for the compilers a failure (a timeout) left running; those that ended are
    only reaped."""
    for proc in procs:
        proc.kill()
        proc.communicate()


def _fail_with(warnings: list[str]) -> None:
    if warnings:
        pytest.fail("\n".join(warnings), pytrace=False)


@pytest.fixture(scope="module")
def extension_jobs(tmp_path_factory) -> list[tuple[str, list[str]]]:
    return _extension_jobs(tmp_path_factory.mktemp("cffi"))


def test_the_extensions_compile_without_a_warning(extension_jobs):
    _fail_with(_warnings(extension_jobs))


def test_the_test_programs_and_the_sample_compile_without_a_warning():
    _fail_with(_warnings(_quick_jobs()))


def test_the_gate_fails_a_source_with_a_gated_warning(tmp_path):
    """The tests above pass when nothing is said: a source with a gated warning must be
    said, and a clean one not."""
    bad, good = tmp_path / "bad.c", tmp_path / "good.c"
    bad.write_text("int f(void) { int unused; return 0; }\n")
    good.write_text("int f(void) { return 0; }\n")
    said = _warnings([(str(bad), []), (str(good), [])])
    assert len(said) == 1 and said[0].startswith(f"{bad}:") and "unused-variable" in said[0], said


def test_the_builds_ask_for_the_warnings(extension_jobs):
    """The flags above are the builds' own: a build that stopped asking for the warnings, or
    silenced one, would let them in unseen; one that made them errors would fail where a newer
    compiler warns of more."""
    for args in [flags for _, flags in extension_jobs] + [_test_c_flags()]:
        assert {"-Wall", "-Wextra"} <= set(args), args
        assert [a for a in args if a.startswith(("-Wno-", "-Werror"))] == [], args


def test_the_gate_asks_for_the_warnings_every_compiler_knows():
    """A compiler refusing the probe (or a probe gone wrong) would leave a gate asking for
    nothing, and the tests above would pass whatever the sources hold."""
    assert EVERYWHERE <= set(GATED)
    assert sorted(EVERYWHERE - set(_known(GATED))) == []


def test_the_compilers_a_timeout_leaves_are_ended(monkeypatch, tmp_path):
    """A compiler that does not end in time fails the test, and neither it nor the one beside
    it is left running."""
    _gate()                                           # the probe done with the real compiler
    stuck = tmp_path / "cc"
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck.chmod(0o755)
    started = []

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(sys.modules[__name__], "CC", str(stuck))
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT", 0.5)
    with pytest.raises(subprocess.TimeoutExpired):
        _warnings([("a.c", []), ("b.c", []), ("c.c", [])])
    assert len(started) == 2 and [p.returncode for p in started] == [-signal.SIGKILL] * 2


def test_every_c_source_is_checked(extension_jobs):
    """A C file added where no list above looks (a new part's csrc/, a new sample) fails here."""
    checked = {pathlib.Path(s).resolve() for s, _ in extension_jobs + _quick_jobs()}
    everywhere = {p.resolve() for p in REPO.rglob("*.c")
                  if not any(part.startswith(".") or part == "build" for part in p.relative_to(REPO).parts)
                  and NOT_BUILT_HERE not in p.parents}
    assert sorted(map(str, everywhere - checked)) == []
