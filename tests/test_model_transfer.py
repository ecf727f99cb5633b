"""tls-demo and a client application related over certificate_transfer, in the model.

The client is tests/charms/trust-client: an ops charm on the real requirer library
(charmlibs-interfaces-certificate-transfer, pinned), run as real hook processes with its
own venv and charmcraft's dispatch. Its units write the bundle they received to a file; the
checks connect from each client unit's address to every tls-demo unit's echo service
trusting that file only (tests/transfer_checks.py)."""
import json

import pytest
from charms.layer.tls import pki
from cryptography.hazmat.primitives import hashes
from model_checks import assert_one_new_ca, assert_quiet, check_all, step_checking
from transfer_checks import (
    CLIENT_APP,
    add_client,
    bundle_file,
    check_clients,
    client_matrix,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]
V0_KEYS = ("ca", "certificate", "chain", "version")


def fingerprints(pem_text):
    return sorted(c.fingerprint(hashes.SHA256()).hex()
                  for c in pki.load_certificates(pem_text)) if "BEGIN" in pem_text else []


def related(make_model, seed, units=3, clients=2):
    model = make_model(seed=seed)
    model.deploy(units)
    rid = add_client(model, clients)
    model.settle()
    return model, rid


def assert_clients_trust(model, rid, bundle):
    """Every client unit holds exactly ``bundle``'s CAs, says so, and verifies every
    tls-demo unit with them."""
    sent = json.loads(model.app_data(rid, "tls-demo")["certificates"])
    assert fingerprints("".join(sent)) == fingerprints(bundle)
    for client in model.app_units(CLIENT_APP):
        text = bundle_file(model, client).read_text()
        assert fingerprints(text) == fingerprints(bundle), client
        status = model.status(client)
        count = len(fingerprints(bundle))
        assert status["status"] == "active", status
        assert status["message"].startswith(f"trusting {count} CA certificate(s)"), status
    return check_clients(model, model.port)


def test_a_related_client_receives_the_bundle_and_verifies_every_unit(make_model, tmp_path):
    model, rid = related(make_model, seed=3)
    assert_quiet(model)
    check_all(model, model.port)  # tls-demo itself is unchanged by the client
    bundle = model.app_data()["ca-bundle"]
    matrix = assert_clients_trust(model, rid, bundle)
    assert len(matrix) == 2 * 3
    # the real requirer announced version 1, so the provider served v1 only (app bag)
    assert model.app_data(rid, CLIENT_APP) == {"version": "1"}
    # ops made its own tool calls: JSON formats, relation-set --file - (JSON on stdin)
    (created,) = model.runs(model.leader_of(CLIENT_APP), "receive-ca-cert-relation-created")
    assert ["is-leader", "--format=json"] in created.calls
    assert ["relation-set", "-r", f"receive-ca-cert:{rid}", "--app", "--file", "-"] in \
        created.calls, created.calls
    for unit in model.unit_names:
        assert not set(V0_KEYS) & set(model.relation_data(unit, rid)), unit
    # the check can fail: a client trusting another CA verifies no unit
    foreign = tmp_path / "foreign.crt"
    foreign.write_text(pki.certificate_to_pem(pki.create_ca("foreign CA").certificate))
    refused = client_matrix(model, model.port, ca_file=foreign)
    assert all("CERTIFICATE_VERIFY_FAILED" in r for r in refused.values()), refused
    # and so does a bundle missing the issuer: an empty bundle file
    (model.unit(f"{CLIENT_APP}/0").root / "ca-bundle.crt").write_text("")
    broken = client_matrix(model, model.port)
    assert all(r != "ok" for (c, _), r in broken.items() if c == f"{CLIENT_APP}/0"), broken


def test_a_ca_rollover_keeps_every_client_connection_working_after_every_hook(make_model):
    model, rid = related(make_model, seed=5)
    old = model.app_data()["ca-bundle"]
    assert_clients_trust(model, rid, old)
    assert model.run_action(model.leader, "rotate-ca")["status"] == "completed"
    # every client connection is checked after every single hook of the rollover
    step_checking(model, lambda: check_clients(model, model.port), max_hooks=600)
    assert_one_new_ca(model, old)
    new = model.app_data()["ca-bundle"]
    assert fingerprints(new) != fingerprints(old)
    assert_clients_trust(model, rid, new)  # the old CA is gone from the clients too


def test_removing_the_relation_breaks_it_on_both_sides_without_a_failure_loop(make_model):
    model, rid = related(make_model, seed=7, units=2, clients=2)
    before = len(model.history)
    model.remove_relation(rid)
    model.settle()
    assert_quiet(model)
    runs = model.history[before:]
    assert all(r.ok for r in runs), [(r.unit, r.hook) for r in runs if not r.ok]
    broken = {r.unit for r in runs if r.hook.endswith("-relation-broken")}
    everyone = set(model.unit_names) | set(model.app_units(CLIENT_APP))
    assert broken == everyone
    for unit in everyone:
        mine = [r.hook for r in runs if r.unit == unit and r.relation_id.endswith(f":{rid}")]
        # every remote member departs first, the relation breaks last, once
        assert mine[-1].endswith("-relation-broken") and mine.count(mine[-1]) == 1, mine
        assert sum(h.endswith("-relation-departed") for h in mine) == 2, mine
    for client in model.app_units(CLIENT_APP):
        assert bundle_file(model, client).read_text() == ""
        assert model.status(client) == {"status": "waiting",
                                        "message": "no CA certificates received"}
    assert rid not in model.relation_ids()
    check_all(model, model.port)
    model.tick_update_status()
    assert_quiet(model)


def test_a_requirer_without_version_1_is_served_v0_in_every_unit_bag(make_model):
    """charmlibs' 1.1.0 requirer writes version 1 (on relation-created, leader); a client
    whose app bag stops saying so (an older requirer) gets v0: every tls-demo unit writes
    ca, certificate, chain and version 0 in its own bag (and the app bag stays)."""
    model, rid = related(make_model, seed=9, units=2, clients=1)
    leader = model.leader_of(CLIENT_APP)
    with model.hook_context(leader, relation=rid) as tool:
        assert tool("relation-set", "--app", "version=").returncode == 0
    model.settle()
    assert_quiet(model)
    bundle = model.app_data()["ca-bundle"]
    for unit in model.unit_names:
        bag = model.relation_data(unit, rid)
        assert bag.get("version") == "0", (unit, bag)
        assert fingerprints("".join(json.loads(bag["chain"]))) == fingerprints(bundle)
        assert fingerprints(json.loads(bag["ca"])) == fingerprints(bundle)
    assert "certificates" in model.app_data(rid, "tls-demo")
    assert_clients_trust(model, rid, bundle)
