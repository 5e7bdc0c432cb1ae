"""Call sites for tests/pyprovider/test_fastpath.py: one per supported wire form, plus a long one."""
from wpptrace.provider.tracing import Provider

trace = Provider("PyFastPath", guid="5b0c7e2a-8d41-4f6b-9a3e-1c2d3e4f5a6b", flags=("A",), register=False)
A = trace.flags.A

SITES = {
    "int32": lambda v: trace.info(A, "int32 %d", v),
    "uint32": lambda v: trace.info(A, "uint32 %u", v),
    "int16": lambda v: trace.info(A, "int16 %hd", v),
    "uint16": lambda v: trace.info(A, "uint16 %hu", v),
    "int64": lambda v: trace.info(A, "int64 %lld", v),
    "uint64": lambda v: trace.info(A, "uint64 %llx", v),
    "pointer": lambda v: trace.info(A, "pointer %p", v),
    "double": lambda v: trace.info(A, "double %f", v),
    "char": lambda v: trace.info(A, "char %c", v),
    "text": lambda v: trace.info(A, "text %s", v),
    "wide": lambda v: trace.info(A, "wide %ls", v),
    "guid": lambda v: trace.info(A, "guid %!GUID!", v),
    "status": lambda v: trace.info(A, "status %!STATUS!", v),
    "ip": lambda v: trace.info(A, "ip %!IPADDR!", v),
    "port": lambda v: trace.info(A, "port %!PORT!", v),
    "sid": lambda v: trace.info(A, "sid %!SID!", v),
    "hexdump": lambda v: trace.info(A, "bytes %!HEXDUMP!", v),
}


def six(a, b, c, d, e, f):
    """Six arguments of six kinds."""
    trace.info(A, "six %d %s %llu %ls %f %!GUID!", a, b, c, d, e, f)


def by_log(value):
    trace.log(4, A, "log %d", value)


def threaded(worker, index):
    trace.info(A, "thread %d item %d %s", worker, index, f"w{worker}-{index}")


def starred(*args):
    trace.info(A, "starred %d %s", *args)
