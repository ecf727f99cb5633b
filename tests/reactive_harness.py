"""An in-memory Juju for handler tests on the real charms.reactive 1.5.3.

Each unit gets its own charm directory (built like ``charm build`` lays it out: the
interface copied to ``hooks/relations/<interface name>/``, handler modules under
``reactive/``) and its own in-memory unitdata. ``run_hook`` then runs one hook on one
unit the way a fresh hook process would: charms.reactive's per-process state (handler
registry, Endpoint instances, triggers, atstart/atexit callbacks, hookenv caches) is reset
and the charm's ``reactive.*``/``relations.*`` modules are imported again, the hook tools
that charmhelpers calls are answered from an in-memory table, and ``charms.reactive.main``
runs for real. As in Juju, relation writes commit only if the hook succeeded (then
``relation-changed`` events are queued for the units the change wakes: the other members
for a unit bag, every member, the writing leader too, for a peer app bag), unitdata (flags)
is committed or rolled back with the hook, and leader-set, status-set and juju-log take
effect at once. These rules (empty values delete, leader-only app and leader writes, who
a commit wakes) are ``jujurules``' (tests/jujurules), the ones the process model uses.

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
  ``set_unit_data`` / ``set_app_data`` (write committed data directly, e.g. bad data),
  ``flags(unit)``, ``flag_set(unit, flag)``, ``kv(unit)``, ``logs(unit)``,
  ``status(unit)``, ``leader_settings``, ``pending`` (queued events).
"""
from __future__ import annotations

