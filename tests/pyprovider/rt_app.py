"""Round-trip program: one trace call per supported type (tests/pyprovider/test_roundtrip.py).

The calls are literal, as in a real application; the test decodes the .etl they produce with the
TMF ``wpptrace tmf gen`` writes for this file and compares with Python's own formatting.
"""
import datetime
import uuid

from wpptrace.provider.tracing import TRACE_LEVEL_WARNING, Provider

trace = Provider("PyRoundTrip", guid="5f0e3c1a-7b2d-4e8f-9a61-0c2b3d4e5f60", flags=("CORE", "NET"),
                 register=False)
CORE, NET = trace.flags.CORE, trace.flags.NET

GUID = uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00")
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone.utc)


def emit_all():
    trace.info(CORE, "int %d neg %d max %d min %d", 42, -1000, 2147483647, -2147483648)
    trace.info(CORE, "unsigned %u hex %x HEX %X oct %o", 4000000000, 0xABCDEF, 0xABCDEF, 8)
    trace.info(CORE, "widths [%5d] [%-5d] [%05d] [%08x] [%+d] [%#x]", 42, 42, 42, 0xBEEF, 7, 255)
    trace.info(CORE, "long %ld %lu %lx", -7, 7, 0xFF)
    trace.info(CORE, "short %hd %hu %hx", -2, 65535, 0xBEEF)
    trace.info(CORE, "char %c%c", "O", 75)
    trace.info(CORE, "i64 %lld %llu %llx %I64d %I64u %I64X", -5000000000, 18446744073709551615, 0xDEADBEEFCAFE,
               -1, 12345678901234, 0xABCDEF0123)
    trace.info(CORE, "str [%s] [%10s] [%-6s] [%.3s] empty [%s]", "hello", "right", "left", "truncate", "")
    trace.info(CORE, "utf8 %s", "h\u00e9llo \u2713")
    trace.info(CORE, "wide %S %ls %ws", "wide \u2713", "ls", "ws")
    trace.info(CORE, "percent 100%% done")
    trace.verbose(CORE, "ptr %p null %p", 0x7FF012345678, 0)
    trace.warning(NET, "status %!STATUS! ok %!STATUS! neg %!STATUS!", 0xC0000022, 0, -1073741811)
    trace.error(NET, "hr %!HRESULT! ok %!HRESULT! win %!WINERROR!", 0x80070005, 0, 5)
    trace.info(NET, "guid %!GUID!", GUID)
    trace.info(NET, "ip %!IPADDR! port %!PORT!", "192.168.1.20", 443)
    trace.info(CORE, "bool %!bool! BOOLEAN %!BOOLEAN! irql %!irql!", True, False, 2)
    trace.info(CORE, "set %!b4!", 5)
    trace.info(CORE, "double %f %e %g", 1.5, 0.25, 3)
    trace.info(CORE, "counted %Z wide counted %wZ", "ansi", "wide")
    trace.info(CORE, "sid %!sid!", "S-1-5-21-1004336348-1177238915-682003330-512")
    trace.info(CORE, "delta %!delta! when %!TIMESTAMP!", datetime.timedelta(seconds=1.5), WHEN)
    trace.critical(CORE, "func %!FUNC! five %d", 5)
    trace.log(TRACE_LEVEL_WARNING, CORE | NET, "log() level %d", 3)
    trace.info(CORE, "many %d %d %d %d %d %d %s", 1, 2, 3, 4, 5, 6, "seven")
    trace.info(CORE, "no arguments")
