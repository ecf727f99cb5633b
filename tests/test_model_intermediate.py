"""tls-demo's CA as an intermediate under a tls-certificates provider, in the model.

The provider is tests/charms/root-ca: an ops charm on the real provider library
(charmlibs-interfaces-tls-certificates, pinned), run as real hook processes with its own
venv and charmcraft's dispatch, related as ``tls-demo:ca-certificates
root-ca:certificates``. A trust-client related over certificate_transfer checks what
clients see (tests/transfer_checks.py).
"""
import datetime
import json

import pytest
from charms.layer.tls import pki
from clock_checks import certificates_at_model_time, check_mtls_at_model_time, model_now
from cryptography import x509
from model import pack_ops_charm
from model_checks import (
    ROOT,
    assert_quiet,
    check_all,
    check_mtls,
    published_bundle,
    published_intermediates,
    signing_ca,
    step_checking,
)
from transfer_checks import CLIENT_APP, add_client, bundle_file, check_clients

pytestmark = [pytest.mark.model, pytest.mark.slow]
PROVIDER_SRC = ROOT / "tests" / "charms" / "root-ca"
PROVIDER_APP = "root-ca"
DAY = 86400


def add_provider(model, config=None):
    model.add_application(pack_ops_charm(PROVIDER_SRC), config=config or {})
    model.deploy(1, app=PROVIDER_APP)
    return model.integrate("tls-demo:ca-certificates", f"{PROVIDER_APP}:certificates")


def provider_root(model):
    """The root the provider made (the ``ca`` of what it published)."""
    rid = model._rid("ca-certificates")
    (root,) = {e["ca"] for e in json.loads(model.app_data(rid, PROVIDER_APP)["certificates"])}
    return pki.load_certificate(root)


def leader_status(model):
    return model.status(model.leader)


def assert_on_provider_ca(model):
    """The bundle is the provider's root alone; the signing CA is our intermediate under
    it (pathLen as the provider set it: none, the library's); every leaf's AKI is the
    intermediate's SKI and verifies under the root with the intermediate."""
    root = provider_root(model)
    assert published_bundle(model) == [root]
    (intermediate,) = published_intermediates(model)
    assert intermediate.issuer == root.subject
    intermediate.verify_directly_issued_by(root)
    assert signing_ca(model) == intermediate
    certs = check_all(model, model.port)["certs"]
    for name, cert in certs.items():
        assert pki.authority_key_id(cert) == pki.subject_key_id(intermediate), name
        assert cert.issuer == intermediate.subject, name
    return root, intermediate


def test_tls_demo_moves_under_the_provider_and_clients_trust_its_root_only(make_model):
    model = make_model(seed=21)
    model.deploy(3)
    add_client(model, 1)
    model.settle()
    old_bundle = model.app_data()["ca-bundle"]
    check_clients(model, model.port)
    add_provider(model)
    # mTLS between every pair and every client connection after every hook of the switch
    step_checking(model, lambda: (check_mtls(model, model.port),
                                  check_clients(model, model.port)), max_hooks=800)
    assert_quiet(model)
    root, intermediate = assert_on_provider_ca(model)
    assert model.app_data()["ca-bundle"] != old_bundle
    # the client trusts only what it received: the provider's root
    for client in model.app_units(CLIENT_APP):
        assert pki.load_certificates(bundle_file(model, client).read_text()) == [root]
    check_clients(model, model.port)
    status = leader_status(model)
    assert status["status"] == "active", status
    assert f"CA signed by {PROVIDER_APP}" in status["message"], status
    assert "no path length" in status["message"], status
    # no key in the relation data, the statuses or the logs (check_all), and the request
    # secret holds the CA's key: it is the CA request secret, owned by the application
    labels = {s.get("label") for s in model.secrets().values()}
    assert {"layer-tls-ca", "layer-tls-ca-request"} <= labels, labels
    model.tick_update_status()
    assert_quiet(model)


