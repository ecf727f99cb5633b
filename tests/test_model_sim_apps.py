"""The model with several applications: relations between them, per-application leader
and config, app bags per side, relation-created/joined/changed/departed/broken on both
sides, goal-state. Two tiny shell-script charms (no build, fast): ``dispatch`` logs every
hook with the relation variables to ``$SIM_UNIT_ROOT/hooks.log``."""
import json

import pytest
from model import Model

SERVER = """\
name: server
summary: s
description: s
peers:
  ring:
    interface: ring
provides:
  feed:
    interface: feed
"""
CLIENT = """\
name: client
summary: c
description: c
requires:
  feed-in:
    interface: feed
"""
CONFIG = "options:\n  name: {type: string, default: x, description: d}\n"
DISPATCH = """#!/bin/sh
h=${JUJU_DISPATCH_PATH#hooks/}
echo "$h ${JUJU_RELATION_ID:--} ${JUJU_REMOTE_UNIT:--} ${JUJU_REMOTE_APP:--}\
 ${JUJU_DEPARTING_UNIT:--}" >> "$SIM_UNIT_ROOT/hooks.log"
true
"""


def make_charm(path, meta):
    path.mkdir()
    (path / "metadata.yaml").write_text(meta)
    (path / "config.yaml").write_text(CONFIG)
    (path / "dispatch").write_text(DISPATCH)
    (path / "dispatch").chmod(0o755)
    return path


@pytest.fixture
def model(tmp_path):
    """server (2 units, server/0 leads) and client (2 units, client/0 leads), settled,
    not related yet."""
    m = Model(make_charm(tmp_path / "server", SERVER), tmp_path, seed=1, first_leader="first")
    m.add_application(make_charm(tmp_path / "client", CLIENT), config={"name": "c"})
    m.deploy(2)
    m.deploy(2, app="client")
    m.settle()
    return m


def hooks(m, unit):
    """[(hook, relation id, remote unit, remote app, departing unit)] as the unit saw them."""
    path = m.unit(unit).root / "hooks.log"
    return [tuple(line.split()) for line in path.read_text().splitlines()]


def rel_hooks(m, unit, rid):
    return [h for h in hooks(m, unit) if h[1].endswith(f":{rid}")]


def run(m, unit, *argv, relation=None, remote=""):
    with m.hook_context(unit, relation=relation, remote=remote) as tool:
        proc = tool(*argv)
    return proc


def test_each_application_has_its_own_leader_config_addresses_and_peers(model):
    m = model
    assert m.leader == "server/0" and m.leader_of("client") == "client/0"
    assert m.unit_names == ["server/0", "server/1"]
    assert m.app_units("client") == ["client/0", "client/1"]
    assert run(m, "client/0", "is-leader", "--format=json").stdout.strip() == "true"
    assert run(m, "server/1", "is-leader", "--format=json").stdout.strip() == "false"
    assert json.loads(run(m, "client/1", "config-get", "--format=json").stdout) == {"name": "c"}
    assert json.loads(run(m, "server/1", "config-get", "--format=json").stdout) == {"name": "x"}
    assert run(m, "client/1", "unit-get", "private-address").stdout.strip() == "127.0.2.2"
    # the client has no peer relation; the server's ring lists server units only
    assert json.loads(run(m, "client/0", "relation-ids", "ring", "--format=json").stdout) == []
    assert m.relation_list("server/0", "ring") == ["server/1"]
    m.set_config({"name": "d"}, app="client")
    assert m.pending() == {"client/0": "config-changed", "client/1": "config-changed"}
    m.settle()
    m.set_leader("client/1")
    assert set(m.pending()) == {"client/0", "client/1"}  # leader-elected / -settings-changed


