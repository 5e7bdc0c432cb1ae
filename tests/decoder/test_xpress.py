"""MS-XCA Plain LZ77 decompression: every length escape, real ETW buffers, hostile input."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dec_xpress_encoder import compress
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.xpress import XpressError, decompress

# The snail-server test vector's plain text (docs/pdb-and-compression.md §B3): it needs the
# nibble, byte, u16 and u32 length escapes and overlapping runs.
SNAIL_TEXT = (b"abcdef" + b"gg" + b"hhh" + b"iiii" + b"jjjjj" + b"k" * 10 + b"j" * 20 + b"l" * 40
              + b"m" * 80 + b"o" * 160 + b"p" * 320 + b"q" * 65540)


def test_snail_vector_text_round_trips():
    packed = compress(SNAIL_TEXT)
    assert len(SNAIL_TEXT) == 66190 and len(packed) < 200
    assert decompress(packed, len(SNAIL_TEXT)) == SNAIL_TEXT


def test_hand_assembled_stream():
    # flags 0b0001 1111...: 3 literals 'a','b','c', then a match distance 3 length 6
    # (token (3-1)<<3 | 3 = 0x13), then end of stream (remaining flag bits all ones)
    flags = (0b0001 << 28) | ((1 << 28) - 1)
    stream = flags.to_bytes(4, "little") + b"abc" + (0x13).to_bytes(2, "little")
    assert decompress(stream, 100) == b"abcabcabc"


def test_shared_nibble_between_two_long_matches():
    # two long matches in a row share one extra byte (low nibble, then high nibble)
    text = b"xyz" + b"a" * 12 + b"Q" + b"b" * 20
    assert decompress(compress(text), len(text)) == text


@pytest.mark.parametrize("length", [3, 9, 10, 24, 25, 279, 280, 65538, 65539, 70000])
def test_every_length_boundary(length):
    text = b"Z" + b"r" * length
    assert decompress(compress(text), len(text)) == text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000) | st.lists(st.sampled_from([b"ab", b"abc", b"\0" * 7, b"xyz!"]),
                                           max_size=400).map(b"".join))
def test_round_trip(data):
    assert decompress(compress(data), len(data)) == data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=4096))
def test_hostile_input_never_overruns(data, cap):
    try:
        out = decompress(data, cap)
    except XpressError as exc:
        assert len(exc.partial) <= cap
    else:
        assert len(out) <= cap


def test_output_cap_is_enforced():
    text = b"q" * 5000
    with pytest.raises(XpressError, match="larger than the expected size") as exc:
        decompress(compress(text), 4000)
    assert exc.value.partial == text[:len(exc.value.partial)]


def test_damaged_stream_keeps_its_good_prefix():
    text = bytes(range(256)) * 8
    packed = compress(text)
    with pytest.raises(XpressError) as exc:
        decompress(packed[:len(packed) // 2], len(text), exact=True)
    assert exc.value.partial and text.startswith(exc.value.partial)


COMPRESSED = ["etl/microsoft__perfview/smallEtlFile.etl",
              "etl/microsoft__perfview/SelfDescribingSingleEvent.etl",
              "etl/microsoft__perfview/net.4.5.2.x64.etl",
              "etl/microsoft__perfview/net.4.5.2.x86.etl"]


def test_every_real_compressed_buffer_decodes_exactly(corpus):
    """All 637 compressed buffers of the corpus decode to SavedOffset - 0x48 bytes, equal to
    dissect.util's (Apache-2.0) independent decoder."""
    from dissect.util.compression import lzxpress

    total = 0
    for rel in COMPRESSED:
        with EtlFile(corpus / rel) as etl:
            for info in etl.buffer_index():
                if not info.compressed:
                    continue
                total += 1
                with open(corpus / rel, "rb") as fh:
                    fh.seek(info.file_offset + 0x48)
                    packed = fh.read(info.size_on_disk - 0x48)
                ours = decompress(packed, info.saved_offset - 0x48, exact=True)
                assert len(ours) == info.saved_offset - 0x48
                if total % 25 == 1:          # dissect.util is slow: a sample of 26 buffers
                    assert ours == lzxpress.decompress(packed)
                assert etl.read_buffer(info).data[0x48:] == ours
            assert etl.errors == []
    assert total == 637


def test_unsupported_compression_format_is_reported_not_garbled(corpus_file):
    import io
    import struct

    data = bytearray(corpus_file("smallEtlFile.etl").read_bytes())
    struct.pack_into("<I", data, 0x2C, 4)            # buffer 0 State: XPRESS_HUFF
    with EtlFile(io.BytesIO(bytes(data)), name="huff.etl") as etl:
        kinds = [r.kind for r in etl.iter_records()]
        assert kinds == ["system"] and etl.stats.unreadable_buffers == 1
        assert etl.stats.skipped == 1
        assert any(e.offset == 0x2C and "LZ77+Huffman" in e.message for e in etl.errors)


def test_decompression_bomb_is_capped(corpus_file):
    """A crafted compressed buffer claiming 16 MB from 19 bytes decodes at most
    MAX_EXPANSION times its size, and is then skipped and said."""
    import io
    import struct
    import time

    from wpptrace.decoder import buffers, etlfile

    data = bytearray(corpus_file("smallEtlFile.etl").read_bytes())
    claim = 16 * 1024 * 1024
    # literal 'a', then a match at distance 1 of claim-0x49 bytes (u32 length escape)
    flags = (0b01 << 30) | ((1 << 30) - 1)
    stream = (struct.pack("<I", flags) + b"a" + struct.pack("<H", 7) + bytes([15, 255])
              + struct.pack("<HI", 0, claim - 0x48 - 1 - 3))
    head = bytearray(data[512:512 + 0x48])
    struct.pack_into("<III", head, 0, 0x48 + len(stream), claim, claim)
    struct.pack_into("<I", head, 0x30, claim)
    bomb = bytes(data[:512]) + bytes(head) + stream
    hdr = bytearray(bomb)
    struct.pack_into("<I", hdr, 0x68, claim)          # session BufferSize 16 MB
    t0 = time.thread_time()                           # CPU time: the bound is on work, not load
    with etlfile.EtlFile(io.BytesIO(bytes(hdr)), name="bomb.etl") as etl:
        buf = etl.read_buffer(etl.buffer_index()[1])
        assert buf.unreadable and len(buf.data) == 0x48
        assert [e.message for e in buf.issues] == [
            f"buffer 1: expected a compressed buffer to expand to at most "
            f"{buffers.MAX_EXPANSION} times its {0x48 + len(stream)} bytes in the file, "
            f"{buffers.MAX_EXPANSION * (0x48 + len(stream)):#x} bytes; it expands past that "
            f"(SavedOffset says {claim:#x}): the buffer is skipped"]
    assert time.thread_time() - t0 < 2


def test_decompress_into_refuses_a_window_outside_the_output():
    """The C decoder writes up to max_output bytes from start: a window that does not fit
    in the output buffer is refused before any C call."""
    from wpptrace.decoder.xpress import decompress_into

    packed = compress(b"abcabcabc")
    out = bytearray(16)
    for start, room in ((8, 9), (-1, 4), (0, 17), (17, 0), (4, -1)):
        with pytest.raises(ValueError, match="not inside"):
            decompress_into(packed, out, start, room)
    assert out == bytearray(16)
    assert decompress_into(packed, out, 7, 9)[:2] == (0, 9) and out[7:] == b"abcabcabc"
