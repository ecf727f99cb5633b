"""Helpers for the certificate_transfer tests: tls-demo's layer with the transfer endpoint
in the in-memory harness, a fake requirer application, and the interface module."""
import importlib.util
import json

from charms.layer.tls import pki
from reactive_harness import DEFAULT_METADATA
from tls_harness import ROOT, deploy

ENDPOINT = "send-ca-cert"
CLIENT = "client"
METADATA = dict(DEFAULT_METADATA,
                provides={ENDPOINT: {"interface": "certificate_transfer"},
                          "other-trust": {"interface": "certificate_transfer"}})
INTERFACES = {"tls": ROOT / "interface-tls",
              "certificate_transfer": ROOT / "interface-certificate-transfer"}
V0_KEYS = ("ca", "certificate", "chain", "version")


def _load_provides():
    """The interface module itself (in a charm it is relations.certificate_transfer)."""
    path = ROOT / "interface-certificate-transfer" / "provides.py"
    spec = importlib.util.spec_from_file_location("certificate_transfer_provides", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


provides = _load_provides()


def deploy_with_transfer(tmp_path, secrets, units=3, **kw):
    return deploy(tmp_path, secrets, units=units, metadata=METADATA, interfaces=INTERFACES,
                  **kw)


def relate(juju, units, version=None, endpoint=ENDPOINT, clients=(f"{CLIENT}/0",)):
    """Relate a requirer application: its leader writes ``version`` in its app bag before
    our units see it (as the library does in -relation-created), then our units join."""
    trid = juju.add_relation(endpoint, list(clients))
    if version is not None:
        juju.set_app_data(trid, clients[0].split("/")[0], version=version)
    for unit in units:
        juju.enter(trid, unit)
    juju.settle()
    return trid


def sent_v1(juju, trid):
    """The certificates of the provider's app bag; checks it says version 1."""
    bag = juju.app_bag(trid)
    assert bag.get("version") == "1"
    return json.loads(bag["certificates"])


def requirer_says(juju, trid, units, **values):
    juju.set_app_data(trid, CLIENT, **values)
    runs = [juju.run_hook(u, f"{ENDPOINT}-relation-changed", rid=trid,
                          remote_unit=f"{CLIENT}/0") for u in units]
    juju.settle()
    return runs


def ca_bundle(juju, rid):
    bundle = juju.app_bag(rid)["ca-bundle"]
    return [pki.certificate_to_pem(c) for c in pki.load_certificates(bundle)]


