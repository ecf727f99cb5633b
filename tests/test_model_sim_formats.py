"""Output formats and argument rules of the simulated hook tools, checked against Juju 3.6's
source (worker/uniter/runner/jujuc/*.go), and the upgrade-charm hook order
(worker/uniter/resolver.go). Same tiny shell charm as tests/test_model_sim.py."""
import json

import pytest
import yaml
from model import Model
from test_model_sim import hooks_seen, make_charm

SINCE = "1970-01-01 00:00:00Z"


@pytest.fixture
def model(tmp_path):
    def make(units=2, **kw):
        kw.setdefault("first_leader", "first")  # these tests name fake/0 the leader
        m = Model(make_charm(tmp_path / "charm"), tmp_path, seed=0, **kw)
        m.deploy(units)
        m.settle()
        return m
    return make


# ------------------------------------------------------------------ secret-info-get

def test_secret_info_get_always_has_label_and_is_keyed_by_id(model):
    m = model()
    with m.hook_context("fake/0") as tool:
        xid = tool("secret-add", "key=v").stdout.strip().rsplit("/", 1)[-1]
        out = tool("secret-info-get", "secret:" + xid, "--format=json").stdout
        assert out == '{"' + xid + '":{"label":"","owner":"application","revision":1}}\n'
        yml = tool("secret-info-get", xid).stdout  # yaml by default
        assert yml == f'{xid}:\n  label: ""\n  owner: application\n  revision: 1\n'
        assert tool("secret-info-get", xid, "--format=smart").returncode == 2


def test_secret_info_get_uri_and_label_together_is_a_usage_error(model):
    m = model()
    with m.hook_context("fake/0") as tool:
        uri = tool("secret-add", "--label", "ca", "key=v").stdout.strip()
        r = tool("secret-info-get", uri, "--label", "ca")
        assert (r.returncode, r.stderr) == (
            2, "ERROR specify either a secret URI or label but not both\n")
        r = tool("secret-info-get", uri, "extra")
        assert (r.returncode, r.stderr) == (2, 'ERROR unrecognized args: ["extra"]\n')
        info = json.loads(tool("secret-info-get", "--label", "ca", "--format=json").stdout)
        assert info == {uri.rsplit("/", 1)[-1]: {"label": "ca", "owner": "application",
                                                "revision": 1}}


def test_secret_info_get_is_not_found_for_who_does_not_own_it(model):
    m = model()
    with m.hook_context("fake/0") as tool:
        uri = tool("secret-add", "--label", "ca", "key=v").stdout.strip()
        tool("secret-grant", uri, "-r", "ring:0", "--unit", "fake/1")
    xid = uri.rsplit("/", 1)[-1]
    with m.hook_context("fake/0") as tool:
        info = json.loads(tool("secret-info-get", uri, "--format=json").stdout)[xid]
    assert info["access"] == [{"role": "view", "scope": "relation-fake.ring",
                               "target": "unit-fake-1"}]
    with m.hook_context("fake/1") as tool:  # not the leader: not in its secret metadata
        assert tool("secret-get", uri, "key").stdout == "v\n"  # reading is still allowed
        r = tool("secret-info-get", uri)
        assert (r.returncode, r.stderr) == (1, f'ERROR secret "{xid}" not found\n')
        r = tool("secret-info-get", "--label", "ca")
        assert (r.returncode, r.stderr) == (1, 'ERROR secret "ca" not found\n')
        own = tool("secret-add", "--owner", "unit", "key=u").stdout.strip()
        assert json.loads(tool("secret-info-get", own, "--format=json").stdout)[
            own.rsplit("/", 1)[-1]]["owner"] == "unit"
    with m.hook_context("fake/0") as tool:  # a unit-owned secret of another unit
        assert tool("secret-info-get", own).returncode == 1


# ------------------------------------------------------------------ secret-ids

def test_secret_ids_smart_by_default_bare_ids_and_none(model):
    m = model()
    with m.hook_context("fake/0") as tool:
        assert tool("secret-ids").stdout == ""
        assert tool("secret-ids", "--format=yaml").stdout == "[]\n"
        assert tool("secret-ids", "--format=json").stdout == "null\n"
        assert tool("secret-ids", "x").returncode == 2
        a = tool("secret-add", "key=1").stdout.strip().rsplit("/", 1)[-1]
        b = tool("secret-add", "key=2").stdout.strip().rsplit("/", 1)[-1]
        # created in this hook, not yet committed: listed already
        assert tool("secret-ids").stdout == "".join(f"{x}\n" for x in sorted([a, b]))
        assert yaml.safe_load(tool("secret-ids", "--format=yaml").stdout) == sorted([a, b])
    with m.hook_context("fake/0") as tool:
        assert tool("secret-set", "secret:" + a, "key=3").returncode == 0  # revision 2
    with m.hook_context("fake/0", commit=False) as tool:
        tool("secret-remove", "secret:" + a, "--revision", "1")
        assert tool("secret-ids").stdout == f"{b}\n"  # any pending remove hides it
        tool("secret-set", "secret:" + a, "--description", "d")
        assert tool("secret-ids").stdout == "".join(f"{x}\n" for x in sorted([a, b]))
    with m.hook_context("fake/1") as tool:
        assert tool("secret-ids").stdout == ""


