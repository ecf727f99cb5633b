"""What interface-tls-certificates requests, signed by the REAL tls-certificates provider.

The requirer's bags come from running our requires.py (the in-memory Juju of
reactive_harness on the real charms.reactive), never written by hand. They are fed to
tests/charms/root-ca, an ops charm built on the pinned
``charmlibs-interfaces-tls-certificates`` provider, run by ops' own testing framework
(Scenario); what the library writes in its app bag is fed back to our reader. So the
library's own parsing and writing decide both halves of the wire.
"""
import importlib.util
import json
import pathlib
import sys
from datetime import timedelta

import pytest
from charmlibs.interfaces.tls_certificates import _tls_certificates as lib
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from ops import testing
from tlscerts_harness import (
    call,
    deploy,
    flag,
    key_pem,
    make_csr,
    make_key,
    provider_writes,
)

CHARM_PY = pathlib.Path(__file__).resolve().parent / "charms" / "root-ca" / "src" / "charm.py"
# Loaded under its own name: tests/test_trust_client.py imports its charm as ``charm``.
_spec = importlib.util.spec_from_file_location("root_ca_charm", CHARM_PY)
root_ca_charm = importlib.util.module_from_spec(_spec)
sys.modules["root_ca_charm"] = root_ca_charm
_spec.loader.exec_module(root_ca_charm)
REFUSED_MESSAGE, RELATION, ROOT_LABEL, RootCaCharm = (
    root_ca_charm.REFUSED_MESSAGE, root_ca_charm.RELATION, root_ca_charm.ROOT_LABEL,
    root_ca_charm.RootCaCharm)


def request(juju, unit, csr, ca=True, scope="app"):
    run = call(juju, unit, lambda ep: ep.request(csr, ca=ca, scope=scope))
    assert run.ok and run.result is True
    return run


def provider_run(juju, rid, names, state=None, config=None, event="changed"):
    """One hook of root-ca (leader) with what our requirer units committed; returns
    (state out, the provider's app bag)."""
    relation = testing.Relation(
        endpoint=RELATION, interface="tls-certificates", remote_app_name=juju.app,
        remote_app_data=juju.app_bag(rid),
        remote_units_data={i: juju.unit_bag(rid, name) for i, name in enumerate(names)})
    if state is None:
        state = testing.State(leader=True, relations={relation}, config=dict(config or {}))
    else:  # the next hook: the provider's own data and secrets carried over
        old = next(iter(state.relations))
        relation = testing.Relation(
            endpoint=RELATION, interface="tls-certificates", id=old.id,
            remote_app_name=juju.app, remote_app_data=juju.app_bag(rid),
            remote_units_data={i: juju.unit_bag(rid, name) for i, name in enumerate(names)},
            local_app_data=dict(old.local_app_data))
        state = testing.State(leader=True, relations={relation}, secrets=state.secrets,
                              config=dict(config or {}))
    ctx = testing.Context(RootCaCharm)
    if event == "changed":
        out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    else:
        out = ctx.run(ctx.on.config_changed(), state)
    return out, dict(out.get_relation(relation.id).local_app_data)


def root_of(out):
    (secret,) = [s for s in out.secrets if s.label == ROOT_LABEL]
    content = secret.tracked_content
    return x509.load_pem_x509_certificate(content["certificate"].encode())


def read_back(juju, unit, csr):
    """(certificate_for, request_error_for) as our reader sees them in one hook."""
    return call(juju, unit, lambda ep: (ep.certificate_for(csr),
                                        ep.request_error_for(csr))).result


