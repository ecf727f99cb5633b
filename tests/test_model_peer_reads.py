"""What a peer relation hook of the built tls-demo charm reads, at two sizes.

Juju runs relation-changed for a peer whenever its bag changed, and relation-joined is
always followed by relation-changed for the same unit (worker/uniter/relation/resolver.go
``nextHookForRelation``), so a non-leader's hook about peer X needs X's bag, its own and
the app bag, never every peer's: the relation-get calls of such a hook must not grow with
the number of units (charms.reactive's ``Endpoint._manage_flags`` alone read every joined
unit's bag in each of them; interface-tls/peers.py ``TlsPeers._manage_endpoint_flags``).
The leader, which needs every peer's CSR, names and acknowledgements, keeps the bags in
unitdata and re-reads in a peer hook only the one it is about (``TlsPeers._remote_bags``);
every other hook reads them all again.
"""
import json

import pytest
from charms.layer.tls import pki
from model import HookFailed
from model_checks import check_certificates, unit_files

pytestmark = pytest.mark.model


def _owner(call):
    """The bag a ``relation-get`` call reads: its last argument (unit or app name)."""
    return call[-1]


def _peer_hooks(model, leader=False):
    return [r for r in model.history if (r.unit == model.leader) == leader and r.remote_unit
            and r.hook in ("certificates-relation-joined", "certificates-relation-changed")]


def _non_leader_peer_hooks(model):
    return _peer_hooks(model)


def _leaf(model, unit):
    """The unit's installed certificate (the first of its chain file), unchecked."""
    return pki.load_certificates(unit_files(model, unit)["cert"].read_text())[0]


def _bags_read(run):
    return [_owner(c) for c in run.calls if c[0] == "relation-get"]


def _deploy(make_model, units):
    model = make_model(fast_start=True)
    model.deploy(units)
    model.settle()
    assert sorted(json.loads(model.app_data()["certificates"])) == model.unit_names
    return model


def test_a_non_leader_peer_hook_reads_the_same_few_bags_at_3_and_8_units(make_model):
    most = {}
    for units in (3, 8):
        model = _deploy(make_model, units)
        runs = _non_leader_peer_hooks(model)
        assert len(runs) >= 2 * (units - 1) * (units - 2)  # joined + changed per pair
        for run in runs:
            read = [_owner(c) for c in run.calls if c[0] == "relation-get"]
            allowed = {run.unit, run.remote_unit, model.app}
            assert set(read) <= allowed, (units, run.unit, run.hook, run.remote_unit, read)
            assert len(read) == len(set(read)), (run.hook, read)  # each bag once
        most[units] = max(sum(c[0] == "relation-get" for c in r.calls) for r in runs)
    assert most[3] == most[8] <= 3, most


def test_a_leader_peer_hook_reads_the_same_few_bags_at_3_and_8_units(make_model):
    """Only the leader's first look at the relation reads every bag; every later peer
    hook of the leader reads the peer's bag, its own and the app bag, at any N."""
    most = {}
    for units in (3, 8):
        model = _deploy(make_model, units)
        runs = _peer_hooks(model, leader=True)
        assert len(runs) >= 2 * (units - 1)  # joined + changed for every peer at least
        wide = []
        for run in runs:
            read = _bags_read(run)
            assert len(read) == len(set(read)), (run.hook, read)  # each bag once
            if not set(read) <= {run.unit, run.remote_unit, model.app}:
                wide.append(run)
        assert len(wide) <= 1, [(r.hook, r.remote_unit, _bags_read(r)) for r in wide]
        most[units] = max(len(_bags_read(r)) for r in runs if r not in wide)
    assert most[3] == most[8] <= 3, most


def test_a_peer_change_the_leader_skipped_is_signed_at_the_next_update_status(make_model):
    """``juju resolved`` without a retry counts the failed hook as run: Juju records the
    peer's version as seen, but unitdata (the leader's kept bags) rolled back. The moved
    unit's new CSR is therefore not seen in a peer hook; the next hook that is not a
    peer hook (update-status) reads every bag again and signs it."""
    model = _deploy(make_model, 3)
    moved = next(u for u in model.unit_names if u != model.leader)
    before = _leaf(model, moved).serial_number
    # "before": the hook fails before the charm runs, so the leader's unitdata keeps the
    # old bags (a hook that raises does not flush unitdata either)
    model.fail_next(model.leader, "certificates-relation-changed", when="before")
    model.set_address(moved, "127.0.1.200")
    with pytest.raises(HookFailed) as failed:
        model.settle(max_failures=1)
    assert failed.value.run.remote_unit == moved
    model.resolve(model.leader, retry=False)
    model.settle()
    assert _leaf(model, moved).serial_number == before  # not seen yet
    model.tick_update_status(units=[model.leader])  # the leader's sweep alone
    after = check_certificates(model)[moved]
    assert after.serial_number != before
    assert "127.0.1.200" in pki.certificate_names(after)[1]


def test_leadership_away_and_back_while_peers_change(make_model):
    """The leader's kept bags across leadership moving away and back while peers publish
    new CSRs (address moves), then a unit removed: every unit ends with a certificate for
    its current address."""
    model = make_model(fast_start=True)
    model.deploy(4)
    model.settle()
    first = model.leader
    others = [u for u in model.unit_names if u != first]
    model.set_leader(others[0])
    model.set_address(others[1], "127.0.1.201")
    model.settle()
    model.set_leader(first)
    model.set_address(others[2], "127.0.1.202")
    model.set_address(others[0], "127.0.1.200")
    model.settle()
    certs = check_certificates(model)
    assert set(certs) == set(model.unit_names)
    model.remove_unit(others[2])
    model.settle()
    check_certificates(model)


def test_leadership_lost_in_a_peer_hook_resolved_without_retry(make_model):
    """A leader deposed during its hook about a moved peer, the hook skipped, then the
    leadership given back to it: it starts from a full read and signs the moved peer."""
    model = make_model(fast_start=True)
    model.deploy(3)
    model.settle()
    first = model.leader
    moved = next(u for u in model.unit_names if u != first)
    model.lose_leadership_during(first, "certificates-relation-changed")
    model.set_address(moved, "127.0.1.210")
    with pytest.raises(HookFailed) as failed:
        model.settle(max_failures=1)
    assert failed.value.run.unit == first
    model.resolve(first, retry=False)
    model.settle()
    model.set_leader(first)  # back to the unit whose failed hook was skipped
    model.settle()
    certs = check_certificates(model)
    assert set(certs) == set(model.unit_names)
