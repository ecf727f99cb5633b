"""A simulated Juju model that runs a real built charm's hook processes for N units.

See tests/model/README.md for the rules implemented. In short: applications (the first
given to Model, more with add_application), their peer relations and the relations between
them (integrate), N units each with its own charm dir, address and hostname; hooks are real
processes (``hooks/<name>`` or ``dispatch``) whose hook tools are thin clients of a server in
this process (jujurules.server) holding the state in memory, with Juju's rules written once in
tests/jujurules; a seeded scheduler runs one hook at a time, picking the unit at random among
those with work, so orders vary by seed and are reproducible.
"""
import collections
import contextlib
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml
from jujurules import commit, install, tools
from jujurules import secrets as _secrets
from jujurules.server import ToolServer
from jujurules.state import (
    enter_scope_settings,
    new_relation,
    new_state,
    new_unit,
    open_context,
    woken_by_commit,
)

from .build import ensure_charm_venv
from .clock import check_offset, clock_env
from .zygote import Zygote

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
JUJU_LOG_SH = HERE / "tools" / "juju-log.sh"
HOSTSHIM = HERE / "hostshim"
SHIM = TESTS / "shim"
BASE_PYTHON = Path(os.path.realpath(sys.executable))  # the Python client needs no venv
JUJU3 = "3.6.4"
JUJU2 = "2.9.46"


class HookFailed(RuntimeError):
    """A hook failed more often than ``max_failures`` in a row."""

    def __init__(self, run, failures):
        self.run = run
        self.failures = failures
        super().__init__(
            f"{run.unit}: hook {run.hook} failed {failures} times (exit {run.rc});"
            f" stderr:\n{run.stderr[-4000:]}")


class SettleTimeout(RuntimeError):
    """settle() ran max_hooks hooks and the model still was not quiet."""


@dataclass(frozen=True)
class Hook:
    kind: str  # install, leader, config-changed, relation-joined, secret-changed, ...
    rid: Optional[str] = None
    remote: str = ""
    departing: str = ""
    secret: str = ""  # secret hooks: the xid, its revision and label
    revision: int = 0
    label: str = ""

    def name(self, endpoint=None):
        return f"{endpoint}-{self.kind}" if self.kind.startswith("relation-") else self.kind


@dataclass
class HookRun:
    seq: int
    unit: str
    hook: str
    relation_id: str
    remote_unit: str
    rc: int
    ok: bool
    duration: float
    stdout: str
    stderr: str
    calls: list
    injected: str = ""


@dataclass
class SettleStats:
    hooks: int = 0
    failures: int = 0
    seconds: float = 0.0
    per_unit: collections.Counter = field(default_factory=collections.Counter)
    per_hook: collections.Counter = field(default_factory=collections.Counter)
    order: List[str] = field(default_factory=list)

    @property
    def hooks_per_second(self):
        return self.hooks / self.seconds if self.seconds else 0.0


@dataclass
class RelPending:
    owed: str = ""  # relation-changed owed right after a joined
    departed: set = field(default_factory=set)
    app_changed: bool = False
    joined: set = field(default_factory=set)
    changed: set = field(default_factory=set)
    created: bool = False  # relation-created ran (the relation's other hooks wait for it)
    create: bool = False  # relation-created queued outside the boot sequence (integrate)
    dying: bool = False  # the relation is removed: depart every member, then broken


class App:
    """One application: its charm (metadata, config options, actions), its venv, its
    number in the model (0: the model's first; units of app n live on 127.0.(n+1).x)."""

    def __init__(self, model, charm_dir, number, name=None, venv=None):
        self.charm = Path(charm_dir).resolve()
        self.number = number
        self.meta = _read_yaml(self.charm / "metadata.yaml")
        self.name = name or self.meta["name"]
        self.options = (_read_yaml(self.charm / "config.yaml").get("options") or {})
        self.actions = _read_yaml(self.charm / "actions.yaml")
        self.venv = Path(venv) if venv else ensure_charm_venv(self.charm)
        self.next_index = 0
        self.life = "alive"


def _read_yaml(path):
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


class Unit:
    def __init__(self, model, index, app=None):
        self.model = model
        self.index = index
        self.application = app or model.apps[model.app]
        self.app_name = self.application.name
        self.name = f"{self.app_name}/{index}"
        self.dir = model.dir / "units" / f"{self.app_name}-{index}"
        self.charm_dir = self.dir / "charm"
        self.root = self.dir / "root"
        self.log = model.dir / "logs" / f"{self.app_name}-{index}.log"
        number = self.application.number
        self.machine = str(index if number == 0 else number * 100 + index)
        self.address = f"127.0.{number + 1}.{index + 1}"
        self.hostname = f"juju-{model.uuid[:6]}-{self.machine}"
        self.fqdn = f"{self.hostname}.sim"  # what socket.getfqdn() answers on the unit
        self.life = "alive"  # alive, dying, dead
        self.in_scope = False  # installed: the unit enters its relations' scope
        self.scopes: set = set()  # the relations whose scope it is in
        self.started = False
        # secrets (worker/uniter/secrets/resolver.go): the revision of each consumed secret
        # the unit was last told of, the obsolete revisions it handled, and what is queued
        self.secret_known: Dict[str, int] = {}
        self.obsolete_done: Dict[str, set] = {}
        self.secret_changed: Dict[str, tuple] = {}  # xid -> (revision, label)
        self.secret_remove: set = set()  # (xid, revision, label)
        self.boot = collections.deque()
        self.rel: Dict[str, RelPending] = {rid: RelPending()
                                           for rid in model._rids(self.app_name)}
        self.elected = self.lsc = self.config_changed = self.upgrade = False
        self.update_status = False
        self.retry: Optional[Hook] = None
        self.failures = 0
        self.not_before = 0
        self.inject: List[tuple] = []

    def boot_has(self, kind):
        return any(h.kind == kind for h in self.boot)

    def __repr__(self):
        return f"<Unit {self.name} {self.life}>"


# tls_permitted_names in a new model (a test's config overrides it): the default's
# private-use names plus the simulator's own, loopback addresses and the .sim domain.
SIM_PERMITTED_NAMES = "auto sim 127.0.1.0/24"


