"""layer:tls handlers on the real charms.reactive with the in-memory Juju of
reactive_harness, plus an in-memory secret store that commits only when a hook succeeds."""
import datetime
import json
import stat

from charms.layer.tls import ca_store, pki, storage
from tls_harness import (
    PRIVATE_KEY_MARK,
    all_published_text,
    assert_unit_has_valid_certificate,
    charm_file,
    deploy,
    installed,
    run_action,
    secret_anchor,
)


def test_three_units_get_certificates_from_one_ca(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    certs = [assert_unit_has_valid_certificate(juju, u) for u in units]
    assert len({c.issuer for c in certs}) == 1
    assert len({c.serial_number for c in certs}) == 3
    for unit in units:
        for flag in ("tls.ca.available", "tls.certificate.available",
                     "tls.certificate.changed", "certificate authority available",
                     "tls.certificate.authority available", "tls.server.certificate available",
                     "tls.client.certificate available", "client certificate available",
                     "signed certificate available"):
            assert juju.flag_set(unit, flag), (unit, flag)
        state, message = juju.status(unit)
        assert state == "active" and message.startswith("certificate valid until 20")
    assert list(secrets.committed) == [ca_store.SECRET_LABEL]
    ca_pem = secret_anchor(secrets.committed[ca_store.SECRET_LABEL])
    assert juju.leader_settings[ca_store.LEGACY_CA_SETTING] == ca_pem
    assert juju.app_bag(rid)["ca-bundle"] == ca_pem


def test_legacy_unitdata_keys_and_files(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    unit = units[1]
    kv = juju.kv(unit)
    cert_pem = kv.get(storage.INSTALLED_CERT)
    # the certificate then its intermediate (the CA under the root): what the unit
    # presents; a reader loading one certificate from it gets the unit's, as before
    full_chain = cert_pem + kv.get(storage.INSTALLED_CHAIN)
    assert kv.get(storage.INSTALLED_CHAIN).count("BEGIN CERTIFICATE") == 1
    assert pki.load_certificates(full_chain)[0] == pki.load_certificate(cert_pem)
    assert kv.get("tls.server.certificate") == full_chain
    assert kv.get("tls.client.certificate") == full_chain
    assert kv.get(f"{unit}_signed_certificate") == cert_pem  # the interface's: as published
    key_file = charm_file(juju, unit, "tls/server.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == kv.get(storage.INSTALLED_KEY)
    assert charm_file(juju, unit, "tls/server.crt").read_text() == full_chain
    bundle = charm_file(juju, unit, "tls/ca.crt").read_text()
    assert bundle == charm_file(juju, unit, "trust/tls.crt").read_text()


def test_no_private_key_leaves_the_unit(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    assert PRIVATE_KEY_MARK not in all_published_text(juju, rid)
    for unit in units:
        assert PRIVATE_KEY_MARK not in json.dumps(juju.logs(unit))
        assert PRIVATE_KEY_MARK not in json.dumps(juju.status(unit))


def test_a_single_unit_signs_its_own_certificate(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=1)
    assert_unit_has_valid_certificate(juju, units[0])


def test_a_quiet_hook_writes_nothing_and_loads_no_key(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    secrets.calls.clear()
    for unit in units:
        run = juju.run_hook(unit, "update-status")
        assert run.relation_sets == []
        assert run.leader_sets == []
    assert secrets.calls == []


# layer:tls handlers a quiet hook runs: each is an ``Invoking reactive handler`` juju-log
# call (a hook tool on Juju). The legacy adoption check, the certificate check and the
# every-hook duties (which register the end-of-hook work).
QUIET_HANDLERS = {"adopt_legacy_pki", "install_certificate", "unit_and_ca_duties"}


def test_a_quiet_hook_runs_three_layer_handlers(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    for unit in units:
        for hook in ("update-status", "config-changed", "leader-settings-changed"):
            run = juju.run_hook(unit, hook)
            invoked = [message.rsplit(":", 1)[-1] for _, message in run.logs
                       if message.startswith("Invoking reactive handler: reactive/tls")]
            assert set(invoked) == QUIET_HANDLERS and len(invoked) == 3, (unit, hook, invoked)


def test_a_new_leader_keeps_the_ca_and_reissues_nothing(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets)
    before = {u: installed(juju, u) for u in units}
    juju.set_leader(units[1])
    juju.run_hook(units[1], "leader-elected")
    juju.run_hook(units[0], "leader-settings-changed")
    juju.settle()
    new = juju.add_unit()
    juju.enter(rid, new)
    juju.settle()
    for unit in units:
        assert installed(juju, unit) == before[unit]
    cert = assert_unit_has_valid_certificate(juju, new)
    assert cert.issuer == pki.load_certificate(before[units[0]][0]).issuer
    assert len(secrets.committed) == 1


def test_an_unreadable_ca_secret_blocks_and_makes_no_new_ca(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    bundle = juju.app_bag(rid)["ca-bundle"]
    secrets.unreadable = "ERROR permission denied"
    new = juju.add_unit()
    juju.enter(rid, new)
    juju.settle()
    state, message = juju.status(units[0])
    assert state == "blocked" and "permission denied" in message
    assert juju.app_bag(rid)["ca-bundle"] == bundle
    assert installed(juju, new) == (None, None)
    secrets.unreadable = None
    juju.run_hook(units[0], "update-status")
    juju.settle()
    assert_unit_has_valid_certificate(juju, new)
    assert juju.status(units[0])[0] == "active"


def test_a_lost_ca_key_with_a_published_ca_is_replaced_through_a_rollover(
        tmp_path, secrets, hostnames):
    """The CA secret is gone (the store says "not found") while a CA is published: the
    key is lost for good, so a new CA replaces it through a rollover (the published one
    stays trusted until every unit has a certificate from the new one)."""
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    lost = juju.app_bag(rid)["ca-bundle"]
    secrets.committed.clear()
    new = juju.add_unit()
    juju.enter(rid, new)
    juju.settle()
    final = juju.app_bag(rid)["ca-bundle"]
    assert final.count("BEGIN CERTIFICATE") == 1 and final != lost
    assert secret_anchor(secrets.committed[ca_store.SECRET_LABEL]) == final
    for unit in units + [new]:
        assert_unit_has_valid_certificate(juju, unit)
        assert juju.status(unit)[0] == "active"


def test_a_failed_ca_creating_hook_leaves_nothing_behind(tmp_path, secrets, hostnames,
                                                         monkeypatch):
    """The leader's hook that makes the CA fails after running to its end: its secret and
    relation data are discarded, unitdata stays, and it has set no leader setting (which
    would stay) naming that CA, so the next hook makes the CA afresh."""
    from tls_harness import TlsJuju

    commit, failed = TlsJuju._commit, []

    def fail_the_first_ca(self, ctx):
        if not failed and self.secrets.pending:
            failed.append(ctx["run"])
            self.secrets.pending = {}
            ctx["unit"].kv.flush()  # ran to its end: unitdata was saved
            return
        commit(self, ctx)

    monkeypatch.setattr(TlsJuju, "_commit", fail_the_first_ca)
    juju, rid, units = deploy(tmp_path, secrets, units=2)  # the later hooks complete it
    assert failed and failed[0].unit == units[0]
    juju.run_hook(units[0], "update-status")  # the legacy setting, once the CA committed
    ca_pem = secret_anchor(secrets.committed[ca_store.SECRET_LABEL])
    assert juju.app_bag(rid)["ca-bundle"] == ca_pem
    assert juju.leader_settings[ca_store.LEGACY_CA_SETTING] == ca_pem
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)
        assert juju.status(unit)[0] == "active"


def test_without_secrets_the_ca_lives_in_leader_settings(tmp_path, secrets, hostnames,
                                                           monkeypatch):
    monkeypatch.setattr(ca_store, "secrets_supported", lambda version=None: False)
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)
    assert secrets.calls == []
    assert PRIVATE_KEY_MARK in juju.leader_settings[ca_store.LEADER_CA_KEY]
    assert "CA key kept in leader settings" in juju.status(units[0])[1]
    assert PRIVATE_KEY_MARK not in json.dumps([juju.relations[rid].unit_bags,
                                               juju.relations[rid].app_bags])


def test_a_hostile_csr_is_refused_and_the_others_are_served(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    evil = juju.add_unit()
    juju.enter(rid, evil, hooks=False)
    key = pki.generate_private_key()
    victim_ip = juju.units[units[1]].address
    csr = pki.csr_to_pem(pki.build_csr(key, "x", ip_addresses=[victim_ip]))
    juju.set_unit_data(rid, evil, csr=csr, **{"tls-addresses": json.dumps([victim_ip])})
    juju.run_hook(units[0], "certificates-relation-joined", rid=rid, remote_unit=evil)
    juju.run_hook(units[0], "certificates-relation-changed", rid=rid, remote_unit=evil)
    juju.settle()
    assert evil not in json.loads(juju.app_bag(rid).get("certificates", "{}"))
    rejection = json.loads(juju.app_bag(rid)["rejections"])[evil]
    assert rejection["reason"].startswith("name-taken")
    assert any("refused the CSR of" in m for _, m in juju.logs(units[0]))
    newcomer = juju.add_unit()
    juju.enter(rid, newcomer)
    juju.settle()
    assert_unit_has_valid_certificate(juju, newcomer)


def test_the_refused_unit_shows_why(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2,
                              config={"tls_extra_sans": ""})
    # unit 1 claims, through the legacy extra_sans list, the leader's host name
    with juju.hook_context(units[1], "config-changed"):
        from charmhelpers.core import unitdata

        unitdata.kv().set("extra_sans", ["host-tls-0.lxd"])
    juju.run_hook(units[1], "config-changed")
    juju.settle()
    state, message = juju.status(units[1])
    assert state == "blocked"
    assert message.startswith("certificate request refused: name-taken: host-tls-0.lxd")
    assert message.endswith(f"host-tls-0.lxd is held by {units[0]}")  # the holder is named
    assert installed(juju, units[1])[0]  # the old certificate is still installed


def test_a_crash_between_key_and_certificate_files_is_repaired(tmp_path, secrets, hostnames,
                                                                 monkeypatch):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    unit = units[1]
    cert_file = charm_file(juju, unit, "tls/server.crt")
    key_file = charm_file(juju, unit, "tls/server.key")
    good = (cert_file.read_text(), key_file.read_text())
    # A rotation starts: a new key and CSR; the leader signs, the unit installs and crashes.
    juju.run_hook(unit, "update-status", call=_rotate)
    real = storage.write_file_atomic
    def crash_after_key(path, data, mode, owner=storage.NO_OWNER):
        real(path, data, mode, owner)
        if path.endswith("server.key"):
            raise OSError("disk unplugged")

    monkeypatch.setattr(storage, "write_file_atomic", crash_after_key)
    runs = []
    while juju.pending:
        event = juju.pending.pop(0)
        runs.append(juju.run_hook(event[0], event[1], rid=event[2], remote_unit=event[3],
                                  check=False))
    assert any(not r.ok and r.unit == unit for r in runs)
    assert key_file.read_text() != good[1]  # the new key reached the disk, its cert did not
    monkeypatch.setattr(storage, "write_file_atomic", real)
    juju.run_hook(unit, "update-status")
    juju.settle()
    cert = assert_unit_has_valid_certificate(juju, unit)
    key = pki.load_private_key(key_file.read_text())
    assert pki.certificate_matches_key(pki.load_certificates(cert_file.read_text())[0], key)
    assert cert_file.read_text().startswith(pki.certificate_to_pem(cert))
    assert cert_file.read_text() != good[0]


def _rotate():
    from charms.layer.tls import settings, unit
    from charms.reactive import endpoint_from_name

    unit.request_certificate(endpoint_from_name("certificates"), settings.load(), new_key=True)


def test_tlslib_on_a_non_leader(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    unit = units[1]
    out = tmp_path / "out"
    with juju.hook_context(unit, "update-status"):
        import tlslib

        assert tlslib.server_cert(None, str(out / "server.crt"))
        assert tlslib.server_key(None, str(out / "server.key"))
        assert tlslib.client_cert(None, str(out / "client.crt"))
        assert tlslib.client_key(None, str(out / "client.key"))
        assert tlslib.ca(None, str(out / "ca.crt"))
        assert not tlslib.ca(str(tmp_path / "missing.crt"), str(out / "other.crt"))
        tlslib.chown(str(out / "ca.crt"), None, None)
    cert_pem, bundle = installed(juju, unit)
    assert (out / "server.crt").read_text() == cert_pem == (out / "client.crt").read_text()
    assert (out / "ca.crt").read_text() == bundle
    assert stat.S_IMODE((out / "server.key").stat().st_mode) == 0o600
    key = pki.load_private_key((out / "client.key").read_bytes())
    assert pki.certificate_matches_key(pki.load_certificate(cert_pem), key)


def test_a_bad_lifetime_config_blocks(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=1,
                              config={"tls_certificate_lifetime": 3000})
    assert juju.status(units[0]) == (
        "blocked", "tls_ca_lifetime must be at least twice tls_certificate_lifetime")
    assert installed(juju, units[0]) == (None, None)


def test_the_leader_signs_a_deploy_in_one_batch(tmp_path, secrets, hostnames, monkeypatch):
    """While goal-state still expects units that have not asked, the leader waits: a
    3-unit deploy gets one publication of certificates, not one per arriving CSR."""
    from charmhelpers.core import hookenv

    goal = {"units": {f"tls/{i}": {"status": "active"} for i in range(3)}}
    monkeypatch.setattr(hookenv, "goal_state", lambda: goal)
    juju, rid, units = deploy(tmp_path, secrets, units=3)
    publications = [run for run in juju.history for _, owner, values in run.relation_sets
                    if owner == juju.app and "certificates" in values]
    assert len(publications) == 1, [(r.unit, r.hook) for r in publications]
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)


def test_a_unit_that_never_asks_delays_signing_only_until_update_status(
        tmp_path, secrets, hostnames, monkeypatch):
    from charmhelpers.core import hookenv

    goal = {"units": {f"tls/{i}": {"status": "active"} for i in range(3)}}  # tls/2 never comes
    monkeypatch.setattr(hookenv, "goal_state", lambda: goal)
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    assert installed(juju, units[1]) == (None, None)
    juju.run_hook(units[0], "update-status")
    juju.settle()
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)


def test_an_expired_stored_ca_is_replaced_through_a_rollover(tmp_path, secrets, hostnames):
    """The stored CA expired (no rollover finished in time): the leader makes a new CA,
    published in front of the expired one, reissues every certificate from it and drops
    the expired one; a unit added meanwhile is served. A CA not valid yet (this unit's
    clock is behind) still blocks: a new CA would not help the other units."""
    juju, rid, units = deploy(tmp_path, secrets, units=2)
    expired = pki.create_ca("old CA", lifetime_days=1,
                            now=pki.utcnow() - datetime.timedelta(days=3))
    secrets.committed[ca_store.SECRET_LABEL] = {
        "certificate": pki.certificate_to_pem(expired.certificate),
        "private-key": pki.private_key_to_pem(expired.private_key).decode()}
    newcomer = juju.add_unit()
    juju.enter(rid, newcomer)
    juju.run_hook(units[0], "update-status")
    state, message = juju.status(units[0])
    assert state == "active" and "the stored CA expired on " in message
    assert "a new CA replaces it" in message
    juju.settle()
    final = juju.app_bag(rid)["ca-bundle"]
    assert final.count("BEGIN CERTIFICATE") == 1
    assert pki.load_certificate(final).subject != expired.certificate.subject
    for unit in units + [newcomer]:
        assert_unit_has_valid_certificate(juju, unit)
        assert juju.status(unit)[0] == "active"
    future = pki.create_ca("future CA", now=pki.utcnow() + datetime.timedelta(days=3))
    secrets.committed[ca_store.SECRET_LABEL] = {
        "certificate": pki.certificate_to_pem(future.certificate),
        "private-key": pki.private_key_to_pem(future.private_key).decode()}
    assert run_action(juju, units[0], "rotate-ca").action_failed.startswith(
        "the stored CA cannot sign: it is valid from")


def test_a_refusal_is_retried_once_the_name_is_free(tmp_path, secrets, hostnames):
    """name-taken depends on the other units: when the holder leaves, the refused CSR is
    looked at again and signed (the refusal memory covers what it depended on)."""
    juju, rid, units = deploy(tmp_path, secrets, units=3)
    late = juju.add_unit()
    juju.enter(rid, late, hooks=False)
    holder_ip = juju.units[units[2]].address
    key = pki.generate_private_key()
    csr = pki.csr_to_pem(pki.build_csr(key, "x", ip_addresses=[holder_ip]))
    juju.set_unit_data(rid, late, csr=csr, **{"tls-addresses": json.dumps([holder_ip])})
    juju.run_hook(units[0], "certificates-relation-joined", rid=rid, remote_unit=late)
    juju.run_hook(units[0], "certificates-relation-changed", rid=rid, remote_unit=late)
    juju.settle()
    assert late not in json.loads(juju.app_bag(rid)["certificates"])
    juju.leave(rid, units[2])  # the holder of that address goes away
    juju.settle()
    juju.run_hook(units[0], "update-status")
    juju.settle()
    cert = pki.load_certificate(json.loads(juju.app_bag(rid)["certificates"])[late])
    assert pki.certificate_names(cert)[1] == [holder_ip]
