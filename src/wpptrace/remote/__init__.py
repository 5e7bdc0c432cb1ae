"""wpptrace.remote: live sessions' buffers over the network (relay -> collector).

* :class:`Relay` (``wpptrace relay``): attaches to a live session as a real-time consumer
  and sends every buffer, in order, to a collector over TCP or TLS;
* :class:`Collector` (``wpptrace collect``): accepts several relays at once and writes one
  .etl per source and/or decodes them live (:class:`LiveView`, through
  OpenTraceFromBufferStream);
* ``protocol``: the framed protocol both speak (docs/remote-protocol.md);
* ``tls``: the ssl contexts for each end.
"""
from .collector import Abandoned, Collector, SourceStats
from .liveview import LiveView
from .relay import Relay, RelayRefused, RelayStats
from .tls import client_context, server_context

__all__ = ["Abandoned", "Collector", "LiveView", "Relay", "RelayRefused", "RelayStats",
           "SourceStats", "client_context", "server_context"]