# ------------------------------------------------------------------ status-get

def test_status_get_prints_only_the_status_without_include_data(model):
    m = model()
    with m.hook_context("fake/0") as tool:
        tool("status-set", "active", "all good")
        assert tool("status-get").stdout == "active\n"
        assert tool("status-get", "--format=json").stdout == '{"status":"active"}\n'
        assert tool("status-get", "--format=yaml").stdout == "status: active\n"
        assert tool("status-get", "--include-data", "--format=json").stdout == (
            '{"message":"all good","status":"active","status-data":{}}\n')
        assert tool("status-get", "--include-data").stdout == (
            "message: all good\nstatus: active\nstatus-data: {}\n")
        r = tool("status-get", "status")
        assert (r.returncode, r.stderr) == (2, 'ERROR unrecognized args: ["status"]\n')
        assert tool("status-get", "--application").stdout == "unknown\n"
        tool("status-set", "--application", "blocked", "need x")
        assert tool("status-get", "--application").stdout == "blocked\n"
        app = json.loads(tool("status-get", "--application", "--format=json").stdout)
        assert app == {"application-status": {
            "status": "blocked", "units": {"fake/0": {"status": "active"},
                                           "fake/1": {"status": "waiting"}}}}
        app = json.loads(tool("status-get", "--application", "--include-data",
                              "--format=json").stdout)["application-status"]
        assert app["message"] == "need x" and app["units"]["fake/0"] == {
            "message": "all good", "status": "active", "status-data": {}}
    with m.hook_context("fake/1") as tool:
        assert tool("status-get", "--application").returncode == 1


# ------------------------------------------------------------------ goal-state

def test_goal_state_unit_statuses_dying_units_and_no_peer_relations(model):
    m = model(units=3)
    with m.hook_context("fake/0") as tool:
        tool("status-set", "active", "")
    m.remove_unit("fake/2")  # dying until its remove hook ran
    with m.hook_context("fake/0") as tool:
        goal = json.loads(tool("goal-state", "--format=json").stdout)
        assert goal == {"units": {"fake/0": {"status": "active", "since": SINCE},
                                  "fake/1": {"status": "waiting", "since": SINCE},
                                  "fake/2": {"status": "dying", "since": SINCE}},
                        "relations": {}}
        out = tool("goal-state").stdout  # yaml by default
        assert "relations: {}\n" in out and f'since: "{SINCE}"' in out
        assert tool("goal-state", "--format=smart").returncode == 2
        assert tool("goal-state", "x").returncode == 2
    m.settle()
    with m.hook_context("fake/0") as tool:  # dead units are left out
        goal = json.loads(tool("goal-state", "--format=json").stdout)
    assert sorted(goal["units"]) == ["fake/0", "fake/1"]


# ------------------------------------------------------------------ relation-get

def test_relation_get_application_name_without_app_flag_is_a_usage_error(model):
    m = model()
    with m.hook_context("fake/1", relation="ring", remote="fake/0") as tool:
        r = tool("relation-get", "k", "fake")
        assert (r.returncode, r.stderr) == (
            2, 'ERROR expected unit name, got application name "fake"\n')
        r = tool("relation-get", "-", "Not_A_Unit")
        assert (r.returncode, r.stderr) == (2, 'ERROR invalid unit name "Not_A_Unit"\n')
        assert tool("relation-get", "--app", "k", "fake").returncode == 0
        assert tool("relation-get", "k", "fake/0").returncode == 0


# ------------------------------------------------------------------ hook order

def test_leadership_hooks_run_before_upgrade_charm(model):
    m = model()
    m.set_leader("fake/1")
    m.upgrade_charm()
    before = {u: len(hooks_seen(m, u)) for u in ("fake/0", "fake/1")}
    m.settle()
    assert [h.split()[0] for h in hooks_seen(m, "fake/1")[before["fake/1"]:]] == [
        "leader-elected", "upgrade-charm", "config-changed"]
    assert [h.split()[0] for h in hooks_seen(m, "fake/0")[before["fake/0"]:]] == [
        "leader-settings-changed", "upgrade-charm", "config-changed"]


def test_config_changed_follows_upgrade_charm_before_anything_else(model):
    m = model()
    m.set_config({"size": 5})
    m.upgrade_charm()
    u = m.units["fake/0"]
    assert m.pending()["fake/0"] == "upgrade-charm"
    m._run(u, m._next(u))
    m.set_leader("fake/1")  # leader-settings-changed now pending on fake/0
    assert m.pending()["fake/0"] == "config-changed"
    m.settle()
    tail = [h.split()[0] for h in hooks_seen(m, "fake/0")[-3:]]
    assert tail == ["upgrade-charm", "config-changed", "leader-settings-changed"]
    assert m.hook_counts("fake/0")["config-changed"] == 2  # deploy + one after the upgrade
