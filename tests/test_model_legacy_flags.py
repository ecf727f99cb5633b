"""A charm that reacts only to the legacy interface:tls flags, with one-shot state of its
own (tests/layers/legacy-peers), under Juju's rules in the simulated model: no relation
during install, the leader woken by its own app-bag writes, a seeded first leader. Each
unit must make exactly one key and one CSR, and store a certificate for that key."""
import pathlib

import pytest
from charmhelpers.core import unitdata
from charms.layer.tls import pki
from model import Model, build_charm

pytestmark = [pytest.mark.model, pytest.mark.slow]
LAYER = pathlib.Path(__file__).parent / "layers" / "legacy-peers"


@pytest.fixture(scope="module")
def legacy_charm():
    return build_charm(LAYER)


def unit_kv(model, name):
    kv = unitdata.Storage(str(model.unit(name).charm_dir / ".unit-state.db"))
    try:
        return {k: kv.get(k) for k in ("legacy-peers.key", "legacy-peers.cert",
                                       "legacy-peers.keys-made", "legacy-peers.csrs-sent")}
    finally:
        kv.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_key_one_csr_and_a_matching_certificate_on_every_unit(legacy_charm, tmp_path,
                                                                   seed):
    model = Model(legacy_charm, tmp_path, seed=seed)
    model.deploy(3)
    model.settle()
    model.add_unit()
    model.settle()
    ca = pki.load_certificate(model.leader_settings()["legacy-peers-ca-cert"])
    for name in model.unit_names:
        state = unit_kv(model, name)
        assert state["legacy-peers.keys-made"] == 1, (name, state)
        assert state["legacy-peers.csrs-sent"] == 1, (name, state)
        assert state["legacy-peers.cert"], f"{name} stored no certificate"
        cert = pki.load_certificate(state["legacy-peers.cert"])
        key = pki.load_private_key(state["legacy-peers.key"])
        assert pki.certificate_matches_key(cert, key), f"{name}: certificate for another key"
        assert cert.issuer == ca.subject
