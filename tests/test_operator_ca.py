"""The operator's CA (``tls_ca_secret``, a Juju user secret) in the in-memory harness:
switching to it and back through the rollover with trust kept after every hook, a new
intermediate under the same root, refused secrets that change nothing, the age-based
rollover and rotate-ca left to the operator, and hostile secret contents (fuzzed)."""
import datetime
import json
import time

import pytest
from charms.layer.tls import ca_store, crl, leader, operator_ca, pki
from charms.layer.tls.settings import Settings
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pki_helpers import make_external_ca, secret_content
from test_layer_lifecycle import bundle_count, settle_checking_trust
from tls_harness import (
    all_published_text,
    assert_unit_has_valid_certificate,
    deploy,
    installed,
    run_action,
)


def reads_of(secrets, uri, since=0):
    """The hook-tool calls since ``since`` that named the operator's secret."""
    xid = operator_ca.secret_xid(uri)
    return [argv for argv in secrets.argvs[since:] if any(xid in a for a in argv)]


def set_everywhere(juju, units, **values):
    """``juju config``: every unit's config changes and each runs config-changed (the
    leader first; the rollover's later hooks come through the relation)."""
    for unit in units:
        juju.set_config(unit, **values)
    for unit in sorted(units, key=lambda u: u != juju.leader):
        juju.run_hook(unit, "config-changed")


def stored(secrets):
    return secrets.committed[ca_store.SECRET_LABEL]


def published(juju, rid):
    bag = juju.app_bag(rid)
    return bag.get("ca-bundle"), bag.get("ca-intermediates"), bag.get("certificates")


def assert_on_ca(juju, rid, units, root, intermediate):
    """The units present leaf + the operator's intermediate and trust its root only."""
    root_pem = pki.certificate_to_pem(root.certificate)
    assert juju.app_bag(rid)["ca-bundle"] == root_pem
    assert juju.app_bag(rid)["ca-intermediates"] == pki.certificate_to_pem(
        intermediate.certificate)
    for unit in units:
        cert = assert_unit_has_valid_certificate(juju, unit)
        assert pki.authority_key_id(cert) == pki.subject_key_id(intermediate.certificate)
        assert installed(juju, unit)[1] == root_pem
        presented = pki.load_certificates(
            (juju.units[unit].charm_dir / "tls/server.crt").read_text())
        assert presented == [cert, intermediate.certificate]


@pytest.fixture
def operator(tmp_path, secrets, hostnames):
    """tls-demo-like app of 3 units on a self-made CA, and the operator's PKI: a root and an
    intermediate under it in a user secret granted to the application."""
    juju, rid, units = deploy(tmp_path, secrets)
    root, intermediate = make_external_ca()
    uri = secrets.add_user_secret(secret_content(intermediate), label="my-ca")
    secrets.grant_user_secret(uri, juju.app)
    return juju, rid, units, root, intermediate, uri


