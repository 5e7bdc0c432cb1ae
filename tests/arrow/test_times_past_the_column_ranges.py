"""The time columns at the ends of their types (docs/analytics.md's schema table):
``timestamp`` (timestamp[ns], int64 nanoseconds since 1970) is null after
2262-04-11T23:47:16.854775807Z, with ``filetime`` still exact; ``filetime`` (int64) is null
for a FILETIME past int64."""
from __future__ import annotations

import struct

import pytest

from wpptrace.decoder import to_arrow

# the wpptypes capture's second message: its raw time sits at this offset, and its clock is
# FILETIME's (raw + SHIFT is the FILETIME)
AT = 8344
SHIFT = 134299621759164024 - 4905913926581
UNIX = 116_444_736_000_000_000
NS_END = UNIX + ((1 << 63) - 1) // 100       # the last FILETIME with int64 nanoseconds


@pytest.mark.parametrize("filetime, has_timestamp, has_filetime", [
    (NS_END, True, True),                    # 2262-04-11T23:47:16.8547758Z
    (NS_END + 1, False, True),
    (0x7F00000000000000 + SHIFT, False, False),   # past int64
])
def test_time_columns_at_their_ends(fmt_data, tmp_path, filetime, has_timestamp, has_filetime):
    data = bytearray((fmt_data / "wpptypes-sample.etl").read_bytes())
    assert struct.unpack_from("<q", data, AT)[0] + SHIFT == 134299621759164024
    struct.pack_into("<q", data, AT, filetime - SHIFT)
    etl = tmp_path / "late.etl"
    etl.write_bytes(bytes(data))
    row = to_arrow(str(etl), tmf=str(fmt_data / "tmf")).read_all().slice(2, 1).to_pylist()[0]
    assert row["text"].startswith("uint u=4000000000")
    assert row["filetime"] == (filetime if has_filetime else None)
    if has_timestamp:
        assert row["timestamp"].value == (filetime - UNIX) * 100
    else:
        assert row["timestamp"] is None
