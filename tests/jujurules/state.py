"""The model's state rules shared by every simulator: relation bags and their caches, the
relations a unit knows, leadership, and the commit of a successful hook's buffered writes.

The state is one JSON-shaped dict (see tests/model/README.md); a hook context is
``state["contexts"][ctx_id]`` with its pending writes."""
from typing import Dict, Iterable, List, Optional

from .args import run_error, usage_error


def unit_app(unit):
    return unit.rsplit("/", 1)[0]


def ctx_app(st, ctx):
    """The application of the hook's unit (one-application states have only ``st["app"]``)."""
    return ctx.get("app") or unit_app(ctx["unit"])


def app_state(st, app):
    """The per-application part of the state (``leader``, ``config``, ``leader_settings``,
    ``app_status``): the top level for the model's first application, ``st["apps"][app]``
    for the others."""
    if app == st["app"] or app not in st.get("apps", {}):
        return st
    return st["apps"][app]


def is_leader(st, ctx):
    return app_state(st, ctx_app(st, ctx))["leader"] == ctx["unit"]


def relation_endpoint(rel, app):
    """The endpoint name of ``app``'s side of the relation (``ends``: {app: endpoint} for a
    relation between applications; a peer relation has only ``endpoint``)."""
    return (rel.get("ends") or {}).get(app, rel["endpoint"])


def in_relation(rel, app):
    """Whether ``app`` is one side of the relation (a peer relation: its own app)."""
    ends = rel.get("ends")
    return app in ends if ends else rel.get("app", app) == app


def remote_app(rel, app):
    """The application at the other end: ``app`` itself for a peer relation."""
    ends = rel.get("ends")
    if not ends:
        return app
    return next((a for a in sorted(ends) if a != app), app)


def app_bag(rel, app):
    """The committed application bag of ``app`` in the relation."""
    if rel.get("peer", True):
        return rel["app_data"]
    return rel.setdefault("app_bags", {}).setdefault(app, {})


def relation_id(st, ctx, opts, required=True):
    """-r endpoint:N | N, else the hook's relation; returns the int id (as str key) or None."""
    raw = opts.get("relation")
    if raw is None:
        if ctx.get("rid") is None:
            if required:
                raise usage_error("no relation id specified")
            return None
        return str(ctx["rid"])
    num = raw.rsplit(":", 1)[-1]
    try:
        rid = str(int(num))
    except ValueError:
        raise usage_error(f'invalid value "{raw}" for option -r: invalid relation id') from None
    if rid not in known_relations(st, ctx):
        raise usage_error(f'invalid value "{raw}" for option -r: unknown relation id')
    return rid


def known_relations(st, ctx):
    """The relations the unit's agent knows: none during install
    (worker/uniter/relation/resolver.go createdRelationsResolver)."""
    return ctx.get("known_relations", list(st["relations"]))


def apply_writes(bag: Dict[str, str], writes: Dict[str, Optional[str]]) -> Dict[str, str]:
    """``bag`` with ``writes`` applied: an empty (or None) value deletes the key
    (worker/uniter/runner/jujuc/relation-set.go, leader-set.go: ``key=`` unsets)."""
    out = dict(bag)
    for key, value in writes.items():
        if value is None or value == "":
            out.pop(key, None)
        else:
            out[key] = value
    return out


def require_leader_for_app_write(leader: bool) -> None:
    """relation-set --app by a non-leader: exit 1 (worker/uniter/runner/context/
    relation.go ``ApplicationSettings``: only the leader gets a writable app bag)."""
    if not leader:
        raise run_error("cannot write relation settings")


def require_leader_for_leader_set(leader: bool) -> None:
    """leader-set by a non-leader: exit 1 (worker/uniter/runner/context/leader.go
    ``WriteLeaderSettings``)."""
    if not leader:
        raise run_error("cannot write leadership settings: cannot write settings: not the leader")


def woken_by_commit(writer: str, app_bag: bool, peer: bool, members: Iterable[str],
                    counterpart: Iterable[str] = ()) -> List[str]:
    """The units a committed change of a relation bag wakes with relation-changed, among
    ``members`` (the local units in the relation that could see it).

    A unit-bag change wakes every other member (worker/uniter/remotestate/watcher.go: each
    unit watches its remote units' settings). An app-bag change wakes the units of the
    counterpart application (state/relationunit.go ``CounterpartApplications``; the units
    watcher watches those applications' settings, state/watcher.go
    ``newRelationUnitsWatcher``): in a peer
    relation that is the writer's own application, so every member, the writing leader
    too; in a non-peer relation the remote application's units (``counterpart``: those in
    the relation's scope), none of the local ones."""
    if app_bag:
        return sorted(members) if peer else sorted(counterpart)
    return sorted(m for m in members if m != writer)


def own_unit_bag(st, ctx, rid):
    bag = st["relations"][rid]["units"].get(ctx["unit"], {})
    return apply_writes(bag, ctx["pending"]["unit"].get(rid, {}))


def own_app_bag(st, ctx, rid):
    """The unit's own application bag: the leader's with its pending writes; a non-leader
    reads it in a peer relation only (apiserver/facades/agent/uniter/uniter.go
    ``readLocalApplicationSettings``: for provider-requirer relations only the leader)."""
    rel = st["relations"][rid]
    bag = app_bag(rel, ctx_app(st, ctx))
    if is_leader(st, ctx):
        return apply_writes(bag, ctx["pending"]["app"].get(rid, {}))
    if not rel.get("peer", True):
        raise run_error("permission denied")
    return dict(bag)


