"""The relay and the collector check certificates the same way on every Python: from 3.13
``ssl.create_default_context`` (the relay's) adds OpenSSL's strict X.509 checks, which the
collector's context (and the relay's on 3.11 and 3.12) did not make. A CA whose basic
constraints are not marked critical, and a certificate without the key identifier of its
issuer, are refused by both ends on every version."""
from __future__ import annotations

import ssl

import certificates
import pytest

from wpptrace.remote import client_context, server_context

pytestmark = pytest.mark.skipif(not certificates.available(),
                                reason="needs the openssl command to make a test CA")

#: what RFC 5280 requires and OpenSSL's strict checks look for, left out
LOOSE_CA_EXT = "basicConstraints=CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
LOOSE_LEAF_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"


@pytest.fixture(scope="module")
def loose_pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("loose")
    (d / "ca.ext").write_text(LOOSE_CA_EXT)
    certificates._run("req", "-new", *certificates.EC, "-keyout", "ca.key", "-out", "ca.csr",
                      "-subj", "/CN=loose CA", cwd=d)
    certificates._run("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-days", "2",
                      "-out", "ca.pem", "-extfile", "ca.ext", cwd=d)
    for name, usage, san in (("collector", "serverAuth", "DNS:localhost"),
                             ("relay", "clientAuth", "DNS:relay-lab-1")):
        (d / f"{name}.ext").write_text(LOOSE_LEAF_EXT + f"extendedKeyUsage={usage}\nsubjectAltName={san}\n")
        certificates._run("req", "-new", *certificates.EC, "-keyout", f"{name}.key", "-out",
                          f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        certificates._run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                          "-set_serial", "7", "-days", "2", "-out", f"{name}.pem",
                          "-extfile", f"{name}.ext", cwd=d)
    return d


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> list[str]:
    """A TLS handshake in memory: the reasons each end refused the other's certificate for
    (["client: ...", "server: ..."]; [] when both took it)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    ends = {"client": client.wrap_bio(c_in, c_out, server_hostname="localhost"),
            "server": server.wrap_bio(s_in, s_out, server_side=True)}
    done: set[str] = set()
    refused: list[str] = []
    for _ in range(20):
        for name, end in ends.items():
            if name in done:
                continue
            try:
                end.do_handshake()
                done.add(name)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                refused.append(f"{name}: {exc.verify_message}")
                return refused
            except ssl.SSLError as exc:      # the other end's alert: its refusal said there
                refused.append(f"{name}: {exc.reason}")
                return refused
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if len(done) == 2:
            # (TLS 1.3: the client's certificate is checked after the client is done)
            try:
                ends["client"].read(1)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                refused.append(f"client: {exc.reason}")
            return refused
    raise AssertionError("the handshake did not end")


def test_the_well_made_pki_is_taken_by_both_ends(tmp_path):
    pki = certificates.make(tmp_path)
    server = server_context(str(pki / "collector.pem"), str(pki / "collector.key"), str(pki / "ca.pem"))
    client = client_context(str(pki / "ca.pem"), str(pki / "relay.pem"), str(pki / "relay.key"))
    assert _handshake(server, client) == []


def test_the_relay_refuses_a_loose_collector_certificate(loose_pki):
    server = server_context(str(loose_pki / "collector.pem"), str(loose_pki / "collector.key"))
    client = client_context(str(loose_pki / "ca.pem"))
    refused = _handshake(server, client)
    assert refused and refused[0].startswith("client: "), refused


def test_the_collector_refuses_a_loose_relay_certificate(loose_pki, tmp_path):
    pki = certificates.make(tmp_path)           # a collector certificate the relay takes
    server = server_context(str(pki / "collector.pem"), str(pki / "collector.key"),
                            str(loose_pki / "ca.pem"))
    client = client_context(str(pki / "ca.pem"), str(loose_pki / "relay.pem"), str(loose_pki / "relay.key"))
    refused = _handshake(server, client)
    assert refused and refused[0].startswith("server: "), refused
