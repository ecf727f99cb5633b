"""The commit of a successful hook (worker/uniter/runner/context/context.go Flush): its
buffered relation writes, ports and secret operations apply at once; a failed hook's are
dropped (the caller just discards the context)."""
from .secrets import apply_secret_op
from .state import app_bag, apply_writes, ctx_app, juju_at_least


def commit_context(st, ctx):
    """Apply a successful hook's buffered writes; returns what changed for event queueing."""
    changed = {"unit": [], "app": [], "secrets": []}
    unit = ctx["unit"]
    for rid, writes in ctx["pending"]["unit"].items():
        rel = st["relations"][rid]
        old = rel["units"].get(unit, {})
        new = apply_writes(old, writes)
        if new != old:
            rel["units"][unit] = new
            changed["unit"].append(rid)
    app = ctx_app(st, ctx)
    for rid, writes in ctx["pending"]["app"].items():
        rel = st["relations"][rid]
        if not rel.get("peer", True):  # the writer's side of a relation between apps
            bags = rel.setdefault("app_bags", {})
            new = apply_writes(app_bag(rel, app), writes)
            if new != bags[app]:
                changed["app"].append(rid)
                bags[app] = new
            continue
        new = apply_writes(rel["app_data"], writes)
        if new != rel["app_data"] or (writes and not rel.get("app_written")):
            if new != rel["app_data"]:
                changed["app"].append(rid)
            rel["app_data"] = new
            rel["app_written"] = rel.get("app_written") or bool(new)
    ports = set(st["units"][unit]["ports"])
    for op, port in ctx["pending"]["ports"]:
        (ports.add if op == "open" else ports.discard)(port)
    st["units"][unit]["ports"] = sorted(ports)
    new_revision_if_unchanged = not juju_at_least(st["juju_version"], 3, 6)
    for op in ctx["pending"]["secrets"]:
        apply_secret_op(st["secrets"], op, new_revision_if_unchanged)
        changed["secrets"].append(op)
    for xid in ctx.get("track_latest", []):
        secret = st["secrets"].get(xid)
        if secret is not None:
            secret["consumers"].setdefault(unit, {})["revision"] = secret["revision"]
    return changed