def test_integrate_runs_created_first_then_joined_and_changed_on_both_sides(model):
    m = model
    rid = m.integrate("server:feed", "client")
    m.settle()
    for unit, ep, others, app in (("server/0", "feed", ["client/0", "client/1"], "client"),
                                  ("client/1", "feed-in", ["server/0", "server/1"], "server")):
        seen = rel_hooks(m, unit, rid)
        # relation-created before any other hook of the relation, no remote unit
        assert seen[0] == (f"{ep}-relation-created", f"{ep}:{rid}", "-", app, "-")
        for other in others:  # joined then changed for each remote unit
            i = seen.index((f"{ep}-relation-joined", f"{ep}:{rid}", other, app, "-"))
            assert seen[i + 1] == (f"{ep}-relation-changed", f"{ep}:{rid}", other, app, "-")
        assert m.relation_list(unit, rid) == others
        assert json.loads(run(m, unit, "relation-list", "-r", rid, "--app",
                              "--format=json").stdout) == app
        assert json.loads(run(m, unit, "relation-ids", ep, "--format=json").stdout) == \
            [f"{ep}:{rid}"]


def test_a_unit_added_later_joins_the_relation_after_install(model):
    m = model
    rid = m.integrate("server:feed", "client:feed-in")
    m.settle()
    new = m.add_unit(app="client")
    m.settle()
    seen = [h[0] for h in hooks(m, new)]
    assert seen.index("feed-in-relation-created") == 1  # right after install
    assert seen.count("feed-in-relation-joined") == 2
    for server in m.unit_names:
        assert ("feed-relation-joined", f"feed:{rid}", new, "client", "-") in \
            rel_hooks(m, server, rid)


def test_a_non_peer_app_bag_is_the_leaders_and_its_writes_wake_the_other_side(model):
    m = model
    rid = m.integrate("server:feed", "client:feed-in")
    m.settle()
    # readLocalApplicationSettings: only the leader reads (and writes) its own app bag
    denied = run(m, "server/1", "relation-get", "-r", rid, "--app", "-", "server")
    assert denied.returncode == 1 and "permission denied" in denied.stderr
    assert run(m, "server/1", "relation-set", "-r", rid, "--app", "k=v").returncode == 1
    assert run(m, "server/0", "relation-set", "-r", rid, "--app", "k=v").returncode == 0
    assert m.app_data(rid, "server") == {"k": "v"}
    # the remote app's units are woken with JUJU_REMOTE_UNIT empty, no server unit is
    assert m.pending() == {"client/0": "feed-in-relation-changed",
                           "client/1": "feed-in-relation-changed"}
    m.settle()
    assert rel_hooks(m, "client/1", rid)[-1] == ("feed-in-relation-changed", f"feed-in:{rid}",
                                                 "-", "server", "-")
    # any unit of the other side reads the remote app bag (and its units' bags)
    for unit in ("client/0", "client/1"):
        got = run(m, unit, "relation-get", "-r", rid, "--app", "--format=json", "-", "server")
        assert json.loads(got.stdout) == {"k": "v"}
        unit_bag = run(m, unit, "relation-get", "-r", rid, "--format=json", "-", "server/1")
        assert json.loads(unit_bag.stdout)["private-address"] == "127.0.1.2"
    # in an app-bag relation-changed, relation-get with no unit reads the remote app bag
    got = run(m, "client/0", "relation-get", "--format=json", "k", relation=rid)
    assert json.loads(got.stdout) == "v"


def test_removing_a_relation_departs_every_member_then_breaks_on_both_sides(model):
    m = model
    rid = m.integrate("server:feed", "client:feed-in")
    m.settle()
    m.remove_relation(rid)
    m.settle()
    for unit, ep, others, app in (("server/1", "feed", ["client/0", "client/1"], "client"),
                                  ("client/0", "feed-in", ["server/0", "server/1"], "server")):
        tail = rel_hooks(m, unit, rid)[-3:]
        assert tail == [(f"{ep}-relation-departed", f"{ep}:{rid}", o, app, o) for o in others] \
            + [(f"{ep}-relation-broken", f"{ep}:{rid}", "-", app, "-")]
        assert json.loads(run(m, unit, "relation-ids", ep, "--format=json").stdout) == []
    assert rid not in m.relation_ids()
    assert not m.pending()


