"""An in-memory Juju for handler tests on the real charms.reactive 1.5.3.

Each unit gets its own charm directory (built like ``charm build`` lays it out: the
interface copied to ``hooks/relations/<interface name>/``, handler modules under
``reactive/``) and its own in-memory unitdata. ``run_hook`` then runs one hook on one
unit the way a fresh hook process would: charms.reactive's per-process state (handler
registry, Endpoint instances, triggers, atstart/atexit callbacks, hookenv caches) is reset
and the charm's ``reactive.*``/``relations.*`` modules are imported again, and
``charms.reactive.main`` runs for real. The model is the state of ``jujurules``
(tests/jujurules, the one implementation of Juju's rules that the process model uses too;
``FakeJuju.st``), and every hook tool charmhelpers or the layer runs is answered by
``jujurules.tools.run_tool`` in process: during a hook ``subprocess.check_output``,
``check_call``, ``call`` and ``run`` route a command line whose ``argv[0]`` is in
``TOOL_NAMES`` to it and give back its exit code and output as a real tool process
would, so charmhelpers' own argument building, caching and parsing run.
As in Juju, a successful hook commits its relation writes (``jujurules.commit``) and the
units the change wakes (``jujurules.state.woken_by_commit``) get ``relation-changed``
queued; unitdata (flags) is committed or rolled back with the hook; leader-set, status-set
and juju-log take effect at once. A unit's reads of other units' bags go through its
relation cache (refreshed for the unit a hook is about, as in Juju), so a change another
unit committed is seen once the relation-changed about it ran (``settle``).

Usage::

    from reactive_harness import FakeJuju

    def test_something(tmp_path):
        juju = FakeJuju(tmp_path, handlers={'mine.py': HANDLER_SOURCE})
        a0, a1 = juju.add_unit(), juju.add_unit()     # 'tls/0', 'tls/1'
        juju.set_leader(a0)
        rid = juju.add_peer_relation()                  # 'certificates:0', no members yet
        juju.enter(rid, a0)                             # runs certificates-relation-created
        juju.enter(rid, a1)                             # and the joined/changed hooks
        juju.settle()                                   # deliver relation-changed events
        assert juju.flag_set(a1, 'signed certificate available')
        assert juju.unit_bag(rid, a1)['csr'].startswith('-----BEGIN')
        run = juju.run_hook(a0, 'update-status')        # a HookRun: .ok, .error, .logs, ...
        assert not run.relation_sets                    # nothing changed, nothing written

API (all unit names are strings like ``tls/0``):

- ``FakeJuju(tmp_path, app='tls', metadata=None, interfaces=None, handlers=None,
  layers=(), config=None, fresh_modules=())``: ``metadata`` (dict) defaults to the tls
  peer endpoint ``certificates``; ``interfaces`` maps an interface name to its source
  directory (default ``{'tls': <repo>/interface-tls}``); ``handlers`` maps a file name
  under ``reactive/`` to Python source; ``layers`` are layer directories whose
  ``reactive/`` files and top-level yaml files are copied in (not ``lib/``: tests import
  libraries from the repository); ``config`` overrides the defaults from config.yaml;
  ``fresh_modules`` are extra module prefixes to re-import in every hook.
- Model: ``add_unit(name=None, address=None)``, ``set_leader(unit)``,
  ``add_peer_relation(endpoint='certificates')``, ``add_relation(endpoint,
  remote_units)`` (a non-peer relation with fake remote units), ``enter(rid, unit,
  hooks=True)`` / ``leave(rid, unit, hooks=True)`` (scope changes plus the hooks Juju
  would run), ``remove_relation(rid)`` (departed and broken hooks, then gone),
  ``set_config(unit, **values)``.
- Hooks: ``run_hook(unit, hook, rid=None, remote_unit=None, departing_unit=None,
  check=True, call=None)`` returns a ``HookRun`` and raises the hook's exception when
  ``check``; ``call`` runs after dispatch and before the atexit flush, like one more
  handler (``HookRun.result`` is its return value), e.g.
  ``juju.run_hook(u, 'update-status', call=lambda: endpoint_from_name('certificates')
  .pending_csrs()).result``;
  ``settle(max_hooks=200)`` runs queued relation-changed events until none are left;
  ``hook_context(unit, hook, ...)`` is a context manager giving the same environment to
  arbitrary code (e.g. an action body; ``action_params=`` fills action-get).
- Inspection: ``unit_bag(rid, unit)``, ``app_bag(rid, app=None)`` (committed data),
  ``set_unit_data`` / ``set_app_data`` (write committed data directly, e.g. bad data; the
  units' cached copy of a unit bag is dropped), ``HookRun.calls`` (the hook-tool command
  lines), ``HookRun.relation_reads()``, ``tool_counts`` (calls by tool name),
  ``flags(unit)``, ``flag_set(unit, flag)``, ``kv(unit)``, ``logs(unit)``,
  ``status(unit)``, ``leader_settings``, ``pending`` (queued events).
"""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import pathlib
import shutil
import subprocess
import sys
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import yaml
from charmhelpers.core import hookenv, unitdata
from charms.reactive import bus, endpoints, flags, relations, trace
from jujurules.args import APP, FORMAT, RELATION, parse_args
from jujurules.commit import commit_context
from jujurules.state import (
    apply_writes,
    enter_scope_settings,
    new_relation,
    new_state,
    new_unit,
    open_context,
    woken_by_commit,
)
from jujurules.tools import SECRET_TOOLS, TOOLS, Call, run_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
INTERFACE_TLS = ROOT / 'interface-tls'

