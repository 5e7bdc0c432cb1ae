"""A throw-away PKI for the TLS tests, made with the ``openssl`` command (the tests skip
without it; no Python crypto package is needed): a CA, the collector's certificate
(localhost, 127.0.0.1), two relay certificates it signed, and a second CA with a relay
certificate of its own (not trusted by the collector)."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import zlib

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
CA_EXT = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\n")
LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")


def available() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: pathlib.Path, name: str, cn: str) -> None:
    (d / f"{name}.ext").write_text(CA_EXT)
    _run("req", "-new", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
         cwd=d)
    _run("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key", "-days", "2",
         "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)


def _leaf(d: pathlib.Path, name: str, cn: str, ca: str, usage: str, san: str) -> None:
    (d / f"{name}.ext").write_text(LEAF_EXT + f"extendedKeyUsage={usage}\nsubjectAltName={san}\n")
    _run("req", "-new", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
         cwd=d)
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
         "-set_serial", str(zlib.crc32(name.encode())), "-days", "2", "-out", f"{name}.pem",
         "-extfile", f"{name}.ext", cwd=d)


def make(d: pathlib.Path) -> pathlib.Path:
    """Write the PKI into ``d``: ca.pem, collector.{pem,key}, relay.{pem,key} (CN
    relay-lab-1), stranger.{pem,key} (CN relay-lab-2, same CA), rogue-ca.pem and
    rogue.{pem,key} (CN relay-lab-1, signed by rogue-ca)."""
    _ca(d, "ca", "wpptrace test CA")
    _ca(d, "rogue-ca", "another CA")
    _leaf(d, "collector", "localhost", "ca", "serverAuth", "DNS:localhost,IP:127.0.0.1")
    _leaf(d, "relay", "relay-lab-1", "ca", "clientAuth", "DNS:relay-lab-1")
    _leaf(d, "stranger", "relay-lab-2", "ca", "clientAuth", "DNS:relay-lab-2")
    _leaf(d, "rogue", "relay-lab-1", "rogue-ca", "clientAuth", "DNS:relay-lab-1")
    return d
