"""The TMF reader on real files: every corpus TMF, exact message counts, field-by-field spot checks."""
from __future__ import annotations

import pathlib
import uuid

import pytest

import wpptrace.tmf as tmf
from wpptrace._fieldclass import replace
from wpptrace.tmf.grammar import iter_entries
from wpptrace.tmf.model import Argument
from wpptrace.tmf.writer import to_tmf_text

HERE = pathlib.Path(__file__).resolve().parent


def _count_table() -> dict[str, tuple[int, int]]:
    table = {}
    for line in (HERE / "message_counts.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, typev_lines, unique = line.split()
        table[path] = (int(typev_lines), int(unique))
    return table


COUNTS = _count_table()


def _corpus_tmfs(corpus: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for sub in ("tmf", "wpp") for p in (corpus / sub).rglob("*.tmf"))


def test_count_table_covers_the_whole_corpus(corpus):
    found = {str(p.relative_to(corpus)) for p in _corpus_tmfs(corpus)}
    assert found == set(COUNTS)
    assert len(found) == 94
    assert sum(unique for _, unique in COUNTS.values()) == 2621


@pytest.mark.parametrize("relpath", sorted(COUNTS))
def test_every_corpus_tmf_parses_with_exact_counts(corpus, relpath):
    path = corpus / relpath
    text = path.read_text()
    typev_lines, unique = COUNTS[relpath]
    tmfset = tmf.parse_text(text, path=str(path))  # strict: any malformed entry raises
    assert tmfset.issues == []
    assert len(tmfset) == unique
    assert len(list(iter_entries(text, str(path)))) == typev_lines
    assert tmfset.guids() == [uuid.UUID(path.stem)]  # corpus files are named <guid>.tmf
    # the loader gives the same result as parse_text
    assert [m for m in tmf.load(path, use_environment=False).messages()] == list(tmfset.messages())


def _strip_origin(messages):
    return [replace(m, origin="") for m in messages]


@pytest.mark.parametrize("relpath", sorted(COUNTS))
def test_model_text_model_round_trip(corpus, relpath):
    original = tmf.parse_text((corpus / relpath).read_text(), path=relpath)
    text = to_tmf_text(original)
    again = tmf.parse_text(text)
    assert _strip_origin(again.messages()) == _strip_origin(original.messages())
    assert to_tmf_text(again) == text  # and the writer is stable


def test_duplicates_in_appended_files_are_identical_except_funclet_repeat(corpus):
    """49 corpus files were appended twice; only be80de12 #19 differs (a fin$0 funclet FUNC)."""
    differing = []
    for path in _corpus_tmfs(corpus):
        first: dict[tuple, tmf.Message] = {}
        for message in iter_entries(path.read_text(), str(path)):
            key = (message.guid, message.number)
            if key in first and replace(first[key], origin="") != replace(message, origin=""):
                differing.append((path.stem, message.number, message.func))
            first.setdefault(key, message)
    assert set(differing) == {
        ("be80de12-e54c-3cd4-5447-17602f7cac8e", 19, "`Pdo_DeviceWdmIrpPnPPowerPreprocess'::`1'::fin$0")
    }


# -- spot checks on the driver sample and the findneedle TMFs (tests/tmf/conftest.py) ---------------


@pytest.fixture(scope="module")
def nefarius(driver_sample):
    return tmf.load(driver_sample, use_environment=False)


@pytest.fixture(scope="module")
def findneedle(findneedle_tmf):
    return tmf.load(findneedle_tmf, use_environment=False)


def test_raw_inner_quotes_in_format(nefarius):
    message = nefarius.lookup(uuid.UUID("6a170eb6-8ee4-3b09-243f-4a1356054f8d"), 11)
    assert message.name == "Util_c75"
    assert message.format == '%0 [%!FUNC!]LHS: "%10!s!" RHS: "%11!s!"'
    assert message.trailer == {
        "LEVEL": "TRACE_LEVEL_VERBOSE", "FLAGS": "TRACE_UTIL", "FUNC": "StringUtil_BthNameIsEqual",
    }
    assert [(a.item, a.insert) for a in message.args] == [("ItemPWString", 10), ("ItemPWString", 11)]


def test_item_list_byte_with_params_and_call_expression(nefarius):
    message = nefarius.lookup(uuid.UUID("03fb1cb4-1c81-30e9-50db-4ecb4f47594e"), 30)
    assert message.name == "Sideband_c557"
    assert message.format == "%0 [%!FUNC!] --> Entry <IRQL=%10!s!"
    assert message.args == (Argument("KeGetCurrentIrql()", "ItemListByte", ("Low", "APC", "DPC"), 10),)
    assert (message.level, message.flags, message.func) == (
        "TRACE_LEVEL_VERBOSE", "TRACE_SIDEBAND", "BthPS3PSM_EvtSaveConfigToRegistry")
    assert message.component == "BthPS3PSM"
    assert message.source_file == "Sideband.c"


def test_pwstring_and_exclamation_marks(nefarius):
    message = nefarius.lookup(uuid.UUID("03fb1cb4-1c81-30e9-50db-4ecb4f47594e"), 27)
    assert message.format == "%0 [%!FUNC!]!! SymbolicLinkName: %10!s! (length: %11!d!)"
    assert message.args == (
        Argument("&linkName", "ItemPWString", (), 10),
        Argument("linkName.Length", "ItemLong", (), 11),
    )


def test_item_double(nefarius):
    message = nefarius.lookup(uuid.UUID("13024be3-4b84-3755-d706-51020667de4f"), 29)
    assert message.name == "Configuration_c942"
    assert [a.name for a in message.args] == [
        "Context->RumbleControlState.HeavyRescale.ConstA", "Context->RumbleControlState.HeavyRescale.ConstB"]
    assert {a.item for a in message.args} == {"ItemDouble"}
    assert message.func == "ConfigLoadForDevice"


def test_message_number_gaps(nefarius):
    guid = uuid.UUID("d47178e4-703b-3465-f330-63f5cfd64eb4")
    numbers = [m.number for m in nefarius.messages() if m.guid == guid]
    assert numbers == [13, 15, 19, 20, 31, 32]
    assert nefarius.lookup(guid, 14) is None
    assert nefarius.lookup(guid, 10) is None


def test_first_duplicate_wins_for_funclet_repeat(nefarius):
    message = nefarius.lookup(uuid.UUID("be80de12-e54c-3cd4-5447-17602f7cac8e"), 19)
    assert message.func == "Pdo_DeviceWdmIrpPnPPowerPreprocess"
    assert message.origin.endswith("be80de12-e54c-3cd4-5447-17602f7cac8e.tmf:44")


def test_component_named_after_build_directory(nefarius):
    message = nefarius.lookup(uuid.UUID("0b6c077e-f983-3543-6bbc-baec3455628b"), 16)
    assert (message.component, message.source_file, message.name) == ("sys", "DsBth.c", "DsBth_c106")
    assert message.format == "%0 [%!FUNC!] <-- Exit <status=%10!s!>"


def test_findneedle_types_and_trailer_without_flags(findneedle):
    message = findneedle.lookup(uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea"), 14)
    assert message.format == "%0hr=%10!s! st=%11!s! guid=%12!s!"
    assert message.args == (
        Argument("(HRESULT)E_ACCESSDENIED", "ItemHRESULT", (), 10),
        Argument("(NTSTATUS)0xC0000022L", "ItemNTSTATUS", (), 11),
        Argument("&g", "ItemGuid", (), 12),
    )
    assert message.trailer == {"LEVEL": "T_ALL", "FUNC": "main"}
    assert message.flags is None
    assert (message.component, message.source_file) == ("findneedle", "WppTypesEmitter.cpp")

    enum_msg = findneedle.lookup(uuid.UUID("d4153fff-ac08-361f-5ed7-af1d38cd1903"), 10)
    assert enum_msg.args == (
        Argument("TRUE", "ItemListLong", ("false", "true"), 10),
        Argument("2 /*DPC*/", "ItemListByte", ("Low", "APC", "DPC"), 11),
    )
    set_msg = findneedle.lookup(uuid.UUID("d4153fff-ac08-361f-5ed7-af1d38cd1903"), 11)
    assert set_msg.args[0].item == "ItemSetLong"
    assert set_msg.args[0].params == tuple(str(n) for n in range(1, 33))
    wide = findneedle.lookup(uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d"), 11)
    assert wide.args == (Argument("L'root'", "ItemWString", (), 10),)


def _naive_entries(text: str) -> dict[int, tuple[str, str, list[tuple[str, str, int]]]]:
    """A deliberately simple reader (str methods only) for the corpus's regular shapes: number ->
    (name, format, [(expression, item, insert)]), first occurrence kept."""
    entries: dict[int, tuple[str, str, list[tuple[str, str, int]]]] = {}
    current = None
    for line in text.split("\n"):
        if line.startswith("#typev "):
            _, name, number, rest = line.split(" ", 3)
            fmt = rest[1:rest.rindex('" //')]
            current = (name, fmt, [])
            entries.setdefault(int(number), current)
        elif " -- " in line and current is not None:
            head, insert = line.rsplit(" -- ", 1)
            expr, item = head.rsplit(", Item", 1)
            current[2].append((expr, "Item" + item.split("(")[0], int(insert)))
    return entries


@pytest.mark.parametrize("relpath", sorted(COUNTS))
def test_matches_a_naive_reader_on_every_corpus_file(corpus, relpath):
    text = (corpus / relpath).read_text()
    naive = _naive_entries(text)
    parsed = {m.number: (m.name, m.format, [(a.name, a.item, a.insert) for a in m.args])
              for m in tmf.parse_text(text).messages()}
    assert parsed == naive