DEFAULT_METADATA = {
    'name': 'tls',
    'summary': 'test charm',
    'description': 'test charm',
    'peers': {'certificates': {'interface': 'tls'}},
}

_CHARM_PACKAGES = ('reactive', 'relations')
MODEL_UUID = '00000000-0000-4000-8000-000000000000'
JUJU_VERSION = '3.6.0'


class HookRun:
    """What one hook did: ``ok``, ``error`` (the exception or None), ``traceback``,
    ``logs`` [(level, message)], ``relation_sets`` [(rid, owner, settings)] as the tool
    parsed them (committed only if ok), ``leader_sets``, ``statuses``, ``calls`` (every
    hook-tool command line, as the process model records them), ``flags`` after."""

    def __init__(self, unit: str, hook: str):
        self.unit = unit
        self.hook = hook
        self.ok = False
        self.error: Optional[BaseException] = None
        self.traceback = ''
        self.logs: List[Tuple[str, str]] = []
        self.relation_sets: List[Tuple[str, str, Dict[str, Any]]] = []
        self.leader_sets: List[Dict[str, Any]] = []
        self.statuses: List[Tuple[str, str]] = []
        self.action_results: Dict[str, Any] = {}
        self.action_failed: Optional[str] = None
        self.calls: List[List[str]] = []
        self.remote_unit = ''
        self.flags: List[str] = []
        self.result: Any = None

    def relation_reads(self) -> List[Tuple[Optional[str], str, bool]]:
        """The bags this hook read with relation-get: (``-r`` or None, owner, app bag?),
        the owner a unit name or, for ``--app``, an application name; with no owner given
        the hook's remote unit (jujurules.args parses the command lines)."""
        reads = []
        for argv in self.calls:
            if argv[0] != 'relation-get':
                continue
            opts, pos = parse_args(argv[1:], dict(FORMAT, **RELATION, **APP))
            owner = pos[1] if len(pos) > 1 else self.remote_unit
            app = bool(opts.get('app'))
            reads.append((opts.get('relation'), owner.split('/')[0] if app else owner, app))
        return reads

    def __repr__(self) -> str:
        return f'HookRun({self.unit} {self.hook} ok={self.ok})'


class _Relation:
    """A relation as the tests see it; its data lives in the jujurules state
    (``st["relations"][key]``): ``unit_bags`` and ``app_bags`` are views of it."""

    def __init__(self, juju: FakeJuju, rid: str, endpoint: str, remote_app: Optional[str]):
        self._juju = juju
        self.rid = rid
        self.key = rid.rsplit(':', 1)[1]      # the state's relation id
        self.endpoint = endpoint
        self.remote_app = remote_app          # None: a peer relation
        self.members: List[str] = []          # local units in scope
        self.remote_units: List[str] = []     # non-peer only
        self.departed: Dict[str, set] = {}    # unit -> remote units it saw depart

    @property
    def state(self) -> dict:
        return self._juju.st['relations'][self.key]

    @property
    def unit_bags(self) -> Dict[str, Dict[str, str]]:
        return self.state['units']

    @property
    def app_bags(self) -> Dict[str, Dict[str, str]]:
        rel = self.state
        if rel['peer']:
            return {self._juju.app: rel['app_data']}
        return rel['app_bags']


class _Unit:
    def __init__(self, juju: FakeJuju, name: str, charm_dir: pathlib.Path):
        self._juju = juju
        self.name = name
        self.charm_dir = charm_dir
        self.log_path = charm_dir.parent / 'juju.log'
        self.kv = unitdata.Storage(':memory:')
        self.config: Dict[str, Any] = {}
        self.logs: List[Tuple[str, str]] = []

    @property
    def address(self) -> str:
        return self._juju.st['units'][self.name]['address']

    @address.setter
    def address(self, value: str) -> None:
        self._juju.st['units'][self.name]['address'] = value

    @property
    def status(self) -> Tuple[str, str]:
        status = self._juju.st['units'][self.name]['status']
        return status['status'], status['message']


