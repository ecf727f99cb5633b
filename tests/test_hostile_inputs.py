"""Hostile relation data, bad config and tampered files, fast (issue 11, items 1, 4, 8, 10).

Hypothesis writes any value (deep nesting, huge strings, wrong shapes) into a peer's unit
bag and into the application bag, then the leader runs a hook and every reader of peer
data in the interface and the layer is called: none may raise. The model scenarios are in
test_model_hostile_inputs.py.
"""
import datetime
import errno
import json
import os

import pytest
from charms.layer.tls import ca_store, leader, legacy, pki, sans, settings, signer, status, storage
from charms.layer.tls import unit as tls_unit
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from tls_harness import deploy, run_action

FUZZ = hsettings(max_examples=40, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large])

_json_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
              | st.text(max_size=40))
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                     max_leaves=25)
HOSTILE = st.one_of(
    st.text(max_size=300),
    _json.map(json.dumps),
    st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 100_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(900, 1100).map(lambda n: "[" * n + '"x"' + "]" * n),  # near the C limit
    st.integers(0, 300_000).map(lambda n: "x" * n),
    st.lists(st.text(max_size=300), max_size=40).map(json.dumps),
    st.integers(1, 30_000).map(lambda n: json.dumps([f"h{i}.example" for i in range(n)])),
    st.dictionaries(st.sampled_from(["ca-bundle", "certificate", "csr-sha256", "reason"]),
                    _json, max_size=3).map(json.dumps),
    st.lists(st.fixed_dictionaries({}, optional={
        k: _json | st.sampled_from(["ab12", "tls/1", 1e300, -1, 2 ** 70])
        for k in ("serial", "unit", "reason", "date", "issuer", "not-after")}),
        max_size=5).map(json.dumps),
    st.dictionaries(st.sampled_from(["ab12", "", "ZZ", "a" * 200]),
                    st.sampled_from(["-----BEGIN X509 CRL-----\nMIIjunk\n-----END X509 CRL-----\n",
                                     "x", ""]), max_size=3).map(json.dumps),
    st.sampled_from(["-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 70_000
                     + "\n-----END CERTIFICATE REQUEST-----\n",
                     "-----BEGIN CERTIFICATE-----\nMIIjunk\n-----END CERTIFICATE-----\n",
                     "junk -----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
                     "-----BEGIN CERTIFICATE REQUEST-----\nMIIRno end"]),
)
PEER_KEYS = ["csr", "tls-hostnames", "tls-addresses", "tls-installed", "private-address",
             "ingress-address", "tls/0_signed_certificate", "tls/2_signed_certificate"]
APP_KEYS = ["certificates", "signed-csrs", "rejections", "ca-bundle", "barred", "revoked",
            "crl", "ca-intermediates"]


def _read_everything(ca):
    """Every reader of peer data, interface and layer; returns a summary of types."""
    from charms.reactive import endpoint_from_name

    tls = endpoint_from_name("certificates")
    units = [tls.local_unit_name] + tls.peer_units()
    claims = {u: tls.unit_claims(u) for u in units}
    for value in claims.values():
        assert all(isinstance(n, str) and len(n) <= 253
                   for n in value["hostnames"] + value["addresses"])
    pending = tls.pending_csrs()
    issued = tls.get_certificates()
    for reader in (tls.get_csr_map, tls.rejected_csrs, tls.get_rejection, tls.installed_acks,
                   tls.get_signed_csrs, tls.get_signed_cert, tls.signed_cert_is_current,
                   tls.departed_units, tls.get_ca_bundle, tls.legacy_certificates,
                   tls.own_csr, tls.get_barred, tls.get_revoked, tls.get_crls,
                   tls.get_ca_intermediates):
        reader()
    for record in tls.get_revoked():
        int(record["serial"], 16)  # what the leader and the units do with a record
    tls_unit._verified_crls(pki.certificate_to_pem(ca.anchor), tls.get_crls(),
                            tls.get_ca_intermediates())
    tls_unit._check_received(tls.get_signed_cert() or "", tls.get_ca_bundle() or "",
                             None, tls.get_ca_intermediates())
    signer.sign_batch(ca, pending, claims, issued, ["shared.example"], lifetime_days=1)
    leader._input_digest("csr", claims[units[-1]], "context", settings.load())
    leader.rollover_due(tls)
    leader._untrusting(tls)
    status.compute(tls, True, None)
    candidates = legacy.relation_certificates()
    legacy.choose_certificates(candidates, tls.get_csr_map(), pki.certificate_to_pem(
        ca.certificate))
    return sorted(claims)


