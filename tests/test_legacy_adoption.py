"""Upgrading from the legacy easy-rsa layer:tls, in the in-memory harness: a deployment laid
out on disk (by the real easy-rsa), in relation data, unitdata and leader settings as the
legacy layer left it, then upgrade-charm on every unit."""
import datetime
import pathlib
import time

import pytest
from charms.layer.tls import legacy, pki, storage
from legacy_pki import LegacyUnit, copy_legacy_dirs, make_legacy_pki, unavailable_reason
from test_layer_lifecycle import pairwise_trust_problems
from tls_harness import (
    TlsJuju,
    assert_unit_has_valid_certificate,
    installed,
    signing_ca,
    unit_host,
)

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=str(unavailable_reason()))

UNITS = ["tls/0", "tls/1", "tls/2"]
_PKI_CACHE = {}


def _units(dirs):
    return [LegacyUnit(u, pathlib.Path(dirs[u]), f"10.0.0.{10 + i}",
                       unit_host(u)) for i, u in enumerate(UNITS)]


@pytest.fixture(scope="module")
def legacy_pkis(tmp_path_factory):
    """Legacy PKIs made once per module (easy-rsa costs about 0.3 s per RSA key); each test
    copies the easy-rsa trees into its own units' charm dirs."""

    def get(**kw):
        key = tuple(sorted((k, tuple(sorted(v.items())) if isinstance(v, dict) else v)
                           for k, v in kw.items()))
        if key not in _PKI_CACHE:
            root = tmp_path_factory.mktemp("legacy-pki")
            dirs = {u: root / u.replace("/", "-") for u in UNITS}
            _PKI_CACHE[key] = (make_legacy_pki(_units(dirs), UNITS[0], **kw), dirs)
        return _PKI_CACHE[key]

    yield get
    _PKI_CACHE.clear()


def legacy_deployment(tmp_path, secrets, legacy_pkis, *, lose_ca_key=False, **kw):
    """Three units of the new charm that have run no hook yet, with the legacy layer's
    state: easy-rsa trees, unit bags, unitdata, flags, leader setting."""
    state, source_dirs = legacy_pkis(**kw)
    juju = TlsJuju(tmp_path, secrets)
    for unit in UNITS:
        juju.add_unit(unit)
    juju.set_leader(UNITS[0])
    rid = juju.add_peer_relation()
    for unit in UNITS:
        juju.enter(rid, unit, hooks=False)
    copy_legacy_dirs(source_dirs, {u: juju.units[u].charm_dir for u in UNITS})
    if lose_ca_key:
        (juju.units[UNITS[0]].charm_dir / legacy.LEGACY_PKI_DIR / "private" / "ca.key").unlink()
    for unit, values in state.relation_data().items():
        juju.set_unit_data(rid, unit, **values)
    for unit in UNITS:
        kv = juju.kv(unit)
        for key, value in state.unitdata(unit).items():
            kv.set(key, value)
        for flag in state.flags(unit):
            kv.set("reactive.states." + flag, None)
        kv.flush()
    juju.leader_settings["certificate_authority"] = state.ca_certificate
    return juju, rid, state


def upgrade(juju, order=UNITS):
    """juju upgrade-charm: upgrade-charm then config-changed on each unit, then settle."""
    for unit in order:
        juju.run_hook(unit, "upgrade-charm")
        juju.run_hook(unit, "config-changed")
    juju.settle()


def fingerprint(pem):
    if "PRIVATE KEY" in pem:
        return pki.public_key_fingerprint(pki.load_private_key(pem))
    return pki.public_key_fingerprint(pki.load_certificate(legacy.certificate_block(pem))
                                      .public_key())


def same_certificate(a, b):
    return (pki.load_certificate(legacy.certificate_block(a))
            == pki.load_certificate(legacy.certificate_block(b)))


def key_of(juju, unit):
    return juju.kv(unit).get(storage.INSTALLED_KEY)


