"""tests/support/testca.py - a private test CA and server certificates signed by it, made
with the openssl command into a folder (the fake platforms' HTTPS and hubd's client trust
this CA only through a configured CA file, never the system store).

Knows nothing about hubd.
"""
import os
import subprocess

_SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"


def _openssl(*args):
    subprocess.run(("openssl",) + args, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class TestCA:
    """A CA in folder: ca.pem (its certificate, the file hubd's client is told to trust),
    and server(name) -> (cert, key) paths of a certificate for localhost/127.0.0.1/::1
    (or the names given)."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.ca = os.path.join(folder, "ca.pem")
        self.ca_key = os.path.join(folder, "ca.key")
        if not os.path.exists(self.ca):
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                     "-subj", "/CN=Bayge Hub test CA")

    def server(self, name="server", san=_SAN, days=2):
        """(cert, key) for a server certificate signed by this CA; san names its hosts."""
        cert = os.path.join(self.folder, name + ".pem")
        key = os.path.join(self.folder, name + ".key")
        if os.path.exists(cert):
            return cert, key
        csr = os.path.join(self.folder, name + ".csr")
        ext = os.path.join(self.folder, name + ".ext")
        with open(ext, "w") as f:
            f.write(san + "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", ext)
        return cert, key

    def ssl_context(self, name="server", san=_SAN):
        """A server-side ssl.SSLContext with the certificate server(name, san)."""
        import ssl
        cert, key = self.server(name, san)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        return ctx
