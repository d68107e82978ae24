"""Test certificates made with openssl at run time (never committed): a CA, a server
certificate for 127.0.0.1/localhost, a client certificate, and a rogue CA with a client
certificate it signed. Used by test_tls.py."""
from __future__ import annotations

import os
import subprocess

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(args: list[str], cwd: str) -> None:
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: str, name: str, cn: str) -> None:
    _openssl(["req", "-x509", *EC, "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2",
              "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)


def _leaf(d: str, name: str, ca: str, cn: str, ext: str) -> None:
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n" + ext)
    _openssl(["req", *EC, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={cn}"], d)
    _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
              "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext"], d)


class Certs:
    def __init__(self, d: str):
        self.dir = d
        server_ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
        _ca(d, "ca", "compat test CA")
        _leaf(d, "server", "ca", "localhost", server_ext)
        _leaf(d, "client", "ca", "compat client", "extendedKeyUsage=clientAuth\n")
        _ca(d, "rogue-ca", "some other CA")
        _leaf(d, "rogue", "rogue-ca", "rogue client", "extendedKeyUsage=clientAuth\n")

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)
