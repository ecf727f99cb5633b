"""The model simulator's tools and rules, with a tiny shell-script charm (no build, fast).

The fake charm's ``dispatch`` logs every hook to ``$SIM_UNIT_ROOT/hooks.log`` and then sources
``on-hook`` from its charm dir, so each test can script what its units do.
"""
import json
import os
import re
import subprocess

import pytest
from jujurules import install
from model import HookFailed, Model

META = """\
name: fake
summary: fake
description: fake
peers:
  ring:
    interface: fake-ring
"""
CONFIG = """\
options:
  name: {type: string, default: x, description: d}
  size: {type: int, default: 3, description: d}
  ratio: {type: float, default: 0.5, description: d}
  flag: {type: boolean, default: false, description: d}
  nothing: {type: string, description: d}
"""
DISPATCH = """#!/bin/sh
h=${JUJU_DISPATCH_PATH#hooks/}
echo "$h ${JUJU_REMOTE_UNIT:--} ${JUJU_DEPARTING_UNIT:--}" >> "$SIM_UNIT_ROOT/hooks.log"
if [ -f "$CHARM_DIR/on-hook" ]; then . "$CHARM_DIR/on-hook"; fi
true
"""


def make_charm(path, on_hook=""):
    path.mkdir()
    (path / "metadata.yaml").write_text(META)
    (path / "config.yaml").write_text(CONFIG)
    (path / "dispatch").write_text(DISPATCH)
    (path / "dispatch").chmod(0o755)
    (path / "on-hook").write_text(on_hook)
    (path / "actions.yaml").write_text("do:\n  params:\n    x: {type: string, default: y}\n")
    return path


@pytest.fixture
def model(tmp_path):
    def make(on_hook="", units=0, seed=0, settle=True, **kw):
        kw.setdefault("first_leader", "first")  # these tests name fake/0 the leader
        m = Model(make_charm(tmp_path / "charm", on_hook), tmp_path, seed=seed, **kw)
        if units:
            m.deploy(units)
            if settle:
                m.settle()
        return m
    return make


def hooks_seen(m, unit):
    path = m.unit(unit).root / "hooks.log"
    return path.read_text().splitlines() if path.exists() else []


# ------------------------------------------------------------------ tool formats and exit codes

def test_formats_of_leadership_config_addresses(model):
    m = model(units=2)
    with m.hook_context("fake/0") as tool:
        assert tool("is-leader", "--format=json").stdout == "true\n"
        assert tool("is-leader").stdout == "True\n"
        cfg = json.loads(tool("config-get", "--all", "--format=json").stdout)
        assert cfg == {"name": "x", "size": 3, "ratio": 0.5, "flag": False, "nothing": None}
        assert "nothing" not in json.loads(tool("config-get", "--format=json").stdout)
        assert tool("config-get", "size", "--format", "json").stdout == "3\n"
        assert tool("unit-get", "--format=json", "private-address").stdout == '"127.0.1.1"\n'
        assert tool("relation-ids", "--format=json", "ring").stdout == '["ring:0"]\n'
        assert tool("relation-ids", "--format=json", "nope").stdout == "[]\n"
        assert tool("relation-list", "--format=json", "-r", "ring:0").stdout == '["fake/1"]\n'
        net = json.loads(tool("network-get", "ring", "--format=json").stdout)
        assert net["ingress-addresses"] == ["127.0.1.1"]
        assert "macaddress" in tool("network-get", "ring", "--format", "yaml").stdout
        assert tool("network-get", "--primary-address", "ring").stdout == "127.0.1.1\n"
        assert tool("leader-get", "--format=json", "-").stdout == "{}\n"
        assert tool("leader-get", "--format=json", "k").stdout == "null\n"
        assert tool("jujud", "version").stdout.startswith("3.")
    with m.hook_context("fake/1") as tool:
        assert tool("is-leader", "--format=json").stdout == "false\n"


