"""What Python sees of the C headers: generated from them (no hand-kept copy to drift)."""
from __future__ import annotations

import functools
import importlib.util
import pathlib
import re

import pytest

from wpptrace._core import ffi, lib

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADERS = [ROOT / "src" / "wpptrace" / "include" / "etl_layout.h"] + sorted(
    h for part in ("provider", "decoder") for h in (ROOT / part / "csrc").glob("*.h")
    if not h.name.startswith("_"))


@functools.cache
def _builder():
    """The extension's builder module (cdef_text: a header as the cdef the extension gets)."""
    spec = importlib.util.spec_from_file_location("build_core", ROOT / "src" / "wpptrace" / "_build_core.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_hand_kept_cdef_copies():
    assert sorted(ROOT.glob("*/csrc/*.cdef")) == []


@pytest.mark.parametrize("header", HEADERS, ids=lambda h: h.name)
def test_every_integer_define_and_function_of_the_header_is_in_the_module(header):
    """The module's constants carry the header's values and its functions are callable from
    Python, because the cdef is generated from the header."""
    text = _builder().cdef_text(str(header))
    source = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
    defines = re.findall(r"^\s*#\s*define\s+(\w+)\s+\(?(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*\)?\s*$",
                         source, flags=re.M)
    # (a header whose only define is its include guard declares functions alone)
    assert defines or not re.search(r"^[ \t]*#[ \t]*define[ \t]+\w+[ \t]+\S", source, flags=re.M), header
    for name, value in defines:
        assert getattr(lib, name) == int(value, 0), name
    functions = []
    for statement in re.sub(r"\{[^{}]*\}", "", text).split(";"):
        statement = " ".join(statement.split())
        if statement and not statement.startswith(("typedef", "struct", "extern")):
            functions += re.findall(r"\b(\w+)\s*\(", statement)[:1]
    for name in functions:
        assert callable(getattr(lib, name)), name
    if header.name != "etl_layout.h":
        assert functions, header


def test_record_struct_has_no_hidden_padding():
    fields = ffi.typeof("etlrd_record").fields
    end = 0
    for _, f in fields:
        assert f.offset == end, "etlrd_record must stay packed (fields in size order)"
        end = f.offset + ffi.sizeof(f.type)
    assert end == ffi.sizeof("etlrd_record") == 88


def test_only_the_binding_layer_touches_cffi():
    """decoder/_hazmat.py is the decoder's one door to the C module: every other module gets
    Python values (layouts read through it, return codes turned into exceptions there)."""
    users = sorted(p.name for p in (ROOT / "decoder").glob("*.py")
                   if re.search(r"\bwpptrace\._core\b|\bffi\.", p.read_text()))
    assert users == ["_hazmat.py"]


def test_no_layout_offset_is_repeated_in_decoder_python():
    """The WMI_BUFFER_HEADER offsets and size most often copied by hand (State 0x2C,
    BufferFlag 0x34, the header's 0x48 bytes) appear in no decoder module: they come from
    etl_layout.h through the binding layer."""
    hits = [f"{p.name}:{n}" for p in sorted((ROOT / "decoder").glob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"0x2C|0x34|0x48", line, flags=re.I)]
    assert hits == []


def test_some_fields_of_a_structure_read_as_the_whole_reads_them():
    """``Layout.some``: a Struct of a few fields, at the offsets the header gives them."""
    import random

    from wpptrace.decoder._hazmat import ROW

    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(ROW.size * 3))
    names = ("key", "payload_offset", "payload_size", "flags")
    some = ROW.some(*names)
    assert some.size <= ROW.size
    for k in range(3):
        whole = ROW.unpack(data, k * ROW.size)
        assert some.unpack_from(data, k * ROW.size) == tuple(getattr(whole, n) for n in names)
    with pytest.raises(ValueError):
        ROW.some("flags", "key")                    # out of structure order