@FUZZ
@given(peer=st.dictionaries(st.sampled_from(PEER_KEYS), HOSTILE, max_size=4),
       app=st.dictionaries(st.sampled_from(APP_KEYS), HOSTILE, max_size=2))
def test_no_peer_or_app_value_raises_out_of_a_hook(tmp_path, secrets, hostnames, peer, app):
    if not hasattr(test_no_peer_or_app_value_raises_out_of_a_hook, "model"):
        test_no_peer_or_app_value_raises_out_of_a_hook.model = deploy(tmp_path, secrets)
    juju, rid, units = test_no_peer_or_app_value_raises_out_of_a_hook.model
    ca = _ca_of(secrets)
    juju.set_unit_data(rid, units[2], **peer)
    juju.set_app_data(rid, **app)
    for unit, hook, remote in ((units[0], "certificates-relation-changed", units[2]),
                               (units[1], "certificates-relation-changed", units[2]),
                               (units[0], "update-status", None)):
        run = juju.run_hook(unit, hook, rid=rid if remote else None, remote_unit=remote,
                            call=lambda: _read_everything(ca))
        assert run.ok
        assert all("PRIVATE KEY" not in message and "MII" not in message
                   for _, message in run.logs), run.logs
    # put the peer back, as the unit itself would on its next CSR
    juju.set_unit_data(rid, units[2], **{key: None for key in peer})


def _ca_of(secrets):
    content = secrets.committed[ca_store.SECRET_LABEL]
    return pki.CertificateAuthority(pki.load_certificate(content["certificate"]),
                                    pki.load_private_key(content["private-key"]),
                                    pki.load_certificates(content["chain"]))


@pytest.mark.parametrize("chain", ["junk", "foreign root"])
def test_a_ca_secret_with_a_bad_chain_is_replaced_through_a_rollover(
        tmp_path, secrets, hostnames, chain):
    """The secret's ``chain`` field is hostile too (Juju secret values are strings): text
    that is not a PEM chain, or a chain that does not certify the stored CA, makes the
    stored CA unusable, and a new CA replaces it through a rollover (never a crash, never
    a unit left without trust)."""
    from tls_harness import assert_unit_has_valid_certificate, secret_anchor

    juju, rid, units = deploy(tmp_path, secrets)
    bundle = juju.app_bag(rid)["ca-bundle"]
    if chain == "foreign root":
        chain = pki.certificate_to_pem(pki.create_ca("foreign root").certificate)
    secrets.committed[ca_store.SECRET_LABEL] = {
        **secrets.committed[ca_store.SECRET_LABEL], "chain": chain}
    newcomer = juju.add_unit()  # its request makes the leader load the CA to sign it
    juju.enter(rid, newcomer)
    run = juju.run_hook(units[0], "update-status")
    assert run.ok
    state, message = juju.status(units[0])
    assert "the stored CA is unusable" in message or "the stored CA cannot sign" in message
    assert "a new CA replaces it" in message, message
    juju.settle()
    for _ in range(3):
        juju.run_hook(units[0], "update-status")
        juju.settle()
    final = juju.app_bag(rid)["ca-bundle"]
    assert final != bundle and final.count("BEGIN CERTIFICATE") == 1
    assert secret_anchor(secrets.committed[ca_store.SECRET_LABEL]) == final
    for unit in units + [newcomer]:
        assert_unit_has_valid_certificate(juju, unit)


