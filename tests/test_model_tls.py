"""The built tls-demo charm across simulated units (tests/model), then real mutual TLS.

`make test` runs the 3-unit deploy; `make test-model` runs them all.
"""
import json

import pytest
from charms.layer.tls import pki
from model_checks import (
    check_all,
    check_certificates,
)

pytestmark = pytest.mark.model


def certificates_in_app_data(model):
    return json.loads(model.app_data().get("certificates", "{}"))


def deploy(make_model, units, **kw):
    model = make_model(**kw)
    model.deploy(units)
    model.stats = model.settle()
    return model


def test_deploy_three_units(make_model):
    model = deploy(make_model, 3)
    result = check_all(model, model.port)
    assert len(result["matrix"]) == 9
    assert sorted(certificates_in_app_data(model)) == model.unit_names
    # Juju knows no relation during install: nothing there may touch the peer relation
    for run in model.runs(hook="install"):
        assert not [c for c in run.calls if c[0] in ("relation-get", "relation-set",
                                                     "relation-list")], run.calls
    # a peer app-bag write wakes the leader too; woken by its own last publication, it
    # writes nothing more (no loop)
    own_wakeups = [r for r in model.runs(model.leader, "certificates-relation-changed")
                   if not r.remote_unit]
    assert own_wakeups, "the leader was not woken by its own app-bag write"
    assert not [c for c in own_wakeups[-1].calls if c[0] == "relation-set"]
    print(f"3 units settled in {model.stats.hooks} hooks")


@pytest.mark.slow
def test_deploy_one_unit(make_model):
    model = deploy(make_model, 1)
    check_all(model, model.port)


@pytest.mark.slow
def test_deploy_ten_units_with_another_interleaving(make_model):
    model = deploy(make_model, 10, seed=7)
    check_all(model, model.port)
    print(f"10 units settled in {model.stats.hooks} hooks")


@pytest.mark.slow
def test_scale_out_in_and_leadership_moves(make_model):
    model = deploy(make_model, 3, seed=3)
    before = check_certificates(model)
    ca_before = model.app_data()["ca-bundle"]

    added = model.add_unit()
    model.settle()
    check_all(model, model.port)

    # The leader leaves. While it departs from each peer its view shrinks: it must not
    # take the peers for departed units (their certificates stay, nothing is reissued).
    removed = model.leader
    issued = certificates_in_app_data(model)
    model.remove_unit(removed)
    model.settle()
    assert removed not in certificates_in_app_data(model)
    assert {n: c for n, c in certificates_in_app_data(model).items()} == \
        {n: c for n, c in issued.items() if n != removed}
    check_all(model, model.port)

    model.set_leader(model.unit_names[1])
    model.settle()
    after = check_certificates(model)
    assert model.app_data()["ca-bundle"] == ca_before
    for name, cert in before.items():  # no reissue storm on a leader change
        if name in after:
            assert after[name].serial_number == cert.serial_number, name

    old_leader = model.unit_names[0]
    model.remove_unit(old_leader)
    model.settle()
    assert old_leader not in certificates_in_app_data(model)
    newcomer = model.add_unit()
    model.settle()
    result = check_all(model, model.port)
    assert newcomer in result["certs"] and added in result["certs"]
    assert model.app_data()["ca-bundle"] == ca_before


@pytest.mark.slow
def test_a_hostile_csr_is_refused_while_the_others_are_served(make_model):
    model = deploy(make_model, 3, seed=5)
    evil, victim = [n for n in model.unit_names if n != model.leader]  # the leader signs
    victim_ip = model.unit(victim).address
    key = pki.generate_private_key()
    csr = pki.csr_to_pem(pki.build_csr(key, "evil", ip_addresses=[victim_ip]))
    with model.hook_context(evil, relation="certificates") as tool:
        done = tool("relation-set", "csr=" + csr,
                    "tls-addresses=" + json.dumps([victim_ip]))
        assert done.returncode == 0, done.stderr
    model.settle()
    assert model.status(evil)["status"] == "blocked"
    assert "name-taken" in model.status(evil)["message"]
    assert f"{victim_ip} is held by {victim}" in model.status(evil)["message"]
    rejections = json.loads(model.app_data()["rejections"])
    assert rejections[evil]["reason"].startswith("name-taken")
    newcomer = model.add_unit()
    model.settle()
    certs = check_certificates(model)  # the evil unit keeps its earlier, honest certificate
    assert victim_ip not in pki.certificate_names(certs[evil])[1]
    assert newcomer in certs


@pytest.mark.slow
def test_a_failed_hook_is_retried_and_the_model_converges(make_model):
    model = make_model(seed=11)
    names = model.deploy(3)
    model.fail_next(names[0], "certificates-relation-changed")
    model.fail_next(names[2], "certificates-relation-changed")
    stats = model.settle()
    assert stats.failures >= 2
    check_all(model, model.port)


@pytest.mark.slow
def test_without_secrets_the_fallback_works(make_model):
    model = deploy(make_model, 3, seed=2, secrets_supported=False)
    check_all(model, model.port, allow_leader_settings=True)
    assert "tls-ca-private-key" in model.leader_settings()
    assert "leader settings" in model.status(model.leader)["message"]