class Model:
    """Applications of built charms (the first given here, more with
    ``add_application``) and their relations; see README.md for the API."""

    def __init__(self, charm_dir, workdir, seed=0, secrets_supported=True, config=None,
                 name="sim", juju_version=None, hook_timeout=300, venv=None, fast_log=True,
                 first_leader="seeded", leaderless_hooks=0, fast_start=None):
        self.dir = Path(workdir).resolve() / "model"
        self.rng = random.Random(seed)
        self.seed = seed
        self.name = name
        self.uuid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.secrets_supported = secrets_supported
        self.juju_version = juju_version or (JUJU3 if secrets_supported else JUJU2)
        self.hook_timeout = hook_timeout
        if first_leader not in ("seeded", "first"):
            raise ValueError("first_leader must be 'seeded' or 'first'")
        self.first_leader = first_leader
        self.leaderless_hooks = leaderless_hooks
        self._elect_at: Optional[int] = None  # a leaderless window ends at this clock
        self.fast_log = fast_log
        first = App(self, charm_dir, 0, venv=venv)
        self.app = first.name
        self.apps: Dict[str, App] = {first.name: first}
        self.relations = {}
        self._next_rid = 0
        self._add_peers(first)
        self.units: Dict[str, Unit] = {}
        self.history: List[HookRun] = []
        self._next_index = 0
        self._seq = 0
        self._clock = 0
        self.clock_offset = 0  # seconds the model's wall clock is ahead (advance_clock)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.bin = self.dir / "bin"
        self.state_path = str(self.dir / "state.json")  # a copy, saved after settle()
        self._lock = threading.RLock()
        self.st = self._initial_state(config or {})
        self.server = ToolServer(self.st, self._lock)
        weakref.finalize(self, self.server.close)
        self._install_tools()
        # opt-in fast start of hook processes (zygote.py; README "Speed"): the argument,
        # else JUJU_SIM_FAST_START=1 in the simulator's environment
        if fast_start is None:
            fast_start = os.environ.get("JUJU_SIM_FAST_START", "") == "1"
        self.zygote = Zygote(self.dir) if fast_start else None
        if self.zygote is not None:
            weakref.finalize(self, self.zygote.close)

    # ------------------------------------------------------------ setup

    # the first application's charm, as before there were several
    charm = property(lambda self: self.apps[self.app].charm)
    meta = property(lambda self: self.apps[self.app].meta)
    options = property(lambda self: self.apps[self.app].options)
    actions = property(lambda self: self.apps[self.app].actions)
    venv = property(lambda self: self.apps[self.app].venv)

    def _add_peers(self, app):
        for ep, spec in sorted((app.meta.get("peers") or {}).items()):
            rid = str(self._next_rid)
            self._next_rid += 1
            self.relations[rid] = {"endpoint": ep, "interface": spec["interface"],
                                   "peer": True, "ends": {app.name: ep}}

    def _rids(self, app):
        """The live relations ``app`` is in (peer relations and relations to other apps)."""
        return sorted((rid for rid, r in self.relations.items()
                       if app in r["ends"] and not r.get("dying")), key=int)

    def _ep(self, rid, app):
        return self.relations[rid]["ends"][app]

    def _other(self, rid, app):
        """The application at the other end of the relation (itself for a peer relation)."""
        return next((a for a in self.relations[rid]["ends"] if a != app), app)

    def _ast(self, app=None):
        """The per-application part of the state (jujurules.state.app_state)."""
        return self.st if app in (None, self.app) else self.st["apps"][app]

    def _install_tools(self):
        self.bin.mkdir(exist_ok=True)
        linked = [tool for tool in tools.TOOLS
                  # Juju 2.9 has no secret tools: "command not found"
                  if (self.secrets_supported or not tool.startswith("secret-"))
                  and not (tool == "juju-log" and self.fast_log)]
        client = install.install_tools(self.bin, tools.TOOLS, linked, str(BASE_PYTHON))
        if self.fast_log:
            text = JUJU_LOG_SH.read_text()
            text = text.replace("@LOGDIR@", str(self.dir / "logs")).replace("@TOOL@", str(client))
            (self.bin / "juju-log").write_text(text)
            (self.bin / "juju-log").chmod(0o755)

    def _typed_default(self, name, spec, app=None):
        return self._coerce(name, spec.get("default"), app)

    def _coerce(self, name, value, app=None):
        spec = self.apps[app or self.app].options.get(name)
        if spec is None:
            raise KeyError(f"unknown config option {name!r}")
        if value is None:
            return None
        kind = spec.get("type", "string")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "boolean":
            if isinstance(value, str):
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if kind == "secret" and str(value):
            # apiserver/facades/client/application/application.go validateSecretConfig:
            # a secret option holds a secret URI (or ""); config-get reads it as that string
            _secrets.check_secret_uri(str(value), name)
        return str(value)

    def _initial_state(self, config):
        values = {k: self._typed_default(k, v) for k, v in self.options.items()}
        if "tls_permitted_names" in values:
            # the simulated units live on 127.0.1.x and *.sim: their operator permits them
            values["tls_permitted_names"] = SIM_PERMITTED_NAMES
        for k, v in config.items():
            values[k] = self._coerce(k, v)
        return new_state(
            self.app, self.uuid, self.juju_version, model=self.name, config=values,
            bindings=self.meta.get("extra-bindings") or {},
            secrets_supported=self.secrets_supported,
            relations={rid: new_relation(r["endpoint"], r["interface"], r["ends"], peer=True)
                       for rid, r in self.relations.items()})

    # ------------------------------------------------------------ state access

    def _locked(self):
        return _InMemory(self.st, self._lock)

    def state(self):
        """A copy of the whole state (committed data, secrets, contexts)."""
        with self._lock:
            return json.loads(json.dumps(self.st))

    def save_state(self):
        """Write the state to ``model/state.json`` (for a human to inspect)."""
        text = json.dumps(self.state(), indent=1, sort_keys=True)
        Path(self.state_path).write_text(text, encoding="utf-8")

    def close(self):
        """Stop the model's hook-tool server and zygote (also done when it is collected)."""
        self.server.close()
        if self.zygote is not None:
            self.zygote.close()

    # ------------------------------------------------------------ operator actions

    def add_application(self, charm_dir, name=None, config=None, venv=None):
        """Deploy another application (no units yet: ``deploy(n, app=name)``) of the charm
        at ``charm_dir`` (a built reactive charm, or an ops charm from ``pack_ops_charm``),
        with its own leader, config, status and peer relations; returns its name."""
        app = App(self, charm_dir, len(self.apps), name=name, venv=venv)
        if app.name in self.apps:
            raise ValueError(f"application {app.name!r} already exists")
        self.apps[app.name] = app
        values = {k: self._typed_default(k, v, app.name) for k, v in app.options.items()}
        for k, v in (config or {}).items():
            values[k] = self._coerce(k, v, app.name)
        first_new = self._next_rid
        self._add_peers(app)
        with self._locked() as L:
            st = L.data
            st.setdefault("apps", {})[app.name] = {
                "leader": None, "config": values, "leader_settings": {}, "app_status": None,
                "bindings": sorted(set(app.meta.get("extra-bindings") or {}))}
            for rid in range(first_new, self._next_rid):
                r = self.relations[str(rid)]
                st["relations"][str(rid)] = new_relation(r["endpoint"], r["interface"],
                                                         r["ends"], peer=True)
        return app.name

    def integrate(self, one, other):
        """``juju integrate app:endpoint app:endpoint`` (the endpoint may be left out when
        only one of the app's fits): a new relation; every installed unit of both sides
        enters its scope now and runs relation-created before any other hook of it
        (worker/uniter/relation/statetracker.go SynchronizeScopes, resolver.go); the
        others at install. Returns the relation id."""
        (app1, ep1), (app2, ep2) = self._endpoint_pair(one, other)
        rid = str(self._next_rid)
        self._next_rid += 1
        interface = self._relation_spec(app1, ep1)[1]["interface"]
        provider = app1 if self._relation_spec(app1, ep1)[0] == "provides" else app2
        self.relations[rid] = {"endpoint": self._ep_of(provider, app1, ep1, app2, ep2),
                               "interface": interface, "peer": False,
                               "ends": {app1: ep1, app2: ep2}}
        with self._locked() as L:
            requirer = app2 if provider == app1 else app1
            ends = {app1: ep1, app2: ep2}
            L.data["relations"][rid] = new_relation(
                self.relations[rid]["endpoint"], interface, ends, peer=False,
                key=f"{requirer}:{ends[requirer]} {provider}:{ends[provider]}")
            for u in self.units.values():
                if u.app_name in (app1, app2) and u.life == "alive":
                    L.data["views"][u.name][rid] = {"members": [], "cache": {}}
        for u in self._alive():
            if u.app_name not in (app1, app2):
                continue
            u.rel[rid] = RelPending()
            if not u.in_scope and u.boot and u.boot[0].kind == "install":
                # relation-created right after install, with the boot's others
                at = 1 + sum(1 for h in u.boot if h.kind == "relation-created")
                u.boot.insert(at, Hook("relation-created", rid))
            else:  # installed (or its install is being retried): as soon as it can
                u.rel[rid].create = True
        for u in self._alive():
            if rid in u.rel and u.in_scope:
                self._join(u, rid)
        return rid

    @staticmethod
    def _ep_of(provider, app1, ep1, app2, ep2):
        return ep1 if provider == app1 else ep2

    def _relation_spec(self, app, endpoint):
        meta = self.apps[app].meta
        for role in ("provides", "requires"):
            spec = (meta.get(role) or {}).get(endpoint)
            if spec is not None:
                return role, spec
        raise KeyError(f"{app} has no provides/requires endpoint {endpoint!r}")

    def _endpoint_pair(self, one, other):
        """("app:ep", "app:ep") -> ((app, ep), (app, ep)); a bare app name picks its only
        endpoint of a matching interface and opposite role."""
        def split(text):
            app, _, ep = text.partition(":")
            if app not in self.apps:
                raise KeyError(f"no application {app!r}")
            return app, ep

        (a1, e1), (a2, e2) = split(one), split(other)
        if a1 == a2:
            raise ValueError("a relation between applications needs two applications")

        def candidates(app):
            meta = self.apps[app].meta
            return [(role, ep, spec["interface"]) for role in ("provides", "requires")
                    for ep, spec in (meta.get(role) or {}).items()]
        pairs = [(x[1], y[1]) for x in candidates(a1) for y in candidates(a2)
                 if x[2] == y[2] and x[0] != y[0] and (not e1 or x[1] == e1)
                 and (not e2 or y[1] == e2)]
        if len(pairs) != 1:
            raise ValueError(f"cannot relate {one} and {other}: {len(pairs)} endpoint pairs fit")
        (e1, e2), = pairs
        return (a1, e1), (a2, e2)

    def remove_relation(self, rid):
        """``juju remove-relation``: the relation is dying; each unit in it runs
        relation-departed for every member still in its relation-list, then relation-broken
        (worker/uniter/relation/resolver.go nextHookForRelation: a dying relation has no
        remote members, so they depart, then it breaks); afterwards it is gone."""
        rid = str(rid) if str(rid) in self.relations else self._rid(rid)
        rel = self.relations[rid]
        if rel.get("peer"):
            raise ValueError("a peer relation cannot be removed")
        rel["dying"] = True
        with self._locked() as L:
            L.data["relations"][rid]["dying"] = True
            views = L.data["views"]
            members = {n: list(v[rid]["members"]) for n, v in views.items() if rid in v}
        for u in self._alive():
            rp = u.rel.get(rid)
            if rp is None:
                continue
            if rid not in u.scopes:  # never in scope (not installed yet): just gone
                u.boot = collections.deque(h for h in u.boot if h.rid != rid)
                del u.rel[rid]
                with self._locked() as L:
                    L.data["views"].get(u.name, {}).pop(rid, None)
                continue
            u.rel[rid] = RelPending(created=rp.created, create=rp.create, dying=True,
                                    departed=set(members.get(u.name, [])))

    def remove_application(self, app):
        """``juju remove-application``: its relations to other applications are removed
        (both sides depart and break them) and every unit of it is removed (departed,
        broken, stop, remove). The first application cannot be removed."""
        if app == self.app:
            raise ValueError("the model's first application cannot be removed")
        self.apps[app].life = "dying"
        for rid in sorted(self.relations, key=int):
            r = self.relations[rid]
            if app in r["ends"] and not r.get("peer") and not r.get("dying"):
                self.remove_relation(rid)
        for name in self.app_units(app):
            self.remove_unit(name)

    def _departed_relation(self, u, rid):
        """After relation-broken: the unit has left the relation for good."""
        u.rel.pop(rid, None)
        u.scopes.discard(rid)
        with self._locked() as L:
            L.data["views"].get(u.name, {}).pop(rid, None)
            L.data["relations"][rid]["units"].pop(u.name, None)

    def deploy(self, n=1, app=None):
        """Add n units (of ``app``, default the first application). With no leader yet,
        one of them wins the leadership lease: a seeded
        choice (``first_leader="seeded"``: on Juju whichever agent claims the lease first),
        or the first one (``first_leader="first"``)."""
        if n and self._leader(app) is None and self.first_leader == "seeded":
            winner = self.rng.randrange(n)
            names = [self.add_unit(claim_leadership=(i == winner), app=app) for i in range(n)]
        else:
            names = [self.add_unit(app=app) for _ in range(n)]
        return names

    def add_unit(self, claim_leadership=True, app=None):
        application = self.apps[app or self.app]
        if application is self.apps[self.app]:
            index = self._next_index
            self._next_index += 1
        else:
            index = application.next_index
            application.next_index += 1
        unit = Unit(self, index, application)
        self.units[unit.name] = unit
        shutil.copytree(application.charm, unit.charm_dir, symlinks=True,
                        ignore=shutil.ignore_patterns("wheelhouse", "__pycache__"))
        unit.root.mkdir(parents=True, exist_ok=True)
        with self._locked() as L:
            st = L.data
            st["units"][unit.name] = new_unit(unit.index, unit.address, unit.hostname)
            st["views"][unit.name] = {rid: {"members": [], "cache": {}}
                                      for rid in unit.rel}
            ast = self._ast(unit.app_name)
            if ast["leader"] is None and claim_leadership and self._elect_at is None:
                ast["leader"] = unit.name
        unit.boot.append(Hook("install"))
        for rid in sorted(unit.rel, key=int):
            unit.boot.append(Hook("relation-created", rid, remote="", departing=""))
        unit.boot.extend([Hook("leader"), Hook("config-changed"), Hook("start")])
        return unit.name

    def remove_unit(self, name):
        """The unit departs its relations, runs stop and remove, and is gone."""
        unit = self.units[name]
        if unit.life != "alive":
            return
        unit.life = "dying"
        with self._locked() as L:
            views = L.data["views"]
            members = {rid: sorted(v["members"]) for rid, v in views[name].items()}
            L.data["units"][name]["alive"] = False
            L.data["units"][name]["dying"] = True
        for other in self._alive():
            for rid, rp in other.rel.items():
                rp.changed.discard(name)
                if rp.owed == name:
                    rp.owed = ""
                if name in rp.joined:
                    rp.joined.discard(name)
                elif name in views[other.name][rid]["members"]:
                    rp.departed.add(name)
        unit.boot.clear()
        unit.retry = None
        unit.rel = {rid: RelPending(created=True) for rid in unit.rel}
        unit.elected = unit.lsc = unit.config_changed = unit.upgrade = False
        unit.update_status = False
        for rid in sorted(members, key=int):
            for member in members[rid]:
                unit.boot.append(Hook("relation-departed", rid, remote=member, departing=name))
            if not self.relations[rid].get("peer") and rid in unit.scopes:
                # a dying unit breaks its relations to other apps (resolver.go: the
                # unit Dying is remoteBroken; peer relations are never broken)
                unit.boot.append(Hook("relation-broken", rid))
        unit.boot.extend([Hook("stop"), Hook("remove")])

    def set_leader(self, name):
        """Move leadership: the new leader runs leader-elected, the old one
        leader-settings-changed."""
        with self._locked() as L:
            ast = self._ast(self.units[name].app_name)
            old = ast["leader"]
            ast["leader"] = name
            secrets = L.data["secrets"]
        if old == name:
            return
        self._queue_secret_events(secrets, name)  # the new leader owns the app's secrets
        new = self.units[name]
        if not new.boot_has("leader"):
            new.elected = True
            new.lsc = False
        if old and old in self.units and self.units[old].life != "dead":
            o = self.units[old]
            if not o.boot_has("leader"):
                o.lsc = True
                o.elected = False

    def set_config(self, values, app=None):
        """Change config options (typed by config.yaml); queues config-changed on every unit
        of the application (default: the first)."""
        app = app or self.app
        options = self.apps[app].options
        with self._locked():
            config = self._ast(app)["config"]
            before = dict(config)
            for k, v in values.items():
                config[k] = (self._typed_default(k, options[k], app) if v is None
                             else self._coerce(k, v, app))
            changed = config != before
        if changed:
            for u in self._alive():
                if u.app_name == app and not u.boot_has("config-changed"):
                    u.config_changed = True

    # ------------------------------------------------------------ user secrets (juju CLI)

    def _user_secret_op(self, fn, *args):
        with self._locked() as L:
            result = fn(L.data, *args)
            secrets, leader = L.data["secrets"], L.data["leader"]
        self._queue_secret_events(secrets, leader)
        return result

    def add_user_secret(self, content, label=None, description=None):
        """``juju add-secret <label> key=value...``: a model-owned secret; returns its URI
        (``secret:<xid>``). Raises jujurules.secrets.UserSecretError as Juju refuses."""
        return self._user_secret_op(_secrets.add_user_secret, content, label, description)

    def update_user_secret(self, uri, content):
        """``juju update-secret <uri> key=value...``: a new revision (none when the content
        is unchanged); units that read the secret get secret-changed. Returns the latest
        revision."""
        return self._user_secret_op(_secrets.update_user_secret, uri, content)

    def grant_user_secret(self, uri, app):
        """``juju grant-secret <uri> <app>``: the application's units may read it (no hook)."""
        self._user_secret_op(_secrets.grant_user_secret, uri, app)

    def revoke_user_secret(self, uri, app):
        """``juju revoke-secret <uri> <app>``: reads are "permission denied" (no hook)."""
        self._user_secret_op(_secrets.revoke_user_secret, uri, app)

    def remove_user_secret(self, uri):
        """``juju remove-secret <uri>``: gone, with its consumer records (no hook)."""
        self._user_secret_op(_secrets.remove_user_secret, uri)

    def set_address(self, unit, address):
        """The unit's machine gets a new address: ``network-get`` and ``unit-get`` answer it
        from now on, and the unit runs config-changed, which is how Juju tells a charm
        (worker/uniter/resolver.go, 3.6: a new addresses hash, ``AddressesHash`` of
        worker/uniter/remotestate, runs config-changed). Relation bags keep what the unit
        entered scope with."""
        u = self.units[unit]
        if address == u.address:
            return
        u.address = address
        with self._locked() as L:
            L.data["units"][unit]["address"] = address
        if u.life == "alive" and not u.boot_has("config-changed"):
            u.config_changed = True

    def upgrade_charm(self, charm_dir=None, app=None):
        """Deploy the charm (optionally a new build) over every unit's charm dir of the
        application (default: the first); queue upgrade-charm."""
        application = self.apps[app or self.app]
        if charm_dir is not None:
            application.charm = Path(charm_dir).resolve()
            application.venv = ensure_charm_venv(application.charm)
        for u in self._alive():
            if u.application is not application:
                continue
            # Juju deploys the new charm over the old one: files the charm made at run
            # time (unitdata, a legacy easy-rsa/ tree, ...) stay.
            shutil.copytree(application.charm, u.charm_dir, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("wheelhouse", "__pycache__"))
            u.upgrade = True

    def tick_update_status(self, settle=True, units=None):
        """Queue one update-status on every started unit, or on those named in ``units``
        (runs when the unit is idle)."""
        for u in self._alive():
            if u.started and (units is None or u.name in units):
                u.update_status = True
        return self.settle() if settle else None

    def fail_next(self, unit, hook=None, when="after"):
        """Make the unit's next hook (or next hook named ``hook``) fail once.

        when="after": the hook process runs to its end, then the model treats it as failed
        (nothing transactional commits: as if the process had been killed just before exit).
        when="before": the process is not started; the hook fails with exit 1.
        """
        if when not in ("after", "before"):
            raise ValueError("when must be 'after' or 'before'")
        self.units[unit].inject.append((hook, when))

    def lose_leadership_during(self, unit, hook=None):
        """The leader ``unit`` loses its lease while its next (named) hook runs: another
        live unit becomes leader before the hook commits. Its app-bag and app-owned
        secret writes are then refused at commit, so the hook fails and nothing
        transactional commits (apiserver/facades/agent/uniter/uniter.go
        commitHookChangesForOneUnit and state/secrets.go build their transactions with a
        leadership check; the error fails the hook: context.go doFlush). leader-set
        calls already made stay (they are written at once)."""
        self.units[unit].inject.append((hook, "depose"))

    def resolve(self, unit, retry=False):
        """``juju resolve``: clear a unit's error; retry=True runs the failed hook again.

        retry=False skips the failed hook, and the unit's state moves on as if it had run
        (worker/uniter/operation/runhook.go: a skipped hook is committed like a run one):
        a skipped install still enters the relations' scope, a skipped start still counts
        as started, a skipped remove leaves the unit dead."""
        u = self.units[unit]
        u.failures = 0
        u.not_before = 0
        if not retry and u.retry is not None:
            skipped, u.retry = u.retry, None
            self._after_success(u, skipped)

    # ------------------------------------------------------------ scheduling

    def _alive(self):
        return [u for u in self.units.values() if u.life == "alive"]

    def _agenda(self, u: Unit):
        """The unit's to-do, one ordered agenda: yields ``(hook, take)`` in the order the
        unit agent picks its next operation (worker/uniter/resolver.go ``NextOp`` then
        ``nextOp``: a failed hook first, then the boot sequence, leadership, secrets
        (worker/uniter/secrets/resolver.go), upgrade-charm, config-changed, relations
        (worker/uniter/relation/resolver.go: per relation, the changed owed after a
        joined, departed, the app bag, joined, unit bags), update-status). ``take()``
        takes the hook off the to-do before it runs; a failure re-queues it as the retry."""
        if u.life == "dead":
            return
        if u.retry is not None:
            yield u.retry, _nothing  # stays queued until it succeeds or is resolved
            return
        if u.boot:
            yield u.boot[0], u.boot.popleft
        if u.life != "alive" or not u.started:
            return
        if u.elected:
            yield Hook("leader-elected"), lambda: setattr(u, "elected", False)
        if u.lsc:
            yield Hook("leader-settings-changed"), lambda: setattr(u, "lsc", False)
        if u.secret_changed:
            xid = min(u.secret_changed)
            revision, label = u.secret_changed[xid]

            def told(xid=xid, revision=revision):
                u.secret_changed.pop(xid, None)
                u.secret_known[xid] = revision
            yield Hook("secret-changed", secret=xid, revision=revision, label=label), told
        if u.secret_remove:
            entry = min(u.secret_remove)
            xid, revision, label = entry

            def removed(entry=entry, xid=xid, revision=revision):
                u.secret_remove.discard(entry)
                u.obsolete_done.setdefault(xid, set()).add(revision)
            yield Hook("secret-remove", secret=xid, revision=revision, label=label), removed
        if u.upgrade:
            def upgraded():
                u.upgrade = False
                u.config_changed = False  # the config-changed queued next covers it
                u.boot.appendleft(Hook("config-changed"))
            yield Hook("upgrade-charm"), upgraded
        if u.config_changed:
            yield Hook("config-changed"), lambda: setattr(u, "config_changed", False)
        for rid in sorted(u.rel):
            rp = u.rel[rid]
            if not rp.created:
                if rp.create:  # an integrate after install (the boot runs the others)
                    def created(rp=rp):
                        rp.create = False
                    yield Hook("relation-created", rid), created
                continue  # the relation's other hooks wait for relation-created
            if rp.dying:
                if rp.departed:
                    remote = min(rp.departed)
                    yield Hook("relation-departed", rid, remote=remote, departing=remote), \
                        functools.partial(rp.departed.discard, remote)
                else:
                    yield Hook("relation-broken", rid), _nothing
                continue
            if rp.owed:
                remote = rp.owed

                def owed_done(rp=rp, remote=remote):
                    rp.owed = ""
                    rp.changed.discard(remote)
                yield Hook("relation-changed", rid, remote=remote), owed_done
            if rp.departed:
                remote = min(rp.departed)
                yield Hook("relation-departed", rid, remote=remote), \
                    functools.partial(rp.departed.discard, remote)
            if rp.app_changed:
                yield Hook("relation-changed", rid), functools.partial(setattr, rp,
                                                                       "app_changed", False)
            if rp.joined:
                remote = min(rp.joined)

                def joined_done(rp=rp, remote=remote):
                    rp.joined.discard(remote)
                    rp.changed.discard(remote)
                yield Hook("relation-joined", rid, remote=remote), joined_done
            if rp.changed:
                yield Hook("relation-changed", rid, remote=min(rp.changed)), \
                    functools.partial(rp.changed.discard, min(rp.changed))
        if u.update_status:
            yield Hook("update-status"), lambda: setattr(u, "update_status", False)

    def _next(self, u: Unit):
        """The first entry of the unit's agenda: ``(hook, take)``, or None when idle."""
        return next(self._agenda(u), None)

    def pending(self):
        """{unit: next hook name} for units with work queued."""
        out = {}
        for u in self.units.values():
            first = self._next(u)
            if first is not None:
                out[u.name] = self._hook_name(first[0], u)
        return out

    def settle(self, max_hooks=5000, max_failures=5):
        """Run hooks until none is queued; returns SettleStats.

        Raises HookFailed when a hook fails max_failures times in a row on a unit and
        SettleTimeout after max_hooks hooks.
        """
        stats = SettleStats()
        start = time.monotonic()
        while True:
            if self._elect_at is not None and self._clock >= self._elect_at:
                self._elect()
            work = [(u, first) for u in self.units.values() for first in [self._next(u)]
                    if first]
            if not work and self._elect_at is not None:
                self._clock = self._elect_at  # nothing to do: the lease expires meanwhile
                continue
            if not work:
                break
            if stats.hooks >= max_hooks:
                raise SettleTimeout(f"not quiet after {max_hooks} hooks; pending: "
                                    f"{self.pending()}; most run: {stats.per_hook.most_common(5)}")
            ready = [(u, h) for u, h in work if u.not_before <= self._clock]
            if not ready:  # only backed-off retries left: time passes
                self._clock = min(u.not_before for u, _ in work)
                continue
            u, h = self.rng.choice(ready)
            run = self._run(u, h)
            self._clock += 1
            stats.hooks += 1
            stats.per_unit[u.name] += 1
            stats.per_hook[run.hook] += 1
            stats.order.append(f"{u.name}:{run.hook}")
            if not run.ok:
                stats.failures += 1
                if u.failures >= max_failures:
                    stats.seconds = time.monotonic() - start
                    raise HookFailed(run, u.failures)
        stats.seconds = time.monotonic() - start
        self.save_state()
        return stats

    # ------------------------------------------------------------ running a hook

    def _hook_name(self, hook: Hook, u: Unit):
        if hook.kind == "leader":
            return ("leader-elected" if self._leader(u.app_name) == u.name
                    else "leader-settings-changed")
        if hook.rid is not None:
            return f"{self._ep(hook.rid, u.app_name)}-{hook.kind}"
        return hook.kind

    def _leader(self, app=None):
        return self._ast(app)["leader"]

    def _env(self, u: Unit, hook_name, ctx_id, hook: Optional[Hook], action=None):
        venv = u.application.venv
        env = {
            "PATH": f"{self.bin}:{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                    "/usr/bin:/sbin:/bin",
            "PYTHONPATH": f"{HOSTSHIM}:{SHIM}",
            "CHARM_DIR": str(u.charm_dir), "JUJU_CHARM_DIR": str(u.charm_dir),
            "CHARM_VENV": str(venv),
            "JUJU_CONTEXT_ID": ctx_id,
            "JUJU_AGENT_SOCKET_ADDRESS": self.server.address,
            "JUJU_AGENT_SOCKET_NETWORK": "unix",
            "JUJU_UNIT_NAME": u.name, "JUJU_MODEL_UUID": self.uuid,
            "JUJU_MODEL_NAME": self.name, "JUJU_API_ADDRESSES": "127.0.0.1:17070",
            "JUJU_MACHINE_ID": u.machine, "JUJU_PRINCIPAL_UNIT": "",
            "JUJU_AVAILABILITY_ZONE": f"zone-{u.index % 3 + 1}",
            "JUJU_VERSION": self.juju_version, "CLOUD_API_VERSION": "",
            "JUJU_CHARM_HTTP_PROXY": "", "JUJU_CHARM_HTTPS_PROXY": "",
            "JUJU_CHARM_FTP_PROXY": "", "JUJU_CHARM_NO_PROXY": "127.0.0.1,localhost,::1",
            "http_proxy": "", "https_proxy": "", "no_proxy": "127.0.0.1,localhost,::1",
            "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
            "APT_LISTCHANGES_FRONTEND": "none", "TERM": "tmux-256color", "JUJU_SLA": "unsupported",
            "HOME": str(u.root), "SIM_UNIT_ROOT": str(u.root),
            "SIM_HOSTNAME": u.hostname, "SIM_FQDN": u.fqdn,
        }
        # the model's clock (advance_clock): libfaketime's variables, none at offset 0
        env.update(clock_env(self.clock_offset))
        if action is None:
            env["JUJU_HOOK_NAME"] = hook_name
            env["JUJU_DISPATCH_PATH"] = f"hooks/{hook_name}"
        else:
            # worker/uniter/runner/context/context.go HookVars always exports
            # JUJU_HOOK_NAME; contextfactory.go ActionContext never sets a hook name.
            env["JUJU_HOOK_NAME"] = ""
            env["JUJU_DISPATCH_PATH"] = f"actions/{action['name']}"
            env["JUJU_ACTION_NAME"] = action["name"]
            env["JUJU_ACTION_UUID"] = action["uuid"]
            env["JUJU_ACTION_TAG"] = f"action-{action['uuid']}"
        if hook is not None and hook.secret:
            # worker/uniter/runner/context/context.go HookVars: JUJU_SECRET_ID and
            # JUJU_SECRET_LABEL for secret hooks; JUJU_SECRET_REVISION only for
            # secret-remove and secret-expired (hook.go SecretHookRequiresRevision)
            env["JUJU_SECRET_ID"] = f"secret:{hook.secret}"  # short form (the watchers')
            env["JUJU_SECRET_LABEL"] = hook.label
            if hook.kind in ("secret-remove", "secret-expired"):
                env["JUJU_SECRET_REVISION"] = str(hook.revision)
        if hook is not None and hook.rid is not None:
            env["JUJU_RELATION"] = self._ep(hook.rid, u.app_name)
            env["JUJU_RELATION_ID"] = f"{env['JUJU_RELATION']}:{hook.rid}"
            env["JUJU_REMOTE_UNIT"] = hook.remote
            # the application at the other end (own app for a peer relation), also in
            # relation-created and -broken (resolver.go: RemoteApplication)
            env["JUJU_REMOTE_APP"] = self._other(hook.rid, u.app_name)
            if hook.kind == "relation-departed":
                env["JUJU_DEPARTING_UNIT"] = hook.departing or hook.remote
        return env

    def _open_context(self, u: Unit, hook: Optional[Hook], hook_name, action=None):
        self._seq += 1
        ctx_id = f"{u.name}-{hook_name}-{self._seq}"
        with self._locked() as L:
            st = L.data
            endpoint = self._ep(hook.rid, u.app_name) if hook and hook.rid else None
            open_context(
                st, ctx_id, u.name, u.app_name, hook_name,
                kind=hook.kind if hook else None, rid=hook.rid if hook else None,
                endpoint=endpoint, remote_unit=hook.remote if hook else "",
                remote_app=(self._other(hook.rid, u.app_name)
                            if hook and hook.rid is not None else ""),
                # worker/uniter/relation/resolver.go createdRelationsResolver: relations
                # become known to the uniter only once the unit is installed; a removed
                # relation stays known until its relation-broken ran
                known=u.rel if u.in_scope else [], log=str(u.log), action=action)
            before = {"leader_settings": dict(self._ast(u.app_name)["leader_settings"])}
        return ctx_id, before

    def _exec(self, u: Unit, path: Path, env, inject):
        if inject == "before":
            return 1, "", "ERROR hook failure injected by the model (before start)\n", 0.0
        if not path.exists():
            return 0, "", "", 0.0
        t = time.monotonic()
        if self.zygote is not None:
            got = self.zygote.run(path, env, u.charm_dir, self.hook_timeout)
            if got is not None:
                return (*got, time.monotonic() - t)
        try:
            proc = subprocess.run([str(path)], cwd=str(u.charm_dir), env=env,
                                  capture_output=True, text=True, timeout=self.hook_timeout,
                                  check=False)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = -9, str(e.stdout or ""), f"{e.stderr or ''}\nhook timed out\n"
        return rc, out, err, time.monotonic() - t

    def _take_injection(self, u: Unit, hook_name):
        for i, (name, when) in enumerate(u.inject):
            if name is None or name == hook_name:
                del u.inject[i]
                return when
        return ""

    def _run(self, u: Unit, first) -> HookRun:
        hook, take = first
        hook_name = self._hook_name(hook, u)
        take()
        ctx_id, before = self._open_context(u, hook, hook_name)
        env = self._env(u, hook_name, ctx_id, hook)
        dispatch = u.charm_dir / "dispatch"
        path = dispatch if dispatch.exists() else u.charm_dir / "hooks" / hook_name
        inject = self._take_injection(u, hook_name)
        with open(u.log, "a", encoding="utf-8") as f:
            where = f" {env.get('JUJU_RELATION_ID')} remote={hook.remote or '-'}" \
                if hook.rid is not None else ""
            f.write(f"=== #{self._seq} {hook_name}{where}\n")
        rc, out, err, secs = self._exec(u, path, env, inject if inject != "depose" else "")
        if inject == "depose":
            rc, err = self._depose(u, ctx_id, rc, err)
        ok = rc == 0 and inject != "after"
        run = self._close(u, hook, hook_name, ctx_id, before, rc, ok, out, err, secs, inject)
        if ok:
            u.retry = None
            u.failures = 0
            self._after_success(u, hook)
        else:
            u.retry = hook
            u.failures += 1
            u.not_before = self._clock + min(2 ** u.failures, 64) * max(1, len(self._alive()))
        return run

    def _depose(self, u: Unit, ctx_id, rc, err):
        """Move leadership away from ``u`` before its hook commits; a hook with
        leader-only writes pending then fails."""
        others = sorted((x for x in self._alive() if x is not u
                         and x.application is u.application), key=lambda x: x.index)
        if others:
            self.set_leader(others[0].name)
        with self._locked() as L:
            st = L.data
            pending = st["contexts"][ctx_id]["pending"]
            leader_only = any(pending["app"].values()) or any(
                (st["secrets"].get(op["id"]) or {}).get("owner") == "application"
                or op.get("owner") == "application" for op in pending["secrets"])
        if rc == 0 and leader_only:
            rc = 1
            err += (f'ERROR checking leadership continuity: "{u.name}" is not leader of '
                    f'"{u.app_name}"\n')
        return rc, err

    def _after_success(self, u: Unit, hook: Hook):
        """What a hook that succeeded (or was skipped by resolve) changes in the unit's state."""
        if hook.kind == "install":
            self._enter_scope(u)
        elif hook.kind == "start":
            u.started = True
        elif hook.kind == "relation-created" and hook.rid in u.rel:
            u.rel[hook.rid].created = True
        elif hook.kind == "relation-broken":
            self._departed_relation(u, hook.rid)
        elif hook.kind == "relation-joined":
            u.rel[hook.rid].owed = hook.remote
        elif hook.kind == "remove":
            self._dead(u)

    def _close(self, u, hook, hook_name, ctx_id, before, rc, ok, out, err, secs, inject):
        with self._locked() as L:
            st = L.data
            ctx = st["contexts"].pop(ctx_id)
            changed = commit.commit_context(st, ctx) if ok else None
            leader = self._leader(u.app_name)
            leader_changed = self._ast(u.app_name)["leader_settings"] != \
                before["leader_settings"]
            views = st["views"]
            secrets = st["secrets"]
        self._queue_secret_events(secrets, leader)
        if changed:
            self._queue_changes(u, changed, leader, views)
        if leader_changed:
            for other in self._alive():
                if other.application is u.application and other.name != leader \
                        and not other.boot_has("leader"):
                    other.lsc = True
        with open(u.log, "a", encoding="utf-8") as f:
            for line in out.splitlines():
                f.write(f"stdout: {line}\n")
            for line in err.splitlines():
                f.write(f"stderr: {line}\n")
            note = "" if ok else (" FAILED (injected)" if inject == "after" else " FAILED")
            f.write(f"=== exit {rc}{note} ({secs:.2f}s)\n")
        run = HookRun(self._seq, u.name, hook_name,
                      f"{self._ep(hook.rid, u.app_name)}:{hook.rid}"
                      if hook is not None and hook.rid is not None else "",
                      hook.remote if hook is not None else "", rc, ok, secs, out, err,
                      ctx.get("calls", []), inject)
        self.history.append(run)
        return run

    def _queue_changes(self, writer: Unit, changed, leader, views):
        """relation-changed for the units a commit wakes (jujurules.state.woken_by_commit):
        a unit-bag change reaches the units that have the writer in their relation-list
        (unless the relation-changed owed after its joined is still queued); an app-bag
        change every unit in scope of a peer relation, the leader too, and for a relation
        between applications the other application's units in scope."""
        alive = {u.name: u for u in self._alive()}
        for rid in changed["unit"]:
            seeing = [n for n in alive if writer.name in views[n].get(rid, {}).get("members", [])
                      and not alive[n].rel.get(rid, RelPending(dying=True)).dying]
            peer = bool(self.relations[rid].get("peer"))
            for name in woken_by_commit(writer.name, False, peer, seeing):
                rp = alive[name].rel[rid]
                if rp.owed != writer.name:
                    rp.changed.add(writer.name)
        for rid in changed["app"]:
            in_scope = [n for n, u in alive.items() if rid in u.scopes and rid in u.rel
                        and not u.rel[rid].dying]
            peer = bool(self.relations[rid].get("peer"))
            local = [n for n in in_scope if alive[n].application is writer.application]
            remote = [n for n in in_scope if alive[n].application is not writer.application]
            for name in woken_by_commit(writer.name, True, peer, local, counterpart=remote):
                alive[name].rel[rid].app_changed = True

    def _queue_secret_events(self, secrets, leader):
        """Queue secret-changed and secret-remove from the committed secrets
        (worker/uniter/secrets/resolver.go).

        secret-changed: a unit that has read a secret (a consumer record: owner units too,
        apiserver/facades/agent/secretsmanager/secrets.go getSecretContent) is told once
        of each latest revision above 1 it has not been told of, whatever revision it
        tracks (state/secrets.go sets latest-revision on every consumer doc; the uniter's
        tracker moves only when a secret-changed hook commits), so a unit that read with
        --refresh is told too, and so is one whose first read finds revision 2 or later.
        secret-remove:
        the owner (the leader, for an application-owned secret) is told of each revision
        that is not the latest and that no unit tracks any more (an obsolete revision),
        once per revision."""
        for u in self._alive():
            if not u.in_scope:
                continue  # the secrets resolver runs only once the unit is installed
            for xid, s in secrets.items():
                record = s["consumers"].get(u.name) or {}
                if "revision" not in record:
                    continue
                if s["revision"] > 1 and u.secret_known.get(xid) != s["revision"]:
                    label = record.get("label") or (s["label"] if s["owner_id"] in
                                                    (u.app_name, u.name) else "")
                    u.secret_changed[xid] = (s["revision"], label)
                else:
                    u.secret_changed.pop(xid, None)
            u.secret_changed = {x: v for x, v in u.secret_changed.items() if x in secrets}
            owned = {xid: s for xid, s in secrets.items()
                     if (s["owner"] == "application" and s["owner_id"] == u.app_name
                         and u.name == self._leader(u.app_name))
                     or (s["owner"] == "unit" and s["owner_id"] == u.name)}
            due = set()
            for xid, s in owned.items():
                tracked = {c.get("revision") for c in s["consumers"].values()}
                done = u.obsolete_done.get(xid, set())
                # no label in the hook info: the context fills in the owner's label
                # (worker/uniter/runner/context/contextfactory.go HookContext)
                due |= {(xid, int(r), s["label"]) for r in s["revisions"]
                        if int(r) != s["revision"] and int(r) not in tracked
                        and int(r) not in done}
            u.secret_remove = due

    def _enter_scope(self, u: Unit):
        """After install the unit enters its relations' scope: the others see it join."""
        u.in_scope = True
        for rid in sorted(u.rel, key=int):
            if not u.rel[rid].dying:
                self._join(u, rid)

    def _join(self, u: Unit, rid):
        """``u`` enters the scope of relation ``rid``: its bag gets its addresses, and it
        and the remote units in scope (the other peers; the other application's units)
        are queued relation-joined for each other. A remote app bag already written is a
        relation-changed for it (resolver.go: its version differs from the none seen)."""
        u.scopes.add(rid)
        peer = bool(self.relations[rid].get("peer"))
        with self._locked() as L:
            rel = L.data["relations"][rid]
            enter_scope_settings(L.data, rid, u.name)
            if peer:
                written = bool(rel.get("app_written"))
            else:
                written = bool((rel.get("app_bags") or {}).get(self._other(rid, u.app_name)))
        if written:
            u.rel[rid].app_changed = True
        for other in self._alive():
            if other is u or rid not in other.scopes or rid not in other.rel \
                    or other.rel[rid].dying:
                continue
            if peer != (other.application is u.application):
                continue
            other.rel[rid].joined.add(u.name)
            u.rel[rid].joined.add(other.name)

    def _dead(self, u: Unit):
        """The unit is gone: its secret consumer records go (its tracked revisions may
        become obsolete) and, if it led, leadership passes on: at once, or after
        ``leaderless_hooks`` hooks of the other units (the lease expiring: no unit is
        leader meanwhile)."""
        u.life = "dead"
        with self._locked() as L:
            st = L.data
            st["units"][u.name]["alive"] = False
            st["units"][u.name]["dead"] = True
            for secret in st["secrets"].values():
                secret["consumers"].pop(u.name, None)
            ast = self._ast(u.app_name)
            was_leader = ast["leader"] == u.name
            if was_leader:
                ast["leader"] = None
            secrets, leader = st["secrets"], ast["leader"]
        if was_leader:
            if self.leaderless_hooks and u.app_name == self.app:
                self._elect_at = self._clock + self.leaderless_hooks
            else:
                self._elect(u.app_name)
        self._queue_secret_events(secrets, leader)

    def _elect(self, app=None):
        """The lease is free: the lowest-numbered live unit claims it."""
        if app in (None, self.app):
            self._elect_at = None
        app = app or self.app
        alive = sorted((u for u in self._alive() if u.app_name == app), key=lambda x: x.index)
        if alive:
            self.set_leader(alive[0].name)

    # ------------------------------------------------------------ direct tool use (tests)

    @contextlib.contextmanager
    def hook_context(self, unit, hook="update-status", relation=None, remote="", commit=True):
        """Run hook tools by hand as ``unit`` inside a hook context, without a hook process.

        Yields ``tool(*argv, input=None) -> CompletedProcess`` (text). On leaving, the context
        commits (commit=True, as a hook exiting 0) or is discarded (as a failed hook), and the
        resulting relation-changed / leader-settings-changed are queued like after a hook.
        ``relation`` is an endpoint name or relation id for a relation hook context.
        """
        u = self.units[unit]
        rid = None
        if relation is not None:
            rid = (str(relation) if str(relation) in self.relations
                   else self._rid(relation, u.app_name))
        kind = hook
        if rid is not None and not hook.startswith("relation-"):
            kind = "relation-changed"
        h = Hook(kind, rid, remote=remote)
        name = self._hook_name(h, u)
        ctx_id, before = self._open_context(u, h, name)
        env = self._env(u, name, ctx_id, h)

        def tool(*argv, input=None):
            return subprocess.run([str(a) for a in argv], env=env, cwd=str(u.charm_dir),
                                  input=input, capture_output=True, text=True, check=False)

        ok = False
        try:
            yield tool
            ok = commit
        finally:
            self._close(u, h, name, ctx_id, before, 0 if ok else 1, ok, "", "", 0.0, "")

    # ------------------------------------------------------------ actions

    def run_action(self, unit, name, params=None):
        """Run an action now on ``unit``; returns {"status", "results", "message", ...}."""
        u = self.units[unit]
        spec = (u.application.actions or {}).get(name)
        if spec is None:
            raise KeyError(f"no action {name!r} in actions.yaml")
        values = {k: v.get("default") for k, v in (spec.get("params") or {}).items()
                  if "default" in v}
        values.update(params or {})
        action = {"name": name, "uuid": str(uuid.UUID(int=self.rng.getrandbits(128))),
                  "params": values, "results": {}, "failed": None, "log": []}
        ctx_id, before = self._open_context(u, None, name, action)
        env = self._env(u, name, ctx_id, None, action)
        with open(u.log, "a", encoding="utf-8") as f:
            f.write(f"=== #{self._seq} action {name} {json.dumps(values)}\n")
        dispatch = u.charm_dir / "dispatch"
        path = dispatch if dispatch.exists() else u.charm_dir / "actions" / name
        rc, out, err, secs = self._exec(u, path, env, "")
        with self._locked() as L:
            ctx = dict(L.data["contexts"][ctx_id])
        run = self._close(u, Hook(name), name, ctx_id, before, rc, rc == 0, out, err, secs, "")
        result = ctx["action"]
        status = "completed" if rc == 0 and not result["failed"] else "failed"
        message = result["failed"] or ("" if rc == 0 else f"exit status {rc}")
        return {"status": status, "results": result["results"], "message": message,
                "messages": list(result["log"]), "exit_code": rc, "stdout": out,
                "stderr": err, "run": run}

    # ------------------------------------------------------------ accessors for tests

    @property
    def unit_names(self):
        """The first application's live and dying units (``app_units(app)``: another's),
        so the one-application checks keep meaning that application."""
        return self.app_units()

    @property
    def leader(self):
        return self._leader()

    def leader_of(self, app):
        """The leader of ``app`` (``leader``: of the first application)."""
        return self._leader(app)

    def app_units(self, app=None):
        """The live and dying units of ``app`` (default: the first application)."""
        app = app or self.app
        return [u.name for u in self.units.values() if u.life != "dead" and u.app_name == app]

    def unit(self, name) -> Unit:
        return self.units[name]

    def _rid(self, endpoint, app=None):
        """The relation id of ``endpoint`` (an endpoint of ``app``, default the first
        application; ``"app:endpoint"`` also works; a relation id is itself)."""
        if endpoint is None:
            return min(self.relations, key=int)
        if str(endpoint) in self.relations:
            return str(endpoint)
        if ":" in str(endpoint):
            app, _, endpoint = str(endpoint).partition(":")
        app = app or self.app
        for rid in sorted(self.relations, key=int):
            r = self.relations[rid]
            if r["ends"].get(app) == endpoint and not r.get("dying"):
                return rid
        raise KeyError(endpoint)

    def relation_data(self, unit, endpoint=None):
        """Committed data of ``unit``'s bag in the relation of ``endpoint`` (default: the
        first peer relation)."""
        rid = self._rid(endpoint, self.units[unit].app_name if unit in self.units else None)
        return dict(self.state()["relations"][rid]["units"].get(unit, {}))

    def app_data(self, endpoint=None, app=None):
        """Committed app bag: of the peer relation (default: the first), or ``app``'s side
        of a relation between applications (``endpoint`` is ``app``'s endpoint or an id)."""
        rid = self._rid(endpoint, app)
        rel = self.state()["relations"][rid]
        if rel.get("peer", True):
            return dict(rel["app_data"])
        return dict(rel["app_bags"].get(app or self.app, {}))

    def relation_list(self, unit, endpoint=None):
        rid = self._rid(endpoint, self.units[unit].app_name)
        return list(self.state()["views"][unit][rid]["members"])

    def relation_ids(self, app=None):
        """{relation id: {app: endpoint}} of the live relations ``app`` is in (default:
        every live relation)."""
        return {rid: dict(r["ends"]) for rid, r in self.relations.items()
                if not r.get("dying") and (app is None or app in r["ends"])}

    def leader_settings(self, app=None):
        return dict(self._state_of(app)["leader_settings"])

    def config(self, app=None):
        return dict(self._state_of(app)["config"])

    def _state_of(self, app):
        st = self.state()
        return st if app in (None, self.app) else st["apps"][app]

    def status(self, unit):
        return dict(self.state()["units"][unit]["status"])

    def app_status(self, app=None):
        return self._state_of(app).get("app_status")

    def status_history(self, unit=None):
        hist = self.state().get("status_history", [])
        return [h for h in hist if unit is None or h[0] == unit]

    def opened_ports(self, unit):
        return list(self.state()["units"][unit]["ports"])

    def workload_version(self, unit):
        return self.state()["units"][unit]["workload_version"]

    def secrets(self):
        """{id: {owner, owner_id, label, revision, content (latest, decoded), revisions}}."""
        import base64

        out = {}
        for xid, s in self.state()["secrets"].items():
            revs = {int(r): {k: base64.b64decode(v).decode() for k, v in c.items()}
                    for r, c in s["revisions"].items()}
            out[xid] = dict(s, revisions=revs, content=revs.get(s["revision"], {}))
        return out

    def hook_log(self, unit):
        return Path(self.units[unit].log).read_text(encoding="utf-8") \
            if self.units[unit].log.exists() else ""

    def logs(self):
        return {name: self.hook_log(name) for name in self.units}

    def hook_counts(self, unit=None):
        return collections.Counter(r.hook for r in self.history
                                   if unit is None or r.unit == unit)

    def runs(self, unit=None, hook=None):
        return [r for r in self.history if (unit is None or r.unit == unit)
                and (hook is None or r.hook == hook)]

    # ------------------------------------------------------------ the model's clock

    def advance_clock(self, seconds):
        """Move the model's wall clock ``seconds`` (whole, >= 0) forward: every hook and
        action process started from now on sees the real time plus ``clock_offset``
        (libfaketime; see clock.py). Processes already running (a service a hook started)
        keep the offset they started with. Returns the new offset; raises
        clock.ClockUnavailable when libfaketime is not installed. Queues no hook."""
        offset = self.clock_offset + check_offset(seconds)
        clock_env(offset)  # fails here, not in a hook, without libfaketime
        self.clock_offset = offset
        return offset


class _InMemory:
    """``with model._locked() as L: L.data[...]``: the in-memory state under the lock the
    tool server takes."""

    def __init__(self, data, lock):
        self.data = data
        self._lock = lock

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


def _nothing():
    """The take of a retry: the failed hook stays the unit's next until it succeeds."""
