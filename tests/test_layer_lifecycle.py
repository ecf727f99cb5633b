"""layer:tls over time, in the in-memory harness: renewal, name changes, CA rollover with
trust kept at every hook, departed units, actions."""
import json
import time

import pytest
from charms.layer.tls import pki, storage
from pki_helpers import make_external_ca
from tls_harness import (
    all_published_text,
    assert_unit_has_valid_certificate,
    deploy,
    installed,
    installed_chain,
    run_action,
    signing_ca,
    unit_host,
)


def pairwise_trust_problems(juju, units):
    """Every unit's installed certificate, presented with its intermediates, must verify
    against every other unit's installed bundle (as a server for its host name and as a
    client)."""
    problems = []
    for owner in units:
        cert_pem = installed(juju, owner)[0]
        if not cert_pem:
            continue
        cert = pki.load_certificate(cert_pem)
        chain = installed_chain(juju, owner)
        for peer in units:
            bundle_pem = installed(juju, peer)[1]
            if not bundle_pem:
                continue
            try:
                pki.verify_certificate(cert, pki.load_certificates(bundle_pem),
                                       dns_name=unit_host(owner), intermediates=chain)
                pki.verify_certificate(cert, pki.load_certificates(bundle_pem),
                                       purpose="client", intermediates=chain)
            except pki.CertificateVerificationError as exc:
                problems.append(f"{peer} does not trust {owner}: {exc}")
    return problems


def settle_checking_trust(juju, units, max_hooks=300):
    """settle(), one hook at a time, checking pairwise trust after every hook."""
    hooks = 0
    while juju.pending:
        unit, hook, rid, remote = juju.pending.pop(0)
        if rid not in juju.relations or unit not in juju.relations[rid].members:
            continue
        juju.run_hook(unit, hook, rid=rid, remote_unit=remote)
        hooks += 1
        assert hooks < max_hooks, "did not settle"
        problems = pairwise_trust_problems(juju, units)
        assert not problems, f"after {unit} {hook}: {problems}"
    return hooks


def bundle_count(juju, rid):
    return juju.app_bag(rid)["ca-bundle"].count("BEGIN CERTIFICATE")


def test_renewal_when_due_with_a_new_key_and_jitter(tmp_path, secrets, hostnames, monkeypatch):
    juju, rid, units = deploy(tmp_path, secrets)
    renew_at = {u: juju.kv(u).get(storage.RENEW_AT) for u in units}
    validity = juju.kv(units[0]).get(storage.INSTALLED_VALIDITY)
    for u in units:
        share = (renew_at[u] - validity[0]) / (validity[1] - validity[0])
        assert 0.62 <= share <= 0.72, (u, share)
    assert len(set(renew_at.values())) == 3, "jitter: units renew at different times"
    before = {u: installed(juju, u) for u in units}
    keys = {u: juju.kv(u).get(storage.INSTALLED_KEY) for u in units}

    juju.run_hook(units[1], "update-status")  # not due: nothing happens
    assert installed(juju, units[1]) == before[units[1]]

    later = max(renew_at.values()) + 1
    monkeypatch.setattr(time, "time", lambda: later)
    for unit in units:
        juju.run_hook(unit, "update-status")
        assert juju.status(unit)[0] == "active"  # the old certificate is still in use
    juju.settle()
    for unit in units:
        cert = assert_unit_has_valid_certificate(juju, unit)
        assert installed(juju, unit)[0] != before[unit][0]
        assert juju.kv(unit).get(storage.INSTALLED_KEY) != keys[unit]
        assert cert.serial_number != pki.load_certificate(before[unit][0]).serial_number
        assert juju.kv(unit).get(storage.RENEWING) is None


def test_an_expired_certificate_says_so_and_is_renewed(tmp_path, secrets, hostnames,
                                                       monkeypatch):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    validity = juju.kv(units[1]).get(storage.INSTALLED_VALIDITY)
    monkeypatch.setattr(time, "time", lambda: validity[1] + 60)
    juju.run_hook(units[1], "update-status")
    state, message = juju.status(units[1])
    assert state == "blocked" and message.startswith("certificate expired on ")
    juju.settle()
    assert juju.status(units[1]) == ("active", juju.status(units[1])[1])


def test_a_renewal_not_signed_in_time_shows_a_warning(tmp_path, secrets, hostnames,
                                                      monkeypatch):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    kv = juju.kv(units[1])
    validity, renew_at = kv.get(storage.INSTALLED_VALIDITY), kv.get(storage.RENEW_AT)
    monkeypatch.setattr(time, "time", lambda: renew_at + 1)
    juju.run_hook(units[1], "update-status")
    juju.pending.clear()  # the leader never gets to sign
    monkeypatch.setattr(time, "time", lambda: validity[1] - 1)
    juju.run_hook(units[1], "update-status")
    state, message = juju.status(units[1])
    assert state == "active" and "WARNING: close to expiry" in message


