"""Faults during CA creation and CA rollover, with the built tls-demo charm across simulated
units (issue 11, items 3, 5 and 6): a CA-creating hook that fails after running to its end,
a unit asking for a new key in the middle of a rollover, and a CA that expires in the middle
of a rollover. Each ends with one CA in the bundle, every unit holding a certificate from
it, mutual TLS between every pair, every unit active and no hook left failing."""
import time

import pytest
from charms.layer.tls import pki
from model import SettleTimeout
from model_checks import assert_one_new_ca, check_mtls

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _step(model):
    """Run one queued hook; False once nothing is queued."""
    try:
        model.settle(max_hooks=1)
        return False
    except SettleTimeout:
        return True


def _made_a_ca(run):
    return any("secret-add" in str(call) for call in run.calls)


def fail_the_hook_that_makes_the_ca(model, max_hooks=200):
    """Run hooks one at a time; once every unit's CSR is committed (so the leader's next
    hook may make the CA), make the leader's next hook fail after running to its end,
    again after each such hook that turned out not to make the CA. Returns the failed run
    that made it (secret-add called, then nothing transactional committed)."""
    leader, armed = model.leader, False
    for _ in range(max_hooks):
        runs = model.runs(unit=leader)
        last = runs[-1] if runs else None
        if last is not None and last.injected == "after":
            armed = False
            if _made_a_ca(last):
                return last
        bags = [model.relation_data(u) for u in model.unit_names]
        if not armed and (last is None or last.ok) and all("csr" in b for b in bags):
            model.fail_next(leader, when="after")
            armed = True
        if not _step(model):
            break
    raise AssertionError("the leader never made a CA")


def test_a_failed_ca_creating_hook_is_completed_by_the_next_hook(make_model):
    """Item 3. The hook that makes the CA fails after running to its end: the secret and
    the relation data are discarded, leader-set would stay. Before the fix the leader set
    ``certificate_authority`` in that hook, so every later hook found "a CA is published
    but its key is not in the CA store" and blocked for good (rotate-ca too)."""
    model = make_model(seed=31)
    model.deploy(2)
    failed = fail_the_hook_that_makes_the_ca(model)
    assert not model.secrets(), "the failed hook committed a secret"
    model.settle()
    assert_one_new_ca(model)
    assert model.leader_settings()["certificate_authority"] == model.app_data()["ca-bundle"]
    print(f"the CA-creating hook was {failed.hook}")
    # signing and rollovers work afterwards
    bundle = model.app_data()["ca-bundle"]
    result = model.run_action(model.leader, "rotate-ca")
    assert result["status"] == "completed", result
    model.settle()
    assert_one_new_ca(model, bundle)


def _leader_messages(model):
    return [entry for entry in model.status_history(model.leader)]


def test_a_key_rotation_during_a_rollover_lets_it_finish(make_model):
    """Item 5. rotate-certificate on a unit right after rotate-ca: its new CSR clears
    ``signed certificate available``, so before the fix it never installed (nor
    acknowledged) the new bundle, the leader waited for it to trust the new CA and held
    its CSR back until it did: two CAs for good, a unit added later never signed, every
    status active."""
    model = make_model(seed=21)
    names = model.deploy(2)
    model.settle()
    leader = model.leader
    other = next(n for n in names if n != leader)
    old_bundle = model.app_data()["ca-bundle"]
    assert model.run_action(leader, "rotate-ca")["status"] == "completed"
    assert model.run_action(other, "rotate-certificate")["status"] == "completed"
    while _step(model):
        check_mtls(model, model.port)
    assert_one_new_ca(model, old_bundle)
    assert any("CA rollover" in str(entry) for entry in _leader_messages(model)), \
        "the leader's status never showed the rollover"
    # a rotation by the leader itself, and a scale-out, during a second rollover
    second = model.app_data()["ca-bundle"]
    assert model.run_action(leader, "rotate-ca")["status"] == "completed"
    assert model.run_action(leader, "rotate-certificate")["status"] == "completed"
    model.add_unit()
    model.settle()
    assert_one_new_ca(model, second)


def test_a_ca_that_expires_mid_rollover_is_replaced(make_model):
    """Item 6. A rollover to a short-lived CA stalls until that CA expired; the secret
    holds only the expired CA (the old one's revision is pruned). Before the fix every
    leader blocked ("the stored CA cannot sign") and rotate-ca was refused; now the leader
    makes a new CA through the rollover machinery and its status says so."""
    model = make_model(seed=41)
    model.deploy(2)
    model.settle()
    old_bundle = model.app_data()["ca-bundle"]
    # the shortest lifetimes the config allows (every duration is at least a minute)
    model.set_config({"tls_ca_lifetime": "2m", "tls_certificate_lifetime": "1m"})
    model.settle()
    assert model.run_action(model.leader, "rotate-ca")["status"] == "completed"
    short = pki.load_certificates(model.app_data()["ca-bundle"])[0]
    model.set_config({"tls_ca_lifetime": None, "tls_certificate_lifetime": None})
    # the rollover's hooks wait (queued) until the new CA expired
    time.sleep(max(0.0, short.not_valid_after_utc.timestamp() - time.time()) + 1)
    model.set_leader(next(n for n in model.unit_names if n != model.leader))
    model.settle()
    certs = assert_one_new_ca(model, old_bundle)
    assert any("expired" in str(entry) for entry in _leader_messages(model)), \
        "the leader's status never said the CA expired"
    final = pki.load_certificate(model.app_data()["ca-bundle"])
    assert final.subject != short.subject and pki.days_to_expiry(final) > 3000
    assert len(certs) == 2