def test_constants_and_named_tuples_are_made_when_first_used():
    """Importing the decoder reads only the C constants it uses and makes no named tuple of
    a layout; each is made once, when first used, with the value the C module has."""
    import subprocess
    import sys

    script = (
        "from wpptrace._core import lib\n"
        "from wpptrace.decoder._hazmat import BUFFER_HEADER, ETL, ROW, constants\n"
        "names = dir(ETL)\n"
        "assert names == sorted(n for n in dir(lib) if isinstance(getattr(lib, n), int))\n"
        "read = dict(vars(ETL))\n"
        "assert len(read) < len(names) / 4 and 'ETLRD_KIND_INSTANCE' not in read, read\n"
        "assert ETL.ETLRD_KIND_INSTANCE == lib.ETLRD_KIND_INSTANCE\n"
        "assert vars(ETL) == {**read, 'ETLRD_KIND_INSTANCE': lib.ETLRD_KIND_INSTANCE}\n"
        "assert 'etlrd_walk' in dir(lib) and 'etlrd_walk' not in names\n"
        "try:\n"
        "    ETL.etlrd_walk\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('a function is not a constant')\n"
        "levels = constants('TRACE_LEVEL_')\n"
        "assert levels['TRACE_LEVEL_ERROR'] == lib.TRACE_LEVEL_ERROR\n"
        "assert sorted(levels) == [n for n in names if n.startswith('TRACE_LEVEL_')]\n"
        "assert 'tuple' not in vars(BUFFER_HEADER)\n"
        "header = BUFFER_HEADER.unpack(bytes(BUFFER_HEADER.size))\n"
        "assert type(header) is BUFFER_HEADER.tuple and header._fields == tuple(BUFFER_HEADER.fields)\n"
        "assert 'tuple' in vars(BUFFER_HEADER) and 'tuple' not in vars(ROW)\n")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_a_define_of_an_integer_expression_is_in_the_module(tmp_path):
    """``#define NAME <integer expression>`` (literals, + and -, <stdint.h> limits) reaches
    Python with the value the C compiler gives it; other macros stay out of the cdef."""
    header = tmp_path / "expressions.h"
    header.write_text("#define LOWEST INT64_MIN\n#define NEXT (INT64_MIN + 1)\n"
                      "#define SPELLED -9223372036854775807-1\n#define ALIAS LOWEST\n"
                      "#define SHIFTED (1 << 3)\n#define CALL(x) (x)\n")
    text = _builder().cdef_text(str(header))
    assert text.split() == ["#define", "LOWEST", "...", "#define", "NEXT", "...",
                            "#define", "SPELLED", "..."]
    assert (lib.WPPR_NO_TIME, lib.WPPR_TIME_OUT_OF_RANGE) == (-(1 << 63), -(1 << 63) + 1)


def test_the_rows_no_time_values_are_one_operand_in_c(tmp_path):
    """The "no time" and "out of range" values are whole operands wherever C code writes them
    (``WPPR_NO_TIME / 2`` is INT64_MIN / 2, not a sum whose last term is divided)."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (the extension itself is built with one)"
    program = tmp_path / "operands.c"
    program.write_text('#include <stdint.h>\n#include "wpprender.h"\n'
                       '_Static_assert(WPPR_NO_TIME / 2 == INT64_MIN / 2, "no time: one operand");\n'
                       '_Static_assert(WPPR_TIME_OUT_OF_RANGE / 2 == (INT64_MIN + 1) / 2,'
                       ' "out of range: one operand");\n'
                       'int main(void) { return 0; }\n')
    proc = subprocess.run([cc, "-fsyntax-only", "-std=gnu11", "-Wall",
                           "-I", str(ROOT / "tmf" / "csrc"), str(program)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_rows_no_time_values_come_from_the_renderer_header():
    """milli's "no time" and "out of range" values are written once, in wpprender.h: the
    decoder's Python reads them from the module, never as a literal of its own."""
    from wpptrace.decoder import wpp, wpp_rows

    assert (wpp_rows.NO_TIME, wpp_rows.TIME_OUT_OF_RANGE, wpp._NO_TIME) == \
        (lib.WPPR_NO_TIME, lib.WPPR_TIME_OUT_OF_RANGE, lib.WPPR_NO_TIME)
    copies = [f"{p.name}:{n}" for p in sorted((ROOT / "decoder").glob("*.py"))
              for n, line in enumerate(p.read_text().splitlines(), 1)
              if re.match(r"\s*_?(NO_TIME|TIME_OUT_OF_RANGE)\s*=", line) and "ETL." not in line]
    assert copies == []