import contextlib
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
from jujurules.args import ToolError
from jujurules.state import (
    apply_writes,
    require_leader_for_app_write,
    require_leader_for_leader_set,
    woken_by_commit,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
INTERFACE_TLS = ROOT / 'interface-tls'

DEFAULT_METADATA = {
    'name': 'tls',
    'summary': 'test charm',
    'description': 'test charm',
    'peers': {'certificates': {'interface': 'tls'}},
}

_CHARM_PACKAGES = ('reactive', 'relations')


class HookRun:
    """What one hook did: ``ok``, ``error`` (the exception or None), ``traceback``,
    ``logs`` [(level, message)], ``relation_sets`` [(rid, owner, settings)] as called by
    the code (committed only if ok), ``leader_sets``, ``statuses``, ``flags`` after."""

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
        self.flags: List[str] = []
        self.result: Any = None

    def __repr__(self) -> str:
        return f'HookRun({self.unit} {self.hook} ok={self.ok})'


class _Relation:
    def __init__(self, rid: str, endpoint: str, remote_app: Optional[str]):
        self.rid = rid
        self.endpoint = endpoint
        self.remote_app = remote_app          # None: a peer relation
        self.members: List[str] = []          # local units in scope
        self.remote_units: List[str] = []     # non-peer only
        self.unit_bags: Dict[str, Dict[str, str]] = {}
        self.app_bags: Dict[str, Dict[str, str]] = {}


class _Unit:
    def __init__(self, name: str, charm_dir: pathlib.Path, address: str):
        self.name = name
        self.charm_dir = charm_dir
        self.address = address
        self.kv = unitdata.Storage(':memory:')
        self.config: Dict[str, Any] = {}
        self.logs: List[Tuple[str, str]] = []
        self.status: Tuple[str, str] = ('unknown', '')


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
        self.units: Dict[str, _Unit] = {}
        self.relations: Dict[str, _Relation] = {}
        self.leader: Optional[str] = None
        self.leader_settings: Dict[str, str] = {}
        self.pending: List[Tuple[str, str, str, Optional[str]]] = []
        self.history: List[HookRun] = []
        self._next_unit = 0
        self._next_rid = 0
        self._ctx: Optional[dict] = None

    # ------------------------------------------------------------------ model

    def add_unit(self, name: Optional[str] = None, address: Optional[str] = None) -> str:
        """Create a unit with its own charm dir and unitdata; returns its name."""
        if name is None:
            name = f'{self.app}/{self._next_unit}'
        self._next_unit = max(self._next_unit, int(name.split('/')[1])) + 1
        address = address or f'10.0.0.{10 + len(self.units)}'
        charm_dir = self.tmp / ('unit-' + name.replace('/', '-')) / 'charm'
        self._build_charm(charm_dir)
        unit = _Unit(name, charm_dir, address)
        unit.config = self._config_defaults(charm_dir)
        unit.config.update(self.config_overrides)
        self.units[name] = unit
        return name

    def set_leader(self, unit: Optional[str]) -> None:
        """Make ``unit`` the leader (None: no leader). Runs no hook."""
        self.leader = unit

    def set_config(self, unit: str, **values: Any) -> None:
        self.units[unit].config.update(values)

    def add_peer_relation(self, endpoint: str = 'certificates') -> str:
        """A peer relation with no member yet; ``enter`` units into it."""
        return self._add_relation(endpoint, None)

    def add_relation(self, endpoint: str, remote_units: List[str]) -> str:
        """A non-peer relation whose remote side is fake units (data set with
        ``set_unit_data``). Local units still ``enter`` it."""
        rel = self._relations_get(self._add_relation(endpoint, remote_units[0].split('/')[0]))
        rel.remote_units = list(remote_units)
        return rel.rid

    def enter(self, rid: str, unit: str, hooks: bool = True) -> None:
        """``unit`` enters the relation's scope. With ``hooks``: it runs
        ``-relation-created``, then joined/changed hooks run on both sides, like Juju."""
        rel = self._relations_get(rid)
        others = self._view(rel, unit) if rel.remote_app is None else list(rel.remote_units)
        rel.members.append(unit)
        bag = rel.unit_bags.setdefault(unit, {})
        address = self.units[unit].address
        bag.update({'private-address': address, 'ingress-address': address,
                    'egress-subnets': address + '/32'})
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
            self.run_hook(unit, f'{rel.endpoint}-relation-broken', rid=rid)
        del self.relations[rid]

    # ------------------------------------------------------------------ inspection

    def unit_bag(self, rid: str, unit: str) -> Dict[str, str]:
        return dict(self._relations_get(rid).unit_bags.get(unit, {}))

    def app_bag(self, rid: str, app: Optional[str] = None) -> Dict[str, str]:
        return dict(self._relations_get(rid).app_bags.get(app or self.app, {}))

    def set_unit_data(self, rid: str, unit: str, **values: Optional[str]) -> None:
        """Write committed data into ``unit``'s bag (no hook, no event)."""
        _apply(self._relations_get(rid).unit_bags.setdefault(unit, {}), values)

    def set_app_data(self, rid: str, app: Optional[str] = None, **values: Optional[str]
                     ) -> None:
        """Write committed data into an app bag (no hook, no event)."""
        _apply(self._relations_get(rid).app_bags.setdefault(app or self.app, {}), values)

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
        ctx = {'unit': u, 'rid': rid, 'remote_unit': remote_unit, 'run': run,
               'writes': {}, 'config': None, 'action_params': action_params or {}}
        self._ctx = ctx
        saved_env = dict(os.environ)
        saved_path = list(sys.path)
        saved_kv = unitdata._KV
        saved = {name: getattr(hookenv, name) for name in _PATCHED}
        try:
            self._new_process(u)
            os.environ.update(self._environment(u, hook, rid, remote_unit, departing_unit))
            os.environ.pop('JUJU_ACTION_NAME', None)
            if action is not None:
                os.environ['JUJU_ACTION_NAME'] = action
            for name in _PATCHED:
                setattr(hookenv, name, getattr(self, '_tool_' + name))
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
            run.flags = self.flags(unit)
            for name, value in saved.items():
                setattr(hookenv, name, value)
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
        self.relations[rid] = _Relation(rid, endpoint, remote_app)
        return rid

    def _view(self, rel: _Relation, unit: str) -> List[str]:
        """relation-list for ``unit``: the other members (peers) or the remote units."""
        if rel.remote_app is None:
            return sorted(m for m in rel.members if m != unit)
        return sorted(rel.remote_units)

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
            'JUJU_MODEL_UUID': '00000000-0000-4000-8000-000000000000',
            'CHARM_DIR': str(u.charm_dir), 'JUJU_CHARM_DIR': str(u.charm_dir),
            'JUJU_VERSION': '3.6.0', 'JUJU_PRINCIPAL_UNIT': '',
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
        run = ctx['run']
        run.ok = True
        ctx['unit'].kv.flush()
        unit = ctx['unit'].name
        for (rid, owner), values in ctx['writes'].items():
            rel = self.relations.get(rid)
            if rel is None:
                continue
            is_app = '/' not in owner
            bags = rel.app_bags if is_app else rel.unit_bags
            bag = bags.setdefault(owner, {})
            before = dict(bag)
            _apply(bag, values)
            if bag == before:
                continue  # Juju sends no relation-changed for a write that changes nothing
            peer = rel.remote_app is None
            for other in woken_by_commit(unit, is_app, peer, rel.members):
                event = (other, f'{rel.endpoint}-relation-changed', rid,
                         None if is_app else unit)
                if event not in self.pending:
                    self.pending.append(event)

    def _ctx_or_fail(self) -> dict:
        if self._ctx is None:
            raise RuntimeError('hook tool called outside a hook')
        return self._ctx

    def _rid(self, rid: Optional[str]) -> Optional[str]:
        return rid or self._ctx_or_fail()['rid']

    # ------------------------------------------------------------------ hook tools

    def _tool_relation_ids(self, reltype: Optional[str] = None) -> List[str]:
        reltype = reltype or hookenv.relation_type()
        unit = self._ctx_or_fail()['unit'].name
        return sorted(rid for rid, rel in self.relations.items()
                      if rel.endpoint == reltype and unit in rel.members)

    def _tool_related_units(self, relid: Optional[str] = None) -> List[str]:
        relid = self._rid(relid)
        if relid not in self.relations:
            raise subprocess.CalledProcessError(2, 'relation-list')
        return self._view(self.relations[relid], self._ctx_or_fail()['unit'].name)

    def _tool_relation_get(self, attribute: Optional[str] = None, unit: Optional[str] = None,
                           rid: Optional[str] = None, app: Optional[str] = None) -> Any:
        ctx = self._ctx_or_fail()
        rid = self._rid(rid)
        if rid not in self.relations:
            return None  # exit 2: charmhelpers returns None
        rel = self.relations[rid]
        me = ctx['unit'].name
        if app is not None:
            owner = app.split('/')[0]
            if owner == self.app and rel.remote_app is not None and me != self.leader:
                raise subprocess.CalledProcessError(1, 'relation-get')  # permission denied
            bag = dict(rel.app_bags.get(owner, {}))
            if owner == self.app and me == self.leader:
                _apply(bag, ctx['writes'].get((rid, owner), {}))
        else:
            owner = unit or hookenv.remote_unit()
            if not owner:
                return None
            bag = dict(rel.unit_bags.get(owner, {}))
            if owner == me:
                _apply(bag, ctx['writes'].get((rid, owner), {}))
        if attribute in (None, '-'):
            return bag
        return bag.get(attribute)

    def _tool_relation_set(self, relation_id: Optional[str] = None,
                           relation_settings: Optional[Dict[str, Any]] = None,
                           app: bool = False, **kwargs: Any) -> None:
        ctx = self._ctx_or_fail()
        rid = self._rid(relation_id)
        if rid not in self.relations:
            raise subprocess.CalledProcessError(2, 'relation-set')
        me = ctx['unit'].name
        if app:
            _tool_rule(require_leader_for_app_write, me == self.leader, 'relation-set')
        settings = dict(relation_settings or {})
        settings.update(kwargs)
        values = {k: (None if v is None else str(v)) for k, v in settings.items()}
        owner = self.app if app else me
        ctx['run'].relation_sets.append((rid, owner, dict(values)))
        ctx['writes'].setdefault((rid, owner), {}).update(values)
        hookenv.flush(me)

    def _tool_is_leader(self) -> bool:
        return self._ctx_or_fail()['unit'].name == self.leader

    def _tool_leader_get(self, attribute: Optional[str] = None) -> Any:
        self._ctx_or_fail()
        if attribute in (None, '-'):
            return dict(self.leader_settings)
        return self.leader_settings.get(attribute)

    def _tool_leader_set(self, settings: Optional[Dict[str, Any]] = None, **kwargs: Any
                         ) -> None:
        ctx = self._ctx_or_fail()
        _tool_rule(require_leader_for_leader_set, ctx['unit'].name == self.leader, 'leader-set')
        values = dict(settings or {})
        values.update(kwargs)
        values = {k: (None if v is None else str(v)) for k, v in values.items()}
        ctx['run'].leader_sets.append(dict(values))
        _apply(self.leader_settings, values)  # immediate, never rolled back

    def _tool_config(self, scope: Optional[str] = None) -> Any:
        ctx = self._ctx_or_fail()
        if ctx['config'] is None:
            ctx['config'] = hookenv.Config(dict(ctx['unit'].config))
        if scope is not None:
            return ctx['config'].get(scope)
        return ctx['config']

    def _tool_log(self, message: Any, level: Optional[str] = None) -> None:
        ctx = self._ctx_or_fail()
        entry = (level or 'INFO', message if isinstance(message, str) else repr(message))
        ctx['unit'].logs.append(entry)
        ctx['run'].logs.append(entry)

    def _tool_status_set(self, workload_state: Any, message: str = '',
                         application: bool = False) -> None:
        ctx = self._ctx_or_fail()
        state = getattr(workload_state, 'value', workload_state)
        if state not in ('maintenance', 'blocked', 'waiting', 'active'):
            raise ValueError(f'{state!r} is not a valid workload state')
        ctx['run'].statuses.append((state, message))
        if not application:
            ctx['unit'].status = (state, message)

    def _tool_status_get(self) -> Tuple[str, str]:
        return self._ctx_or_fail()['unit'].status

    def _tool_unit_get(self, attribute: str) -> Optional[str]:
        if attribute in ('private-address', 'public-address'):
            return self._ctx_or_fail()['unit'].address
        raise subprocess.CalledProcessError(2, 'unit-get')

    def _tool_network_get(self, endpoint: str, relation_id: Optional[str] = None) -> dict:
        address = self._ctx_or_fail()['unit'].address
        return {'bind-addresses': [{'mac-address': '', 'interface-name': 'eth0',
                                    'addresses': [{'hostname': '', 'value': address,
                                                   'cidr': address + '/24'}]}],
                'egress-subnets': [address + '/32'], 'ingress-addresses': [address]}

    def _tool_network_get_primary_address(self, binding: str) -> str:
        return self._ctx_or_fail()['unit'].address

    def _tool_juju_version(self) -> str:
        return '3.6.0'

    def _tool_application_version_set(self, version: str) -> None:
        self._ctx_or_fail()

    def _tool_open_port(self, port: Any, protocol: str = 'TCP') -> None:
        self._ctx_or_fail()

    def _tool_close_port(self, port: Any, protocol: str = 'TCP') -> None:
        self._ctx_or_fail()

    def _tool_action_get(self, key: Optional[str] = None) -> Any:
        params = self._ctx_or_fail()['action_params']
        return dict(params) if key is None else params.get(key)

    def _tool_action_set(self, values: Dict[str, Any]) -> None:
        self._ctx_or_fail()['run'].action_results.update(values)

    def _tool_action_fail(self, message: str) -> None:
        self._ctx_or_fail()['run'].action_failed = message


# The hookenv functions the harness answers (FakeJuju._tool_<name>).
TOOL_NAMES = tuple(name[len('_tool_'):] for name in vars(FakeJuju) if name.startswith('_tool_'))
_PATCHED = TOOL_NAMES


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


def _apply(bag: Dict[str, str], values: Dict[str, Optional[str]]) -> None:
    """Juju's rule (jujurules.state.apply_writes): an empty or null value deletes the key."""
    new = apply_writes(bag, values)
    bag.clear()
    bag.update(new)


def _tool_rule(rule: Callable[[bool], None], *args: Any) -> None:
    """Apply a jujurules rule; its refusal fails the tool as charmhelpers sees a failed
    hook tool (CalledProcessError with the tool's exit code)."""
    *rule_args, tool = args
    try:
        rule(*rule_args)
    except ToolError as exc:
        raise subprocess.CalledProcessError(exc.code, tool, stderr=f'ERROR {exc.message}\n'
                                            ) from None