def test_a_new_name_brings_a_new_certificate_and_the_same_names_do_not(
        tmp_path, secrets, hostnames):
    # service.example is a public name: the operator permits it (before the CA is made,
    # so that the CA's name constraints cover it)
    juju, rid, units = deploy(tmp_path, secrets, units=2,
                              config={"tls_permitted_names": "auto service.example"})
    before = installed(juju, units[1])
    juju.run_hook(units[1], "config-changed")
    juju.run_hook(units[1], "update-status")
    juju.settle()
    assert installed(juju, units[1]) == before, "no reissue when nothing changed"
    for unit in units:
        juju.set_config(unit, tls_extra_sans="service.example 10.9.9.9")
        juju.run_hook(unit, "config-changed")
    juju.settle()
    for unit in units:
        cert = assert_unit_has_valid_certificate(juju, unit)
        dns_names, ips = pki.certificate_names(cert)
        assert "service.example" in dns_names and "10.9.9.9" in ips


def test_a_departed_unit_leaves_the_app_data_and_returns_fresh(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    gone = units[2]
    old_serial = assert_unit_has_valid_certificate(juju, gone).serial_number
    juju.leave(rid, gone)
    juju.settle()
    assert gone not in json.loads(juju.app_bag(rid)["certificates"])
    assert f"{gone}_signed_certificate" not in juju.unit_bag(rid, units[0])
    assert not juju.flag_set(units[0], "tls.peers.departed")
    juju.enter(rid, gone)
    juju.settle()
    assert gone in json.loads(juju.app_bag(rid)["certificates"])
    assert assert_unit_has_valid_certificate(juju, gone).serial_number != old_serial


def test_ca_rollover_keeps_trust_at_every_hook_and_drops_the_old_ca(tmp_path, secrets,
                                                                    hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    old_ca = juju.app_bag(rid)["ca-bundle"]
    run = run_action(juju, units[0], "rotate-ca")
    assert run.action_failed is None and "rollover started" in run.action_results["message"]
    assert bundle_count(juju, rid) == 2
    assert secrets.revisions == 1
    hooks = settle_checking_trust(juju, units)
    assert hooks > 0
    final = juju.app_bag(rid)["ca-bundle"]
    assert bundle_count(juju, rid) == 1 and final != old_ca
    assert juju.leader_settings["certificate_authority"] == final
    new_ca = signing_ca(juju, rid)  # the intermediate under the new root
    assert pki.authority_key_id(new_ca) == pki.subject_key_id(pki.load_certificate(final))
    for unit in units:
        cert = assert_unit_has_valid_certificate(juju, unit)
        assert cert.issuer == new_ca.subject
        assert installed(juju, unit)[1] == final
        assert "tls-installed" not in juju.unit_bag(rid, unit)


def test_a_rollover_to_an_external_ca_keeps_trust_and_ends_on_its_root(tmp_path, secrets,
                                                                       hostnames):
    """``start_rollover(new_ca=...)``: the way an operator's CA or a provider-signed
    intermediate replaces the self-made CA. Trust holds at every hook; at the end the
    bundle is the external root only, ``ca-intermediates`` the external intermediate,
    and every leaf is signed by it."""
    juju, rid, units = deploy(tmp_path, secrets)
    root, intermediate = make_external_ca()

    def entry():
        from charmhelpers.core import hookenv
        from charms.layer.tls import actions, leader, settings
        from charms.reactive import bus

        bus.discover()
        hookenv._run_atstart()  # the endpoints, as actions.main makes them
        leader.start_rollover(actions._endpoint(), settings.load(),
                              "test: an external CA", new_ca=intermediate)
        hookenv._run_atexit()

    juju.run_action(units[0], "switch", entry)
    assert bundle_count(juju, rid) == 2
    settle_checking_trust(juju, units)
    root_pem = pki.certificate_to_pem(root.certificate)
    assert juju.app_bag(rid)["ca-bundle"] == root_pem
    assert juju.app_bag(rid)["ca-intermediates"] == pki.certificate_to_pem(
        intermediate.certificate)
    assert "PRIVATE KEY" not in all_published_text(juju, rid)
    for unit in units:
        cert = assert_unit_has_valid_certificate(juju, unit)
        assert pki.authority_key_id(cert) == pki.subject_key_id(intermediate.certificate)
        assert installed(juju, unit)[1] == root_pem


def test_rollover_resumes_after_a_leader_change(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    run_action(juju, units[0], "rotate-ca")
    juju.set_leader(units[1])
    juju.run_hook(units[1], "leader-elected")
    juju.run_hook(units[0], "leader-settings-changed")
    settle_checking_trust(juju, units)
    assert bundle_count(juju, rid) == 1
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)


def test_actions(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    shown = run_action(juju, units[1], "show-certificate").action_results
    cert_pem = installed(juju, units[1])[0]
    assert shown["certificate"] == cert_pem
    assert shown["dns-names"] == "host-tls-1.lxd"
    assert shown["serial"] == format(pki.load_certificate(cert_pem).serial_number, "x")
    assert "PRIVATE KEY" not in json.dumps(shown)
    ca = run_action(juju, units[1], "get-ca-certificate").action_results
    assert ca["ca-certificate"] == juju.app_bag(rid)["ca-bundle"]

    refused = run_action(juju, units[1], "rotate-ca")
    assert refused.action_failed == "rotate-ca runs on the leader unit only"

    key_before = juju.kv(units[1]).get(storage.INSTALLED_KEY)
    run = run_action(juju, units[1], "rotate-certificate")
    assert "new key" in run.action_results["message"]
    juju.settle()
    assert juju.kv(units[1]).get(storage.INSTALLED_KEY) != key_before
    assert_unit_has_valid_certificate(juju, units[1])

    assert run_action(juju, units[0], "rotate-ca").action_failed is None
    again = run_action(juju, units[0], "rotate-ca")
    assert again.action_failed == "a CA rollover is already in progress"


def test_show_certificate_before_there_is_one_fails_clearly(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=1,
                              config={"tls_certificate_lifetime": "4000d"})
    assert run_action(juju, units[0], "show-certificate").action_failed == (
        "this unit has no certificate yet")


@pytest.mark.parametrize("value,days", [("365d", 365), ("12h", 0.5), ("30m", 30 / 1440),
                                        ("90", 90), (" 2.5d ", 2.5)])
def test_durations(value, days):
    from charms.layer.tls import settings

    assert settings.parse_duration_days(value) == pytest.approx(days)


@pytest.mark.parametrize("value", ["", "0d", "-1d", "1w", "d", "1.5.2d"])
def test_bad_durations(value):
    from charms.layer.tls import settings

    with pytest.raises(ValueError):
        settings.parse_duration_days(value)


def test_a_new_host_name_or_address_brings_a_new_certificate(tmp_path, secrets, hostnames,
                                                              monkeypatch):
    from charms.layer.tls import names

    juju, rid, units = deploy(tmp_path, secrets, units=2)
    before = installed(juju, units[1])[0]
    monkeypatch.setattr(names, "host_names", lambda: ["renamed-host", "renamed-host.lxd"])
    juju.units[units[1]].address = "10.0.0.99"  # network-get and unit-get answer this now
    # Juju runs config-changed when a machine's addresses change (worker/uniter/resolver.go)
    juju.run_hook(units[1], "config-changed")
    juju.settle()
    cert = pki.load_certificate(installed(juju, units[1])[0])
    assert installed(juju, units[1])[0] != before
    dns_names, ips = pki.certificate_names(cert)
    assert "renamed-host.lxd" in dns_names and "10.0.0.99" in ips


def test_update_status_looks_for_new_host_names_without_a_hook_tool(tmp_path, secrets,
                                                                     hostnames, monkeypatch):
    """update-status runs no network-get or unit-get (Juju runs config-changed when the
    addresses change), yet still notices a new host name; a new CSR looks the addresses
    up afresh."""
    from charms.layer.tls import names

    juju, rid, units = deploy(tmp_path, secrets, units=2)
    before = installed(juju, units[1])[0]
    juju.units[units[1]].address = "10.0.0.98"  # not looked up by update-status
    calls = juju.network_gets
    juju.run_hook(units[1], "update-status")
    juju.settle()
    assert juju.network_gets == calls
    assert installed(juju, units[1])[0] == before
    monkeypatch.setattr(names, "host_names", lambda: ["renamed-host.lxd"])
    juju.run_hook(units[1], "update-status")
    juju.settle()
    dns_names, ips = pki.certificate_names(pki.load_certificate(installed(juju, units[1])[0]))
    # the new CSR looked the addresses up afresh
    assert "renamed-host.lxd" in dns_names and "10.0.0.98" in ips


def test_short_lifetimes_count_from_issuance_not_from_the_backdated_not_before(
        tmp_path, secrets, hostnames):
    """notBefore is backdated 5 minutes; with a 10-minute certificate, renewing at half its
    life must mean about 5 minutes from now, not at once (a renewal storm)."""
    juju, rid, units = deploy(tmp_path, secrets, units=2,
                              config={"tls_certificate_lifetime": "10m",
                                      "tls_renew_fraction": 0.5})
    first = installed(juju, units[1])[0]
    for unit in units:
        wait = juju.kv(unit).get(storage.RENEW_AT) - time.time()
        assert 240 <= wait <= 330, (unit, wait)
        juju.run_hook(unit, "update-status")
    juju.settle()
    assert installed(juju, units[1])[0] == first


def test_the_ca_rolls_over_by_itself_when_due_and_only_for_the_ca_in_use(
        tmp_path, secrets, hostnames, monkeypatch):
    from charms.layer.tls import leader

    juju, rid, units = deploy(tmp_path, secrets, units=2,
                              config={"tls_ca_lifetime": "2d", "tls_certificate_lifetime": "1d",
                                      "tls_ca_rollover_fraction": 0.1})
    due = juju.kv(units[0]).get(leader.ROLLOVER_AT)
    assert 4 * 3600 < due["at"] - time.time() < 5 * 3600  # 0.1 of 2 days
    monkeypatch.setattr(time, "time", lambda: due["at"] + 1)
    # a remembered time for another CA (leadership moved meanwhile) is ignored
    kv = juju.kv(units[0])
    kv.set(leader.ROLLOVER_AT, dict(due, ca="another CA"))
    kv.flush()
    juju.run_hook(units[0], "update-status")
    assert bundle_count(juju, rid) == 1
    kv = juju.kv(units[0])
    kv.set(leader.ROLLOVER_AT, due)
    kv.flush()
    juju.run_hook(units[0], "update-status")
    assert bundle_count(juju, rid) == 2
    settle_checking_trust(juju, units)
    assert bundle_count(juju, rid) == 1
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)


def test_an_action_runs_only_its_own_work(tmp_path, secrets, hostnames):
    """On the leader, rotate-certificate publishes a new CSR and nothing else: no handler
    fires inside the action (Juju gives it an empty hook name), so the CSR is signed by
    the next hook, not by the action."""
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    leader = units[0]
    issued = json.loads(juju.app_bag(rid)["certificates"])[leader]
    csr_before = juju.unit_bag(rid, leader)["csr"]
    run = run_action(juju, leader, "rotate-certificate")
    assert run.action_failed is None, run.traceback
    assert not any("layer:tls: signed" in message for _, message in run.logs), run.logs
    assert all(owner != "app" for _, owner, _ in run.relation_sets), run.relation_sets
    assert juju.unit_bag(rid, leader)["csr"] != csr_before
    assert json.loads(juju.app_bag(rid)["certificates"])[leader] == issued
    juju.run_hook(leader, "update-status")
    juju.settle()
    assert json.loads(juju.app_bag(rid)["certificates"])[leader] != issued
    assert_unit_has_valid_certificate(juju, leader)


@pytest.mark.parametrize("who", ["peer", "leader"])
def test_a_key_rotation_during_a_rollover_does_not_stall_it(tmp_path, secrets, hostnames, who):
    """A unit with a new key (rotate-certificate, or a renewal) in the middle of a CA
    rollover still installs and acknowledges the new bundle, so the rollover finishes; its
    new certificate comes from the new CA. The leader's status names the phase meanwhile."""
    juju, rid, units = deploy(tmp_path, secrets)
    old_ca = juju.app_bag(rid)["ca-bundle"]
    rotating = units[1] if who == "peer" else units[0]
    assert run_action(juju, units[0], "rotate-ca").action_failed is None
    assert run_action(juju, rotating, "rotate-certificate").action_failed is None
    juju.pending.append((rotating, "certificates-relation-changed", rid, units[2]))
    settle_checking_trust(juju, units)
    final = juju.app_bag(rid)["ca-bundle"]
    assert bundle_count(juju, rid) == 1 and final != old_ca
    for unit in units:
        assert assert_unit_has_valid_certificate(juju, unit).issuer == \
            signing_ca(juju, rid).subject
    assert juju.status(units[0])[0] == "active"
    assert "CA rollover" not in juju.status(units[0])[1]


def test_a_renewal_during_a_rollover_and_a_new_unit_are_served(tmp_path, secrets, hostnames,
                                                               monkeypatch):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    assert run_action(juju, units[0], "rotate-ca").action_failed is None
    juju.run_hook(units[0], "update-status")
    assert "waiting for tls/1 to trust the new CA" in juju.status(units[0])[1]
    later = juju.kv(units[1]).get(storage.RENEW_AT) + 1
    monkeypatch.setattr(time, "time", lambda: later)
    juju.run_hook(units[1], "update-status")  # renews: a new key and CSR
    assert juju.kv(units[1]).get(storage.RENEWING)
    newcomer = juju.add_unit()
    juju.enter(rid, newcomer)
    juju.settle()
    assert bundle_count(juju, rid) == 1
    for unit in units + [newcomer]:
        assert_unit_has_valid_certificate(juju, unit)
        assert juju.kv(unit).get(storage.RENEWING) is None
