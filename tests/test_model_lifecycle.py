"""Lifecycle scenarios with the built tls-demo charm across simulated units: renewal with
short-lived certificates, name changes, CA rollover with mTLS checked after every hook,
a crash between rollover phases, and the actions."""
import json
import time

import pytest
from charms.layer.tls import pki
from model import SIM_PERMITTED_NAMES, SettleTimeout
from model_checks import (
    assert_one_new_ca,
    check_all,
    check_certificates,
    step_checking_mtls,
    unit_files,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]


def serials(model):
    return {name: cert.serial_number for name, cert in check_certificates(model).items()}


def test_short_lived_certificates_are_renewed_before_they_expire(make_model):
    model = make_model(seed=4, config={"tls_certificate_lifetime": "2m",
                                       "tls_renew_fraction": 0.5})
    model.deploy(3)
    model.settle()
    first = serials(model)
    deadline = time.monotonic() + 150
    renewed = {}
    while len(renewed) < len(first):
        assert time.monotonic() < deadline, f"only {sorted(renewed)} renewed"
        time.sleep(5)
        model.tick_update_status()  # units check their renewal time on update-status too
        renewed = {n: s for n, s in serials(model).items() if s != first[n]}
    check_all(model, model.port)


def test_a_new_extra_san_reissues_and_nothing_else_does(make_model):
    # echo.example is a public name: the operator permits it from the start (the CA's
    # name constraints are made from tls_permitted_names)
    model = make_model(seed=6, config={"tls_permitted_names": SIM_PERMITTED_NAMES +
                                       " echo.example"})
    model.deploy(2)
    model.settle()
    before = serials(model)
    model.tick_update_status()
    model.set_config({"echo_port": model.port})  # config-changed with nothing new
    model.settle()
    assert serials(model) == before, "no reissue when the names did not change"
    model.set_config({"tls_extra_sans": "echo.example 10.200.0.1"})
    model.settle()
    result = check_all(model, model.port)
    for cert in result["certs"].values():
        dns_names, ips = pki.certificate_names(cert)
        assert "echo.example" in dns_names and "10.200.0.1" in ips


def test_a_new_address_reissues_through_config_changed(make_model):
    """Juju runs config-changed when a machine's addresses change (worker/uniter/
    resolver.go), so a quiet update-status runs no network-get or unit-get; the unit whose
    address changed gets a certificate for the new address in its config-changed."""
    model = make_model(seed=6)
    model.deploy(2)
    model.settle()
    before = serials(model)
    model.tick_update_status()
    quiet = [r for r in model.runs() if r.hook == "update-status"]
    tools = {(c[0] if isinstance(c, (list, tuple)) else str(c).split()[0])
             for r in quiet for c in r.calls}
    assert quiet and "relation-get" in tools and not tools & {"network-get", "unit-get"}
    assert serials(model) == before
    moved = model.unit_names[1]
    model.set_address(moved, "127.0.1.200")
    model.settle()
    after = serials(model)
    assert after[moved] != before[moved]
    assert {n: s for n, s in after.items() if n != moved} == \
        {n: s for n, s in before.items() if n != moved}
    _, ips = pki.certificate_names(check_certificates(model)[moved])
    assert "127.0.1.200" in ips


@pytest.mark.parametrize("juju_version", ["3.6.4", "3.1.8"])
def test_ca_rollover_keeps_mtls_working_after_every_hook(make_model, juju_version):
    """On 3.1 an unchanged secret-set makes a revision, on 3.6 it does not: both end with
    the new CA alone."""
    model = make_model(seed=8, juju_version=juju_version)
    model.deploy(3)
    model.settle()
    old_bundle = model.app_data()["ca-bundle"]
    result = model.run_action(model.leader, "rotate-ca")
    assert result["status"] == "completed", result
    hooks = step_checking_mtls(model)
    assert_one_new_ca(model, old_bundle)
    print(f"CA rollover: {hooks} hooks, mTLS checked after each")


def test_a_crash_between_rollover_phases_resumes(make_model):
    model = make_model(seed=9)
    names = model.deploy(3)
    model.settle()
    old_bundle = model.app_data()["ca-bundle"]
    assert model.run_action(model.leader, "rotate-ca")["status"] == "completed"
    model.fail_next(model.leader, "certificates-relation-changed")
    model.fail_next(names[1], "certificates-relation-changed")
    stats = model.settle()
    assert stats.failures >= 1
    assert_one_new_ca(model, old_bundle)


def test_actions_on_the_model(make_model):
    model = make_model(seed=10)
    names = model.deploy(2)
    model.settle()
    non_leader = [n for n in names if n != model.leader][0]
    shown = model.run_action(non_leader, "show-certificate")
    assert shown["status"] == "completed", shown
    # the certificate file holds the certificate, then the chain it presents
    assert shown["results"]["chain"].count("BEGIN CERTIFICATE") == 1
    assert shown["results"]["certificate"] + shown["results"]["chain"] == unit_files(
        model, non_leader)["cert"].read_text()
    assert model.unit(non_leader).address in shown["results"]["ip-addresses"]
    assert "PRIVATE KEY" not in json.dumps(shown["results"])
    ca = model.run_action(non_leader, "get-ca-certificate")
    assert ca["results"]["ca-certificate"] == model.app_data()["ca-bundle"]
    refused = model.run_action(non_leader, "rotate-ca")
    assert refused["status"] == "failed"
    assert refused["message"] == "rotate-ca runs on the leader unit only"
    key_before = unit_files(model, non_leader)["key"].read_text()
    assert model.run_action(non_leader, "rotate-certificate")["status"] == "completed"
    model.settle()
    assert unit_files(model, non_leader)["key"].read_text() != key_before
    check_all(model, model.port)


def test_the_old_leader_leaves_mid_rollover(make_model):
    model = make_model(seed=12)
    model.deploy(3)
    model.settle()
    old_leader = model.leader
    old_bundle = model.app_data()["ca-bundle"]
    assert model.run_action(old_leader, "rotate-ca")["status"] == "completed"
    model.remove_unit(old_leader)
    model.settle()
    assert model.leader != old_leader
    assert_one_new_ca(model, old_bundle)


def test_a_leader_that_loses_its_lease_mid_rollover(make_model):
    """Leaders lose their lease during their hooks until one of those hooks had leader-only
    writes (app bag, CA secret): they are refused at commit and the hook fails; the new
    leader finishes the rollover from the published state."""
    model = make_model(seed=13)
    model.deploy(3)
    model.settle()
    old_bundle = model.app_data()["ca-bundle"]
    assert model.run_action(model.leader, "rotate-ca")["status"] == "completed"
    refused = []
    for _ in range(300):
        leader = model.unit(model.leader)
        if not any(when == "depose" for _, when in leader.inject):
            model.lose_leadership_during(leader.name)
        try:
            model.settle(max_hooks=1)
        except SettleTimeout:
            pass
        refused = [r for r in model.history if "checking leadership continuity" in r.stderr]
        if refused:
            break
    assert refused, "no deposed leader had leader-only writes pending"
    for unit in model.units.values():
        unit.inject.clear()
    model.settle()
    assert_one_new_ca(model, old_bundle)