def test_setting_it_rolls_over_to_the_operator_ca_and_clearing_it_rolls_back(
        operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    self_made = juju.app_bag(rid)["ca-bundle"]
    set_everywhere(juju, units, tls_ca_secret=uri)
    assert bundle_count(juju, rid) == 2  # the operator's root trusted next to the old
    settle_checking_trust(juju, units)
    assert_on_ca(juju, rid, units, root, intermediate)
    assert stored(secrets).get(ca_store.SECRET_SOURCE_FIELD) == operator_ca.SOURCE
    assert "PRIVATE KEY" not in all_published_text(juju, rid)
    assert juju.status(units[0])[0] == "active"

    set_everywhere(juju, units, tls_ca_secret="")
    assert bundle_count(juju, rid) == 2
    settle_checking_trust(juju, units)
    final = juju.app_bag(rid)["ca-bundle"]
    assert bundle_count(juju, rid) == 1
    assert final not in (self_made, pki.certificate_to_pem(root.certificate))
    assert ca_store.SECRET_SOURCE_FIELD not in stored(secrets)
    for unit in units:
        assert installed(juju, unit)[1] == final
        assert_unit_has_valid_certificate(juju, unit)


def test_a_new_intermediate_under_the_same_root_reissues_every_leaf(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    _, renewed = make_external_ca("Operator CA 2", root=root)
    assert secrets.update_user_secret(uri, secret_content(renewed)) == 2
    juju.secret_event = {"JUJU_SECRET_ID": uri, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")  # Juju tells the leader, which read it
    bundle, intermediates, _ = published(juju, rid)
    assert bundle == pki.certificate_to_pem(root.certificate)  # the anchor stays
    assert pki.load_certificates(intermediates) == [renewed.certificate,
                                                    intermediate.certificate]
    assert "CA rollover (a new CA in tls_ca_secret)" in juju.status(units[0])[1]
    # both intermediates sign leaves meanwhile: each has its CRL (a unit that checks CRLs
    # refuses a leaf whose issuer has none)
    crls = json.loads(juju.app_bag(rid)["crl"])
    assert set(crls) == {crl.key_id_hex(renewed.certificate),
                         crl.key_id_hex(intermediate.certificate)}
    # no leaf from the new intermediate before every unit installed it and its CRL
    issued = json.loads(juju.app_bag(rid)["certificates"])
    assert all(pki.authority_key_id(pki.load_certificate(c)) == pki.subject_key_id(
        intermediate.certificate) for c in issued.values())
    hooks = settle_checking_trust(juju, units)
    assert hooks > 0
    assert_on_ca(juju, rid, units, root, renewed)
    for unit in units:
        assert "tls-installed" not in juju.unit_bag(rid, unit)  # withdrawn at the end
    juju.run_hook(units[0], "update-status")
    assert "CA rollover" not in juju.status(units[0])[1]


def test_a_later_leader_finishes_a_same_root_switch(operator, secrets):
    """The switch is judged from the CA store and the published data: a new leader that
    has nothing in its unitdata carries it on."""
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    _, renewed = make_external_ca("Operator CA 2", root=root)
    secrets.update_user_secret(uri, secret_content(renewed))
    juju.secret_event = {"JUJU_SECRET_ID": uri, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")
    juju.pending.clear()  # the old leader goes before anything else runs
    juju.set_leader(units[1])
    juju.run_hook(units[1], "leader-elected")
    for unit in units:
        juju.run_hook(unit, "update-status")
    settle_checking_trust(juju, units)
    assert_on_ca(juju, rid, units, root, renewed)


def test_a_secret_not_granted_blocks_and_changes_nothing_until_granted(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    secrets.revoke_user_secret(uri, juju.app)
    before = published(juju, rid)
    set_everywhere(juju, units, tls_ca_secret=uri)
    juju.settle()
    assert published(juju, rid) == before
    state, message = juju.status(units[0])
    assert state == "blocked"
    assert message == ("tls_ca_secret: secret not granted to this application (juju "
                       "grant-secret); the application keeps its current CA")
    assert juju.status(units[1])[0] == "active"  # the others keep serving
    secrets.grant_user_secret(uri, juju.app)  # no hook: update-status tries again
    juju.run_hook(units[0], "update-status")
    settle_checking_trust(juju, units)
    assert_on_ca(juju, rid, units, root, intermediate)
    assert juju.status(units[0])[0] == "active"


def test_a_key_that_does_not_match_blocks_and_changes_nothing(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    content = secret_content(intermediate)
    content["private-key"] = pki.private_key_to_pem(pki.generate_private_key()).decode()
    secrets.update_user_secret(uri, content)
    before = published(juju, rid)
    set_everywhere(juju, units, tls_ca_secret=uri)
    juju.settle()
    assert published(juju, rid) == before
    state, message = juju.status(units[0])
    assert state == "blocked" and "private-key does not match its certificate" in message
    assert "PRIVATE KEY" not in message


def test_a_bad_new_revision_keeps_the_operator_ca_in_use(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    before = published(juju, rid)
    secrets.update_user_secret(uri, {"certificate": "junk", "private-key": "junk"})
    juju.secret_event = {"JUJU_SECRET_ID": uri, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")
    juju.settle()
    assert published(juju, rid) == before
    assert juju.status(units[0])[0] == "blocked"
    secrets.update_user_secret(uri, secret_content(intermediate))  # put back
    juju.run_hook(units[0], "secret-changed")
    assert juju.status(units[0])[0] == "active"
    assert published(juju, rid) == before


def test_the_first_ca_comes_from_the_secret(tmp_path, secrets, hostnames):
    root, intermediate = make_external_ca()
    uri = secrets.add_user_secret(secret_content(intermediate))
    secrets.grant_user_secret(uri, "tls")
    juju, rid, units = deploy(tmp_path, secrets, config={"tls_ca_secret": uri})
    assert_on_ca(juju, rid, units, root, intermediate)
    assert stored(secrets)[ca_store.SECRET_SOURCE_FIELD] == operator_ca.SOURCE


def test_a_self_signed_operator_ca_is_its_own_anchor(tmp_path, secrets, hostnames):
    ca = pki.create_ca("Operator self-signed CA", lifetime_days=3650)
    uri = secrets.add_user_secret(secret_content(ca))
    secrets.grant_user_secret(uri, "tls")
    juju, rid, units = deploy(tmp_path, secrets)
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    assert juju.app_bag(rid)["ca-bundle"] == pki.certificate_to_pem(ca.certificate)
    assert not juju.app_bag(rid).get("ca-intermediates")
    for unit in units:
        cert = assert_unit_has_valid_certificate(juju, unit)
        assert pki.authority_key_id(cert) == pki.subject_key_id(ca.certificate)


def test_rotate_ca_is_refused_while_the_operator_ca_is_configured(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    run = run_action(juju, units[0], "rotate-ca", check=False)
    assert run.action_failed.startswith("the CA comes from tls_ca_secret")
    assert bundle_count(juju, rid) == 1


def test_the_age_based_rollover_leaves_the_operator_ca_and_says_when_it_ends(
        operator, secrets, monkeypatch):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    due = juju.kv(units[0]).get(leader.ROLLOVER_AT)["at"]
    before = published(juju, rid)[:2]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: max(due, real()) + 60)
    juju.run_hook(units[0], "update-status")  # (the leader renews its own leaf too)
    assert published(juju, rid)[:2] == before  # no self-made CA took over
    state, message = juju.status(units[0])
    assert state == "active" and "the CA of tls_ca_secret expires on" in message
    calls = len(secrets.argvs)
    juju.run_hook(units[0], "update-status")  # said once: not judged again every hook
    assert not reads_of(secrets, uri, calls)


def test_quiet_hooks_do_not_read_the_operator_secret(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    juju.run_hook(units[0], "update-status")  # the first after the switch may judge it
    calls, all_calls = len(secrets.argvs), len(secrets.calls)
    for unit in units:
        juju.run_hook(unit, "update-status")
    assert not reads_of(secrets, uri, calls)
    assert secrets.calls[all_calls:] == []  # nor the CA store


def test_a_secret_changed_for_another_secret_reads_nothing(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    juju.run_hook(units[0], "update-status")
    calls = len(secrets.calls)
    other = secrets.add_user_secret({"token": "x"})
    juju.secret_event = {"JUJU_SECRET_ID": other, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")
    assert secrets.calls[calls:] == []
    juju.secret_event = {"JUJU_SECRET_ID": uri, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")  # the configured one is read
    assert reads_of(secrets, uri, calls)


# ------------------------------------------------------------------ hostile contents

SETTINGS = Settings({}, lambda: {"tls_certificate_lifetime": "90d"}, "/tmp", "app")
_ROOT, _INTERMEDIATE = make_external_ca()
GOOD = secret_content(_INTERMEDIATE)
OTHER_KEY = pki.private_key_to_pem(pki.generate_private_key()).decode()


def _problem(content, now=None):
    with pytest.raises(operator_ca.OperatorCAProblem) as caught:
        operator_ca.check_content(content, SETTINGS, now=now)
    return str(caught.value)


def test_the_good_content_passes_and_names_its_root():
    ca = operator_ca.check_content(GOOD, SETTINGS)
    assert ca.anchor == _ROOT.certificate and ca.certificate == _INTERMEDIATE.certificate


def _ca_cert(key, issuer_key=None, *, ca=True, key_cert_sign=True, days=3650,
             issuer=None, start=None):
    now = pki.utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile")])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start or now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, key_cert_sign,
                                            True, False, False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    return builder.sign(issuer_key or key, pki._signature_hash(issuer_key or key))


@pytest.mark.parametrize("change, expected", [
    ({"certificate": None}, "the secret has no certificate"),
    ({"private-key": ""}, "the secret has no private-key"),
    ({"private-key": OTHER_KEY}, "private-key does not match its certificate"),
    ({"certificate": GOOD["certificate"] * 2}, "exactly one PEM certificate"),
    ({"certificate": GOOD["certificate"] + GOOD["private-key"]}, "a private key is in"),
    ({"chain": GOOD["private-key"]}, "a private key is in"),
    ({"private-key": GOOD["private-key"] * 2}, "exactly one PEM key"),
    ({"chain": ""}, "not self-signed and the secret has no chain"),
    ({"chain": GOOD["certificate"]}, "does not end with a self-signed root"),
    ({"certificate": "x" * 9000}, "over 8192 bytes"),
    ({"certificate": 7}, "not text"),
    ({"chain": pki.certificate_to_pem(_ROOT.certificate) * 5}, "more than 4 certificates"),
    ({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
     "not readable PEM certificates"),
])
def test_each_problem_is_named(change, expected):
    content = dict(GOOD)
    for key, value in change.items():
        if value is None:
            content.pop(key)
        else:
            content[key] = value
    assert expected in _problem(content)


def test_an_expired_or_short_lived_ca_is_refused():
    later = pki.utcnow() + datetime.timedelta(days=4000)
    assert _problem(GOOD, now=later).startswith("certificate expired on ")
    short_key = pki.generate_private_key()
    short = {"certificate": pki.certificate_to_pem(_ca_cert(short_key, days=100)),
             "private-key": pki.private_key_to_pem(short_key).decode()}
    assert "less than twice tls_certificate_lifetime (180 days)" in _problem(short)


def test_not_a_ca_or_no_key_cert_sign_is_refused():
    key = pki.generate_private_key()
    for kwargs, expected in (({"ca": False}, "not a CA"),
                             ({"key_cert_sign": False}, "lacks keyCertSign")):
        content = {"certificate": pki.certificate_to_pem(_ca_cert(key, **kwargs)),
                   "private-key": pki.private_key_to_pem(key).decode()}
        assert expected in _problem(content)


def test_a_chain_that_does_not_certify_the_ca_is_refused():
    other_root, _ = make_external_ca("Someone else")
    content = dict(GOOD, chain=pki.certificate_to_pem(other_root.certificate))
    assert "chain" in _problem(content)


def test_secret_xid_takes_the_uri_forms_juju_gives():
    xid = "d0e1ghcth02bs28hf5l0"
    for text in (f"secret:{xid}", f"secret://0a1b-2c/{xid}", xid, f" secret:{xid}\n"):
        assert operator_ca.secret_xid(text) == xid
    for text in ("", "secret:", "secret:short", "http://x/y", "secret:" + "w" * 20):
        assert operator_ca.secret_xid(text) is None


_TEXT = st.one_of(st.text(max_size=300), st.sampled_from(list(GOOD.values())),
                  st.builds(lambda a, b: a + b, st.sampled_from(list(GOOD.values())),
                            st.text(max_size=50)),
                  st.builds(lambda v, cut: v[:cut], st.sampled_from(list(GOOD.values())),
                            st.integers(0, 2000)))
_VALUES = st.one_of(_TEXT, st.none(), st.integers(), st.lists(st.text(max_size=5)),
                    st.dictionaries(st.text(max_size=5), st.text(max_size=5)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.dictionaries(st.sampled_from(["certificate", "private-key", "chain", "other"]),
                    _VALUES, max_size=4),
    st.builds(lambda field, value: dict(GOOD, **{field: value}),
              st.sampled_from(["certificate", "private-key", "chain"]), _VALUES),
    _VALUES))
def test_hostile_contents_only_ever_give_a_named_problem_without_key_material(content):
    try:
        ca = operator_ca.check_content(content, SETTINGS)
    except operator_ca.OperatorCAProblem as exc:
        message = str(exc)
        assert "PRIVATE KEY" not in message and "BEGIN" not in message
        assert GOOD["private-key"].splitlines()[1][:20] not in message
        assert len(message) < 400
        return
    assert pki.ca_problem(ca) is None  # what passes can sign



def test_without_secrets_the_option_is_refused_and_a_self_made_ca_serves(
        tmp_path, secrets, hostnames, monkeypatch):
    monkeypatch.setattr(ca_store, "secrets_supported", lambda version=None: False)
    juju, rid, units = deploy(tmp_path, secrets, units=2,
                              config={"tls_ca_secret": "secret:d0e1ghcth02bs28hf5l0"})
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)
    assert secrets.calls == []  # no secret-get on a Juju without secrets
    assert juju.status(units[0]) == (
        "blocked", "tls_ca_secret needs Juju secrets (Juju 3.1 or later)")


def test_a_failed_hook_that_started_a_switch_is_redone_by_its_retry(operator, secrets):
    """The switch's writes (the CA secret, the app data, unitdata) commit with the hook:
    a failure after it started leaves nothing behind, and Juju's retry of the same hook
    starts it again."""
    juju, rid, units, root, intermediate, uri = operator
    before = published(juju, rid)
    stored_before = stored(secrets)
    juju.set_config(units[0], tls_ca_secret=uri)

    def fail():
        raise RuntimeError("the hook dies after the handlers ran")

    run = juju.run_hook(units[0], "config-changed", call=fail, check=False)
    assert run.error is not None
    assert published(juju, rid) == before and stored(secrets) == stored_before
    juju.run_hook(units[0], "config-changed")  # the retry
    assert bundle_count(juju, rid) == 2
    for unit in units[1:]:
        juju.set_config(unit, tls_ca_secret=uri)
        juju.run_hook(unit, "config-changed")
    settle_checking_trust(juju, units)
    assert_on_ca(juju, rid, units, root, intermediate)


def test_a_grant_revoked_later_blocks_and_the_operator_ca_keeps_serving(operator, secrets):
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    secrets.revoke_user_secret(uri, juju.app)
    juju.set_leader(units[1])  # a new leader looks at the secret
    juju.run_hook(units[1], "leader-elected")
    juju.settle()
    assert juju.status(units[1])[1].startswith("tls_ca_secret: secret not granted")
    assert_on_ca(juju, rid, units, root, intermediate)  # nothing lost


def test_a_new_revision_during_a_running_rollover_is_taken_once_it_ends(operator, secrets):
    """secret-changed comes once: a new CA in the secret while the switch to the previous
    one runs waits for it to end, then the application moves on to the newest."""
    juju, rid, units, root, intermediate, uri = operator
    set_everywhere(juju, units, tls_ca_secret=uri)
    assert bundle_count(juju, rid) == 2  # running
    newer_root, newer = make_external_ca("Operator CA, new root")
    secrets.update_user_secret(uri, secret_content(newer))
    juju.secret_event = {"JUJU_SECRET_ID": uri, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")
    settle_checking_trust(juju, units)
    assert_on_ca(juju, rid, units, newer_root, newer)


@pytest.mark.parametrize("first", ["root", "intermediate"])
def test_a_switch_between_a_root_and_a_ca_under_it_is_refused_and_changes_nothing(
        tmp_path, secrets, hostnames, first):
    """A self-signed operator root, then an intermediate it signed (or back): one root,
    and one side is that root itself, which signs leaves without an intermediate, so the
    same-root switch cannot carry its CRL and acknowledgements through. Refused with a
    status that says what to do; the CA in use keeps serving."""
    root, intermediate = make_external_ca()
    cas = {"root": root, "intermediate": intermediate}
    uri = secrets.add_user_secret(secret_content(cas[first]))
    secrets.grant_user_secret(uri, "tls")
    juju, rid, units = deploy(tmp_path, secrets)
    set_everywhere(juju, units, tls_ca_secret=uri)
    settle_checking_trust(juju, units)
    assert juju.app_bag(rid)["ca-bundle"] == pki.certificate_to_pem(root.certificate)
    before = published(juju, rid)
    other = cas["intermediate" if first == "root" else "root"]
    secrets.update_user_secret(uri, secret_content(other))
    juju.secret_event = {"JUJU_SECRET_ID": uri, "JUJU_SECRET_LABEL": ""}
    juju.run_hook(units[0], "secret-changed")
    juju.settle()
    for _ in range(2):
        for unit in units:
            juju.run_hook(unit, "update-status")
    assert published(juju, rid) == before
    state, message = juju.status(units[0])
    assert state == "blocked" and "share their root" in message, message
    assert "CA rollover" not in message
    for unit in units:
        assert_unit_has_valid_certificate(juju, unit)