@pytest.mark.parametrize("order", [UNITS, UNITS[::-1]], ids=["leader-first", "leader-last"])
def test_upgrade_keeps_the_ca_keys_and_certificates(tmp_path, secrets, hostnames, legacy_pkis,
                                                    order):
    juju, rid, state = legacy_deployment(tmp_path, secrets, legacy_pkis)
    upgrade(juju, order)
    bundle = pki.load_certificates(juju.app_bag(rid)["ca-bundle"])
    old_ca = pki.load_certificate(state.ca_certificate)
    assert len(bundle) == 1
    ca = bundle[0]
    # The same CA: same key, name, serial and key id, re-certified with critical
    # basicConstraints (easy-rsa's is not critical, which RFC 5280 verifiers refuse).
    assert pki.public_key_fingerprint(ca.public_key()) == pki.public_key_fingerprint(
        old_ca.public_key())
    assert (ca.subject, ca.serial_number) == (old_ca.subject, old_ca.serial_number)
    assert pki.subject_key_id(ca) == pki.subject_key_id(old_ca)
    assert juju.leader_settings["certificate_authority"] == pki.certificate_to_pem(ca)
    for unit in UNITS:
        cert = assert_unit_has_valid_certificate(juju, unit)
        assert same_certificate(installed(juju, unit)[0], state.certificates[unit]), \
            f"{unit} got a new certificate"
        assert fingerprint(key_of(juju, unit)) == fingerprint(state.keys[unit])
        assert cert.serial_number == pki.load_certificate(
            legacy.certificate_block(state.certificates[unit])).serial_number
        # New-style files and the legacy unitdata key carry the kept certificate.
        assert (juju.units[unit].charm_dir / "tls" / "server.key").read_text() == \
            key_of(juju, unit)
        assert juju.kv(unit).get("tls.server.certificate") == installed(juju, unit)[0]
        assert juju.flag_set(unit, "tls.legacy.adopted")
        assert juju.status(unit)[0] == "active", juju.status(unit)
    assert not pairwise_trust_problems(juju, UNITS)
    # Nothing more happens: the adoption does not run again, nothing is re-signed.
    before = {u: installed(juju, u) for u in UNITS}
    for unit in UNITS:
        juju.run_hook(unit, "update-status")
    juju.settle()
    assert {u: installed(juju, u) for u in UNITS} == before
    # A certificate signed now by the adopted CA verifies against the legacy CA file that
    # legacy peers still hold (same key and name): checked with the openssl CLI.
    _openssl_verifies(tmp_path, state.ca_certificate, installed(juju, UNITS[1])[0])


def _openssl_verifies(tmp_path, ca_pem, cert_pem, chain_pem=""):
    import subprocess

    (tmp_path / "ca.pem").write_text(ca_pem)
    (tmp_path / "leaf.pem").write_text(cert_pem)
    (tmp_path / "chain.pem").write_text(chain_pem)
    untrusted = ["-untrusted", str(tmp_path / "chain.pem")] if chain_pem else []
    done = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"),
                           *untrusted, str(tmp_path / "leaf.pem")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_server_only_legacy_certificates_are_reissued_with_the_same_keys_and_ca(
        tmp_path, secrets, hostnames, legacy_pkis):
    """Without tls.client.authorization.required the legacy certificates were serverAuth
    only; every certificate of this layer is a client certificate too, so each unit gets
    one from the same CA for the same key (peers keep trusting it throughout)."""
    juju, rid, state = legacy_deployment(tmp_path, secrets, legacy_pkis, client_auth=False)
    upgrade(juju)
    ca = pki.load_certificates(juju.app_bag(rid)["ca-bundle"])
    assert len(ca) == 1 and pki.public_key_fingerprint(ca[0].public_key()) == \
        fingerprint(state.ca_certificate)
    for unit in UNITS:
        assert_unit_has_valid_certificate(juju, unit)
        assert not same_certificate(installed(juju, unit)[0], state.certificates[unit])
        assert fingerprint(key_of(juju, unit)) == fingerprint(state.keys[unit])
        # the legacy certificate still verifies against the bundle every unit installed
        pki.verify_certificate(pki.load_certificate(legacy.certificate_block(
            state.certificates[unit])), ca, dns_name=unit_host(unit))


def test_lost_ca_key_rolls_over_to_a_new_ca_keeping_trust(tmp_path, secrets, hostnames,
                                                          legacy_pkis):
    """The legacy CA key is gone (lost on a legacy leader change): a new CA, the old CA
    certificate kept in the bundle behind it while units move over, then dropped; the
    units keep their keys; trust between installed certificates at every hook; and the
    certificates the workloads still use until then stay trusted (openssl, as they use it)."""
    juju, rid, state = legacy_deployment(tmp_path, secrets, legacy_pkis, lose_ca_key=True)
    old_fp = fingerprint(state.ca_certificate)
    seen_bundles = set()
    for unit in UNITS:
        juju.run_hook(unit, "upgrade-charm")
        juju.run_hook(unit, "config-changed")
        _check_transition(juju, rid, state, seen_bundles, tmp_path)
    hooks = 0
    while juju.pending:
        unit, hook, prid, remote = juju.pending.pop(0)
        juju.run_hook(unit, hook, rid=prid, remote_unit=remote)
        hooks += 1
        assert hooks < 300
        _check_transition(juju, rid, state, seen_bundles, tmp_path)
    assert 2 in seen_bundles, "the old CA was kept in the bundle during the transition"
    bundle = pki.load_certificates(juju.app_bag(rid)["ca-bundle"])
    assert len(bundle) == 1 and pki.public_key_fingerprint(bundle[0].public_key()) != old_fp
    for unit in UNITS:
        cert = assert_unit_has_valid_certificate(juju, unit)
        # issued by the new CA: the intermediate under the new root
        assert pki.authority_key_id(cert) == pki.subject_key_id(signing_ca(juju, rid))
        assert fingerprint(key_of(juju, unit)) == fingerprint(state.keys[unit])
        assert installed(juju, unit)[1] == pki.certificate_to_pem(bundle[0])


