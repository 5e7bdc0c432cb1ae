"""Raw session clock values -> FILETIME / datetime, per docs/etl-format.md §6.

The log-file header pairs StartTime (FILETIME) with the header record's raw SystemTime;
every other raw value is placed relative to that pair using the session clock
(ReservedFlags): 1 QPC ticks at PerfFreq Hz, 2 FILETIME already, 3 CPU cycles at
CpuSpeedInMHz. Integer arithmetic, so no precision is lost on long traces.
"""
from __future__ import annotations

from ._hazmat import ETL

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import datetime as _dt

    from .etlfile import LogfileHeader

FILETIME_TICKS_PER_SECOND = 10_000_000
#: FILETIME of 1970-01-01 00:00:00 UTC
FILETIME_UNIX_EPOCH = 116_444_736_000_000_000
#: seconds from 1601-01-01 to 1970-01-01
UNIX_EPOCH_SECONDS = FILETIME_UNIX_EPOCH // FILETIME_TICKS_PER_SECOND
#: 10000-01-01 as a FILETIME: later times have no ISO 8601 text (four-digit years)
ISO_END_FILETIME = ETL.WPPR_ISO_END_FILETIME

CLOCK_PERFCOUNTER = ETL.EVENT_TRACE_CLOCK_PERFCOUNTER
CLOCK_SYSTEMTIME = ETL.EVENT_TRACE_CLOCK_SYSTEMTIME
CLOCK_CPUCYCLE = ETL.EVENT_TRACE_CLOCK_CPUCYCLE


class TimeConverter:
    """Converts raw timestamps of one trace to FILETIME (100 ns since 1601, UTC).

    One formula for every clock: FILETIME = start + (raw - origin) * num // den (``linear``;
    the C row walker computes the same, decoder/csrc/wpp_rows.c)."""

    def __init__(self, header: "LogfileHeader"):
        self.clock_type = header.clock_type
        self.start_time = header.start_time
        self.origin = header.header_timestamp
        # ticks per second of the raw clock
        if self.clock_type == CLOCK_SYSTEMTIME:
            self.frequency = FILETIME_TICKS_PER_SECOND
        elif self.clock_type == CLOCK_CPUCYCLE and header.cpu_speed_mhz > 0:
            self.frequency = header.cpu_speed_mhz * 1_000_000
        elif header.perf_freq > 0:
            self.frequency = header.perf_freq
        else:                      # no usable clock facts (damaged header): assume 100 ns
            self.frequency = FILETIME_TICKS_PER_SECOND
        self._set_linear()

    @classmethod
    def system_time(cls) -> "TimeConverter":
        """For a trace whose header is not known (yet): raw values taken as FILETIME."""
        conv = cls.__new__(cls)
        conv.clock_type, conv.start_time, conv.origin = CLOCK_SYSTEMTIME, 0, 0
        conv.frequency = FILETIME_TICKS_PER_SECOND
        conv._set_linear()
        return conv

    def _set_linear(self) -> None:
        if self.clock_type == CLOCK_SYSTEMTIME:
            self.linear = (0, 0, 1, 1)
        elif self.frequency == FILETIME_TICKS_PER_SECOND:
            self.linear = (self.start_time, self.origin, 1, 1)
        else:
            self.linear = (self.start_time, self.origin, FILETIME_TICKS_PER_SECOND, self.frequency)
        start, origin, num, den = self.linear
        #: FILETIME = raw + offset when the clock counts 100 ns ticks, else None
        self.offset = start - origin if num == den else None

    def to_filetime(self, raw: int) -> int:
        start, origin, num, den = self.linear
        return start + (raw - origin) * num // den

    def to_filetimes(self, raws: list[int]) -> list[int]:
        """``to_filetime`` of every value (one pass, no call per value)."""
        offset = self.offset
        if offset == 0:
            return list(raws)
        if offset is not None:
            return [raw + offset for raw in raws]
        start, origin, num, den = self.linear
        return [start + (raw - origin) * num // den for raw in raws]

    def to_datetime(self, raw: int) -> _dt.datetime | None:
        """``raw`` as an aware UTC datetime (None where ``filetime_to_datetime`` gives none)."""
        return filetime_to_datetime(self.to_filetime(raw))


def filetime_to_datetime(filetime: int) -> _dt.datetime | None:
    """FILETIME -> aware UTC datetime (microsecond resolution); None for a time a datetime
    cannot hold (past year 9999, or before year 1), as JSON Lines writes no ISO time for it:
    never another instant."""
    dt, epoch = _DATETIME or _import_datetime()
    try:
        return epoch + dt.timedelta(microseconds=filetime // 10)
    except OverflowError:
        return None


#: (the datetime module, 1601-01-01 UTC), from the first conversion to a datetime: fmt makes
#: none, and importing datetime costs 4.8 M instructions
_DATETIME: tuple | None = None


def _import_datetime() -> tuple:
    global _DATETIME
    import datetime

    _DATETIME = (datetime, datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc))
    return _DATETIME