def test_a_refused_request_is_shown_and_nothing_is_lost(make_model):
    model = make_model(seed=22)
    model.deploy(3)
    model.settle()
    before = model.app_data()["ca-bundle"]
    add_provider(model, {"refuse-ca": True})
    model.settle()
    assert_quiet(model)
    status = leader_status(model)
    assert status["status"] == "blocked", status
    assert f"{PROVIDER_APP} refused the CA request" in status["message"], status
    assert "OTHER" in status["message"] and "refused by this provider" in status["message"]
    assert model.app_data()["ca-bundle"] == before  # the current CA serves on
    check_mtls(model, model.port)
    for name in model.unit_names:
        if name != model.leader:
            assert model.status(name)["status"] == "active", name
    # a config change of ours asks again (a new CSR, the same key); refused again
    rid = model._rid("ca-certificates")
    (asked,) = json.loads(model.app_data(rid, "tls-demo")["certificate_signing_requests"])
    model.set_config({"tls_renew_fraction": 0.66})
    model.settle()
    assert_quiet(model)
    (again,) = json.loads(model.app_data(rid, "tls-demo")["certificate_signing_requests"])
    assert again != asked
    assert x509.load_pem_x509_csr(again["certificate_signing_request"].encode()).public_key() \
        == x509.load_pem_x509_csr(asked["certificate_signing_request"].encode()).public_key()
    assert f"{PROVIDER_APP} refused the CA request" in leader_status(model)["message"]
    assert model.app_data()["ca-bundle"] == before
    # the provider's config changes: it signs the request it refused; tls-demo moves
    model.set_config({"refuse-ca": False}, app=PROVIDER_APP)
    step_checking(model, lambda: check_mtls(model, model.port), max_hooks=800)
    assert_on_provider_ca(model)
    assert leader_status(model)["status"] == "active"


def provider_handler_runs(model) -> int:
    """How many times tls-demo units invoked a handler of reactive/tls_ca_provider.py so
    far (charms.reactive logs each, with juju-log, in the unit's hook log)."""
    mark = "Invoking reactive handler: reactive/tls_ca_provider.py"
    return sum(model.hook_log(name).count(mark) for name in model.unit_names)


def test_the_provider_going_away_leaves_the_service_running(make_model):
    model = make_model(seed=23)
    model.deploy(2)
    model.settle()
    since = len(model.history)
    model.tick_update_status()
    # never related: its handlers never run (a charm without a provider is unchanged)
    assert len(model.history) > since and provider_handler_runs(model) == 0
    add_provider(model)
    model.settle()
    assert provider_handler_runs(model) > 0  # the check sees them when they run
    root, intermediate = assert_on_provider_ca(model)
    model.remove_relation(model._rid("ca-certificates"))
    model.settle()
    assert_quiet(model)
    check_mtls(model, model.port)
    status = leader_status(model)
    assert status["status"] == "active", status
    assert "the CA provider is gone" in status["message"], status
    assert f"{intermediate.not_valid_after_utc:%Y-%m-%d}" in status["message"], status
    assert published_bundle(model) == [root]
    # the application itself going away: nothing more happens to tls-demo
    model.remove_application(PROVIDER_APP)
    model.settle()
    assert_quiet(model)
    before = provider_handler_runs(model)
    model.tick_update_status()
    assert_quiet(model)
    assert provider_handler_runs(model) == before  # noted once, then quiet
    check_all(model, model.port)


def test_the_intermediate_is_renewed_in_place_before_it_expires(make_model):
    """root-ca signs for 10 days; at 0.8 of that (tls_ca_rollover_fraction) the leader
    asks again with the same key: the renewed certificate replaces the old one, the
    leaves signed before verify with it, and mutual TLS holds at the model's time."""
    model = make_model(seed=24, config={"tls_certificate_lifetime": "3d"})
    model.deploy(2)
    add_provider(model, {"validity-days": 10})
    model.settle()
    root, first = assert_on_provider_ca(model)
    life = first.not_valid_after_utc - first.not_valid_before_utc
    assert life == datetime.timedelta(days=10)
    steps = 0
    while published_intermediates(model) == [first]:
        assert steps < 6, "the intermediate was not renewed"
        certificates_at_model_time(model)  # no leaf lapsed on the way
        model.advance_clock(2 * DAY)
        model.tick_update_status()
        model.settle()
        steps += 1
    now = model_now(model)
    (renewed,) = published_intermediates(model)
    assert renewed.public_key() == first.public_key()
    assert renewed.subject == first.subject
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    assert now < first.not_valid_after_utc, "renewed only after it expired"
    assert published_bundle(model) == [root]
    check_mtls_at_model_time(model)
    for name in model.unit_names:
        assert model.status(name)["status"] == "active", (name, model.status(name))
    # the replaced request is withdrawn by the next look (here an update-status)
    model.tick_update_status()
    rid = model._rid("ca-certificates")
    assert len(json.loads(model.app_data(rid, "tls-demo")["certificate_signing_requests"])) == 1
    assert len(json.loads(model.app_data(rid, PROVIDER_APP)["certificates"])) == 1


