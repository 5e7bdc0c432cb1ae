"""TLS for relays and collectors (stdlib ``ssl``): the collector's certificate is always
checked; client certificates are optional, and required when the collector names a CA."""
from __future__ import annotations

import ssl
from typing import Optional

__all__ = ["client_context", "server_context"]


def client_context(ca: Optional[str] = None, cert: Optional[str] = None,
                   key: Optional[str] = None) -> ssl.SSLContext:
    """A relay's context: the collector's certificate must chain to ``ca`` (a PEM file; the
    system's CAs if None) and carry the name connected to; ``cert``/``key``: the relay's own
    certificate, for collectors that require one."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def server_context(cert: str, key: Optional[str] = None,
                   client_ca: Optional[str] = None) -> ssl.SSLContext:
    """A collector's context; with ``client_ca`` every relay must present a certificate
    that CA signed (others fail the handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=client_ca)
    return ctx
