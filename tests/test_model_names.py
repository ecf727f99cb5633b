"""The names the CA vouches for are bounded (issue 11 item 2), against the built tls-demo.

A unit that claims public names for itself (``pypi.org`` in its ``tls-hostnames``, a public
address in its ``tls-addresses`` and ``ingress-address``) with a CSR for them is refused
``outside-namespace``, its status says so, and the honest units are served as before. The
CA the leader made carries the namespace as X.509 name constraints, so a leaf forged with
the CA key itself (which every unit can read) for ``pypi.org`` does not verify. When the
operator widens ``tls_permitted_names``, the leader's status says that the CA's constraints
do not cover it and suggests rotate-ca; the refused request is judged again, and after
rotate-ca the operator's choice is honoured.
"""
import json
import subprocess

import pytest
from charms.layer.tls import namespace, pki
from model import SIM_PERMITTED_NAMES
from model_checks import (
    check_all,
    check_certificates,
    published_bundle,
    published_intermediates,
    signing_ca,
    unit_files,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

PUBLIC_IP = "93.184.216.34"


def write_bag(model, unit, values):
    """Write ``values`` into ``unit``'s own bag by hand, as that unit."""
    path = model.unit(unit).root / "hostile.yaml"
    path.write_text(json.dumps(values))
    with model.hook_context(unit, relation="certificates") as tool:
        done = tool("relation-set", "--file", str(path))
        assert done.returncode == 0, done.stderr
    path.unlink()


def settle_cleanly(model):
    stats = model.settle()
    assert stats.failures == 0, [(r.unit, r.hook, r.stderr[-500:]) for r in model.history
                                 if not r.ok]


def status(model, unit):
    st = model.status(unit)
    return st["status"], st["message"]


def published_certificate(model, unit):
    pem = json.loads(model.app_data().get("certificates") or "{}").get(unit)
    return pki.load_certificate(pem) if pem else None


def test_a_unit_claiming_public_names_is_refused_and_the_ca_cannot_vouch_for_them(
        make_model, tmp_path):
    model = make_model(seed=31)
    model.deploy(3)
    settle_cleanly(model)
    leader = model.leader
    honest, evil = [n for n in model.unit_names if n != leader]
    before = {n: c.serial_number for n, c in check_all(model, model.port)["certs"].items()}

    # The evil unit claims pypi.org and a public address for itself, with a CSR for them.
    evil_unit = model.unit(evil)
    key = pki.generate_private_key()
    dns_names, ips = [evil_unit.fqdn, "pypi.org"], [evil_unit.address, PUBLIC_IP]
    csr = pki.csr_to_pem(pki.build_csr(key, evil, dns_names=dns_names, ip_addresses=ips))
    write_bag(model, evil, {"csr": csr, "tls-hostnames": json.dumps(dns_names),
                            "tls-addresses": json.dumps(ips), "ingress-address": PUBLIC_IP})
    settle_cleanly(model)
    state, message = status(model, evil)
    assert state == "blocked", message
    assert message == ("certificate request refused: outside-namespace: pypi.org is outside "
                       "tls_permitted_names"), message
    assert published_certificate(model, evil).serial_number == before[evil]  # nothing new
    assert status(model, leader)[0] == "active"

    # The CA (the root and the intermediate that signs) carries the namespace as critical
    # name constraints.
    [ca] = published_bundle(model)
    [intermediate] = published_intermediates(model)
    for cert in (ca, intermediate):
        assert pki.name_constraints_of(cert) == namespace.parse(SIM_PERMITTED_NAMES)

    # The honest units are served as before.
    assert model.run_action(honest, "rotate-certificate")["status"] == "completed"
    settle_cleanly(model)
    certs = check_certificates(model)
    assert certs[honest].serial_number != before[honest]
    assert status(model, honest)[0] == "active"

    # The CA key itself (every unit can read the secret: the intermediate's) cannot make
    # pypi.org trusted.
    (secret,) = model.secrets().values()
    ca_key = pki.load_private_key(secret["content"]["private-key"])
    stolen = pki.CertificateAuthority(intermediate, ca_key, [ca])
    (tmp_path / "chain.pem").write_text(pki.certificate_to_pem(intermediate))
    for forged_names in ({"dns_names": ["pypi.org"]}, {"ip_addresses": [PUBLIC_IP]}):
        forged = pki.issue_certificate(stolen, key.public_key(), common_name=evil,
                                       **forged_names)
        with pytest.raises(pki.CertificateVerificationError):
            pki.verify_certificate(forged, [ca], purpose="client", intermediates=[intermediate])
        (tmp_path / "forged.pem").write_text(pki.certificate_to_pem(forged))
        result = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-CAfile",
             str(unit_files(model, honest)["ca"]), "-untrusted", str(tmp_path / "chain.pem"),
             str(tmp_path / "forged.pem")],
            capture_output=True, text=True, check=False)
        assert result.returncode != 0 and "permitted subtree violation" in result.stdout + \
            result.stderr, result

    # The operator allows pypi.org and the address: the refusal is judged again, and now
    # it is the CA's constraints that exclude them; the leader says to run rotate-ca.
    model.set_config({"tls_permitted_names": f"{SIM_PERMITTED_NAMES} pypi.org {PUBLIC_IP}"})
    settle_cleanly(model)
    state, message = status(model, leader)
    assert state == "blocked", message
    assert message == (f"tls_permitted_names permits pypi.org, {PUBLIC_IP}/32, outside the "
                       "CA's name constraints: run the rotate-ca action for a CA that covers "
                       "it"), message
    state, message = status(model, evil)
    assert state == "blocked" and "outside-ca-constraints: pypi.org is outside the CA's name " \
        "constraints (run the rotate-ca action)" in message, message

    # rotate-ca makes a CA whose constraints cover the operator's namespace, and the
    # operator's choice is honoured: the evil unit's request is signed from it.
    assert model.run_action(leader, "rotate-ca")["status"] == "completed"
    settle_cleanly(model)
    new_ca = published_bundle(model)[0]
    assert new_ca != ca
    for cert in (new_ca, signing_ca(model)):
        assert pki.name_constraints_of(cert) == namespace.parse(
            f"{SIM_PERMITTED_NAMES} pypi.org {PUBLIC_IP}")
    cert = published_certificate(model, evil)
    assert pki.certificate_names(cert) == (sorted(dns_names), sorted(ips))
    pki.verify_certificate(cert, [new_ca], dns_name="pypi.org",
                           intermediates=published_intermediates(model))
    assert "tls_permitted_names" not in status(model, leader)[1]
