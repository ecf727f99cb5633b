"""Revocation on real charms.reactive (tests/tls_harness.py): the CRL is renewed on
update-status before its nextUpdate, a rollover leaves the old CA a CRL lasting until it
expires, a forged CRL is not installed, and the actions refuse what they cannot do in one
line."""
import datetime
import json
import time

from charms.layer.tls import crl, pki, revocation, storage
from tls_harness import charm_file, deploy, run_action, signing_ca


def published_crls(juju, rid):
    return {k: crl.load_crl(v) for k, v in json.loads(juju.app_bag(rid)["crl"]).items()}


def test_the_crl_is_renewed_on_update_status_before_its_next_update(
        tmp_path, secrets, hostnames, monkeypatch):
    juju, rid, units = deploy(tmp_path, secrets, units=3)
    (first,) = published_crls(juju, rid).values()
    assert crl.crl_number(first) == 1 and crl.revoked_serials(first) == []
    for unit in units:  # every unit wrote it (verified) for its workload
        assert charm_file(juju, unit, "tls/ca.crl").read_text() == crl.crl_to_pem(first)
    real = time.time
    start = first.last_update_utc.timestamp()
    span = first.next_update_utc.timestamp() - start
    monkeypatch.setattr(time, "time", lambda: start + span * 0.6)  # not due yet (0.67)
    juju.run_hook(units[0], "update-status")
    assert crl.crl_number(next(iter(published_crls(juju, rid).values()))) == 1
    monkeypatch.setattr(time, "time", lambda: start + span * 0.7)
    run = juju.run_hook(units[0], "update-status")
    assert run.ok
    (renewed,) = published_crls(juju, rid).values()
    assert crl.crl_number(renewed) == 2
    assert renewed.next_update_utc > first.next_update_utc
    juju.settle()
    for unit in units:
        assert charm_file(juju, unit, "tls/ca.crl").read_text() == crl.crl_to_pem(renewed)
    assert real() < renewed.next_update_utc.timestamp()


def test_a_rollover_leaves_the_old_ca_a_crl_until_it_expires(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    old_ca = signing_ca(juju, rid)  # the CRL's issuer is the CA that signs the leaves
    assert not run_action(juju, units[0], "rotate-ca").action_failed
    juju.run_hook(units[0], "update-status")
    crls = published_crls(juju, rid)
    assert len(crls) == 2, "every CA of the bundle has a CRL during the rollover"
    old = crls[crl.key_id_hex(old_ca)]
    assert old.next_update_utc == old_ca.not_valid_after_utc
    juju.settle()
    for _ in range(3):
        juju.run_hook(units[0], "update-status")
        juju.settle()
    bundle = juju.app_bag(rid)["ca-bundle"]
    assert bundle.count("BEGIN CERTIFICATE") == 1
    assert list(published_crls(juju, rid)) == [crl.key_id_hex(signing_ca(juju, rid))]
    for unit in units:
        assert charm_file(juju, unit, "tls/ca.crl").read_text().count("BEGIN X509 CRL") == 1


def test_a_forged_crl_is_not_installed(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    ca = signing_ca(juju, rid)
    forger = pki.create_ca(ca.subject.rfc4514_string())
    forged = crl.crl_to_pem(crl.build_crl(forger, [], 99))
    juju.set_app_data(rid, crl=json.dumps({crl.key_id_hex(ca): forged}))
    run = juju.run_hook(units[1], "update-status")
    assert run.ok
    assert juju.kv(units[1]).get(storage.INSTALLED_CRL) == ""
    assert not charm_file(juju, units[1], "tls/ca.crl").exists()
    assert any("ignored the CRL" in message for _, message in run.logs), run.logs
    juju.run_hook(units[0], "update-status")  # the leader puts its own back
    juju.settle()
    juju.run_hook(units[1], "update-status")
    assert charm_file(juju, units[1], "tls/ca.crl").read_text().count("BEGIN X509 CRL") == 1


def test_the_actions_refuse_in_one_line(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    cases = [(units[1], "revoke-certificate", {"unit": units[0]}, "leader unit only"),
             (units[0], "revoke-certificate", {"unit": units[0]}, "its own certificate"),
             (units[0], "revoke-certificate", {"unit": "tls/77"}, "not a unit"),
             (units[0], "revoke-certificate", {"unit": units[1], "reason": "bored"},
              "reason must be one of"),
             (units[0], "revoke-certificate", {"unit": ""}, "unit must name a unit"),
             (units[0], "unbar-unit", {"unit": units[1]}, "is not barred"),
             (units[1], "unbar-unit", {"unit": units[1]}, "leader unit only")]
    for unit, action, params, expected in cases:
        failed = run_action(juju, unit, action, params).action_failed
        assert failed and expected in failed and "\n" not in failed, (action, params, failed)
    assert "barred" not in juju.app_bag(rid) and "revoked" not in juju.app_bag(rid)


def test_a_full_revoked_list_refuses_a_revocation_rather_than_drop_a_valid_record(
        tmp_path, secrets, hostnames):
    """Dropping the oldest record would un-revoke a certificate that is still valid."""
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    later = int(time.time()) + 86400
    full = [{"serial": format(n + 1, "x"), "issuer": "ab" * 20, "unit": "tls-old/9",
             "reason": "unspecified", "date": 0, "not-after": later}
            for n in range(revocation.MAX_REVOKED_RECORDS)]
    juju.set_app_data(rid, revoked=json.dumps(full))
    failed = run_action(juju, units[0], "revoke-certificate", {"unit": units[1]}).action_failed
    assert failed and "revoked list is full" in failed and "\n" not in failed
    assert json.loads(juju.app_bag(rid)["revoked"]) == full
    assert "barred" not in juju.app_bag(rid)


def test_revoking_lists_the_earlier_certificates_this_leader_issued(tmp_path, secrets,
                                                                    hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    first = pki.load_certificate(json.loads(juju.app_bag(rid)["certificates"])[units[1]])
    assert not run_action(juju, units[1], "rotate-certificate").action_failed
    juju.settle()
    second = pki.load_certificate(json.loads(juju.app_bag(rid)["certificates"])[units[1]])
    assert second.serial_number != first.serial_number
    result = run_action(juju, units[0], "revoke-certificate", {"unit": units[1]})
    assert not result.action_failed
    juju.settle()
    (listed,) = published_crls(juju, rid).values()
    assert crl.revoked_serials(listed) == sorted([first.serial_number, second.serial_number])
    assert juju.status(units[1])[0] == "blocked"
    assert revocation.BARRED_CODE in juju.status(units[1])[1]
    assert juju.status(units[0])[1].endswith(f"; barred: {units[1]}")
    # the unit leaves: its bar goes with it, its revocations stay
    juju.leave(rid, units[1])
    juju.settle()
    assert "barred" not in juju.app_bag(rid)
    assert len(json.loads(juju.app_bag(rid)["revoked"])) == 2
    assert datetime.datetime.now(datetime.timezone.utc) < listed.next_update_utc
