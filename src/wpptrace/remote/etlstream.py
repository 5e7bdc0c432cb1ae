"""An .etl file written from another session's buffers, by the session core's file writer.

The C core writes every .etl the product makes (provider/csrc/etw_logfile.c); this is its
``wpptrace_etl_stream_*`` entry, for buffers that arrive from elsewhere: the header buffer
first, then data buffers in order, the header's totals kept current after each.
"""
from __future__ import annotations

import os

from wpptrace.provider._hazmat import check, ffi, lib

__all__ = ["EtlStreamFile"]


class EtlStreamFile:
    """A new .etl file (never an existing one: Win32Error ERROR_ALREADY_EXISTS) that starts
    with ``header_buffer``; ``write`` appends data buffers of the same size. One thread at a
    time."""

    def __init__(self, path: str | os.PathLike, header_buffer: bytes):
        self.path = os.fspath(path)
        self.buffer_size = len(header_buffer)
        out = ffi.new("wpptrace_etl_stream **")
        check(lib.wpptrace_etl_stream_create(os.fsencode(self.path), header_buffer,
                                             self.buffer_size, out),
              "creating the file", self.path)
        self._stream = out[0]

    def write(self, buffer: bytes) -> None:
        check(lib.wpptrace_etl_stream_write(self._stream, buffer, len(buffer)),
              "writing a buffer", self.path)

    def set_lost(self, events_lost: int, buffers_lost: int) -> None:
        """The totals the header reports (clamped to 32 bits, as the header holds them)."""
        check(lib.wpptrace_etl_stream_set_lost(self._stream, min(events_lost, 0xFFFFFFFF),
                                               min(buffers_lost, 0xFFFFFFFF)))

    @property
    def buffers(self) -> int:
        """Buffers in the file, the header buffer included."""
        return int(lib.wpptrace_etl_stream_buffers(self._stream)) if self._stream else 0

    @property
    def closed(self) -> bool:
        return self._stream is None

    def close(self, end_time: int = 0) -> None:
        """Close; ``end_time`` (FILETIME, non-zero) marks a session that stopped cleanly.
        Win32Error (ERROR_DISK_FULL, ERROR_WRITE_FAULT ...) if the last header, the file's
        size or the flush to the disk failed: the file may then lack data (it is closed
        either way)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            check(lib.wpptrace_etl_stream_close(stream, end_time), "closing the file", self.path)

    def __del__(self):
        # a file its owner never closed: nobody is left to tell how the close went (a
        # finaliser must not raise); the file is readable up to its last header either way
        try:
            self.close()
        except Exception:
            pass
