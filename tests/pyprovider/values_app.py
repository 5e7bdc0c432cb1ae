"""Call sites for tests/pyprovider/test_values.py (values that do not fit, arity, enable state)."""
from wpptrace.provider.tracing import Provider

trace = Provider("PyValues", guid="3a9d0f4e-2c1b-4d5a-8e7f-6a5b4c3d2e1f", flags=("A", "B"), register=False)
A, B = trace.flags.A, trace.flags.B

SITES = {
    "int": lambda v: trace.info(A, "value %d", v),
    "uint": lambda v: trace.info(A, "unsigned %u", v),
    "hex": lambda v: trace.info(A, "hex %x", v),
    "short": lambda v: trace.info(A, "short %hd", v),
    "long": lambda v: trace.info(A, "long %lu", v),
    "text": lambda v: trace.info(A, "text %s", v),
    "repr": lambda v: trace.info(A, "repr %r", v),
    "ansi": lambda v: trace.info(A, "ansi %hs", v),
    "char": lambda v: trace.info(A, "char %c", v),
    "double": lambda v: trace.info(A, "double %f", v),
    "guid": lambda v: trace.info(A, "guid %!GUID!", v),
    "status": lambda v: trace.warning(B, "status %!STATUS!", v),
    "ip": lambda v: trace.info(B, "ip %!IPADDR!", v),
    "hexdump": lambda v: trace.info(A, "bytes %!HEXDUMP!", v),
}


def int32(value):
    trace.info(A, "value %d", value)


def two(*args):
    trace.info(A, "two %d %s", *args)


def by_flag(flag):
    trace.info(flag, "flag %d", 1)


def by_level(level):
    trace.log(level, A, "level %d", 1)


def dynamic(fmt):
    trace.info(A, fmt, 1)


def info_b():
    trace.info(B, "flag B at info")


def verbose_a():
    trace.verbose(A, "flag A at verbose")