def revoked(model):
    """root-ca revokes everything: the leader asks for a CA with a new key and serves on
    with the revoked one meanwhile (root-ca signs nothing while ``revoke`` is set)."""
    model.deploy(2)
    add_provider(model)
    model.settle()
    root, first = assert_on_provider_ca(model)
    model.set_config({"revoke": True}, app=PROVIDER_APP)
    model.settle()
    assert_quiet(model)
    status = leader_status(model)
    assert status["status"] == "blocked", status
    assert "revoked the CA certificate; asked for a new one" in status["message"], status
    check_mtls(model, model.port)
    assert published_intermediates(model) == [first]
    model.tick_update_status()  # a later look still says so
    status = leader_status(model)
    assert status["status"] == "blocked", status
    assert "revoked the CA certificate; waiting for it to sign a new one" in \
        status["message"], status
    return root, first


def test_a_revoked_intermediate_asks_for_a_new_key_and_serves_on(make_model):
    revoked(make_model(seed=25))


def test_the_new_key_under_the_same_root_ends_on_the_new_intermediate(make_model):
    """The end state of the same-root switch after a revocation: the new intermediate
    (new key) under the same root signs every leaf, the revoked one is gone."""
    model = make_model(seed=27)
    root, first = revoked(model)
    model.set_config({"revoke": False}, app=PROVIDER_APP)
    model.settle()
    assert_quiet(model)
    root_after, second = assert_on_provider_ca(model)
    assert root_after == root
    assert second != first and second.public_key() != first.public_key()
    assert leader_status(model)["status"] == "active", leader_status(model)
    # the revoked certificate's request was withdrawn once the new one was in use
    rid = model._rid("ca-certificates")
    assert len(json.loads(model.app_data(rid, "tls-demo")["certificate_signing_requests"])) == 1
    assert len(json.loads(model.app_data(rid, PROVIDER_APP)["certificates"])) == 1


def test_a_provider_related_from_the_start_signs_the_first_ca(make_model):
    """tls-demo deployed with root-ca related at once: whichever comes first, the
    application ends on the provider's CA, every unit active."""
    model = make_model(seed=28)
    model.deploy(3)
    add_provider(model)
    model.settle()
    assert_quiet(model)
    assert_on_provider_ca(model)
    assert leader_status(model)["status"] == "active", leader_status(model)


def test_the_new_key_under_the_same_root_is_switched_to_with_mtls_kept(make_model):
    """The new one comes under the same root: the same-root reissue publishes it next
    to the old one, reissues every leaf from it (mTLS checked after every hook), then the
    old intermediate goes."""
    model = make_model(seed=25)
    root, first = revoked(model)
    model.set_config({"revoke": False}, app=PROVIDER_APP)
    step_checking(model, lambda: check_mtls(model, model.port), max_hooks=800)
    assert_quiet(model)
    root_after, second = assert_on_provider_ca(model)
    assert root_after == root
    assert second != first and second.public_key() != first.public_key()
    assert leader_status(model)["status"] == "active", leader_status(model)


@pytest.mark.parametrize("garbage", [
    {"certificates": "not json", "request_errors": "[1, {\"csr\": 5}]"},
    {"certificates": "[{\"certificate_signing_request\": \"-----BEGIN CERTIFICATE "
                     "REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\", "
                     "\"certificate\": 7}]"},
])
def test_garbage_from_the_provider_never_fails_a_hook(make_model, garbage):
    model = make_model(seed=26)
    model.deploy(2)
    add_provider(model)
    model.settle()
    root, first = assert_on_provider_ca(model)
    since = len(model.history)
    rid = model._rid("ca-certificates")
    with model.hook_context(model.leader_of(PROVIDER_APP), relation=rid) as tool:
        for key, value in garbage.items():
            assert tool("relation-set", "--app", f"{key}={value}").returncode == 0
    model.settle()
    model.tick_update_status()
    assert all(r.ok for r in model.history[since:] if r.unit in model.unit_names)
    assert published_intermediates(model) == [first] and published_bundle(model) == [root]
    check_mtls(model, model.port)

