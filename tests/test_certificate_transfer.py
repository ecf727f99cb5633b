"""The certificate_transfer provider (interface-certificate-transfer + layer:tls's
transfer module) on the real charms.reactive, in the in-memory harness: what the leader
and the other units write for v1 and v0 requirers, during a CA rollover, when the
relation goes away, and with hostile requirer data."""
import json

import pytest
import yaml
from charms.layer.tls import pki, transfer
from tls_harness import PRIVATE_KEY_MARK, all_published_text, installed, installed_chain, run_action
from transfer_harness import (
    CLIENT,
    ENDPOINT,
    V0_KEYS,
    ca_bundle,
    deploy_with_transfer,
    provides,
    relate,
    requirer_says,
    sent_v1,
)


def test_leader_sends_v1_sorted_and_no_unit_writes_v0(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    trid = relate(juju, units, version="1")
    certificates = sent_v1(juju, trid)
    assert certificates == sorted(ca_bundle(juju, rid)) and len(certificates) == 1
    assert set(juju.app_bag(trid)) == {"certificates", "version"}
    for unit in units:
        assert not set(V0_KEYS) & set(juju.unit_bag(trid, unit)), unit
    # only the leader wrote the app bag
    app_writers = {run.unit for run in juju.history for (r, owner, _) in run.relation_sets
                   if r == trid and owner == juju.app}
    assert app_writers == {units[0]}


def test_a_requirer_without_version_1_gets_v0_in_every_unit_bag(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    trid = relate(juju, units, version=None)
    bundle = ca_bundle(juju, rid)
    for unit in units:
        bag = juju.unit_bag(trid, unit)
        assert json.loads(bag["ca"]) == bundle[0] == json.loads(bag["certificate"])
        assert json.loads(bag["chain"]) == sorted(bundle)
        assert bag["version"] == "0"
    # the app bag holds v1 too (the library does the same for such a requirer)
    assert sent_v1(juju, trid) == sorted(bundle)
    # the requirer upgrades and says version 1: the v0 keys leave the unit bags
    requirer_says(juju, trid, units, version="1")
    for unit in units:
        assert not set(V0_KEYS) & set(juju.unit_bag(trid, unit)), unit
    assert sent_v1(juju, trid) == sorted(bundle)


@pytest.mark.parametrize("version", ["2", "x" * 100_000, "{\"a\": [[[", "1.0", " ", "null"])
def test_hostile_requirer_version_is_v0_and_never_fails_a_hook(tmp_path, secrets, hostnames,
                                                               version):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets, units=2)
    trid = relate(juju, units, version="1")
    runs = requirer_says(juju, trid, units, version=version, junk="[" * 50_000)
    assert all(run.ok for run in runs)
    for unit in units:
        assert json.loads(juju.unit_bag(trid, unit)["chain"]) == sorted(ca_bundle(juju, rid))
    if version.strip():
        warned = [m for lvl, m in juju.logs(units[1]) if lvl == "WARNING"
                  and "certificate_transfer" in m and "version" in m]
        assert warned and all(len(m) < 300 for m in warned)


def test_the_version_parser_is_strict_and_bounded():
    assert provides.parse_version("1") == (1, None)
    assert provides.parse_version('"1"') == (1, None)
    assert provides.parse_version(None) == (0, None)
    assert provides.parse_version("2")[0] == 0
    assert provides.parse_version("1" * 65)[0] == 0
    assert provides.parse_version(1)[0] == 0


def test_a_ca_rollover_sends_both_cas_before_any_unit_switches(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    v1 = relate(juju, units, version="1")
    v0 = relate(juju, units, version=None, clients=("legacy/0",))
    old = ca_bundle(juju, rid)
    run = run_action(juju, units[0], "rotate-ca")
    assert run.action_failed is None
    both = ca_bundle(juju, rid)
    assert len(both) == 2 and set(old) < set(both)
    assert sent_v1(juju, v1) == sorted(both), "sent by the rotate-ca action itself"
    saw_new_certificate = False
    hooks = 0
    while juju.pending:
        unit, hook, prid, remote = juju.pending.pop(0)
        if prid not in juju.relations or unit not in juju.relations[prid].members:
            continue
        juju.run_hook(unit, hook, rid=prid, remote_unit=remote)
        hooks += 1
        assert hooks < 300
        trusted = set(sent_v1(juju, v1))
        for member in units:
            cert_pem = installed(juju, member)[0]
            # the root the unit's certificate chains to: the issuer of the top of what
            # it presents (its intermediate, or the certificate under a self-signed CA)
            issuer = (installed_chain(juju, member)
                      or [pki.load_certificate(cert_pem)])[-1].issuer
            # every certificate a unit uses is from a CA every requirer was sent
            assert any(pki.load_certificate(ca).subject == issuer for ca in trusted), member
            v0_chain = set(json.loads(juju.unit_bag(v0, member)["chain"]))
            assert any(pki.load_certificate(ca).subject == issuer for ca in v0_chain), member
            if issuer != pki.load_certificate(old[0]).subject:
                saw_new_certificate = True
    assert saw_new_certificate
    final = ca_bundle(juju, rid)
    assert len(final) == 1 and final[0] != old[0]
    assert sent_v1(juju, v1) == final, "the old CA is withdrawn once no unit uses it"
    for unit in units:
        assert json.loads(juju.unit_bag(v0, unit)["chain"]) == final


def test_a_quiet_hook_writes_nothing_on_the_transfer_relation(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    trid = relate(juju, units, version=None)
    asked = []
    for unit in units:
        run = juju.run_hook(unit, "update-status")
        asked += run.relation_reads()  # (rid, owner, app bag?) of each relation-get
        assert run.relation_sets == [] and run.ok
        assert juju.kv(unit).get(transfer.SENT).keys() == {trid}
    # the requirer's version comes from unitdata on a quiet hook: its app bag is not read
    assert not [a for a in asked if a[1] == CLIENT and a[2]], asked
    run = juju.run_hook(units[1], f"{ENDPOINT}-relation-changed", rid=trid,
                        remote_unit=f"{CLIENT}/0")
    asked += run.relation_reads()
    assert [a for a in asked if a[1] == CLIENT and a[2]], "read again in the endpoint's own hook"


def test_the_relation_broken_leaves_nothing_behind(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    trid = relate(juju, units, version="1")
    other = relate(juju, units, version=None, clients=("legacy/0",))
    juju.remove_relation(trid)
    for unit in units:
        assert all(run.ok for run in juju.history if run.unit == unit)
        assert set(juju.kv(unit).get(transfer.SENT)) == {other}
        assert set(juju.kv(unit).get(transfer.VERSIONS)) == {other}
        run = juju.run_hook(unit, "update-status")
        assert run.relation_sets == []


def test_a_departing_requirer_unit_and_a_new_one(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets, units=2)
    trid = relate(juju, units, version="1", clients=(f"{CLIENT}/0", f"{CLIENT}/1"))
    rel = juju.relations[trid]
    rel.remote_units.remove(f"{CLIENT}/1")
    for unit in units:
        run = juju.run_hook(unit, f"{ENDPOINT}-relation-departed", rid=trid,
                            remote_unit=f"{CLIENT}/1", departing_unit=f"{CLIENT}/1")
        assert run.ok and run.relation_sets == []
    assert sent_v1(juju, trid) == sorted(ca_bundle(juju, rid))


def test_a_new_leader_keeps_sending_and_the_old_one_writes_no_app_data(tmp_path, secrets,
                                                                       hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    trid = relate(juju, units, version="1")
    before = juju.app_bag(trid)
    juju.set_leader(units[1])
    juju.run_hook(units[1], "leader-elected")
    juju.run_hook(units[0], "leader-settings-changed")
    juju.settle()
    assert juju.app_bag(trid) == before
    run = run_action(juju, units[1], "rotate-ca")
    assert run.action_failed is None
    assert len(sent_v1(juju, trid)) == 2


def test_no_private_key_in_any_bag_and_an_injected_one_is_dropped(tmp_path, secrets,
                                                                  hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets)
    v1 = relate(juju, units, version="1")
    v0 = relate(juju, units, version=None, clients=("legacy/0",))
    for trid in (rid, v1, v0):
        assert PRIVATE_KEY_MARK not in all_published_text(juju, trid)
    key_pem = pki.private_key_to_pem(pki.generate_private_key("ecdsa-p256")).decode()
    cert = ca_bundle(juju, rid)[0]
    assert provides.split_certificates(key_pem + cert + cert) == [cert]
    disguised = cert.replace("-----END CERTIFICATE-----",
                             key_pem + "-----END CERTIFICATE-----")
    assert provides.split_certificates(disguised) == []


def test_an_empty_option_sends_nothing_and_another_endpoint_can_be_named(tmp_path, secrets,
                                                                         hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets, units=1,
                                            options={"transfer_endpoint": ""})
    trid = relate(juju, units, version="1")
    assert juju.app_bag(trid) == {}
    (tmp_path / "b").mkdir()
    juju2, rid2, units2 = deploy_with_transfer(tmp_path / "b", secrets, units=1,
                                               options={"transfer_endpoint": "other-trust"})
    ignored = relate(juju2, units2, version="1")
    used = relate(juju2, units2, version="1", endpoint="other-trust")
    assert juju2.app_bag(ignored) == {}
    assert sent_v1(juju2, used) == ca_bundle(juju2, rid2)


def test_an_option_naming_another_kind_of_endpoint_fails_no_hook(tmp_path, secrets, hostnames):
    juju, rid, units = deploy_with_transfer(tmp_path, secrets, units=2,
                                            options={"transfer_endpoint": "certificates"})
    trid = relate(juju, units, version="1")
    assert all(run.ok for run in juju.history)
    assert juju.app_bag(trid) == {}
    assert any(level == "ERROR" and "not a certificate_transfer provides endpoint" in message
               for level, message in juju.logs(units[0]))


@pytest.mark.model
def test_the_built_demo_charm_offers_send_ca_cert(demo_charm):
    """charm build merges layer:tls's endpoint and the interface into the charm."""
    meta = yaml.safe_load((demo_charm / "metadata.yaml").read_text())
    assert meta["provides"][ENDPOINT] == {"interface": "certificate_transfer"}
    assert (demo_charm / "hooks" / "relations" / "certificate_transfer" / "provides.py").is_file()
    for hook in ("created", "joined", "changed", "departed", "broken"):
        assert (demo_charm / "hooks" / f"{ENDPOINT}-relation-{hook}").is_file(), hook
    options = yaml.safe_load((demo_charm / "layer.yaml").read_text())["options"]["tls"]
    assert options["transfer_endpoint"] == ENDPOINT