def test_a_parenthesized_integer_literal_is_a_define_cffi_takes(tmp_path):
    """``#define NAME (-1)`` (parentheses, a sign, a suffix, spaces) reaches the cdef as the
    literal cffi takes, its value kept; a define with unbalanced parentheses stays out."""
    from cffi import FFI

    header = tmp_path / "parenthesized.h"
    header.write_text("#define MINUS_ONE (-1)\n#define SIXTEEN (0x10u)\n#define TWO ((2))\n"
                      "#define MINUS_THREE ( - 3 )\n#define OPEN (1\n#define CLOSE 1)\n")
    text = _builder().cdef_text(str(header))
    assert text.split("\n") == ["#define MINUS_ONE -1", "#define SIXTEEN 0x10u", "#define TWO 2",
                                "#define MINUS_THREE -3"]
    ffi = FFI()
    ffi.cdef(text)
    lib = ffi.dlopen(None)
    assert (lib.MINUS_ONE, lib.SIXTEEN, lib.TWO, lib.MINUS_THREE) == (-1, 16, 2, -3)


def test_a_define_inside_a_preprocessor_conditional_is_a_one_line_error(tmp_path):
    """The cdef cannot tell which branch of ``#if``/``#ifdef`` the compiler takes: a define
    there is refused with the file and line (numbered as in the header, comments and all),
    not taken whatever its condition. The include guard and ``__cplusplus`` branches are
    understood (C++'s left out)."""
    header = tmp_path / "conditional.h"
    header.write_text("#ifndef CONDITIONAL_H\n#define CONDITIONAL_H\n"
                      "/* a comment\n   of two lines */\n"
                      "#ifndef __cplusplus\n#define C_ONLY 1\n#else\n#define C_ONLY 2\n#endif\n"
                      "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
                      "#ifdef WITH_FOO\n#define FOO 1\n#else\n#define FOO 2\n#endif\n"
                      "#endif\n")
    with pytest.raises(_builder().HeaderError) as failure:
        _builder().cdef_text(str(header))
    message = str(failure.value)
    assert message.startswith(f"{header}:14: '#define FOO 1' is inside the preprocessor "
                              f"conditional of line 13") and "\n" not in message
    header.write_text(header.read_text().replace("#ifdef WITH_FOO\n#define FOO 1\n#else\n"
                                                 "#define FOO 2\n#endif\n", ""))
    assert _builder().cdef_text(str(header)).split() == ["#define", "C_ONLY", "1"]


def test_only_a_plain_cplusplus_test_is_taken_for_a_c_and_cplusplus_pair(tmp_path):
    """``#if !defined(__cplusplus)`` opens the C branch (kept); an ``#elif`` after a C++ branch,
    or a condition that names ``__cplusplus`` among others, is an ordinary conditional, so what
    is inside is refused with its line, not taken or dropped unseen."""
    builder = _builder()
    header = tmp_path / "pair.h"
    header.write_text("#if !defined(__cplusplus)\n#define C_SIDE 1\n#else\n#define C_SIDE 2\n#endif\n"
                      "#if defined __cplusplus\n#define CXX_SIDE 1\n#endif\n")
    assert builder.cdef_text(str(header)).split() == ["#define", "C_SIDE", "1"]
    header.write_text("#ifdef __cplusplus\n#define X 1\n#elif defined(WANT_X)\n#define X 2\n"
                      "#else\n#define X 3\n#endif\n")
    with pytest.raises(builder.HeaderError, match=r"pair\.h:4: '#define X 2' is inside the "
                                                  r"preprocessor conditional of line 3"):
        builder.cdef_text(str(header))
    header.write_text("#if defined(__cplusplus) || defined(FOO)\n#define Y 1\n#endif\n")
    with pytest.raises(builder.HeaderError, match=r"pair\.h:2: "):
        builder.cdef_text(str(header))


def test_a_define_continued_with_a_backslash_is_read_whole_at_its_line(tmp_path):
    """A define whose value is on a continuation line is read as one line (the value kept);
    inside a conditional it is refused at its first line."""
    builder = _builder()
    header = tmp_path / "continued.h"
    header.write_text("#define CONTINUED \\\n    (7)\nint after;\n")
    assert builder.cdef_text(str(header)).split("\n") == ["#define CONTINUED 7", "", "int after;"]
    header.write_text("#ifdef FOO\n#define CONTINUED \\\n    (7)\n#endif\n")
    with pytest.raises(builder.HeaderError, match=r"continued\.h:2: '#define CONTINUED 7'"):
        builder.cdef_text(str(header))