def remote_app_bag(st, ctx, rid):
    """The remote application's bag (non-peer relations): committed data, read once per
    hook (the context's relation cache, worker/uniter/runner/context/relation.go
    ``ReadApplicationSettings``)."""
    rel = st["relations"][rid]
    cache = ctx.setdefault("remote_app_cache", {})
    if rid not in cache:
        cache[rid] = dict(app_bag(rel, remote_app(rel, ctx_app(st, ctx))))
    return dict(cache[rid])


def remote_unit_bag(st, ctx, rid, unit):
    """Remote bags: committed data, cached the way the unit agent caches them."""
    rel = st["relations"][rid]
    if unit_app(unit) != remote_app(rel, ctx_app(st, ctx)):
        raise run_error("permission denied")
    view = st["views"].setdefault(ctx["unit"], {}).setdefault(rid, {"members": [], "cache": {}})
    if unit in view["members"]:
        cached = view["cache"].get(unit)
        if cached is None:
            cached = dict(rel["units"].get(unit, {}))
            view["cache"][unit] = cached
        return dict(cached)
    others = ctx.setdefault("others", {}).setdefault(rid, {})
    if unit not in others:
        if unit not in rel["units"] and unit not in st["units"]:
            raise run_error(f'unit "{unit}" not found')
        others[unit] = dict(rel["units"].get(unit, {}))
    return dict(others[unit])


def juju_at_least(version, *wanted):
    """``version`` (``3.6.4``) is at least ``wanted`` (3, 6)."""
    try:
        have = tuple(int(x) for x in version.split(".")[:len(wanted)])
    except ValueError:
        return True
    return have >= wanted



# ---------------------------------------------------------------- building the state
# Used by both simulators (tests/model/sim.py and tests/reactive_harness.py), so the
# state's shape and what entering a scope or opening a hook context does are written once.


def new_state(app, uuid, juju_version, model="test", config=None, bindings=(),
              secrets_supported=True, relations=None):
    """An empty model of one application ``app`` (others go under ``st["apps"]``)."""
    return {
        "app": app, "uuid": uuid, "model": model, "leader": None,
        "juju_version": juju_version, "secrets_supported": secrets_supported,
        "config": dict(config or {}), "leader_settings": {}, "units": {}, "views": {},
        "relations": dict(relations or {}), "bindings": sorted(set(bindings)),
        "secrets": {}, "contexts": {}, "app_status": None,
    }


def new_relation(endpoint, interface, ends, peer, key=None):
    """A relation with no unit in scope: a peer relation has one app bag (``app_data``),
    a relation between applications one per side (``app_bags``); ``key`` is Juju's
    relation key (state/relation.go relationKey: the requirer's endpoint first)."""
    rel = {"endpoint": endpoint, "interface": interface, "peer": peer, "units": {},
           "app_data": {}, "ends": dict(ends)}
    if peer:
        rel["app_written"] = False
    else:
        rel["app_bags"] = {app: {} for app in ends}
    if key is not None:
        rel["key"] = key
    return rel


def new_unit(index, address, hostname, status=None):
    """A unit's record in ``st["units"]``."""
    return {"index": index, "address": address, "alive": True,
            "status": dict(status or {"status": "waiting", "message": "agent initialising"}),
            "ports": [], "workload_version": "", "hostname": hostname}


def enter_scope_settings(st, rid, unit):
    """``unit`` enters relation ``rid``'s scope: its bag starts with its addresses
    (state/relationunit.go EnterScope writes the unit's settings; the uniter's
    relation-created/joined see private-address, ingress-address and egress-subnets)."""
    address = st["units"][unit]["address"]
    st["relations"][rid]["units"][unit] = {"private-address": address,
                                           "ingress-address": address,
                                           "egress-subnets": f"{address}/32"}


def open_context(st, ctx_id, unit, app, hook_name, kind=None, rid=None, endpoint=None,
                 remote_unit="", remote_app="", known=None, log="", action=None):
    """Open hook context ``ctx_id`` for ``unit`` (``kind``: the hook's kind, e.g.
    ``relation-joined``, for a relation hook about ``remote_unit``): the unit agent's
    relation cache is pruned to the members of each relation; a joined member enters the
    relation-list, a departing one leaves it and its cached bag goes; the bag of the unit
    a hook is about is read afresh (worker/uniter/runner/context/relation.go and
    cache.go: ``RelationCache`` Prune/RemoveMember/InvalidateMember). ``known``: the
    relations the unit's agent knows (default all). Returns the context."""
    views = st["views"].setdefault(unit, {})
    for view in views.values():
        view["cache"] = {m: view["cache"].get(m) for m in view["members"]}
    if rid is not None and remote_unit:
        view = views.setdefault(rid, {"members": [], "cache": {}})
        if kind == "relation-joined" and remote_unit not in view["members"]:
            view["members"].append(remote_unit)
            view["members"].sort()
        if kind == "relation-departed":
            if remote_unit in view["members"]:
                view["members"].remove(remote_unit)
            view["cache"].pop(remote_unit, None)
        elif remote_unit in view["members"]:
            view["cache"][remote_unit] = None  # refreshed for the changing unit
    ctx = {
        "unit": unit, "app": app, "hook": hook_name, "rid": rid, "endpoint": endpoint,
        "remote_unit": remote_unit, "remote_app": remote_app,
        "members": {r: list(v["members"]) for r, v in views.items()},
        "pending": {"unit": {}, "app": {}, "ports": [], "secrets": []},
        "log": log, "action": action,
    }
    if known is not None:
        ctx["known_relations"] = sorted(known)
    st["contexts"][ctx_id] = ctx
    return ctx