def test_our_request_is_byte_for_byte_what_the_library_requirer_writes(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    csr = make_csr(make_key())
    request(juju, u0, csr)
    ours = juju.app_bag(rid)
    theirs = lib._RequirerData(certificate_signing_requests=[
        lib._CertificateSigningRequest(certificate_signing_request=str(
            lib.CertificateSigningRequest.from_string(csr)), ca=True)]).dump({})
    assert ours == theirs
    # and the library's requirer model reads it back as one CA request
    loaded = lib._RequirerData.load(ours)
    assert [(r.ca, r.certificate_signing_request) for r in
            loaded.certificate_signing_requests] == [(True, csr.strip())]


def test_the_real_provider_signs_our_ca_request_and_we_read_it_back(tmp_path):
    juju, rid, names = deploy(tmp_path, units=2)
    key = make_key()
    csr = make_csr(key)
    request(juju, names[0], csr)
    out, bag = provider_run(juju, rid, names)
    assert out.unit_status == testing.ActiveStatus("1 issued, 0 revoked, 0 refused")
    provider_writes(juju, rid, names[0], **bag)
    assert juju.flag_set(names[0], flag("certificate.available"))
    assert juju.flag_set(names[0], flag("changed.certificates"))
    issued, error = read_back(juju, names[0], csr)
    assert error is None and issued.revoked is False
    cert = x509.load_pem_x509_certificate(issued.certificate.encode())
    root = x509.load_pem_x509_certificate(issued.ca.encode())
    assert cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(root)
    assert root == root_of(out)
    assert [x509.load_pem_x509_certificate(c.encode()) for c in issued.chain] == [cert, root]
    # a non-leader cannot read the app-scope request: no flag for it there
    provider_writes(juju, rid, names[1], **bag)
    assert not juju.flag_set(names[1], flag("certificate.available"))
    assert juju.flag_set(names[1], flag("changed"))


def test_a_unit_scope_request_gets_a_leaf_certificate(tmp_path):
    juju, rid, names = deploy(tmp_path, units=2)
    key = make_key()
    csr = make_csr(key, "tls-1 leaf")
    request(juju, names[1], csr, ca=False, scope="unit")
    assert "certificate_signing_requests" not in juju.app_bag(rid)
    _, bag = provider_run(juju, rid, names)
    provider_writes(juju, rid, names[1], **bag)
    assert juju.flag_set(names[1], flag("certificate.available"))
    issued, _ = read_back(juju, names[1], csr)
    cert = x509.load_pem_x509_certificate(issued.certificate.encode())
    assert not cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
    # the leader has no request of its own in it: no flag there
    provider_writes(juju, rid, names[0], **bag)
    assert not juju.flag_set(names[0], flag("certificate.available"))


def test_a_refused_ca_request_reads_back_as_a_request_error(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    csr = make_csr(make_key())
    request(juju, u0, csr)
    out, bag = provider_run(juju, rid, [u0], config={"refuse-ca": True})
    assert out.unit_status == testing.ActiveStatus("0 issued, 0 revoked, 1 refused")
    # the library's wire: "csr" (not certificate_signing_request), an error object
    (entry,) = json.loads(bag["request_errors"])
    assert set(entry) == {"csr", "error"} and entry["error"]["name"] == "OTHER"
    assert json.loads(bag["capabilities"])["supports_ca_certificates"] is False
    provider_writes(juju, rid, u0, **bag)
    assert juju.flag_set(u0, flag("request.error"))
    assert not juju.flag_set(u0, flag("certificate.available"))
    issued, error = read_back(juju, u0, csr)
    assert issued is None
    assert (error.code, error.name, error.message) == (999, "OTHER", REFUSED_MESSAGE)
    assert error.reason == "refuse-ca is set"
    # refuse-ca is turned off: the library replaces the error with a certificate
    out, bag = provider_run(juju, rid, [u0], state=out)
    assert "request_errors" not in bag or json.loads(bag["request_errors"]) == []
    provider_writes(juju, rid, u0, **bag)
    assert juju.flag_set(u0, flag("certificate.available"))
    assert not juju.flag_set(u0, flag("request.error"))


def test_revoked_reads_back_and_clears_available(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    csr = make_csr(make_key())
    request(juju, u0, csr)
    out, bag = provider_run(juju, rid, [u0])
    provider_writes(juju, rid, u0, **bag)
    assert juju.flag_set(u0, flag("certificate.available"))
    out, bag = provider_run(juju, rid, [u0], state=out, config={"revoke": True},
                            event="config")
    assert out.unit_status == testing.ActiveStatus("0 issued, 1 revoked, 0 refused")
    provider_writes(juju, rid, u0, **bag)
    assert juju.flag_set(u0, flag("certificate.revoked"))
    assert not juju.flag_set(u0, flag("certificate.available"))
    issued, _ = read_back(juju, u0, csr)
    assert issued.revoked is True


def test_a_withdrawn_request_loses_its_certificate(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    csr = make_csr(make_key())
    request(juju, u0, csr)
    out, bag = provider_run(juju, rid, [u0])
    provider_writes(juju, rid, u0, **bag)
    run = call(juju, u0, lambda ep: ep.withdraw(csr))
    assert run.result is True and "certificate_signing_requests" not in juju.app_bag(rid)
    assert not juju.flag_set(u0, flag("certificate.available"))  # ours no more
    out, bag = provider_run(juju, rid, [u0], state=out)
    assert json.loads(bag.get("certificates", "[]")) == []


@pytest.mark.parametrize("ca", [True, False])
def test_a_renewal_csr_replaces_the_old_one_and_is_signed(tmp_path, ca):
    """A new CSR for a new key (renewal before expiry) next to the old one while the new
    certificate is pending, then the old one withdrawn: both are signed, then one."""
    juju, rid, (u0,) = deploy(tmp_path)
    old, new = make_csr(make_key()), make_csr(make_key())
    request(juju, u0, old, ca=ca)
    out, bag = provider_run(juju, rid, [u0])
    request(juju, u0, new, ca=ca)
    out, bag = provider_run(juju, rid, [u0], state=out)
    provider_writes(juju, rid, u0, **bag)
    got_old, _ = read_back(juju, u0, old)
    got_new, _ = read_back(juju, u0, new)
    assert got_old and got_new and got_old.certificate != got_new.certificate
    call(juju, u0, lambda ep: ep.withdraw(old))
    out, bag = provider_run(juju, rid, [u0], state=out)
    provider_writes(juju, rid, u0, **bag)
    assert read_back(juju, u0, old)[0] is None
    assert read_back(juju, u0, new)[0] == got_new


def test_the_library_signs_with_the_wrong_issuer_below_an_intermediate(tmp_path):
    """Why the layer must verify a provider's answer: the pinned library's
    Certificate.generate copies the CA certificate's issuer, not its subject. Below a root
    the two are equal; below the intermediate root-ca gave us, the leaf names the root as
    its issuer, and its issuer check against the intermediate fails (README: Spec and
    library)."""
    juju, rid, (u0,) = deploy(tmp_path)
    key = make_key()
    csr = make_csr(key)
    request(juju, u0, csr)
    _, bag = provider_run(juju, rid, [u0])
    provider_writes(juju, rid, u0, **bag)
    issued, _ = read_back(juju, u0, csr)
    intermediate = lib.Certificate.from_string(issued.certificate)
    pem = key_pem(key)
    leaf = lib.CertificateSigningRequest.from_string(make_csr(make_key(), "leaf")).sign(
        ca=intermediate, ca_private_key=lib.PrivateKey.from_string(pem),
        validity=timedelta(days=1))
    leaf_x509 = x509.load_pem_x509_certificate(str(leaf).encode())
    inter_x509 = x509.load_pem_x509_certificate(issued.certificate.encode())
    root_x509 = x509.load_pem_x509_certificate(issued.ca.encode())
    assert leaf_x509.issuer == root_x509.subject != inter_x509.subject
    with pytest.raises(ValueError):
        leaf_x509.verify_directly_issued_by(inter_x509)
