"""Legacy-style handlers: only the legacy interface:tls flags, one-shot state of our own.

Counters in unitdata (``legacy-peers.keys-made``, ``legacy-peers.csrs-sent``) let the test
see how often each step ran.
"""
import os
import subprocess
import tempfile

from charmhelpers.core import hookenv, unitdata
from charms.reactive import remove_state, set_flag, when, when_not

CA_CERT, CA_KEY = "legacy-peers-ca-cert", "legacy-peers-ca-key"


def _openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True,
                          check=True).stdout


def _count(key):
    kv = unitdata.kv()
    kv.set(key, (kv.get(key) or 0) + 1)


@when("create certificate signing request")
@when_not("legacy-peers.csr.sent")
def send_csr(tls):
    key = _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    name = hookenv.local_unit().replace("/", "-")
    csr = _openssl("req", "-new", "-key", "/dev/stdin", "-subj", f"/CN={name}", stdin=key)
    kv = unitdata.kv()
    kv.set("legacy-peers.key", key)
    _count("legacy-peers.keys-made")
    tls.set_csr(csr)
    _count("legacy-peers.csrs-sent")
    set_flag("legacy-peers.csr.sent")


def _ca():
    cert, key = hookenv.leader_get(CA_CERT), hookenv.leader_get(CA_KEY)
    if not cert:
        key = _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
        cert = _openssl("req", "-x509", "-new", "-key", "/dev/stdin", "-days", "30",
                        "-subj", "/CN=legacy-peers CA", stdin=key)
        hookenv.leader_set({CA_CERT: cert, CA_KEY: key})
    return cert, key


@when("sign certificate signing request")
def sign_all(tls):
    ca_cert, ca_key = _ca()
    with tempfile.TemporaryDirectory() as tmp:
        ca_cert_path, ca_key_path = os.path.join(tmp, "ca.crt"), os.path.join(tmp, "ca.key")
        with open(ca_cert_path, "w") as f:
            f.write(ca_cert)
        with open(ca_key_path, "w") as f:
            f.write(ca_key)
        for unit_name, csr in tls.get_csr_map().items():
            cert = _openssl("x509", "-req", "-CA", ca_cert_path, "-CAkey", ca_key_path,
                            "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                            "-days", "7", stdin=csr)
            tls.set_cert(unit_name, cert)
    remove_state("sign certificate signing request")


@when("signed certificate available")
@when_not("legacy-peers.cert.stored")
def store_certificate(tls):
    unitdata.kv().set("legacy-peers.cert", tls.get_signed_cert())
    set_flag("legacy-peers.cert.stored")
