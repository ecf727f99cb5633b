"""What a peer relation hook of the built tls-demo charm reads, at two sizes.

Juju runs relation-changed for a peer whenever its bag changed, and relation-joined is
always followed by relation-changed for the same unit (worker/uniter/relation/resolver.go
``nextHookForRelation``), so a non-leader's hook about peer X needs X's bag, its own and
the app bag, never every peer's: the relation-get calls of such a hook must not grow with
the number of units (charms.reactive's ``Endpoint._manage_flags`` alone read every joined
unit's bag in each of them; interface-tls/peers.py ``TlsPeers._manage_endpoint_flags``).
"""
import json

import pytest

pytestmark = pytest.mark.model


def _owner(call):
    """The bag a ``relation-get`` call reads: its last argument (unit or app name)."""
    return call[-1]


def _non_leader_peer_hooks(model):
    return [r for r in model.history if r.unit != model.leader and r.remote_unit
            and r.hook in ("certificates-relation-joined", "certificates-relation-changed")]


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
