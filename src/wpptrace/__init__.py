"""wpptrace: Windows classic ETW / WPP tracing for Python and Linux.

Parts (each a subpackage, each a top-level folder of the repository):

* :mod:`wpptrace.provider`: the C core (RegisterTraceGuids, TraceMessage, StartTrace,
  ControlTrace, EnableTrace...) writing Windows-compatible ``.etl`` files, and a Pythonic
  provider for instrumenting Python code;
* :mod:`wpptrace.tmf`: TMF reader (files, directories, PDBs), WPP item types, format strings;
* :mod:`wpptrace.decoder`: the consumer (OpenTrace, ProcessTrace, CloseTrace, buffer
  streams) and tracefmt-compatible message formatting.
"""
from .winerror import Win32Error

__version__ = "0.1.0"
__all__ = ["Win32Error", "__version__"]