# The hook tools a harness hook runs in process (jujurules.tools.run_tool). Not routed,
# so a hook finds them missing as on a machine without them: secret-* (layer:tls calls
# them through ca_store.run_tool, which tls_harness's FakeSecrets answers) and jujud
# (hookenv.juju_version globs for a jujud binary under /var/lib/juju before it runs
# anything, so there is no command to route; nothing in a harness hook calls it).
TOOL_NAMES = tuple(name for name in TOOLS
                   if name not in SECRET_TOOLS and name not in ('jujud',))
_ROUTED = frozenset(TOOL_NAMES)
_SUBPROCESS = ('check_output', 'check_call', 'call', 'run')


class FakeJuju:
    """See the module docstring."""

    def __init__(self, tmp_path, app: str = 'tls', metadata: Optional[dict] = None,
                 interfaces: Optional[Dict[str, Any]] = None,
                 handlers: Optional[Dict[str, str]] = None, layers: Iterable[Any] = (),
                 config: Optional[Dict[str, Any]] = None, fresh_modules: Iterable[str] = ()):
        self.tmp = pathlib.Path(tmp_path)
        self.app = app
        self.metadata = dict(metadata or DEFAULT_METADATA)
        self.interfaces = {k: pathlib.Path(v) for k, v in
                           (interfaces or {'tls': INTERFACE_TLS}).items()}
        self.handlers = dict(handlers or {})
        self.layers = [pathlib.Path(p) for p in layers]
        self.config_overrides = dict(config or {})
        self.fresh_modules = tuple(fresh_modules)
        # The state of jujurules (tests/model/README.md), as the process model holds it.
        self.st = new_state(app, MODEL_UUID, JUJU_VERSION,
                            bindings=self.metadata.get('extra-bindings') or {})
        self.units: Dict[str, _Unit] = {}
        self.relations: Dict[str, _Relation] = {}
        self.pending: List[Tuple[str, str, str, Optional[str]]] = []
        self.history: List[HookRun] = []
        self.tool_counts: collections.Counter = collections.Counter()
        self._next_unit = 0
        self._next_rid = 0
        self._seq = 0
        self._ctx: Optional[dict] = None

    @property
    def leader(self) -> Optional[str]:
        return self.st['leader']

    @property
    def leader_settings(self) -> Dict[str, str]:
        return self.st['leader_settings']

    # ------------------------------------------------------------------ model

    def add_unit(self, name: Optional[str] = None, address: Optional[str] = None) -> str:
        """Create a unit with its own charm dir and unitdata; returns its name."""
        if name is None:
            name = f'{self.app}/{self._next_unit}'
        index = int(name.split('/')[1])
        self._next_unit = max(self._next_unit, index) + 1
        address = address or f'10.0.0.{10 + len(self.units)}'
        charm_dir = self.tmp / ('unit-' + name.replace('/', '-')) / 'charm'
        self._build_charm(charm_dir)
        self.st['units'][name] = new_unit(index, address, 'host-' + name.replace('/', '-'),
                                          status={'status': 'unknown', 'message': ''})
        self.st['views'][name] = {}
        unit = _Unit(self, name, charm_dir)
        unit.config = self._config_defaults(charm_dir)
        unit.config.update(self.config_overrides)
        self.units[name] = unit
        return name

    def set_leader(self, unit: Optional[str]) -> None:
        """Make ``unit`` the leader (None: no leader). Runs no hook."""
        self.st['leader'] = unit

    def set_config(self, unit: str, **values: Any) -> None:
        """Change ``unit``'s config (the harness keeps config per unit; a hook's
        config-get answers its unit's)."""
        self.units[unit].config.update(values)

    def add_peer_relation(self, endpoint: str = 'certificates') -> str:
        """A peer relation with no member yet; ``enter`` units into it."""
        return self._add_relation(endpoint, None)

    def add_relation(self, endpoint: str, remote_units: List[str]) -> str:
        """A non-peer relation whose remote side is fake units (data set with
        ``set_unit_data``). Local units still ``enter`` it."""
        rel = self._relations_get(self._add_relation(endpoint, remote_units[0].split('/')[0]))
        rel.remote_units = list(remote_units)
        for i, name in enumerate(remote_units):  # units of the model (readable once gone)
            self.st['units'].setdefault(name, new_unit(
                int(name.split('/')[1]), f'10.1.0.{10 + i}', 'host-' + name.replace('/', '-'),
                status={'status': 'active', 'message': ''}))
        return rel.rid

    def enter(self, rid: str, unit: str, hooks: bool = True) -> None:
        """``unit`` enters the relation's scope. With ``hooks``: it runs
        ``-relation-created``, then joined/changed hooks run on both sides, like Juju."""
        rel = self._relations_get(rid)
        others = self._view(rel, unit) if rel.remote_app is None else list(rel.remote_units)
        rel.members.append(unit)
        enter_scope_settings(self.st, rel.key, unit)
        if not hooks:
            return
        self.run_hook(unit, f'{rel.endpoint}-relation-created', rid=rid)
        for other in others:
            if rel.remote_app is None:
                self.run_hook(other, f'{rel.endpoint}-relation-joined', rid=rid,
                              remote_unit=unit)
                self.run_hook(other, f'{rel.endpoint}-relation-changed', rid=rid,
                              remote_unit=unit)
            self.run_hook(unit, f'{rel.endpoint}-relation-joined', rid=rid,
                          remote_unit=other)
            self.run_hook(unit, f'{rel.endpoint}-relation-changed', rid=rid,
                          remote_unit=other)

    def leave(self, rid: str, unit: str, hooks: bool = True) -> None:
        """``unit`` leaves the relation (its bag stays readable, as in Juju). With
        ``hooks``: every remaining member runs ``-relation-departed`` for it."""
        rel = self._relations_get(rid)
        rel.members.remove(unit)
        self.pending = [p for p in self.pending if p[0] != unit and p[3] != unit]
        if hooks:
            for other in list(rel.members):
                self.run_hook(other, f'{rel.endpoint}-relation-departed', rid=rid,
                              remote_unit=unit, departing_unit=unit)

    def remove_relation(self, rid: str) -> None:
        """Remove a (non-peer) relation: departed hooks, then broken, then it is gone."""
        rel = self._relations_get(rid)
        for unit in list(rel.members):
            for other in list(rel.remote_units):
                self.run_hook(unit, f'{rel.endpoint}-relation-departed', rid=rid,
                              remote_unit=other, departing_unit=other)
                rel.departed.setdefault(unit, set()).add(other)
            self.run_hook(unit, f'{rel.endpoint}-relation-broken', rid=rid)
        del self.relations[rid]
        del self.st['relations'][rel.key]
        for views in self.st['views'].values():
            views.pop(rel.key, None)

    # ------------------------------------------------------------------ inspection

    def unit_bag(self, rid: str, unit: str) -> Dict[str, str]:
        return dict(self._relations_get(rid).unit_bags.get(unit, {}))

    def app_bag(self, rid: str, app: Optional[str] = None) -> Dict[str, str]:
        return dict(self._relations_get(rid).app_bags.get(app or self.app, {}))

    def set_unit_data(self, rid: str, unit: str, **values: Optional[str]) -> None:
        """Write committed data into ``unit``'s bag (no hook, no event). The units'
        relation caches drop their copy of it, as if Juju had told them of the change."""
        rel = self._relations_get(rid)
        rel.unit_bags[unit] = apply_writes(rel.unit_bags.get(unit, {}), values)
        for views in self.st['views'].values():
            views.get(rel.key, {}).get('cache', {}).pop(unit, None)

    def set_app_data(self, rid: str, app: Optional[str] = None, **values: Optional[str]
                     ) -> None:
        """Write committed data into an app bag (no hook, no event)."""
        rel = self._relations_get(rid).state
        app = app or self.app
        if rel['peer']:
            rel['app_data'] = apply_writes(rel['app_data'], values)
        else:
            rel['app_bags'][app] = apply_writes(rel['app_bags'].get(app, {}), values)

    def kv(self, unit: str) -> unitdata.Storage:
        return self.units[unit].kv

    def flags(self, unit: str) -> List[str]:
        found = self.units[unit].kv.getrange('reactive.states.', strip=True) or {}
        return sorted(found)

    def flag_set(self, unit: str, flag: str) -> bool:
        return flag in self.flags(unit)

    def flag_value(self, unit: str, flag: str) -> Any:
        return self.units[unit].kv.get('reactive.states.' + flag)

    def logs(self, unit: str) -> List[Tuple[str, str]]:
        return list(self.units[unit].logs)

    def status(self, unit: str) -> Tuple[str, str]:
        return self.units[unit].status

    # ------------------------------------------------------------------ hooks

    def run_hook(self, unit: str, hook: str, rid: Optional[str] = None,
                 remote_unit: Optional[str] = None, departing_unit: Optional[str] = None,
                 check: bool = True, call: Optional[Callable[[], Any]] = None) -> HookRun:
        """Run one hook on ``unit`` as a new process would: the steps of
        ``charms.reactive.main`` (discover, atstart, dispatch, atexit, unitdata flush).
        ``call``: a function run after dispatch and before atexit, like one more handler
        (its return value is ``HookRun.result``). Relation writes commit only if the hook
        succeeds; ``check``: re-raise the hook's exception."""
        with self.hook_context(unit, hook, rid=rid, remote_unit=remote_unit,
                               departing_unit=departing_unit, check=check) as run:
            run.result = _reactive_main(call)
        return run

    def run_action(self, unit: str, name: str, entry: Callable[[], Any],
                   params: Optional[Dict[str, Any]] = None, check: bool = True) -> HookRun:
        """Run action ``name`` on ``unit`` as Juju does: ``JUJU_HOOK_NAME`` exported empty
        (worker/uniter/runner/context/context.go HookVars; an action context has no hook
        name), ``JUJU_ACTION_NAME`` set. ``entry`` is what the action script runs (no
        reactive dispatch unless it does one itself)."""
        with self.hook_context(unit, '', action=name, action_params=params,
                               check=check) as run:
            run.result = entry()
        return run

    def settle(self, max_hooks: int = 200) -> List[HookRun]:
        """Run queued relation-changed events (first in, first out) until none is left."""
        runs = []
        while self.pending:
            if len(runs) >= max_hooks:
                raise AssertionError(f'model did not settle in {max_hooks} hooks')
            unit, hook, rid, remote = self.pending.pop(0)
            if rid not in self.relations or unit not in self.relations[rid].members:
                continue
            runs.append(self.run_hook(unit, hook, rid=rid, remote_unit=remote))
        return runs

    @contextlib.contextmanager
    def hook_context(self, unit: str, hook: str, rid: Optional[str] = None,
                     remote_unit: Optional[str] = None, departing_unit: Optional[str] = None,
                     check: bool = True, action_params: Optional[Dict[str, Any]] = None,
                     action: Optional[str] = None):
        """The environment of one hook process on ``unit``; yields the ``HookRun``.
        Commits relation writes and unitdata if the body succeeds, else rolls back."""
        if self._ctx is not None:
            raise RuntimeError('hooks do not nest')
        u = self.units[unit]
        run = HookRun(unit, hook)
        run.remote_unit = remote_unit or ''
        ctx = {'unit': u, 'rid': rid, 'remote_unit': remote_unit, 'run': run,
               'id': self._open(u, hook, rid, remote_unit, action, action_params)}
        self._ctx = ctx
        saved_env = dict(os.environ)
        saved_path = list(sys.path)
        saved_kv = unitdata._KV
        saved = {name: getattr(subprocess, name) for name in _SUBPROCESS}
        try:
            self._new_process(u)
            os.environ.update(self._environment(u, hook, rid, remote_unit, departing_unit))
            os.environ.pop('JUJU_ACTION_NAME', None)
            if action is not None:
                os.environ['JUJU_ACTION_NAME'] = action
            for name in _SUBPROCESS:
                setattr(subprocess, name, functools.partial(
                    getattr(self, '_sub_' + name), saved[name]))
            unitdata._KV = u.kv
            try:
                yield run
            except BaseException as exc:  # noqa: BLE001 - any failure fails the hook
                if isinstance(exc, SystemExit) and exc.code in (None, 0):
                    self._commit(ctx)
                else:
                    run.error = exc
                    run.traceback = traceback.format_exc()
                    u.kv.flush(False)
            else:
                self._commit(ctx)
        finally:
            for name, value in saved.items():
                setattr(subprocess, name, value)
            state_ctx = self.st['contexts'].pop(ctx['id'], None) or {}
            run.calls = state_ctx.get('calls', [])
            action_state = state_ctx.get('action')
            if action_state is not None:
                run.action_results = action_state['results']
                run.action_failed = action_state['failed']
            run.flags = self.flags(unit)
            unitdata._KV = saved_kv
            os.environ.clear()
            os.environ.update(saved_env)
            sys.path[:] = saved_path
            self._ctx = None
            self.history.append(run)
        if run.error is not None and check:
            raise run.error

    # ------------------------------------------------------------------ internals

    def _relations_get(self, rid: str) -> _Relation:
        if rid not in self.relations:
            raise KeyError(f'unknown relation id {rid}')
        return self.relations[rid]

    def _add_relation(self, endpoint: str, remote_app: Optional[str]) -> str:
        rid = f'{endpoint}:{self._next_rid}'
        self._next_rid += 1
        rel = _Relation(self, rid, endpoint, remote_app)
        interface = _interface_of(self.metadata, endpoint)
        if remote_app is None:
            self.st['relations'][rel.key] = new_relation(endpoint, interface,
                                                         {self.app: endpoint}, peer=True)
        else:
            self.st['relations'][rel.key] = new_relation(
                endpoint, interface, {self.app: endpoint, remote_app: endpoint}, peer=False)
        self.relations[rid] = rel
        return rid

    def _view(self, rel: _Relation, unit: str) -> List[str]:
        """The harness's relation-list for ``unit``: every other member in scope (peers)
        or the remote units, less those it saw depart."""
        gone = rel.departed.get(unit, set())
        if rel.remote_app is None:
            return sorted(m for m in rel.members if m != unit and m not in gone)
        return sorted(m for m in rel.remote_units if m not in gone)

    def _open(self, u: _Unit, hook: str, rid: Optional[str], remote_unit: Optional[str],
              action: Optional[str], action_params: Optional[Dict[str, Any]]) -> str:
        """Open the jujurules hook context of a harness hook (jujurules.state.open_context,
        as the model's): the unit's relation-lists are the harness's (everyone in scope;
        ``enter`` runs the joined hooks itself), the relations it knows those it is in."""
        self._seq += 1
        ctx_id = f'{u.name}-{hook or action}-{self._seq}'
        self.st['config'] = dict(u.config)
        views = self.st['views'].setdefault(u.name, {})
        known = []
        for rel in self.relations.values():
            if u.name in rel.members:
                known.append(rel.key)
            view = views.setdefault(rel.key, {'members': [], 'cache': {}})
            view['members'] = self._view(rel, u.name)
        kind = endpoint = remote_app = None
        if rid is not None:
            rel = self._relations_get(rid)
            endpoint = rel.endpoint
            kind = hook[len(endpoint) + 1:] if hook.startswith(endpoint + '-') else hook
            remote_app = rel.remote_app or self.app
        action_state = None
        if action is not None or action_params is not None:
            action_state = {'name': action or hook, 'params': dict(action_params or {}),
                            'results': {}, 'failed': None, 'log': []}
        open_context(self.st, ctx_id, u.name, self.app, hook, kind=kind,
                     rid=None if rid is None else self.relations[rid].key,
                     endpoint=endpoint, remote_unit=remote_unit or '',
                     remote_app=remote_app or '', known=known, log=str(u.log_path),
                     action=action_state)
        return ctx_id

    def _build_charm(self, charm_dir: pathlib.Path) -> None:
        ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
        (charm_dir / 'reactive').mkdir(parents=True)
        (charm_dir / 'hooks' / 'relations').mkdir(parents=True)
        (charm_dir / 'reactive' / '__init__.py').write_text('')
        (charm_dir / 'hooks' / 'relations' / '__init__.py').write_text('')
        for layer in self.layers:
            for path in sorted(layer.glob('*.yaml')):
                if not (charm_dir / path.name).exists():
                    shutil.copy(path, charm_dir / path.name)
            if (layer / 'reactive').is_dir():
                shutil.copytree(layer / 'reactive', charm_dir / 'reactive',
                                ignore=ignore, dirs_exist_ok=True)
        # The trap: an interface registers its handlers under its folder's name.
        for name, source in self.interfaces.items():
            shutil.copytree(source, charm_dir / 'hooks' / 'relations' / name, ignore=ignore)
        for name, source in self.handlers.items():
            (charm_dir / 'reactive' / name).write_text(source)
        (charm_dir / 'metadata.yaml').write_text(yaml.safe_dump(self.metadata))

    @staticmethod
    def _config_defaults(charm_dir: pathlib.Path) -> Dict[str, Any]:
        path = charm_dir / 'config.yaml'
        if not path.exists():
            return {}
        options = (yaml.safe_load(path.read_text()) or {}).get('options') or {}
        return {k: (v or {}).get('default') for k, v in options.items()}

    def _environment(self, u: _Unit, hook: str, rid: Optional[str],
                     remote_unit: Optional[str], departing: Optional[str]) -> Dict[str, str]:
        env = {
            'JUJU_UNIT_NAME': u.name, 'JUJU_HOOK_NAME': hook, 'JUJU_MODEL_NAME': 'test',
            'JUJU_MODEL_UUID': MODEL_UUID,
            'CHARM_DIR': str(u.charm_dir), 'JUJU_CHARM_DIR': str(u.charm_dir),
            'JUJU_VERSION': JUJU_VERSION, 'JUJU_PRINCIPAL_UNIT': '',
        }
        for key in ('JUJU_RELATION', 'JUJU_RELATION_ID', 'JUJU_REMOTE_UNIT',
                    'JUJU_REMOTE_APP', 'JUJU_DEPARTING_UNIT'):
            os.environ.pop(key, None)
        if rid is not None:
            rel = self._relations_get(rid)
            env.update({'JUJU_RELATION': rel.endpoint, 'JUJU_RELATION_ID': rid,
                        'JUJU_REMOTE_UNIT': remote_unit or '',
                        'JUJU_REMOTE_APP': rel.remote_app or self.app})
            if departing:
                env['JUJU_DEPARTING_UNIT'] = departing
        return env

    def _new_process(self, u: _Unit) -> None:
        """Reset what a new hook process would start without (charms.reactive 1.5.3)."""
        prefixes = _CHARM_PACKAGES + self.fresh_modules
        for name in list(sys.modules):
            if any(name == p or name.startswith(p + '.') for p in prefixes):
                del sys.modules[name]
        sys.path[:] = [p for p in sys.path if not p.startswith(str(self.tmp))]
        hookenv.cache.clear()
        hookenv._cache_config = None
        del hookenv._atstart[:]
        del hookenv._atexit[:]
        bus.Handler._HANDLERS = {}
        bus.Handler._CONSUMED_FLAGS = set()
        endpoints.Endpoint._endpoints.clear()
        relations.RelationFactory._factories.clear()
        relations.RelationBase._cache.clear()
        flags.TRIGGER_CALLBACKS.clear()
        # Module-import registrations, in charms.reactive's import order.
        trace.install_tracer(trace.NullTracer())
        hookenv.atstart(trace.install_tracer, trace.LogTracer())
        # flags.py registers these with bare decorators (the module names are None).
        hookenv.atstart(flags._manage_upgrade_flags)
        hookenv.atexit(_clear_triggers)
        hookenv.atstart(relations.RelationBase._startup)
        hookenv.atstart(endpoints.Endpoint._startup)
        u.kv.flush(False)  # start from the committed unitdata

    def _commit(self, ctx: dict) -> None:
        """The hook succeeded: unitdata flushes, and its buffered writes commit
        (jujurules.commit.commit_context, as in the model); relation-changed is queued
        for the units a changed bag wakes (jujurules.state.woken_by_commit): in a peer
        relation the other members in scope (a unit bag) or every member (the app bag);
        in a relation with the fake remote application no local unit sees the change."""
        run = ctx['run']
        run.ok = True
        ctx['unit'].kv.flush()
        writer = ctx['unit'].name
        state_ctx = self.st['contexts'].get(ctx['id'])
        if state_ctx is None:
            return
        changed = commit_context(self.st, state_ctx)
        by_key = {rel.key: rel for rel in self.relations.values()}
        for kind in ('unit', 'app'):
            for key in changed[kind]:
                rel = by_key.get(key)
                if rel is None or rel.remote_app is not None:
                    continue
                members = [m for m in rel.members if m == writer or
                           writer in self._view(rel, m)]
                for other in woken_by_commit(writer, kind == 'app', True, members):
                    event = (other, f'{rel.endpoint}-relation-changed', rel.rid,
                             None if kind == 'app' else writer)
                    if event not in self.pending:
                        self.pending.append(event)

    # ------------------------------------------------------------------ hook tools

    def _tool(self, argv: List[str], stdin: Optional[str] = None) -> Tuple[int, str, str]:
        """One hook-tool call of the running hook, answered by jujurules.tools.run_tool on
        the harness's state (what the model's tool server does for a hook process)."""
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError('hook tool called outside a hook')
        name = argv[0]
        self.tool_counts[name] += 1
        state_ctx = self.st['contexts'][ctx['id']]
        call = Call(os.getcwd(), lambda: stdin or '')
        run = ctx['run']
        if name == 'relation-set':
            # What this call buffers, as the tool parsed it: a fresh pending map for it.
            real = state_ctx['pending']
            probe = dict(real, unit={}, app={})
            state_ctx['pending'] = probe
            try:
                rc, out, err = run_tool(self.st, ctx['id'], name, argv[1:], call)
            finally:
                state_ctx['pending'] = real
            for kind in ('unit', 'app'):
                for key, values in probe[kind].items():
                    real[kind].setdefault(key, {}).update(values)
                    owner = ctx['unit'].name if kind == 'unit' else self.app
                    rid = next(r.rid for r in self.relations.values() if r.key == key)
                    run.relation_sets.append((rid, owner, dict(values)))
            return rc, out, err
        log_path = ctx['unit'].log_path
        before = 0
        if name == 'juju-log' and log_path.exists():
            before = log_path.stat().st_size
        history = len(self.st.get('status_history', []))
        rc, out, err = run_tool(self.st, ctx['id'], name, argv[1:], call)
        if rc == 0 and name == 'juju-log':
            with open(log_path, encoding='utf-8') as f:
                f.seek(before)
                line = f.read()
            entry = _log_entry(line, state_ctx)
            ctx['unit'].logs.append(entry)
            run.logs.append(entry)
        elif rc == 0 and name == 'leader-set':
            run.leader_sets.append({k: v or None for k, v in
                                    (a.partition('=')[::2] for a in argv[1:] if '=' in a)})
        for _unit, _app, state, message in self.st.get('status_history', [])[history:]:
            run.statuses.append((state, message))
        return rc, out, err

    @staticmethod
    def _routed(args: Any) -> bool:
        return (isinstance(args, (list, tuple)) and bool(args)
                and isinstance(args[0], str) and args[0] in _ROUTED)

    def _sub_check_output(self, real: Callable, args: Any, *a: Any, **kw: Any) -> Any:
        if not self._routed(args):
            return real(args, *a, **kw)
        rc, out, err = self._tool(list(args), kw.get('input'))
        stderr = None
        if kw.get('stderr') == subprocess.STDOUT:
            out = out + err
        elif kw.get('stderr') == subprocess.PIPE:
            stderr = _encode(err, kw)
        elif kw.get('stderr') is None and err:
            sys.stderr.write(err)  # a real process's stderr goes to the hook's
        output = _encode(out, kw)
        if rc != 0:
            raise subprocess.CalledProcessError(rc, args, output=output, stderr=stderr)
        return output

    def _sub_check_call(self, real: Callable, args: Any, *a: Any, **kw: Any) -> int:
        if not self._routed(args):
            return real(args, *a, **kw)
        rc = self._sub_call(real, args, *a, **kw)
        if rc != 0:
            raise subprocess.CalledProcessError(rc, args)
        return 0

    def _sub_call(self, real: Callable, args: Any, *a: Any, **kw: Any) -> int:
        if not self._routed(args):
            return real(args, *a, **kw)
        rc, out, err = self._tool(list(args))
        if out:
            sys.stdout.write(out)
        if err:
            sys.stderr.write(err)
        return rc

    def _sub_run(self, real: Callable, args: Any, *a: Any, **kw: Any
                 ) -> subprocess.CompletedProcess:
        if not self._routed(args):
            return real(args, *a, **kw)
        rc, out, err = self._tool(list(args), kw.get('input'))
        capture = kw.get('capture_output')
        stdout = _encode(out, kw) if capture or kw.get('stdout') == subprocess.PIPE else None
        if kw.get('stderr') == subprocess.STDOUT and stdout is not None:
            stdout, stderr = _encode(out + err, kw), None
        elif capture or kw.get('stderr') == subprocess.PIPE:
            stderr = _encode(err, kw)
        else:
            stderr = None
            if err:
                sys.stderr.write(err)
        done = subprocess.CompletedProcess(args, rc, stdout, stderr)
        if kw.get('check'):
            done.check_returncode()
        return done


