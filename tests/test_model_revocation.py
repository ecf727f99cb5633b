"""Revocation and the operator's answer to squatting (issue 11 items 7 and 9), with the built
tls-demo charm across simulated units and real mutual-TLS handshakes with its echo service.

(a) revoke-certificate on the leader: every peer's echo service refuses the revoked unit's
    client certificate (the CRL the leader publishes, installed on every unit), the others
    keep talking to each other; the unit stays barred (its new request is refused) until
    unbar-unit, then it gets a new certificate, with a new key, and connects again.
(b) a squatter claims the address of the next unit: that unit is refused name-taken naming
    the squatter; the operator revokes the squatter and the honest unit gets its certificate.
"""
import json

import pytest
from charms.layer.tls import pki
from model_checks import check_all, mtls_matrix, unit_files

pytestmark = pytest.mark.model


def _crl_file(model, unit):
    return unit_files(model, unit)["cert"].parent / "ca.crl"


def _revoked_serials_on(model, unit):
    from charms.layer.tls import crl  # not at the top: the scenarios must run on main too

    text = _crl_file(model, unit).read_text()
    return {s for block in text.split("-----END X509 CRL-----")[:-1]
            for s in crl.revoked_serials(crl.load_crl(block + "-----END X509 CRL-----\n"))}


def test_a_revoked_unit_is_refused_by_every_peer_until_unbarred(make_model):
    model = make_model(seed=21)
    model.deploy(3)
    model.settle()
    before = check_all(model, model.port)["certs"]
    leader = model.leader
    victim = next(n for n in model.unit_names if n != leader)
    others = [n for n in model.unit_names if n != victim]
    csr_before = model.relation_data(victim)["csr"]

    # leader only, in one line elsewhere
    bystander = next(n for n in others if n != leader)
    elsewhere = model.run_action(bystander, "revoke-certificate", {"unit": victim})
    assert elsewhere["status"] == "failed" and "leader" in elsewhere["message"], elsewhere
    done = model.run_action(leader, "revoke-certificate",
                            {"unit": victim, "reason": "keyCompromise"})
    assert done["status"] == "completed", done
    model.settle()

    serial = before[victim].serial_number
    revoked = json.loads(model.app_data()["revoked"])
    assert [(r["unit"], int(r["serial"], 16), r["reason"]) for r in revoked] == \
        [(victim, serial, "keyCompromise")]
    assert json.loads(model.app_data()["barred"]) == [victim]
    assert victim not in json.loads(model.app_data()["certificates"])
    for name in model.unit_names:  # every unit has the CRL, verified, listing the serial
        assert serial in _revoked_serials_on(model, name), name

    matrix = mtls_matrix(model, model.port)
    for server in model.unit_names:
        assert matrix[(victim, server)] != "ok", (victim, server, matrix)
    for client in others:
        for server in others:
            assert matrix[(client, server)] == "ok", (client, server, matrix[(client, server)])

    # the unit made a new key and request; it is refused while it is barred
    status = model.status(victim)
    assert status["status"] == "blocked" and "barred" in status["message"], status
    assert model.relation_data(victim)["csr"] != csr_before
    rejection = json.loads(model.app_data()["rejections"])[victim]
    assert rejection["reason"].startswith("barred")
    assert f"barred: {victim}" in model.status(leader)["message"]
    model.tick_update_status()
    assert "barred" in model.status(victim)["message"]

    done = model.run_action(leader, "unbar-unit", {"unit": victim})
    assert done["status"] == "completed", done
    model.settle()
    after = check_all(model, model.port)["certs"]  # every pair talks again, all active
    assert after[victim].serial_number != serial
    assert after[victim].public_key() != before[victim].public_key()
    assert "barred" not in model.app_data()
    assert serial in _revoked_serials_on(model, others[0])  # revoked stays revoked
    assert "barred" not in model.status(leader)["message"]


def test_revoking_a_squatter_frees_the_name_of_the_next_unit(make_model):
    model = make_model(seed=22)
    model.deploy(3)
    model.settle()
    squatter = next(n for n in model.unit_names if n != model.leader)
    next_address = "127.0.1.4"  # the address of the next unit (unit k: 127.0.1.(k+1))
    with model.hook_context(squatter, relation="certificates") as tool:
        done = tool("relation-set", "tls-addresses=" + json.dumps(
            sorted([model.unit(squatter).address, next_address])))
        assert done.returncode == 0, done.stderr
    model.settle()
    honest = model.add_unit()
    model.settle()
    assert model.unit(honest).address == next_address
    status = model.status(honest)
    assert status["status"] == "blocked", status
    assert f"name-taken: {next_address} is held by {squatter}" in status["message"], status

    done = model.run_action(model.leader, "revoke-certificate", {"unit": squatter})
    assert done["status"] == "completed", done
    model.settle()
    status = model.status(honest)
    assert status["status"] == "active", status
    honest_cert = pki.load_certificates(unit_files(model, honest)["cert"].read_bytes())[0]
    assert next_address in pki.certificate_names(honest_cert)[1]
    assert "barred" in model.status(squatter)["message"]
    matrix = mtls_matrix(model, model.port)
    good = [n for n in model.unit_names if n != squatter]
    assert all(matrix[(c, s)] == "ok" for c in good for s in good), matrix
    assert all(matrix[(squatter, s)] != "ok" for s in model.unit_names), matrix