def test_a_deep_tls_hostnames_list_is_ignored_and_named(tmp_path, secrets, hostnames):
    from charms.reactive import endpoint_from_name

    juju, rid, units = deploy(tmp_path, secrets)
    deep = "[" * 30_000 + "]" * 30_000  # under the size bound: parsed, RecursionError
    juju.set_unit_data(rid, units[2], **{"tls-hostnames": deep, "tls-installed": deep})
    run = juju.run_hook(units[0], "update-status", call=lambda: (
        endpoint_from_name("certificates").unit_claims(units[2]),
        endpoint_from_name("certificates").installed_acks()))
    claims, acks = run.result
    assert claims["hostnames"] == [] and "tls-hostnames" in claims["ignored"][0]
    assert units[2] not in acks
    warnings = [m for level, m in run.logs if level == "WARNING"]
    assert any(f"{units[2]} tls-hostnames: not JSON or nested too deeply" in m for m in warnings)
    assert any(f"{units[2]} tls-installed" in m for m in warnings)


@given(claims=st.dictionaries(
    st.sampled_from(["tls/0", "tls/1", "tls/2"]),
    st.fixed_dictionaries({"hostnames": st.lists(st.text(max_size=300), max_size=20),
                           "addresses": st.lists(st.text(max_size=60), max_size=20)},
                          optional={"ignored": st.lists(st.text(max_size=50), max_size=3)}),
    max_size=3),
    shared=st.lists(st.text(max_size=80), max_size=10))
@hsettings(max_examples=100, deadline=None, database=None)
def test_the_signer_never_raises_on_claims(claims, shared):
    ca = _fuzz_ca()
    key = pki.generate_private_key()
    csr = pki.csr_to_pem(pki.build_csr(key, "tls/1", dns_names=["tls-1.example"]))
    result = signer.sign_batch(ca, {"tls/1": csr, "tls/2": "garbage"}, claims, {},
                               shared, lifetime_days=1)
    assert set(result.certificates) | set(result.rejections) == {"tls/1", "tls/2"}


_CA = []


def _fuzz_ca():
    if not _CA:
        _CA.append(pki.create_ca("fuzz CA"))
    return _CA[0]


@given(st.text(max_size=2000))
@hsettings(max_examples=200, deadline=None, database=None)
def test_legacy_readers_never_raise(text):
    legacy.certificate_block(text)
    legacy.names_of(text)
    assert legacy.keepable(text, text, text) is not None


# ------------------------------------------------------------------ item 4: durations


@pytest.mark.parametrize("value", ["4000000d", "36501d", "0.001m", "0.5m", "9" * 13,
                                   "1e9d", "inf", "nan", "99999999999.9d"])
def test_durations_out_of_bounds_are_refused(value):
    with pytest.raises(ValueError):
        settings.parse_duration_days(value)


@pytest.mark.parametrize("value,days", [("1m", 1 / 1440), ("36500d", 36500)])
def test_duration_bounds_are_inclusive(value, days):
    assert settings.parse_duration_days(value) == pytest.approx(days)


def _settings(**config):
    return settings.Settings({}, lambda: config, "/tmp", "app")


@pytest.mark.parametrize("config,named", [
    ({"tls_certificate_lifetime": "4000000d"}, "tls_certificate_lifetime"),
    ({"tls_ca_lifetime": "9000000d"}, "tls_ca_lifetime"),
    ({"tls_ca_lifetime": "garbage"}, "'garbage'"),
    ({"tls_certificate_lifetime": "0.001m"}, "minimum"),
    ({"tls_renew_fraction": "x"}, "tls_renew_fraction"),
    ({"tls_renew_fraction": float("nan")}, "tls_renew_fraction"),
])
def test_bad_lifetimes_are_a_config_problem_naming_the_option(config, named):
    problem = _settings(**config).problem()
    assert problem and named in problem, problem


