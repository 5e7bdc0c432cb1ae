"""The summary table does not depend on the order its rows come in.

Regression: rows were sorted by GUID, component and name only. Messages of one GUID may share
both (several trace calls on one source line of a driver: ``Dmf_CrashDump_c3719`` three
times), so their rows kept the order the messages were first met, and ``fmt -j 2`` (whose
first process meets messages in another order than one process does) wrote the summary of a
damaged driver trace with two of its rows the other way round from ``-j 1``.
"""
from __future__ import annotations

import itertools
import random

from wpptrace.decoder.output import Summary, SummaryRow, SummaryRows, format_summary, summary_text

GUID = "49c0500c-96ae-35e4-0b57-99f5eded038e"


def test_rows_sharing_guid_component_and_name_print_in_one_order():
    rows = [SummaryRow(1, "DmfKModules.Library", "Dmf_CrashDump_c3719", GUID),
            SummaryRow(2, "DmfKModules.Library", "Dmf_CrashDump_c3719", GUID),
            SummaryRow(1, "DmfKModules.Library", "Dmf_CrashDump_c3629", GUID)]
    texts = {format_summary(Summary(files=["a.etl"], rows=list(order)))
             for order in itertools.permutations(rows)}
    assert len(texts) == 1
    table = [line for line in texts.pop().splitlines() if "Dmf_CrashDump" in line]
    assert [line.split()[1:3] for line in table] == [["1", "DmfKModules.Library"]] * 2 + [["2", "DmfKModules.Library"]]


def test_summary_text_of_a_table_is_format_summary_of_its_rows():
    rows = [SummaryRow(3, "tracedrv", "tracedrv_c264", "37753236-c81f-505e-d40a-128d3bb2b5ff"),
            SummaryRow(1, "DmfKModules.Library", "Dmf_CrashDump_c3719", GUID),
            SummaryRow(2, "DmfKModules.Library", "Dmf_CrashDump_c3719", GUID),
            SummaryRow(7, "Unknown", " 12", "")]
    summary = Summary(files=["a.etl", "b.etl"], buffers=4, events=13, rows=rows)
    table = [(r.guid, r.event_name, r.event_type, r.count) for r in reversed(rows)]
    assert summary_text(Summary(files=["a.etl", "b.etl"], buffers=4, events=13), table) == \
        format_summary(summary)


def test_the_table_is_in_the_order_of_its_whole_rows():
    rng = random.Random(5)
    guids = ["", GUID, "37753236-c81f-505e-d40a-128d3bb2b5ff", "01e9b841-7d67-315a-7b92-23b2033356de"]
    table = [(rng.choice(guids), rng.choice(["sys", "BthPS3", "Unknown"]),
              rng.choice(["Ds3_c114", "Ds3_c15", " 12", "L2CAP_c104"]), rng.randint(1, 12))
             for _ in range(300)]
    text = summary_text(Summary(files=["a.etl"]), list(table))
    rows = [line for line in text.splitlines() if line.startswith("|") and line[1:11].strip().isdigit()]
    assert rows == ["|%10d    %-20s %-11s %-36s|" % (c, n, t, g) for g, n, t, c in sorted(table)]


def _printed(table: list[tuple[str, str, str, int]] | None, body: str | None = None) -> str:
    return summary_text(Summary(files=["a.etl"], events=3), table, body)


def test_rows_made_before_their_counts_are_the_tables_rows():
    # (made while fmt -j's first process waits for the others: the counts come at the end)
    rng = random.Random(7)
    guids = [f"{rng.getrandbits(128):032x}" for _ in range(6)]
    messages = [(rng.choice(guids), rng.choice(["Dmf", "tracedrv", "Unknown", "a%sb"]), f"m_c{n}")
                for n in range(60)]
    rows = SummaryRows(*map(list, zip(*messages)))
    for zeros in (0, 1, 20):
        counts = [rng.randrange(1, 10**6) for _ in messages]
        for k in rng.sample(range(len(messages)), zeros):
            counts[k] = 0                 # met, but no row of it is in the run's output
        table = [(*message, count) for message, count in zip(messages, counts) if count]
        assert _printed(None, rows.body(counts)) == _printed(table)


def test_rows_alike_but_for_their_counts_are_in_the_order_of_their_counts():
    messages = ([(GUID, "DmfKModules.Library", "Dmf_CrashDump_c3719")] * 3
                + [(GUID, "DmfKModules.Library", "Dmf_CrashDump_c3629")]
                + [(GUID, "DmfKModules.Library", "Dmf_CrashDump_c3719")] * 2)
    rows = SummaryRows(*map(list, zip(*messages)))
    assert rows.alike == [(1, 6)]
    for counts in ([2, 9, 1, 4, 7, 3], [0, 5, 0, 1, 5, 2], [1] * 6):
        table = [(*message, count) for message, count in zip(messages, counts) if count]
        body = rows.body(counts)
        assert _printed(None, body) == _printed(table)
        alike = [int(line.split()[1]) for line in body.splitlines()[1:]]
        assert alike == sorted(filter(None, counts[:3] + counts[4:]))
    assert rows.body([1, 2, 3]) is None   # counts for other messages than its own
