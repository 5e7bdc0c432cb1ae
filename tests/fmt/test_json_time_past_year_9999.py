"""``fmt -f jsonl``: a time after year 9999 has no ISO 8601 form (four-digit years): its
``timestamp`` is null and its exact ``filetime`` is kept, rather than a different instant with
the year clamped to 9999 (text and CSV print the real date, Parquet a null timestamp). The C
renderer and Python's writer (the rows it decodes) agree, at both sides of the limit."""
from __future__ import annotations

import datetime
import json
import struct

import pytest
from fmthelp import run_fmt_capture

from wpptrace.decoder import decode_file
from wpptrace.decoder.output import JsonRows

# the capture's second message: its raw time sits at this offset, and its clock is FILETIME's
# (raw + SHIFT is the FILETIME)
AT = 8344
SHIFT = 134299621759164024 - 4905913926581
YEAR_10000 = 2650467744000000000          # 10000-01-01T00:00:00Z as a FILETIME


def _late(fmt_data, tmp_path, filetime: int):
    """The capture with its second message's time set to ``filetime``."""
    data = bytearray((fmt_data / "wpptypes-sample.etl").read_bytes())
    assert struct.unpack_from("<q", data, AT)[0] + SHIFT == 134299621759164024
    struct.pack_into("<q", data, AT, filetime - SHIFT)
    etl = tmp_path / "late.etl"
    etl.write_bytes(bytes(data))
    return etl


def _third_object(fmt_data, tmp_path, filetime: int) -> dict:
    etl = _late(fmt_data, tmp_path, filetime)
    code, out, err = run_fmt_capture(etl, tmf_dirs=[str(fmt_data / "tmf")], output_format="jsonl")
    assert code == 0, err
    return json.loads(out.splitlines()[2])


@pytest.mark.parametrize("filetime, timestamp", [
    (YEAR_10000 - 1, "9999-12-31T23:59:59.9999999Z"),
    (YEAR_10000, None),
    (3_000_000_000_000_000_000, None),                  # text: 08/17/11107-05:20:00.000
    (0x7F00000000000000 + SHIFT, None),                 # past int64: Python writes it
])
def test_json_timestamp_after_year_9999_is_null(fmt_data, tmp_path, filetime, timestamp):
    obj = _third_object(fmt_data, tmp_path, filetime)
    assert (obj["timestamp"], obj["filetime"]) == (timestamp, filetime)
    assert obj["text"].startswith("uint u=4000000000")


def test_python_json_rows_write_no_iso_time_past_year_9999():
    rows = JsonRows()
    for filetime, timestamp in [(YEAR_10000 - 1, "9999-12-31T23:59:59.9999999Z"),
                                (YEAR_10000, None), (1 << 64, None)]:
        line = rows.line(b',"guid":null', b',"text":"t","args":[]}\n', filetime, 1, 2, 3, 4)
        obj = json.loads(line)
        assert (obj["timestamp"], obj["filetime"]) == (timestamp, filetime)


@pytest.mark.parametrize("filetime, timestamp", [
    (YEAR_10000 - 1, datetime.datetime(9999, 12, 31, 23, 59, 59, 999999,
                                       tzinfo=datetime.timezone.utc)),
    (YEAR_10000, None),
    (3_000_000_000_000_000_000, None),
])
def test_a_decoded_message_has_no_datetime_past_year_9999(fmt_data, tmp_path, filetime,
                                                          timestamp):
    """``DecodedMessage.timestamp`` and ``to_dict()`` as JSON Lines: no datetime (None)
    rather than another instant, the exact ``filetime`` kept."""
    decoded = decode_file(_late(fmt_data, tmp_path, filetime), tmf=str(fmt_data / "tmf"))
    message = decoded.messages[1]
    assert message.text.startswith("uint u=4000000000")
    assert (message.timestamp, message.filetime) == (timestamp, filetime)
    as_dict = message.to_dict()
    assert (as_dict["timestamp"], as_dict["filetime"]) == (timestamp, filetime)
