"""Brief fuzzing in CI of buffers of every size up to the 16 MiB ETW allows: records,
damage, 0xFF fill, zeros and noise in any arrangement walk (chunked, counting, in a file,
through the formatter's rows) with consistent totals and in time linear in the size.
``tests/decoder/fuzz_buffer_sizes_long.py`` runs the same property for as long as you like."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from dec_fuzz import BUFFER_SIZES, big_buffer, read_big_buffer

#: seconds one example may take. A 16 MiB buffer walks in tens of milliseconds; the bound
#: only catches super-linear work (the old resume search needed hours at 16 MiB)
BOUND_S = 30


def test_the_sizes_reach_the_etw_maximum():
    assert max(BUFFER_SIZES) == 16 << 20


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(big_buffer())
def test_buffers_of_every_size_walk_consistently_in_linear_time(data):
    assert read_big_buffer(data) < BOUND_S
