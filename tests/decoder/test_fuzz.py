"""Brief fuzzing in CI (hypothesis): mutated real and built files never crash the reader.
``tests/decoder/fuzz_long.py`` runs the same property for as long as you like."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dec_etlgen as gen
from dec_fuzz import mutate, mutation, read_everything
from wpptrace.decoder import parse_buffer

SEEDS = ["wppstr-sample.etl", "smallEtlFile.etl", "SelfDescribingSingleEvent.etl",
         "lxcore_kernel.etl", "waasmedic.20251005_113019_195.etl"]
G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
BUILT = gen.etl_file([
    (1, 2, [gen.system(0x0302, 100), gen.compact(0x0A01, 102), gen.perfinfo(0x0F2E, 103),
            gen.full(G, 7, 104), gen.instance(G, 9, 105, 1, G),
            gen.event(G, 77, 106, extended=[(1, b"A" * 16)]), gen.message(10, G, 107, b"ARG")]),
    (0, 1, [gen.message(11, None, None, b"C", tid=None, component=5)]),
], buffer_size=1024, pointer_size=4)


@pytest.fixture(scope="module")
def seeds(corpus_file):
    return [BUILT] + [corpus_file(s).read_bytes() for s in SEEDS]


# deadline=None: speed is not the property; a tight per-example deadline can trip on a loaded machine
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_read_without_crashing(seeds, data):
    seed = data.draw(st.sampled_from(seeds))
    mutations = data.draw(st.lists(mutation(len(seed)), min_size=1, max_size=6))
    read_everything(mutate(seed, mutations))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=2048))
def test_random_buffers_walk_without_crashing(blob):
    records, issues = parse_buffer(blob, 8, header_buffer=False)
    for r in records:
        assert 0x48 <= r.offset and r.offset + r.size <= len(blob)
        assert len(r.user_data) <= r.size


def test_the_built_seed_is_valid():
    assert read_everything(BUILT) == 9            # header + 7 + 1
