"""The operator's CA (``tls_ca_secret``) in the model, against the built tls-demo.

The operator adds a user secret holding an intermediate under their own root
(``juju add-secret``), grants it (``juju grant-secret``) and sets ``tls_ca_secret``: the
application moves to it through the CA rollover with mutual TLS working after every
hook, and ends with every unit presenting leaf + the operator's intermediate and trusting
the operator's root only. A refused secret (not granted, a key that does not match)
blocks the leader with a status that names the problem and changes nothing; a new
intermediate under the same root (``juju update-secret``) reissues every leaf; clearing
the option goes back to a self-made CA. mTLS is checked after every hook throughout.
"""
import pytest
from charms.layer.tls import pki
from model_checks import (
    check_all,
    check_mtls,
    published_bundle,
    published_intermediates,
    step_checking,
    unit_files,
)
from pki_helpers import make_external_ca, secret_content

pytestmark = [pytest.mark.model, pytest.mark.slow]


def published(model):
    data = model.app_data()
    return data.get("ca-bundle"), data.get("ca-intermediates"), data.get("certificates")


def leader_status(model):
    status = model.status(model.leader)
    return status["status"], status["message"]


def settle_checking_mtls(model):
    hooks = step_checking(model, lambda: check_mtls(model, model.port))
    failed = [(r.unit, r.hook, r.stderr[-400:]) for r in model.history if not r.ok]
    assert not failed, failed
    return hooks


def assert_on(model, root, intermediate):
    """Every unit presents leaf + ``intermediate`` and trusts ``root`` only."""
    check_all(model, model.port)  # certificates, mTLS, presented chains, no key leaks
    assert published_bundle(model) == [root.certificate]
    assert published_intermediates(model) == [intermediate.certificate]
    root_pem = pki.certificate_to_pem(root.certificate)
    for name in model.unit_names:
        files = unit_files(model, name)
        assert files["ca"].read_text() == root_pem
        leaf, *chain = pki.load_certificates(files["cert"].read_text())
        assert chain == [intermediate.certificate], name
        assert pki.authority_key_id(leaf) == pki.subject_key_id(intermediate.certificate)


def test_the_operator_ca_from_a_user_secret_switching_both_ways(make_model):
    model = make_model(seed=61)
    model.deploy(3)
    model.settle()
    check_all(model, model.port)
    self_made = published(model)
    root, intermediate = make_external_ca("Operator CA")
    uri = model.add_user_secret(secret_content(intermediate), label="operator-ca")

    # not granted yet: the leader says so and nothing changes
    model.set_config({"tls_ca_secret": uri})
    settle_checking_mtls(model)
    assert published(model) == self_made
    assert leader_status(model) == (
        "blocked", "tls_ca_secret: secret not granted to this application (juju "
        "grant-secret); the application keeps its current CA")
    check_mtls(model, model.port)

    # granted (no hook): the next update-status moves the application to it
    model.grant_user_secret(uri, model.app)
    model.tick_update_status(settle=False)
    hooks = settle_checking_mtls(model)
    assert hooks > 3
    assert_on(model, root, intermediate)
    assert leader_status(model)[0] == "active"

    # a new revision whose key does not match: blocked, nothing changes
    on_operator_ca = published(model)
    bad = secret_content(intermediate)
    bad["private-key"] = pki.private_key_to_pem(pki.generate_private_key()).decode()
    model.update_user_secret(uri, bad)
    assert model.pending() == {model.leader: "secret-changed"}  # the leader read it
    settle_checking_mtls(model)
    assert published(model) == on_operator_ca
    state, message = leader_status(model)
    assert state == "blocked"
    assert message == ("tls_ca_secret: the secret's private-key does not match its "
                       "certificate; the application keeps its current CA")

    # the same root, a new intermediate: every leaf reissued from it
    _, renewed = make_external_ca("Operator CA 2", root=root)
    model.update_user_secret(uri, secret_content(renewed))
    seen_both = []

    def check():
        check_mtls(model, model.port)
        bundle, intermediates, _ = published(model)
        assert bundle == pki.certificate_to_pem(root.certificate)  # one anchor throughout
        if intermediates and intermediates.count("BEGIN CERTIFICATE") == 2:
            seen_both.append(True)

    step_checking(model, check)
    assert seen_both, "both intermediates were published while the leaves were reissued"
    assert_on(model, root, renewed)

    # cleared: back to a new self-made CA through the rollover
    model.set_config({"tls_ca_secret": ""})
    settle_checking_mtls(model)
    check_all(model, model.port)
    (new_root,) = published_bundle(model)
    assert new_root not in (root.certificate, pki.load_certificates(self_made[0])[0])
    for name in model.unit_names:
        assert unit_files(model, name)["ca"].read_text() == pki.certificate_to_pem(new_root)
        assert model.status(name)["status"] == "active"
    (stored,) = [s for s in model.secrets().values() if s["owner"] == "application"]
    assert "source" not in stored["content"]