def _interface_of(metadata: dict, endpoint: str) -> str:
    for role in ('peers', 'provides', 'requires'):
        spec = (metadata.get(role) or {}).get(endpoint)
        if spec:
            return spec.get('interface', '')
    return ''


def _encode(text: str, kw: Dict[str, Any]) -> Any:
    """A process's output as the caller asked for it: str with text/universal_newlines/
    encoding, else bytes."""
    if kw.get('text') or kw.get('universal_newlines') or kw.get('encoding'):
        return text
    return text.encode('utf-8')


def _log_entry(line: str, state_ctx: dict) -> Tuple[str, str]:
    """(level, message) of the line juju-log appended to the unit's log
    (``juju-log LEVEL [endpoint:rid: ]message``)."""
    body = line[len('juju-log '):-1] if line.endswith('\n') else line[len('juju-log '):]
    level, _, message = body.partition(' ')
    if state_ctx.get('rid') is not None:
        prefix = '{}:{}: '.format(state_ctx.get('endpoint'), state_ctx['rid'])
        if message.startswith(prefix):
            message = message[len(prefix):]
    return level, message


def _reactive_main(call: Optional[Callable[[], Any]] = None) -> Any:
    """charms.reactive.main (1.5.3) step by step, with ``call`` before the atexit step."""
    hook_name = hookenv.hook_name()
    restricted = hook_name in ('meter-status-changed', 'collect-metrics')
    hookenv.log(f'Reactive main running for hook {hook_name}', level=hookenv.INFO)
    result = None
    try:
        bus.discover()
        if not restricted:
            hookenv._run_atstart()
        bus.dispatch(restricted=restricted)
        if call is not None:
            result = call()
    except Exception:
        hookenv.log('Hook error:\n' + traceback.format_exc(), level=hookenv.ERROR)
        raise
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    if not restricted:
        hookenv._run_atexit()
    unitdata._KV.flush()
    return result


def _clear_triggers() -> None:
    """What charms.reactive.flags._clear_triggers does at exit (1.5.3)."""
    kv = unitdata.kv()
    for prefix in ('reactive.flag_triggers.', 'reactive.flag_set_triggers.',
                   'reactive.flag_clear_triggers.'):
        kv.unsetrange(prefix=prefix)