def test_a_huge_lifetime_is_a_pki_error_not_an_overflow():
    ca = _fuzz_ca()
    key = pki.generate_private_key()
    with pytest.raises(pki.PKIError):
        pki.create_ca("x", lifetime_days=4_000_000)
    # capped by the CA, so not an overflow
    cert = pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=["u.example"],
                                 lifetime_days=4_000_000)
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc
    cert = pki.issue_certificate(ca, key.public_key(), common_name="u",
                                 dns_names=["u.example"], lifetime_days=float("inf"))
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_a_certificate_that_would_be_born_expired_is_refused():
    now = pki.utcnow()
    ca = pki.create_ca("short", lifetime_days=1, now=now - datetime.timedelta(days=1) +
                       datetime.timedelta(seconds=30))  # 30 s of life left
    key = pki.generate_private_key()
    with pytest.raises(pki.PKIError, match="born expired"):
        pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=["u.example"])
    with pytest.raises(pki.PKIError, match="born expired"):
        pki.issue_certificate(_fuzz_ca(), key.public_key(), common_name="u",
                              dns_names=["u.example"], lifetime_days=0.0001)


def test_rotate_ca_with_a_bad_config_fails_in_one_line(tmp_path, secrets, hostnames):
    juju, rid, units = deploy(tmp_path, secrets, units=1)
    for value, named in (("9000000d", "tls_ca_lifetime"), ("garbage", "garbage")):
        juju.set_config(units[0], tls_ca_lifetime=value)
        run = run_action(juju, units[0], "rotate-ca", check=False)
        assert run.action_failed and named in run.action_failed, run.action_failed
        assert "\n" not in run.action_failed
    assert json.loads(juju.app_bag(rid)["certificates"])  # nothing was undone


def test_an_unexpected_action_error_is_one_line(tmp_path, secrets, hostnames, monkeypatch):
    from charms.layer.tls import actions

    juju, rid, units = deploy(tmp_path, secrets, units=1)

    def boom(settings):
        raise OverflowError("date value out of range\nsecond line")

    monkeypatch.setitem(actions.ACTIONS, "show-certificate", boom)
    run = run_action(juju, units[0], "show-certificate", check=False)
    assert run.action_failed == "show-certificate failed: OverflowError: date value out of range"


# ------------------------------------------------------------------ item 8: tls_extra_sans


@pytest.mark.parametrize("entry,reason", [
    ("*.x", "wildcard"), ("10.0.0.0/24", "network"), ("a" * 300 + ".example", "253"),
    ("b" * 64 + ".example", "63"), ("bücher.example", "ASCII"), (".".join("0" * 4), "unspecified"),
    ("::", "unspecified"), ("127.0.0.1", "loopback"), ("localhost", "machine-local"),
    ("224.0.0.1", "multicast"), ("under_score.example", "not a valid DNS name"),
    ("-lead.example", "not a valid DNS name"), ("a/b", "not a DNS name"),
])
def test_a_bad_extra_san_is_named(entry, reason):
    problem = _settings(tls_extra_sans=f"good.example {entry}").problem()
    assert problem and "tls_extra_sans" in problem and reason in problem, problem
    assert repr(entry)[:20] in problem
    assert _settings(tls_extra_sans=f"good.example {entry}").extra_sans == []


def test_good_extra_sans_pass():
    # VIP.Example. and svc are outside the default namespace: the operator permits them
    s = _settings(tls_extra_sans="VIP.Example., 10.0.0.1 fd00::1 svc",
                  tls_permitted_names="auto example svc")
    assert s.problem() is None
    assert s.extra_sans == ["VIP.Example.", "10.0.0.1", "fd00::1", "svc"]