def test_go_json_escapes_and_sorted_keys(model):
    m = model(units=1)
    with m.hook_context("fake/0", relation="ring") as tool:
        assert tool("relation-set", "b=<x&y>", "a=1").returncode == 0
        out = tool("relation-get", "--format=json", "-", "fake/0").stdout
    assert out.startswith('{"a":"1","b":"\\u003cx\\u0026y\\u003e"')


def test_usage_errors_exit_2_and_run_errors_exit_1(model):
    m = model(units=2)
    with m.hook_context("fake/1") as tool:
        bad = tool("relation-get", "--bogus")
        assert bad.returncode == 2
        assert bad.stderr == "ERROR option provided but not defined: --bogus\n"
        assert tool("relation-get", "--format=json", "-", "fake/0").returncode == 2  # no -r
        r = tool("relation-get", "-r", "ring:99", "-", "fake/0")
        assert r.returncode == 2 and "unknown relation id" in r.stderr
        assert tool("relation-get", "-r", "ring:x", "-", "fake/0").returncode == 2
        assert tool("unit-get", "bogus").returncode == 2
        assert tool("status-set", "happy").returncode == 2
        r = tool("relation-set", "--app", "-r", "0", "k=v")
        assert (r.returncode, r.stderr) == (1, "ERROR cannot write relation settings\n")
        r = tool("leader-set", "k=v")
        assert r.returncode == 1 and "not the leader" in r.stderr
        assert tool("action-get").returncode == 1
        assert tool("relation-get", "-r", "0", "-", "other/0").returncode == 1
        helped = tool("relation-set", "--help")
        assert helped.returncode == 0 and "--file" in helped.stdout
    r = subprocess.run([str(m.bin / "jujutool.py"), "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown hook tool" in r.stderr


def test_relation_set_file_yaml_and_deletes(model, tmp_path):
    m = model(units=1)
    f = tmp_path / "s.yaml"
    f.write_text("a: |\n  line1\n  line2\nb: '2'\nc: null\n")
    with m.hook_context("fake/0", relation="ring") as tool:
        assert tool("relation-set", "c=3", "d=4").returncode == 0
        assert tool("relation-set", "--file", str(f), "d=").returncode == 0
        bag = json.loads(tool("relation-get", "--format=json", "-", "fake/0").stdout)
    assert bag["a"] == "line1\nline2\n" and bag["b"] == "2"
    assert "c" not in bag and "d" not in bag
    assert bag["private-address"] == "127.0.1.1" and bag["egress-subnets"] == "127.0.1.1/32"
    assert m.relation_data("fake/0")["a"] == "line1\nline2\n"


def test_tools_are_thin_clients_stdin_and_relative_files_as_the_hook_sees_them(model):
    """The tools on PATH are clients of the model's server (jujurules.server), the C one
    when it was built, else the Python one; both read stdin only for ``--file -`` and open
    a relative ``--file`` from the hook's working directory (the unit's charm dir)."""
    m = model(units=1)
    target = os.readlink(m.bin / "relation-get")
    assert target in ("jujutool.py", str(install.BUILD / "jujuc"))
    (m.unit("fake/0").charm_dir / "rel.yaml").write_text("r: relative\n")
    with m.hook_context("fake/0", relation="ring") as tool:
        for client in ([], [str(m.bin / "jujutool.py")]):
            done = tool(*client, "relation-set", "--file", "-", input="a: 1\nb: two\n")
            assert (done.returncode, done.stderr) == (0, "")
            assert tool(*client, "relation-set", "--file", "rel.yaml").returncode == 0
            missing = tool(*client, "relation-set", "--file", "nope.yaml")
            assert missing.returncode == 1
            assert "No such file or directory: 'nope.yaml'" in missing.stderr
            bag = json.loads(tool(*client, "relation-get", "--format=json", "-",
                                  "fake/0").stdout)
            assert (bag["a"], bag["b"], bag["r"]) == ("1", "two", "relative")
            assert tool(*client, "relation-set", "a=", "b=", "r=").returncode == 0
    assert "a" not in m.relation_data("fake/0")


# ------------------------------------------------------------------ commit rules

def test_writes_commit_only_on_exit_0_but_leader_set_and_status_are_immediate(model):
    m = model(units=2)
    with m.hook_context("fake/0", commit=False) as tool:
        assert tool("relation-set", "-r", "0", "k=v").returncode == 0
        assert tool("relation-set", "--app", "-r", "0", "a=b").returncode == 0
        assert tool("leader-set", "l=1").returncode == 0
        assert tool("status-set", "active", "hi").returncode == 0
        assert tool("open-port", "443/tcp").returncode == 0
        # within the hook: own bag and the leader's app bag show the pending writes
        assert tool("relation-get", "-r", "0", "k", "fake/0").stdout == "v\n"
        assert tool("relation-get", "--app", "-r", "0", "a", "fake").stdout == "b\n"
    assert "k" not in m.relation_data("fake/0") and m.app_data() == {}
    assert m.opened_ports("fake/0") == []
    assert m.leader_settings() == {"l": "1"}
    assert m.status("fake/0") == {"status": "active", "message": "hi"}
    assert m.pending() == {"fake/1": "leader-settings-changed"}


def test_two_writes_before_the_peer_looks_make_one_changed_with_the_latest(model):
    m = model(on_hook='[ "$h" = ring-relation-changed ] && '
                      'relation-get - "$JUJU_REMOTE_UNIT" >> "$SIM_UNIT_ROOT/seen"\n', units=2)
    before = hooks_seen(m, "fake/0")
    for value in ("1", "2"):
        with m.hook_context("fake/1", relation="ring") as tool:
            tool("relation-set", f"v={value}")
    with m.hook_context("fake/1", relation="ring") as tool:
        tool("relation-set", "v=2")  # no change: nothing queued
    m.settle()
    new = hooks_seen(m, "fake/0")[len(before):]
    assert new == ["ring-relation-changed fake/1 -"]
    assert "v: \"2\"" in (m.unit("fake/0").root / "seen").read_text()


def test_peer_app_data_change_wakes_every_unit_the_leader_included(model):
    """state/relationunit.go CounterpartApplications: in a peer relation the counterpart
    application is the unit's own, so the writing leader is woken too."""
    m = model(units=3)
    with m.hook_context("fake/0", relation="ring") as tool:
        assert tool("relation-set", "--app", "x=1").returncode == 0
    assert m.pending() == {u: "ring-relation-changed" for u in ("fake/0", "fake/1", "fake/2")}
    m.settle()
    for unit in ("fake/0", "fake/1"):
        assert hooks_seen(m, unit)[-1] == "ring-relation-changed - -"
    with m.hook_context("fake/1", relation="ring") as tool:  # peers may read the app bag
        assert tool("relation-get", "--app", "x", "fake").stdout == "1\n"
    with m.hook_context("fake/0", relation="ring") as tool:
        tool("relation-set", "--app", "x=1")  # unchanged: wakes no one
    assert m.pending() == {}


def test_remote_bags_are_a_cached_snapshot_until_a_hook_for_that_unit(model):
    m = model(units=3)
    with m.hook_context("fake/0", relation="ring", remote="fake/1") as tool:
        assert tool("relation-get", "v", "fake/2").stdout == ""  # cached: unset
    with m.hook_context("fake/2", relation="ring") as tool:
        tool("relation-set", "v=new")
    with m.hook_context("fake/0", relation="ring", remote="fake/1") as tool:
        assert tool("relation-get", "v", "fake/2").stdout == ""  # still the old snapshot
    m.settle()  # fake/0 runs ring-relation-changed for fake/2: cache refreshed
    with m.hook_context("fake/0", relation="ring", remote="fake/1") as tool:
        assert tool("relation-get", "v", "fake/2").stdout == "new\n"


# ------------------------------------------------------------------ hook order and lifecycle

def test_new_unit_hook_order(model):
    m = model(units=2)
    assert hooks_seen(m, "fake/0")[:5] == [
        "install - -", "ring-relation-created - -", "leader-elected - -",
        "config-changed - -", "start - -"]
    assert hooks_seen(m, "fake/1")[2] == "leader-settings-changed - -"
    joined = hooks_seen(m, "fake/0").index("ring-relation-joined fake/1 -")
    assert hooks_seen(m, "fake/0")[joined + 1] == "ring-relation-changed fake/1 -"


def test_same_seed_same_order_and_seeds_vary(model, tmp_path):
    orders = []
    for seed in (1, 1, 2, 3):
        m = Model(make_charm(tmp_path / f"c{len(orders)}"), tmp_path / f"m{len(orders)}",
                  seed=seed)
        m.deploy(3)
        orders.append(m.settle().order)
    assert orders[0] == orders[1]
    assert len({tuple(o) for o in orders}) >= 2


def test_remove_unit_departs_everywhere_and_its_bag_stays_readable(model):
    m = model(units=3)
    with m.hook_context("fake/2", relation="ring") as tool:
        tool("relation-set", "bye=1")
    m.settle()
    m.remove_unit("fake/2")
    m.settle()
    assert hooks_seen(m, "fake/0")[-1] == "ring-relation-departed fake/2 fake/2"
    own = hooks_seen(m, "fake/2")
    assert sorted(own[-4:-2]) == ["ring-relation-departed fake/0 fake/2",
                                  "ring-relation-departed fake/1 fake/2"]
    assert own[-2:] == ["stop - -", "remove - -"]
    assert m.unit_names == ["fake/0", "fake/1"]
    with m.hook_context("fake/0", relation="ring") as tool:
        assert tool("relation-list", "--format=json").stdout == '["fake/1"]\n'
        assert tool("relation-get", "bye", "fake/2").stdout == "1\n"


def test_leadership_moves(model):
    m = model(units=3)
    m.set_leader("fake/2")
    m.settle()
    assert hooks_seen(m, "fake/2")[-1] == "leader-elected - -"
    assert hooks_seen(m, "fake/0")[-1] == "leader-settings-changed - -"
    with m.hook_context("fake/2") as tool:
        assert tool("leader-set", "who=2").returncode == 0
    m.settle()
    assert hooks_seen(m, "fake/0")[-1] == "leader-settings-changed - -"
    m.remove_unit("fake/2")
    m.settle()
    assert m.leader == "fake/0" and hooks_seen(m, "fake/0")[-1] == "leader-elected - -"


def test_config_change_and_update_status(model):
    m = model(units=2)
    m.set_config({"size": "7"})
    stats = m.settle()
    assert stats.per_hook == {"config-changed": 2}
    assert m.config()["size"] == 7
    assert m.tick_update_status().per_hook == {"update-status": 2}


def test_a_new_address_runs_config_changed_on_that_unit_only(model):
    """worker/uniter/resolver.go (3.6): a change of the machine's addresses hash runs
    config-changed; network-get and unit-get answer the new address from then on."""
    m = model(units=2)
    m.set_address("fake/1", "127.0.1.77")
    stats = m.settle()
    assert stats.per_hook == {"config-changed": 1}
    assert hooks_seen(m, "fake/1")[-1].startswith("config-changed")
    with m.hook_context("fake/1") as tool:
        assert tool("unit-get", "private-address").stdout.strip() == "127.0.1.77"
        net = json.loads(tool("network-get", "ring", "--format=json").stdout)
        assert net["ingress-addresses"] == ["127.0.1.77"]
    m.set_address("fake/1", "127.0.1.77")  # the same address: nothing to tell
    assert m.settle().per_hook == {}


def test_failed_hook_is_retried_and_nothing_commits(model):
    m = model(on_hook='[ "$h" = start ] && relation-set -r ring:0 started=yes\n', units=0)
    m.deploy(1)
    m.fail_next("fake/0", "start")
    stats = m.settle()
    assert stats.failures == 1 and stats.per_hook["start"] == 2
    runs = m.runs("fake/0", "start")
    assert [r.ok for r in runs] == [False, True] and runs[0].injected == "after"
    assert m.relation_data("fake/0")["started"] == "yes"


def test_too_many_failures_raise_with_stderr(model):
    m = model(on_hook='[ "$h" = install ] && { echo boom >&2; exit 3; }\n', units=0)
    m.deploy(1)
    with pytest.raises(HookFailed, match="boom") as err:
        m.settle(max_failures=3)
    assert err.value.run.rc == 3 and err.value.failures == 3


def test_actions(model):
    m = model(on_hook="", units=1)
    actions = m.unit("fake/0").charm_dir / "actions"
    actions.mkdir()
    (actions / "do").write_text("#!/bin/sh\nx=$(action-get x)\naction-set out.x=$x\n"
                                "action-log working\n")
    (actions / "do").chmod(0o755)
    (m.unit("fake/0").charm_dir / "dispatch").rename(m.unit("fake/0").charm_dir / "off")
    result = m.run_action("fake/0", "do", {"x": "z"})
    assert result["status"] == "completed", result["stderr"]
    assert result["results"] == {"out": {"x": "z"}} and result["messages"] == ["working"]


# ------------------------------------------------------------------ secrets

def test_secrets_exist_only_after_success_and_follow_leadership(model):
    m = model(units=2)
    with m.hook_context("fake/0", commit=False) as tool:
        uri = tool("secret-add", "--label", "ca", "key=v1").stdout.strip()
        assert re.fullmatch(rf"secret://{m.uuid}/[0-9a-v]{{20}}", uri)  # Juju >= 3.1.3
        assert tool("secret-get", "--label", "ca", "--format=json").stdout == '{"key":"v1"}\n'
        assert tool("secret-get", "--label", "ca", "key").returncode == 2  # not a URI
        info = json.loads(tool("secret-info-get", uri, "--format=json").stdout)
        assert list(info.values())[0]["label"] == "ca"
    assert m.secrets() == {}
    with m.hook_context("fake/0") as tool:
        uri = tool("secret-add", "--label", "ca", "key=v1").stdout.strip()
        assert tool("secret-add", "bad_key=1").returncode == 2
    (xid, secret), = m.secrets().items()
    assert uri == f"secret://{m.uuid}/{xid}" and secret["content"] == {"key": "v1"}
    with m.hook_context("fake/1") as tool:
        assert tool("secret-add", "key=v").returncode == 1  # app-owned needs leadership
        assert tool("secret-get", uri, "key").stdout == "v1\n"
        assert tool("secret-info-get", uri).returncode == 1
        assert tool("secret-ids", "--format=json").stdout == "null\n"
    with m.hook_context("fake/0") as tool:
        tool("secret-set", uri, "key=v2")
        assert tool("secret-ids", "--format=json").stdout == f'["{xid}"]\n'
    assert m.secrets()[xid]["revision"] == 2


def test_juju_29_has_no_secret_tools(model):
    m = model(units=1, secrets_supported=False)
    with m.hook_context("fake/0") as tool:
        assert tool("sh", "-c", "secret-add key=v").returncode == 127
        assert tool("sh", "-c", "echo $JUJU_VERSION").stdout.startswith("2.9.")
        assert tool("jujud", "version").stdout.startswith("2.9.")


# ------------------------------------------------------------------ fidelity rules (Juju 3.6)

ENV_DUMP = 'env | grep -E "^JUJU_(HOOK_NAME|ACTION_NAME|SECRET_[A-Z]+)=" | sort ' \
           '> "$SIM_UNIT_ROOT/env-$(echo ${JUJU_DISPATCH_PATH} | tr / -)"\n'


def test_an_action_has_an_empty_hook_name(model):
    """context.go HookVars always exports JUJU_HOOK_NAME; an action context has none."""
    m = model(on_hook=ENV_DUMP, units=1)
    assert m.run_action("fake/0", "do")["status"] == "completed"
    env = (m.unit("fake/0").root / "env-actions-do").read_text().splitlines()
    assert env == ["JUJU_ACTION_NAME=do", "JUJU_HOOK_NAME="]


def test_no_relation_is_known_during_install(model):
    """relation/resolver.go createdRelationsResolver: relations after install."""
    on_hook = ('if [ "$JUJU_HOOK_NAME" = install ]; then\n'
               '  relation-ids ring > "$SIM_UNIT_ROOT/ids"\n'
               '  relation-get -r 0 - "$JUJU_UNIT_NAME" 2> "$SIM_UNIT_ROOT/err"; '
               'echo $? > "$SIM_UNIT_ROOT/rc"\nfi\n')
    m = model(on_hook=on_hook, units=1)
    root = m.unit("fake/0").root
    assert (root / "ids").read_text() == ""
    assert (root / "rc").read_text() == "2\n"
    assert "unknown relation id" in (root / "err").read_text()
    with m.hook_context("fake/0") as tool:
        assert tool("relation-ids", "ring").stdout == "ring:0\n"


def test_skipping_a_failed_install_or_start_still_moves_the_unit_on(model):
    """operation/runhook.go: a hook skipped by `juju resolved --no-retry` is committed as
    if it ran: install still enters scope, start still counts as started."""
    m = model(units=1)
    m.add_unit()
    m.fail_next("fake/1", "install")
    with pytest.raises(HookFailed):
        m.settle(max_failures=1)
    m.resolve("fake/1", retry=False)
    m.fail_next("fake/1", "start")
    with pytest.raises(HookFailed):
        m.settle(max_failures=1)
    m.resolve("fake/1", retry=False)
    m.settle()
    assert m.relation_list("fake/0") == ["fake/1"]
    m.tick_update_status()
    assert hooks_seen(m, "fake/1")[-1] == "update-status - -"


def test_seeded_first_leader_and_a_leaderless_window(model):
    leaders = set()
    for seed in range(6):
        import pathlib
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            m = Model(make_charm(pathlib.Path(tmp) / "charm"), tmp, seed=seed,
                      first_leader="seeded")
            m.deploy(3)
            leaders.add(m.leader)
    assert len(leaders) > 1, leaders
    on_hook = 'echo "$h $(is-leader)" >> "$SIM_UNIT_ROOT/leader"\n'
    m = model(on_hook=on_hook, units=3, leaderless_hooks=50)
    m.remove_unit("fake/0")
    m.settle()
    assert m.leader == "fake/1"
    for unit in ("fake/1", "fake/2"):  # their departed hooks ran while no unit led
        seen = (m.unit(unit).root / "leader").read_text().splitlines()
        assert "ring-relation-departed False" in seen, seen
    assert (m.unit("fake/1").root / "leader").read_text().splitlines()[-1] == \
        "leader-elected True"


def test_secret_readers_stay_on_their_revision_until_refresh_or_peek(model):
    """secretsmanager/secrets.go getSecretContent -> getConsumedRevision, for every reader,
    the owner's leader included; a pending secret-set shows only with --refresh/--peek."""
    m = model(units=2)
    with m.hook_context("fake/0") as tool:
        uri = tool("secret-add", "--label", "ca", "key=v1").stdout.strip()
    for unit in ("fake/0", "fake/1"):
        with m.hook_context(unit) as tool:
            assert tool("secret-get", uri, "key").stdout == "v1\n"
    with m.hook_context("fake/0") as tool:
        tool("secret-set", uri, "key=v2")
        assert tool("secret-get", uri, "key").stdout == "v1\n"
        assert tool("secret-get", "--label", "ca", "key").returncode == 2  # not a URI
        assert tool("secret-get", uri, "key", "--peek").stdout == "v2\n"
    with m.hook_context("fake/0") as tool:
        assert tool("secret-get", uri, "key").stdout == "v1\n"  # still tracking 1
        assert tool("secret-get", uri, "key", "--peek").stdout == "v2\n"
        assert tool("secret-get", uri, "key").stdout == "v1\n"
        assert tool("secret-get", uri, "key", "--refresh").stdout == "v2\n"
        assert tool("secret-get", uri, "key").stdout == "v2\n"
    with m.hook_context("fake/0") as tool:  # --refresh on a pending set tracks it
        tool("secret-set", uri, "key=v3")
        assert tool("secret-get", uri, "key", "--refresh").stdout == "v3\n"
    with m.hook_context("fake/0") as tool:
        assert tool("secret-get", uri, "key").stdout == "v3\n"
    with m.hook_context("fake/1") as tool:
        assert tool("secret-get", uri, "key").stdout == "v1\n"


def test_secret_changed_and_secret_remove_hooks(model):
    """secrets/resolver.go: secret-changed for a reader behind the latest revision;
    secret-remove to the owner (the leader) for a revision no one tracks."""
    m = model(on_hook=ENV_DUMP, units=2)
    with m.hook_context("fake/0") as tool:
        uri = tool("secret-add", "--label", "ca", "key=v1").stdout.strip()
    with m.hook_context("fake/1") as tool:
        tool("secret-get", uri)
    with m.hook_context("fake/0") as tool:
        tool("secret-get", uri)
        tool("secret-set", uri, "key=v2")
    assert m.pending() == {"fake/0": "secret-changed", "fake/1": "secret-changed"}
    m.settle()
    env = (m.unit("fake/1").root / "env-hooks-secret-changed").read_text().splitlines()
    xid = uri.rsplit("/", 1)[-1]
    assert env == ["JUJU_HOOK_NAME=secret-changed", f"JUJU_SECRET_ID=secret:{xid}",
                   "JUJU_SECRET_LABEL=ca"]  # no revision: hook.go SecretHookRequiresRevision
    assert m.pending() == {}  # told once; revision 1 is still tracked by both
    with m.hook_context("fake/0") as tool:
        tool("secret-get", uri, "--refresh")
        tool("secret-set", uri, "key=v3")
    # told of revision 3 although it tracks 2 (state/secrets.go: every consumer doc)
    assert m.pending() == {"fake/0": "secret-changed", "fake/1": "secret-changed"}
    m.settle()
    with m.hook_context("fake/0") as tool:
        tool("secret-get", uri, "--refresh")
    assert m.pending() == {"fake/0": "secret-remove"}  # revision 2: no one tracks it
    m.settle()
    with m.hook_context("fake/1") as tool:
        tool("secret-get", uri, "--refresh")
    assert m.pending() == {"fake/0": "secret-remove"}
    m.settle()
    env = (m.unit("fake/0").root / "env-hooks-secret-remove").read_text().splitlines()
    assert "JUJU_SECRET_REVISION=1" in env and "JUJU_SECRET_LABEL=ca" in env
    assert m.pending() == {}
    assert sorted(m.secrets()[xid]["revisions"]) == [1, 2, 3]  # the charm removes them


def test_secret_set_unchanged_content_makes_a_revision_before_3_6(model):
    for version, revision in (("3.6.4", 1), ("3.5.5", 2), ("3.1.2", 2)):
        m = model(units=1, juju_version=version)
        with m.hook_context("fake/0") as tool:
            uri = tool("secret-add", "key=v").stdout.strip()
        long_form = version != "3.1.2"
        assert uri.startswith(f"secret://{m.uuid}/" if long_form else "secret:"), uri
        with m.hook_context("fake/0") as tool:
            tool("secret-set", uri, "key=v")
        assert [s["revision"] for s in m.secrets().values()] == [revision], version
        import shutil

        shutil.rmtree(m.dir.parent / "charm")
        shutil.rmtree(m.dir)


def test_a_leader_deposed_during_a_hook_has_its_leader_writes_refused(model):
    on_hook = ('if [ "$h" = update-status ] && [ "$JUJU_UNIT_NAME" = fake/0 ]; then\n'
               '  relation-set -r 0 --app x=1; relation-set -r 0 mine=1\nfi\n')
    m = model(on_hook=on_hook, units=2)
    m.lose_leadership_during("fake/0", "update-status")
    m.tick_update_status(settle=False)
    with pytest.raises(HookFailed) as failed:
        m.settle(max_failures=1)
    assert "checking leadership continuity" in failed.value.run.stderr
    assert m.leader == "fake/1"
    assert m.app_data() == {} and "mine" not in m.relation_data("fake/0")
    m.resolve("fake/0", retry=True)
    m.settle()  # retried as a non-leader: relation-set --app is refused, the rest commits
    assert m.app_data() == {} and m.relation_data("fake/0")["mine"] == "1"
