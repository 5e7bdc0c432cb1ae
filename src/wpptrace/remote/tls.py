"""TLS for relays and collectors (stdlib ``ssl``): the collector's certificate is always
checked; client certificates are optional, and required when the collector names a CA.

A PEM file that cannot be used is said with its path: OSError (a Win32Error where its errno
has a Win32 code, ``filename`` set) when it cannot be read, ValueError saying what is wrong
with its content otherwise (OpenSSL's own words, "[SSL] PEM lib", name neither)."""
from __future__ import annotations

import os
import ssl
from typing import Optional

__all__ = ["client_context", "server_context"]

#: how both ends check the other's certificate chain, on every Python: OpenSSL's strict X.509
#: checks (RFC 5280: a CA's basic constraints critical, its key identifier in what it signs)
#: and a trusted intermediate taken as an anchor. Python 3.13's create_default_context sets
#: them (the relay's alone, before); set here, the relay and the collector agree everywhere.
VERIFY_FLAGS = ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN


def client_context(ca: Optional[str] = None, cert: Optional[str] = None,
                   key: Optional[str] = None, *, key_option: str = "its key file") -> ssl.SSLContext:
    """A relay's context: the collector's certificate must chain to ``ca`` (a PEM file; the
    system's CAs if None) and carry the name connected to; ``cert``/``key``: the relay's own
    certificate, for collectors that require one. ``key_option``: how the caller gives the
    key, for the error of a certificate file without one (``"--key PEM"``)."""
    if ca is None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        _read(ca)
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        except ssl.SSLError:
            raise ValueError(f"{ca}: no PEM certificate in it (a CA certificate was expected)") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= VERIFY_FLAGS
    if cert:
        _load_cert_chain(ctx, cert, key, key_option)
    return ctx


def server_context(cert: str, key: Optional[str] = None, client_ca: Optional[str] = None, *,
                   key_option: str = "its key file") -> ssl.SSLContext:
    """A collector's context; with ``client_ca`` every relay must present a certificate
    that CA signed (others fail the handshake). ``key_option`` as for ``client_context``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= VERIFY_FLAGS
    _load_cert_chain(ctx, cert, key, key_option)
    if client_ca:
        _read(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cafile=client_ca)
        except ssl.SSLError:
            raise ValueError(f"{client_ca}: no PEM certificate in it (a CA certificate was "
                             f"expected)") from None
    return ctx


def _read(path: str) -> bytes:
    """The PEM file's first MiB (what OpenSSL reads next), or its reading's error with its
    path: a Win32Error, or a ValueError for a directory, device, pipe or socket (opened
    without waiting: a pipe's open would wait for a writer)."""
    from wpptrace.tmf.errors import TmfError, open_regular, read_at_most
    from wpptrace.winerror import as_win32

    try:
        fd, st = open_regular(path, "give a PEM file")
    except TmfError as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:
        if exc.filename is None:
            exc.filename = path
        raise as_win32(exc) from None
    try:
        return read_at_most(fd, 1 << 20, st.st_size)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = path
        raise as_win32(exc) from None
    finally:
        os.close(fd)


def _load_cert_chain(ctx: ssl.SSLContext, cert: str, key: Optional[str], key_option: str) -> None:
    cert_text = _read(cert)
    key_text = _read(key) if key else cert_text
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if b"CERTIFICATE-----" not in cert_text:
            raise ValueError(f"{cert}: no PEM certificate in it") from None
        if b"PRIVATE KEY-----" not in key_text:
            raise ValueError(f"{key}: no PEM private key in it" if key else
                             f"{cert}: has no private key: give {key_option}") from None
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ValueError(f"{key or cert}: the private key is not the certificate's "
                             f"({cert})") from None
        raise ValueError(f"{key or cert}: the private key cannot be read (an encrypted key "
                         f"is not supported)") from None
