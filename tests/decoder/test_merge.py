"""The merge of decoder.ordering against its definition: every item once, in the order of
(its stream's running-maximum key, its stream, its place in the stream), whatever the
batches look like (ties inside and across batches and streams, clocks going backwards, empty
batches), whether the C merge runs (64-bit keys; items as ranges of refs or as lists) or the
Python one (keys beyond 64 bits)."""
from __future__ import annotations

from itertools import accumulate, chain

from hypothesis import given, settings
from hypothesis import strategies as st

from wpptrace.decoder.ordering import merge

KEYS = st.integers(min_value=0, max_value=12)
BATCH = st.lists(KEYS, max_size=8)
STREAM = st.lists(BATCH, max_size=5)
STREAMS = st.lists(STREAM, min_size=1, max_size=5)


def _expected(streams: list[list[list[int]]], items_of) -> list:
    order = []
    for s, batches in enumerate(streams):
        times = [t for batch in batches for t in batch]
        keys = list(accumulate(times, max))
        order += [(key, s, i) for i, key in enumerate(keys)]
    flat = [list(chain.from_iterable(items_of(s, b, batch) for b, batch in enumerate(batches)))
            for s, batches in enumerate(streams)]
    return [flat[s][i] for _key, s, i in sorted(order)]


def _merged(streams, items_of, shift: int = 0) -> list:
    inputs = [iter([(items_of(s, b, batch), [t + shift for t in batch])
                    for b, batch in enumerate(batches)]) for s, batches in enumerate(streams)]
    return list(chain.from_iterable(items for items, _keys in merge(inputs)))


def _refs(s: int, b: int, batch: list[int]) -> range:
    base = (s * 8 + b) << 32          # one slot per batch, as the row view numbers them
    return range(base, base + len(batch))


def _objects(s: int, b: int, batch: list[int]) -> list:
    return [("item", s, b, i) for i in range(len(batch))]


@settings(max_examples=300, deadline=None)
@given(STREAMS)
def test_merge_of_row_refs(streams):
    assert _merged(streams, _refs) == _expected(streams, _refs)


@settings(max_examples=300, deadline=None)
@given(STREAMS)
def test_merge_of_objects(streams):
    assert _merged(streams, _objects) == _expected(streams, _objects)


@settings(max_examples=100, deadline=None)
@given(STREAMS)
def test_merge_of_keys_beyond_64_bits(streams):
    assert _merged(streams, _objects, shift=1 << 70) == _expected(streams, _objects)


def test_many_streams_and_negative_keys():
    streams = [[[(-5 + (s * 7 + i) % 11) for i in range(20)]] for s in range(70)]
    assert _merged(streams, _refs) == _expected(streams, _refs)
