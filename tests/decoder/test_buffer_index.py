"""The buffer index, built column by column from the headers, says of every buffer what
``buffer_info`` (one header, one object) says, on every real file of the corpus
(uncompressed and compressed layouts, both processor-number forms). The damaged layouts are
in test_buffer_header_damage_reported.py, test_locate_zeroed_region.py and test_damage.py."""
from __future__ import annotations

from wpptrace.decoder.buffers import BUFFER_HEADER_SIZE, buffer_info
from wpptrace.decoder.etlfile import EtlFile


def _agrees(path) -> int:
    with EtlFile(path) as etl:
        index = etl.buffer_index()
        assert len(index) > 0
        for i, info in enumerate(index):
            raw = etl._read_at(info.file_offset, BUFFER_HEADER_SIZE)
            assert info == buffer_info(raw, i, info.file_offset, info.size_on_disk), (path, i)
        return len(index)


def test_every_corpus_file(corpus):
    files = sorted(corpus.rglob("*.etl"))
    assert files
    compressed = 0
    for path in files:
        _agrees(path)
        with EtlFile(path) as etl:
            compressed += etl.compressed
    assert compressed > 0, "the corpus has compressed files: both layouts are checked"
