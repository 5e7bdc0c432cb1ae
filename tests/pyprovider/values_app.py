"""Call sites for tests/pyprovider/test_values.py (values that do not fit, arity, enable state)."""
from wpptrace.provider.tracing import Provider

trace = Provider("PyValues", guid="3a9d0f4e-2c1b-4d5a-8e7f-6a5b4c3d2e1f", flags=("A", "B"), register=False)
A, B = trace.flags.A, trace.flags.B


def int32(value):
    trace.info(A, "value %d", value)


def uint32(value):
    trace.info(A, "unsigned %u", value)


def text(value):
    trace.info(A, "text %s", value)


def wide(value):
    trace.info(A, "wide %ls", value)


def guid(value):
    trace.info(A, "guid %!GUID!", value)


def status(value):
    trace.warning(B, "status %!STATUS!", value)


def ip(value):
    trace.info(B, "ip %!IPADDR!", value)


def two(*args):
    trace.info(A, "two %d %s", *args)


def info_b():
    trace.info(B, "flag B at info")


def verbose_a():
    trace.verbose(A, "flag A at verbose")
