"""What layer:tls's certificate_transfer provider writes, read by the REAL requirer library.

The relation data comes from running the provider (the in-memory harness of
transfer_harness: the real charms.reactive, layer:tls and interface-certificate-transfer),
never written by hand. It is fed to tests/charms/trust-client, an ops charm built on the
pinned ``charmlibs-interfaces-certificate-transfer`` requirer, run by ops' own testing
framework (Scenario): so the library's own parsing decides what the client trusts.
"""
import pathlib
import sys

import pytest
from ops import testing
from tls_harness import run_action
from transfer_harness import ca_bundle, deploy_with_transfer, provides, relate

CHARM_SRC = pathlib.Path(__file__).resolve().parent / "charms" / "trust-client" / "src"
sys.path.insert(0, str(CHARM_SRC))
from charm import RELATION, TrustClientCharm, bundle_digest, bundle_text  # noqa: E402

sys.path.remove(str(CHARM_SRC))


def provider_side(tmp_path, secrets, version, units=2, rotate=False):
    """(app bag, {unit index: unit bag}, CA bundle) as our provider wrote them."""
    juju, rid, names = deploy_with_transfer(tmp_path, secrets, units=units)
    trid = relate(juju, names, version=version)
    if rotate:
        assert run_action(juju, names[0], "rotate-ca").action_failed is None
    return (juju.app_bag(trid),
            {i: juju.unit_bag(trid, name) for i, name in enumerate(names)},
            ca_bundle(juju, rid))


def client_run(tmp_path, app_bag, unit_bags, local_app=None, event="changed", leader=True):
    """One hook of trust-client with the provider's data; returns (state out, bundle file)."""
    bundle_file = tmp_path / "client" / "ca-bundle.crt"
    relation = testing.Relation(endpoint=RELATION, interface="certificate_transfer",
                                remote_app_name="tls", remote_app_data=dict(app_bag),
                                remote_units_data={i: dict(b) for i, b in unit_bags.items()},
                                local_app_data=dict(local_app or {}))
    state = testing.State(leader=leader, relations={relation},
                          config={"bundle-path": str(bundle_file)})
    ctx = testing.Context(TrustClientCharm)
    if event == "changed":
        out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    elif event == "created":
        out = ctx.run(ctx.on.relation_created(relation), state)
    else:
        out = ctx.run(ctx.on.relation_broken(relation), state)
    text = bundle_file.read_text() if bundle_file.exists() else None
    return out, relation, text


def assert_trusts(out, text, certificates):
    assert text == bundle_text(certificates)
    assert out.unit_status == testing.ActiveStatus(
        f"trusting {len(set(certificates))} CA certificate(s), bundle {bundle_digest(text)}")


def test_the_library_reads_our_v1_app_bag(tmp_path, secrets, hostnames):
    app, units, bundle = provider_side(tmp_path, secrets, version="1")
    assert not any("chain" in bag for bag in units.values())  # v1 only: no unit-bag copy
    out, _, text = client_run(tmp_path, app, units, local_app={"version": "1"})
    assert_trusts(out, text, bundle)


@pytest.mark.parametrize("which", [0, 1])
def test_the_library_reads_our_v0_unit_bags_alone(tmp_path, secrets, hostnames, which):
    """A requirer that has not said version 1 yet, and only unit data there (the provider's
    leader had not written its app bag): the library's v0 fallback reads any one unit's
    bag, so every unit's must hold the bundle."""
    app, units, bundle = provider_side(tmp_path, secrets, version=None)
    assert app.get("version") == "1"  # the app bag holds v1 as well
    out, _, text = client_run(tmp_path, {}, {0: units[which]})
    assert_trusts(out, text, bundle)


def test_the_library_reads_what_we_write_for_a_v0_requirer(tmp_path, secrets, hostnames):
    app, units, bundle = provider_side(tmp_path, secrets, version=None)
    out, _, text = client_run(tmp_path, app, units)
    assert_trusts(out, text, bundle)


def test_during_a_rollover_the_client_trusts_both_cas(tmp_path, secrets, hostnames):
    app, units, bundle = provider_side(tmp_path, secrets, version="1", rotate=True)
    assert len(bundle) == 2
    out, _, text = client_run(tmp_path, app, units, local_app={"version": "1"})
    assert_trusts(out, text, bundle)


def test_the_version_the_library_writes_is_the_one_we_read_as_v1(tmp_path):
    out, relation, _ = client_run(tmp_path, {}, {0: {}}, event="created")
    written = out.get_relation(relation.id).local_app_data
    assert written == {"version": "1"}
    assert provides.parse_version(written["version"]) == (1, None)


def test_a_broken_relation_leaves_the_client_trusting_nothing(tmp_path, secrets, hostnames):
    app, units, _ = provider_side(tmp_path, secrets, version="1")
    out, _, text = client_run(tmp_path, app, units, local_app={"version": "1"},
                              event="broken")
    assert text == ""
    assert out.unit_status == testing.WaitingStatus("no CA certificates received")
