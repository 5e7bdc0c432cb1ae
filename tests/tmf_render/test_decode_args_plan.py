"""decode_args' and decode_values' plan (runs of fixed-size arguments in one unpack each; a
message of one such run in one call) gives exactly the values
of decoding argument by argument, on every message of the corpus TMFs, at both pointer
sizes, with random bytes (and the same error when the bytes are short); so does
values_reader, reading the argument block where it lies inside a larger buffer."""
from __future__ import annotations

import random

import pytest

from wpptrace.tmf import load
from wpptrace.tmf.itemtypes import item_type
from wpptrace.tmf.render import FormatError, _typed, compile_message


def _one_by_one(formatter, message, data: bytes, ps: int) -> list[tuple]:
    out, off = [], 0
    for a in message.args:
        it = item_type(a.item)
        value, off = it.decode(data, off, ps)
        out.append((a.name, a.item, _typed(it, value, formatter._spec_of(a.insert), ps)))
    return out


def _sample(it, ps: int, rnd: random.Random) -> bytes:
    size = it.fixed_size(ps)
    if size is not None:
        return rnd.randbytes(size)
    text = "x%d" % rnd.randrange(1000)
    if it.wire == "cstr":
        return text.encode() + b"\0"
    if it.wire == "wstr":
        return text.encode("utf-16-le") + b"\0\0"
    raw = text.encode("utf-16-le") if it.wire == "pwstr" else text.encode()
    return len(raw).to_bytes(2, "little") + raw


@pytest.mark.parametrize("ps", [4, 8])
def test_plan_values_equal_item_by_item_decoding(ps, corpus):
    rnd = random.Random(ps)
    tested = 0
    tmfs = load(corpus / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf",
                corpus / "wpp" / "guscatalano__findneedle" / "tmf")
    for message in tmfs.messages():
        formatter = compile_message(message)
        items = [item_type(a.item) for a in message.args]
        if not items or any(it is None or it.wire not in ("fixed", "pointer", "cstr", "wstr", "pstr", "pwstr")
                            for it in items):
            continue
        for _ in range(5):
            data = b"".join(_sample(it, ps, rnd) for it in items) + rnd.randbytes(rnd.randrange(3))
            expected = _one_by_one(formatter, message, data, ps)
            assert formatter.decode_args(data, ps) == expected
            names, kinds = formatter.arg_names_items()   # what decode_values pairs with
            assert list(zip(names, kinds, formatter.decode_values(data, ps))) == expected
            assert formatter.decode_values(memoryview(data), ps) == tuple(v for *_, v in expected)
            read = formatter.values_reader(ps, list)
            before, after = rnd.randbytes(rnd.randrange(9)), rnd.randbytes(rnd.randrange(9))
            assert read(before + data + after, len(before), len(data)) == [v for *_, v in expected]
            cut = data[:rnd.randrange(max(1, len(data) - 2))]
            with pytest.raises(FormatError) as in_place:
                read(before + cut + data, len(before), len(cut))
            with pytest.raises(FormatError) as planned:
                formatter.decode_args(cut, ps)
            with pytest.raises(FormatError) as values:
                formatter.decode_values(cut, ps)
            assert str(values.value) == str(planned.value) == str(in_place.value)
            with pytest.raises(FormatError) as one_by_one:
                formatter._decode_one_by_one(cut, ps, formatter._typed_plan(ps)[1])
            assert str(planned.value) == str(one_by_one.value)   # the same "where" either way
        tested += 1
    assert tested > 100