def _check_transition(juju, rid, state, seen_bundles, tmp_path):
    bundle = juju.app_bag(rid).get("ca-bundle")
    if bundle:
        seen_bundles.add(bundle.count("BEGIN CERTIFICATE"))
    problems = pairwise_trust_problems(juju, UNITS)
    assert not problems, problems
    # What each workload uses now: the layer's certificate once installed, else the legacy
    # one. Every unit that installed the layer's bundle trusts all of them (the old CA
    # stays in the bundle while any unit may still use a legacy certificate). A unit that
    # has not run a hook since the leader adopted still trusts only the legacy CA: that
    # window is not covered (see the report: the leader signs at once with the new CA).
    for owner in UNITS:
        cert_pem = installed(juju, owner)[0] or state.certificates[owner]
        chain_pem = (juju.kv(owner).get(storage.INSTALLED_CHAIN) or ""
                     if installed(juju, owner)[0] else "")
        for peer in UNITS:
            if installed(juju, peer)[1]:
                _openssl_verifies(tmp_path, installed(juju, peer)[1],
                                  legacy.certificate_block(cert_pem), chain_pem)


def test_an_expired_legacy_certificate_is_replaced(tmp_path, secrets, hostnames, legacy_pkis,
                                                   monkeypatch):
    juju, rid, state = legacy_deployment(tmp_path, secrets, legacy_pkis,
                                         days={"tls/2": 1})
    later = pki.utcnow() + datetime.timedelta(days=2)
    monkeypatch.setattr(pki, "utcnow", lambda: later)
    monkeypatch.setattr(time, "time", lambda: later.timestamp())
    upgrade(juju)
    for unit in UNITS:
        cert_pem = installed(juju, unit)[0]
        pki.verify_certificate(pki.load_certificate(cert_pem),
                               pki.load_certificates(installed(juju, unit)[1]),
                               purpose="client", now=later)
        assert fingerprint(key_of(juju, unit)) == fingerprint(state.keys[unit])
        kept = same_certificate(cert_pem, state.certificates[unit])
        assert kept == (unit != "tls/2"), unit
    assert pki.load_certificate(installed(juju, "tls/2")[0]).not_valid_after_utc > later


def test_a_missing_unit_key_means_a_new_key(tmp_path, secrets, hostnames, legacy_pkis):
    juju, rid, state = legacy_deployment(tmp_path, secrets, legacy_pkis)
    (juju.units["tls/1"].charm_dir / legacy.LEGACY_PKI_DIR / "private" / "tls_1.key").unlink()
    upgrade(juju)
    for unit in UNITS:
        assert_unit_has_valid_certificate(juju, unit)
    assert fingerprint(key_of(juju, "tls/1")) != fingerprint(state.keys["tls/1"])
    assert fingerprint(key_of(juju, "tls/2")) == fingerprint(state.keys["tls/2"])
    assert same_certificate(installed(juju, "tls/2")[0], state.certificates["tls/2"])


def test_no_legacy_pki_nothing_happens(tmp_path, secrets, hostnames):
    from tls_harness import deploy

    juju, rid, units = deploy(tmp_path, secrets)
    for unit in units:
        assert juju.flag_set(unit, "tls.legacy.adopted")
        assert juju.kv(unit).get(legacy.UNIT_DONE) is None
        assert not any("legacy PKI" in message for _, message in juju.logs(unit))
    # and the check is no more than a flag test afterwards
    juju.run_hook(units[0], "upgrade-charm")
    assert not any("legacy PKI" in message for _, message in juju.logs(units[0]))


def test_reading_the_legacy_files_tolerates_missing_pieces(tmp_path):
    assert legacy.find_pki_dir(str(tmp_path)) is None
    pki_dir = tmp_path / legacy.LEGACY_PKI_DIR
    pki_dir.mkdir(parents=True)
    assert legacy.find_pki_dir(str(tmp_path)) == str(pki_dir)
    files = legacy.read_pki(str(pki_dir))
    assert files == legacy.LegacyFiles(None, None, {}, {}, {})
    (pki_dir / "private").mkdir()
    (pki_dir / "private" / "ca.key").write_text("not a key")
    (pki_dir / "private" / "tls_1.key").write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n")
    files = legacy.read_pki(str(pki_dir))
    assert files.ca_key == "not a key" and "ca" not in files.keys
    assert "garbage" not in repr(files) and "not a key" not in repr(files)
    assert legacy.find_unit_key(files, ["tls_1"], []) is None
    assert legacy.unit_of_file("tls_12", "tls") == "tls/12"
    assert legacy.unit_of_file("client", "tls") is None
    assert legacy.unit_of_file("other_1", "tls") is None
    assert legacy.certificate_block("Certificate:\n  text\n") is None