def test_extra_sans_over_the_csr_budget_name_the_entry_and_fit_when_under():
    names = [f"n{i:04d}-{'x' * 50}.example" for i in range(400)]
    problem = sans.extra_sans_problem(names)
    assert problem and "too many names" in problem
    first_out = next(n for n in names if repr(n)[:20] in problem)
    fitting = names[:names.index(first_out)]
    assert sans.extra_sans_problem(fitting) is None
    key = pki.generate_private_key("rsa-4096")
    csr = pki.csr_to_pem(pki.build_csr(key, "app/10", dns_names=fitting + [
        "juju-abcdef-10", "juju-abcdef-10.some.long.domain.example"],
        ip_addresses=["10.0.0.10", "fd00::10"]))
    assert len(csr) < sans.MAX_CSR_BYTES


# ------------------------------------------------------------------ item 10: files


def _paths(tmp_path):
    return storage.Paths(str(tmp_path / "c.crt"), str(tmp_path / "k.key"),
                         str(tmp_path / "ca.crt"), None)


def test_a_directory_at_the_key_path_is_reported_not_raised(tmp_path):
    paths = _paths(tmp_path)
    os.mkdir(paths.key)
    (tmp_path / "k.key" / "data").write_text("someone's")
    result = storage.sync_files(paths, "CERT", "KEY", "CA")
    assert [p for p, _ in result.problems] == [paths.key]
    assert "directory" in result.problems[0][1]
    assert (tmp_path / "k.key" / "data").exists()
    assert not os.path.exists(paths.certificate)  # the pair or nothing
    assert storage.take_sync_problems() == result.problems
    assert storage.take_sync_problems() is None


def test_owner_and_symlinks_are_repaired(tmp_path):
    paths = _paths(tmp_path)
    storage.sync_files(paths, "CERT", "KEY", "CA")
    if os.geteuid() == 0:
        os.chown(paths.key, 65534, 65534)
        assert storage.sync_files(paths, "CERT", "KEY", "CA") == [paths.key]
        st_ = os.stat(paths.key)
        assert (st_.st_uid, st_.st_gid) == (os.geteuid(), os.getegid())
    decoy = tmp_path / "decoy"
    decoy.write_text("KEY")
    decoy.chmod(0o600)
    os.unlink(paths.key)
    os.symlink(decoy, paths.key)
    assert storage.sync_files(paths, "CERT", "KEY", "CA") == [paths.key]
    assert not os.path.islink(paths.key) and decoy.read_text() == "KEY"
    assert storage.sync_files(paths, "CERT", "KEY", "CA") == []


def test_a_lasting_write_error_is_reported_a_passing_one_raises(tmp_path, monkeypatch):
    paths = _paths(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(storage, "write_file_atomic", denied)
    result = storage.sync_files(paths, "CERT", "KEY", "CA")
    assert result == [] and len(result.problems) == 2  # the key and the bundle; no cert

    def failing(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(storage, "write_file_atomic", failing)
    with pytest.raises(OSError):
        storage.sync_files(paths, "CERT", "KEY", "CA")


def test_a_directory_at_the_key_path_blocks_and_clears(tmp_path, secrets, hostnames):
    from tls_harness import charm_file

    juju, rid, units = deploy(tmp_path, secrets, units=2)
    key_file = charm_file(juju, units[1], "tls/server.key")
    key = key_file.read_text()
    key_file.unlink()
    key_file.mkdir()
    run = juju.run_hook(units[1], "update-status")
    assert run.ok
    kv_status = juju.kv(units[1]).get(storage.LAST_STATUS)
    assert kv_status[0] == "blocked" and str(key_file) in kv_status[1], kv_status
    assert any(level == "ERROR" and str(key_file) in m for level, m in run.logs)
    key_file.rmdir()
    juju.run_hook(units[1], "update-status")
    assert key_file.read_text() == key
    assert juju.kv(units[1]).get(storage.LAST_STATUS)[0] == "active"
