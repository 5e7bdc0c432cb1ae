"""The formatter's key table (csrc/wpp_rows.c) does bounded work per record even when a file
is built so that all its message keys hash to one slot.

Without a bound, each new key walks the whole run of colliding slots: 160,000 such keys took
26 s to format against 2 s for random ones, and the table's million keys would take about
half an hour. The hashes are keyed with a secret per-table seed; the tests fix the seed
(``wpprow_tables_set_seed``) to build the worst case for it, and check that no lookup goes
past the probe limit: colliding keys beyond it get no id (Python resolves those rows by
GUID), and the rows are still all there and right.
"""
from __future__ import annotations

import struct
import uuid

import pytest

import dec_etlgen as gen
from wpptrace._core import ffi, lib
from wpptrace.decoder import wpp_rows

M64 = (1 << 64) - 1
C = 0x9E3779B97F4A7C15
K = 0xFF51AFD7ED558CCD
C_INV = pow(C, -1, 1 << 64)
K_INV = pow(K, -1, 1 << 64)
PROBE_LIMIT = 64           # wpp_rows.c
SEED = 0x5EED_0F_7E57
N = 3000
G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
CLOCK = ffi.new("wpprow_clock *", {"num": 1, "den": 1})    # raw times are FILETIME


def mix(h: int) -> int:
    h ^= h >> 33
    h = (h * K) & M64
    return h ^ (h >> 33)


def unmix(h: int) -> int:
    h ^= h >> 33              # a shift by more than half the width is its own inverse
    h = (h * K_INV) & M64
    return h ^ (h >> 33)


def colliding_16_bytes(count: int, seed: int) -> list[bytes]:
    """16-byte inputs of wpp_rows.c's hash_bytes(p, 16, seed) whose hashes share their low
    32 bits (so the same slot in any table of up to 2**32 slots): the two 8-byte words are
    absorbed as h = (h ^ mix(v)) * C, all steps invertible."""
    h0 = seed ^ ((16 * C) & M64)
    out = []
    for i in range(count):
        v0 = i + 1
        h1 = ((h0 ^ mix(v0)) * C) & M64
        h2 = unmix(((i + 1) << 32) | 0x1234)          # the wanted final hash
        v1 = unmix(((h2 * C_INV) & M64) ^ h1)
        out.append(struct.pack("<QQ", v0, v1))
    return out


def walk_keys(records: list[bytes]) -> tuple[list[int], "wpp_rows.RowTables"]:
    """The key id of each record's row (read while the rows' array lives: a cdata taken from
    an array does not keep it alive), and the table."""
    tables = wpp_rows.RowTables()
    lib.wpprow_tables_set_seed(tables.raw, SEED)
    data = bytes(0x48) + b"".join(r + bytes(-len(r) % 8) for r in records) + b"\xff" * 8
    src = ffi.from_buffer(data)
    res = ffi.new("etlrd_walk_result *")
    out = ffi.new("wpprow[]", len(records) + 1)
    n = lib.wpprow_walk(tables.raw, src, len(data), 0x48, 0, 0, 0, CLOCK, out, len(records) + 1,
                        res)
    assert res.errors == 0 and not res.more
    return [out[i].key for i in range(n)], tables


def test_colliding_message_keys_stop_at_the_probe_limit():
    guids = colliding_16_bytes(N, SEED ^ (7 + 1))            # key hash seed: seed ^ (number + 1)
    keys, tables = walk_keys([gen.message(7, uuid.UUID(bytes_le=g), None, tid=None) for g in guids])
    assert len(keys) == N
    assert tables.key_count() <= PROBE_LIMIT
    overflow = 0
    for key, guid in zip(keys, guids):
        if key == wpp_rows.KEY_OVERFLOW:
            overflow += 1
        else:
            assert tables.key_info(key) == (guid, 7)
    assert overflow == N - tables.key_count()


@pytest.mark.parametrize("seed", [None, SEED])
def test_ordinary_keys_all_get_ids(seed):
    """Random GUIDs never come near the limit, whatever the seed."""
    guids = [uuid.uuid4() for _ in range(N)]
    tables = wpp_rows.RowTables()
    if seed is not None:
        lib.wpprow_tables_set_seed(tables.raw, seed)
    data = bytes(0x48) + b"".join(gen.message(1, g, None, tid=None) for g in guids)
    res = ffi.new("etlrd_walk_result *")
    out = ffi.new("wpprow[]", N)
    n = lib.wpprow_walk(tables.raw, ffi.from_buffer(data), len(data), 0x48, 0, 0, 0, CLOCK, out,
                        N, res)
    assert n == N and tables.key_count() == N
    assert all(out[i].key == i for i in range(N))
