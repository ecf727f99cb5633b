"""The model simulator with a real built charm (tests/layers/peer-echo, charm-build)."""
import json
from pathlib import Path

import pytest
from model import HookFailed, Model, build_charm

PEER_ECHO = Path(__file__).resolve().parent / "layers" / "peer-echo"


@pytest.fixture(scope="module")
def charm():
    return build_charm(PEER_ECHO)


def expected_status(units, leader, token=True):
    return {"status": "active",
            "message": f"peers={units - 1} members={units} leader={leader} "
                       f"token={'s3cret-' + leader if token else '-'}"}


@pytest.mark.model
def test_one_unit_runs_the_built_charm(charm, tmp_path):
    assert (charm / "hooks" / "echo-relation-changed").exists()
    m = Model(charm, tmp_path, seed=3)
    m.deploy(1)
    stats = m.settle()
    # the leader's own app-bag write wakes it too (state/relationunit.go
    # CounterpartApplications: in a peer relation the counterpart application is its own)
    assert stats.per_hook == {"install": 1, "echo-relation-created": 1, "leader-elected": 1,
                              "config-changed": 1, "start": 1, "echo-relation-changed": 1}
    assert m.status("peer-echo/0") == expected_status(1, "peer-echo/0")
    bag = m.relation_data("peer-echo/0")
    assert bag["hostname"] == "juju-" + m.uuid[:6] + "-0"  # the per-unit hostname shim
    assert bag["greeting"] == "hello from the layer options"  # charms.layer.options
    assert bag["address"] == "127.0.1.1"
    (secret,) = m.secrets().values()
    assert secret["label"] == "echo-token" and secret["owner"] == "application"
    assert "Invoking reactive handler" in m.hook_log("peer-echo/0")
    result = m.run_action("peer-echo/0", "echo", {"message": "ping"})
    assert result["status"] == "completed", result["stderr"]
    assert result["results"] == {"echo": "ping", "meta": {"unit": "peer-echo"}}
    assert m.run_action("peer-echo/0", "echo", {"message": "fail"})["status"] == "failed"


@pytest.mark.model
@pytest.mark.slow
def test_three_units_settle_move_leadership_and_retry_a_failed_hook(charm, tmp_path):
    m = Model(charm, tmp_path, seed=7, first_leader="first")  # the checks name unit 0
    m.deploy(3)
    stats = m.settle()
    assert stats.failures == 0
    for unit in m.unit_names:
        assert m.status(unit) == expected_status(3, "peer-echo/0"), m.hook_log(unit)
    members = json.loads(m.app_data()["members"])
    assert members == [f"peer-echo/{i}=juju-{m.uuid[:6]}-{i}" for i in range(3)]

    m.set_leader("peer-echo/2")
    m.set_config({"fail-hook": "leader-settings-changed"})
    with pytest.raises(HookFailed, match="leader-settings-changed"):
        m.settle(max_failures=2)
    m.set_config({"fail-hook": ""})  # the operator fixes config; the retry then succeeds
    for unit in m.unit_names:
        m.resolve(unit, retry=True)
    m.settle()
    assert m.leader_settings() == {"leader": "peer-echo/2"}
    # the secret stays the application's: the new leader finds it by label
    assert len(m.secrets()) == 1
    for unit in m.unit_names:
        assert m.status(unit) == {"status": "active", "message":
                                  "peers=2 members=3 leader=peer-echo/2 token=s3cret-peer-echo/0"}

    m.remove_unit("peer-echo/0")
    m.add_unit()
    m.settle()
    assert m.unit_names == ["peer-echo/1", "peer-echo/2", "peer-echo/3"]
    assert m.relation_data("peer-echo/0")["hostname"]  # a departed unit's bag stays readable
    assert "peer-echo/3=" in m.app_data()["members"]


@pytest.mark.model
@pytest.mark.slow
def test_juju_29_model_has_no_secrets(charm, tmp_path):
    m = Model(charm, tmp_path, seed=1, secrets_supported=False)
    m.deploy(2)
    m.settle()
    assert m.secrets() == {}
    assert m.status("peer-echo/1") == expected_status(2, "peer-echo/0", token=False)