def test_a_removed_unit_departs_and_breaks_and_the_other_side_sees_it_depart(model):
    m = model
    rid = m.integrate("server:feed", "client:feed-in")
    m.settle()
    m.remove_unit("client/1")
    m.settle()
    gone = [h for h in hooks(m, "client/1") if h[1] != "-" or h[0] in ("stop", "remove")]
    assert gone[-5:] == [
        ("feed-in-relation-departed", f"feed-in:{rid}", "server/0", "server", "client/1"),
        ("feed-in-relation-departed", f"feed-in:{rid}", "server/1", "server", "client/1"),
        ("feed-in-relation-broken", f"feed-in:{rid}", "-", "server", "-"),
        ("stop", "-", "-", "-", "-"), ("remove", "-", "-", "-", "-")]
    for server in m.unit_names:
        assert rel_hooks(m, server, rid)[-1] == ("feed-relation-departed", f"feed:{rid}",
                                                 "client/1", "client", "client/1")
        assert m.relation_list(server, rid) == ["client/0"]


def test_goal_state_lists_the_relation_with_the_remote_app_and_units(model):
    m = model
    m.integrate("server:feed", "client:feed-in")
    m.settle()
    goal = json.loads(run(m, "client/0", "goal-state", "--format=json").stdout)
    assert sorted(goal["units"]) == ["client/0", "client/1"]
    feed = goal["relations"]["feed-in"]
    assert sorted(feed) == ["server", "server/0", "server/1"]
    assert feed["server"]["status"] == "joined"
    # peer relations are left out
    assert sorted(json.loads(run(m, "server/0", "goal-state", "--format=json").stdout)
                  ["relations"]) == ["feed"]


def test_integrating_before_install_queues_created_after_install(tmp_path):
    m = Model(make_charm(tmp_path / "server", SERVER), tmp_path, seed=2, first_leader="first")
    m.add_application(make_charm(tmp_path / "client", CLIENT))
    m.deploy(1)
    m.deploy(1, app="client")
    rid = m.integrate("server", "client")  # no unit has run a hook yet
    m.settle()
    for unit, ep in (("server/0", "feed"), ("client/0", "feed-in")):
        seen = [h[0] for h in hooks(m, unit)]
        # with the boot's relation-created hooks, right after install (the server's
        # peer relation first: it is older)
        created = seen.index(f"{ep}-relation-created")
        assert seen[0] == "install" and set(seen[1:created]) <= {"ring-relation-created"}
        assert seen.index(f"{ep}-relation-joined") > seen.index("start")
    assert m.relation_list("client/0", rid) == ["server/0"]


def test_removing_an_application_breaks_its_relations_and_removes_its_units(model):
    m = model
    rid = m.integrate("server:feed", "client:feed-in")
    m.settle()
    m.remove_application("client")
    m.settle()
    assert m.app_units("client") == []
    for server in m.unit_names:
        tail = rel_hooks(m, server, rid)[-3:]
        assert [h[0] for h in tail] == ["feed-relation-departed", "feed-relation-departed",
                                        "feed-relation-broken"], tail
        assert [h[0] for h in rel_hooks(m, server, rid)].count("feed-relation-departed") == 2
    for client in ("client/0", "client/1"):
        seen = [h[0] for h in hooks(m, client)]
        assert seen[-2:] == ["stop", "remove"], seen
        assert seen.count("feed-in-relation-broken") == 1, seen
        assert seen.count("feed-in-relation-departed") == 2, seen
    assert rid not in m.relation_ids() and not m.pending()


def test_a_secret_granted_over_the_relation_is_readable_by_the_other_application(model):
    m = model
    rid = m.integrate("server:feed", "client:feed-in")
    m.settle()
    uri = run(m, "server/0", "secret-add", "token=s3cr3t").stdout.strip()
    denied = run(m, "client/1", "secret-get", uri)
    assert denied.returncode == 1, denied
    # secret-grant -r <rid> without --unit / --app: the application at the other end
    assert run(m, "server/0", "secret-grant", "-r", rid, uri).returncode == 0
    got = run(m, "client/1", "secret-get", uri, "--format=json")
    assert json.loads(got.stdout) == {"token": "s3cr3t"}
    info = json.loads(run(m, "server/0", "secret-info-get", uri, "--format=json").stdout)
    (entry,) = info.values()
    assert entry["access"] == [{"target": "application-client",
                                "scope": "relation-client.feed-in#server.feed",
                                "role": "view"}]
    assert run(m, "server/1", "secret-get", uri).returncode == 0  # the owner's units read
    assert run(m, "client/0", "secret-set", uri, "token=x").returncode == 1  # not its own
