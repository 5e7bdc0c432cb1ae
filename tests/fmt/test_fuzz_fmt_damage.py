"""The long fmt fuzzing driver (fuzz_fmt_damage.py) kept in step with the product: each way it
damages a program cache file is run once on a clean trace, so a change of the cache's layout
that the driver's damage no longer follows fails here, not in a long run days later."""
from __future__ import annotations

import random

import pytest
from fuzz_fmt_damage import CACHE_DAMAGE, STRUCTURAL, SUBSTITUTED, _hostile_cache, check_cache, seeds

from wpptrace.decoder import program_cache


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The driver's small synthetic seed, undamaged."""
    tmp = tmp_path_factory.mktemp("seeds")
    [seed] = [s for s in seeds(tmp) if s.name == "synth"]
    path = tmp / "synth.etl"
    path.write_bytes(seed.data)
    return seed, path


@pytest.mark.parametrize("how", CACHE_DAMAGE)
def test_each_cache_damage_runs_as_the_driver_runs_it(how, synth, tmp_path, monkeypatch):
    seed, path = synth
    monkeypatch.setenv("WPPTRACE_CACHE_DIR", str(tmp_path / "cache"))   # (check_cache sets it)
    assert check_cache(path, seed, tmp_path, random.Random(1), how) == []


@pytest.mark.parametrize("how", STRUCTURAL + SUBSTITUTED)
def test_hostile_records_keep_a_right_checksum(how):
    key = bytes(range(32))
    records = {(bytes([k]) * 16, k): bytes(range(k, k + 60)) for k in range(1, 12)}
    data = program_cache._file_bytes(key, records)
    damaged = [_hostile_cache(data, random.Random(k), how) for k in range(8)]
    if how == "count":       # a lying count: the tables do not fit the file, so it is not read
        assert all(program_cache._parse(d, key) == {} for d in damaged)
        count_at = program_cache._HEAD.size - 4      # the head's last field: all else as it was
        assert all(d[:count_at] == data[:count_at] and d[count_at + 4:] == data[count_at + 4:]
                   for d in damaged)
        return
    read = [program_cache._parse(d, key) for d in damaged]
    assert all(read)                                  # every one whole: its checksum right
    assert any(r != records for r in read)            # and damaged
