"""The hook tools: ``run_tool(state, ctx, argv, call)`` runs one tool call on the state and
returns ``(rc, stdout, stderr)``. Behaviour follows Juju 3.6's source
(worker/uniter/runner/jujuc/*.go); tests/model/README.md's conformance table names, for each
rule, the Juju file that says so and the test that pins it."""
import re
from typing import Callable, List, Tuple

from . import secrets as _secrets
from .args import APP, FORMAT, RELATION, ToolError, out_format, parse_args, run_error, usage_error
from .formats import read_settings_file, render
from .state import (
    app_state,
    apply_writes,
    ctx_app,
    in_relation,
    is_leader,
    known_relations,
    own_app_bag,
    own_unit_bag,
    relation_endpoint,
    relation_id,
    remote_app,
    remote_app_bag,
    remote_unit_bag,
    require_leader_for_app_write,
    require_leader_for_leader_set,
    unit_app,
)

STATUS_STATES = ("maintenance", "blocked", "waiting", "active")


def t_relation_ids(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    name = pos[0] if pos else ctx.get("endpoint")
    if not name:
        raise usage_error("no endpoint name specified")
    app = ctx_app(st, ctx)
    ids = sorted(f"{name}:{rid}" for rid, r in st["relations"].items()
                 if in_relation(r, app) and relation_endpoint(r, app) == name
                 and rid in known_relations(st, ctx))
    return render(ids, fmt)


def t_relation_list(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT, **RELATION, **APP))
    fmt = out_format(opts)
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    rid = relation_id(st, ctx, opts)
    if opts.get("app"):
        # the application at the other end (relation-list.go: RemoteApplicationName)
        return render(remote_app(st["relations"][rid], ctx_app(st, ctx)), fmt)
    return render(sorted(ctx["members"].get(rid, [])), fmt)


# juju/names: ApplicationSnippet, UnitSnippet (application.go, unit.go)
APP_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]*[a-z][a-z0-9]*)*$")
UNIT_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]*[a-z][a-z0-9]*)*/(?:0|[1-9][0-9]*)$")


def t_relation_get(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT, **RELATION, **APP))
    fmt = out_format(opts)
    rid = relation_id(st, ctx, opts)
    key = pos[0] if pos else "-"
    target = pos[1] if len(pos) > 1 else None
    use_app = bool(opts.get("app"))
    if target is not None and not use_app and not UNIT_RE.match(target):
        if APP_RE.match(target):
            raise usage_error(f'expected unit name, got application name "{target}"')
        raise usage_error(f'invalid unit name "{target}"')
    if len(pos) > 2:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[2:])))
    if target is None:
        if ctx.get("remote_unit"):
            target = ctx["remote_unit"]
        elif ctx.get("remote_app"):
            target, use_app = ctx["remote_app"], True
        else:
            raise usage_error("no unit or application specified")
    own = ctx_app(st, ctx)
    rel = st["relations"][rid]
    if use_app:
        app = unit_app(target) if "/" in target else target
        if app != own and app == remote_app(rel, own):
            return render(_pick(remote_app_bag(st, ctx, rid), key), fmt)
        if app != own:
            raise run_error("permission denied")
        if is_leader(st, ctx):
            bag = own_app_bag(st, ctx, rid)
        else:
            cache = ctx.setdefault("app_cache", {})
            if rid not in cache:
                cache[rid] = own_app_bag(st, ctx, rid)
            bag = dict(cache[rid])
    elif target == ctx["unit"]:
        bag = own_unit_bag(st, ctx, rid)
    else:
        bag = remote_unit_bag(st, ctx, rid, target)
    return render(_pick(bag, key), fmt)


def _pick(bag, key):
    return bag if key == "-" else bag.get(key)


def t_relation_set(st, ctx, argv, call):
    if "--help" in argv or "-h" in argv:
        return RELATION_SET_HELP
    spec = dict(FORMAT, **RELATION, **APP)
    spec["--file"] = ("file", True)
    opts, pos = parse_args(argv, spec)
    rid = relation_id(st, ctx, opts)
    settings = {}
    if "file" in opts:
        settings.update(read_settings_file(opts["file"], call))
    seen = set()
    for arg in pos:
        if "=" not in arg:
            raise usage_error(f'expected "key=value", got "{arg}"')
        k, _, v = arg.partition("=")
        if not k or k in seen:
            raise usage_error(f'key "{k}" specified more than once' if k else "empty key")
        seen.add(k)
        settings[k] = v
    msg = ""
    if "format" in opts:
        msg = "--format flag deprecated for command \"relation-set\"\n"
    if opts.get("app"):
        require_leader_for_app_write(is_leader(st, ctx))
        ctx["pending"]["app"].setdefault(rid, {}).update(settings)
    else:
        ctx["pending"]["unit"].setdefault(rid, {}).update(settings)
    if msg:
        call.err.append(msg)
    return ""


RELATION_SET_HELP = """Usage: relation-set [options] key=value [key=value ...]

Summary:
set relation settings

Options:
--app  (= false)
    pick whether you are setting "application" settings or "unit" settings
--file  (= )
    file containing key-value pairs
--format (= "")
    deprecated format flag
-r, --relation  (= %s)
    specify a relation by id

Details:
"relation-set" writes the local unit's settings for some relation.
"""


def t_is_leader(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    return render(is_leader(st, ctx), out_format(opts))


def t_leader_get(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    key = pos[0] if pos else "-"
    if "=" in key:
        raise usage_error(f'invalid key "{key}"')
    settings = app_state(st, ctx_app(st, ctx))["leader_settings"]
    return render(dict(settings) if key == "-" else settings.get(key), fmt)


def t_leader_set(st, ctx, argv, call):
    spec = {"--file": ("file", True)}
    opts, pos = parse_args(argv, spec)
    settings = {}
    if "file" in opts:
        settings.update(read_settings_file(opts["file"], call))
    for arg in pos:
        if "=" not in arg:
            raise usage_error(f'expected "key=value", got "{arg}"')
        k, _, v = arg.partition("=")
        settings[k] = v
    require_leader_for_leader_set(is_leader(st, ctx))
    own = app_state(st, ctx_app(st, ctx))
    own["leader_settings"] = apply_writes(own["leader_settings"], settings)
    return ""


def t_config_get(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT, **{"--all": ("all", False), "-a": ("all", False)}))
    fmt = out_format(opts)
    config = app_state(st, ctx_app(st, ctx))["config"]
    if opts.get("all"):
        if pos:
            raise usage_error(f"cannot use argument --all together with key \"{pos[0]}\"")
        return render(dict(config), fmt)
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    if pos:
        return render(config.get(pos[0]), fmt)
    return render({k: v for k, v in config.items() if v is not None}, fmt)


def t_unit_get(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if len(pos) != 1:
        raise usage_error("no setting specified" if not pos else "unrecognized args")
    if pos[0] not in ("private-address", "public-address"):
        raise usage_error(f'unknown setting "{pos[0]}"')
    return render(st["units"][ctx["unit"]]["address"], fmt)


def network_info(address, yaml_style):
    addr = {"hostname": "", "value": address, "cidr": address.rsplit(".", 1)[0] + ".0/24"}
    bind = {"mac-address": "", "interface-name": "lo", "addresses": [addr]}
    if yaml_style:
        addr["address"] = address
        bind["macaddress"] = ""
        bind["interfacename"] = "lo"
    return {"bind-addresses": [bind], "egress-subnets": [address + "/32"],
            "ingress-addresses": [address]}


def t_network_get(st, ctx, argv, call):
    spec = dict(FORMAT, **RELATION)
    for flag in ("--primary-address", "--bind-address", "--ingress-address", "--egress-subnets"):
        spec[flag] = (flag[2:], False)
    opts, pos = parse_args(argv, spec)
    fmt = out_format(opts)
    if "relation" in opts:
        relation_id(st, ctx, opts)
    if len(pos) != 1:
        raise usage_error("no endpoint specified" if not pos else "unrecognized args")
    binding = pos[0]
    app = ctx_app(st, ctx)
    bindings = st.get("bindings", []) if app == st["app"] else \
        app_state(st, app).get("bindings", [])
    endpoints = set(bindings) | {relation_endpoint(r, app) for r in st["relations"].values()
                                 if in_relation(r, app)}
    address = st["units"][ctx["unit"]]["address"]
    if opts.get("primary-address"):
        if binding not in endpoints:
            raise run_error(f'no network config found for binding "{binding}"')
        return address + "\n"
    if binding not in endpoints:
        raise run_error(f'no network config found for binding "{binding}"')
    info = network_info(address, fmt == "yaml")
    picks = [(f, k) for f, k in (("bind-address", None), ("ingress-address", "ingress-addresses"),
                                 ("egress-subnets", "egress-subnets")) if opts.get(f)]
    if not picks:
        return render(info, fmt)
    values = {}
    for flag, key in picks:
        values[flag] = address if key is None else (info[key][0] if flag != "egress-subnets"
                                                    else info[key])
    if len(values) == 1:
        return render(next(iter(values.values())), fmt)
    return render(values, fmt)


def t_status_set(st, ctx, argv, call):
    opts, pos = parse_args(argv, {"--application": ("application", False)})
    if not pos or len(pos) > 2:
        raise usage_error("invalid args, require <status> [message] [data]")
    if pos[0] not in STATUS_STATES:
        raise usage_error(f'invalid status "{pos[0]}", expected one of {list(STATUS_STATES)}')
    value = {"status": pos[0], "message": pos[1] if len(pos) > 1 else ""}
    if opts.get("application"):
        if not is_leader(st, ctx):
            raise run_error("this unit is not the leader")
        app_state(st, ctx_app(st, ctx))["app_status"] = value
    else:
        st["units"][ctx["unit"]]["status"] = value
    st.setdefault("status_history", []).append([ctx["unit"], bool(opts.get("application")),
                                                value["status"], value["message"]])
    return ""


def t_status_get(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT, **{"--include-data": ("data", False),
                                                 "--application": ("application", False)}))
    fmt = out_format(opts)
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    data = bool(opts.get("data"))

    def shape(s):
        # Juju's toDetails: only "status" unless --include-data adds message and status-data.
        if not data:
            return {"status": s["status"]}
        return {"message": s["message"], "status": s["status"], "status-data": {}}

    if opts.get("application"):
        if not is_leader(st, ctx):
            raise run_error("finding application status: this unit is not the leader")
        own = ctx_app(st, ctx)
        app = app_state(st, own).get("app_status") or {"status": "unknown", "message": ""}
        if not data and fmt == "smart":
            return render(app["status"], fmt)
        body = shape(app)
        body["units"] = {u: shape(v["status"]) for u, v in st["units"].items()
                         if v["alive"] and unit_app(u) == own}
        return render({"application-status": body}, fmt)
    unit = st["units"][ctx["unit"]]["status"]
    if not data and fmt == "smart":
        return render(unit["status"], fmt)
    return render(shape(unit), fmt)


def t_application_version_set(st, ctx, argv, call):
    opts, pos = parse_args(argv, {})
    if len(pos) != 1:
        raise usage_error("no version specified" if not pos else "unrecognized args")
    st["units"][ctx["unit"]]["workload_version"] = pos[0]
    return ""


def t_juju_log(st, ctx, argv, call):
    opts, pos = parse_args(argv, {"-l": ("level", True), "--log-level": ("level", True),
                                  "--debug": ("debug", False), "--format": ("format", True)})
    if not pos:
        raise usage_error("no message specified")
    level = opts.get("level", "INFO").upper()
    if level not in ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "INFO"
    prefix = ""
    if ctx.get("rid") is not None:
        prefix = "{}:{}: ".format(ctx.get("endpoint"), ctx["rid"])
    line = "juju-log {} {}{}\n".format(level, prefix, " ".join(pos))
    with open(ctx["log"], "a", encoding="utf-8") as f:
        f.write(line)
    return ""


def _port_spec(text):
    t = text.lower()
    if t == "icmp":
        return "icmp"
    m = re.match(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp))?$", t)
    if not m:
        raise usage_error(f'invalid port "{text}"')
    lo, hi, proto = int(m.group(1)), int(m.group(2) or m.group(1)), m.group(3) or "tcp"
    if not (1 <= lo <= hi <= 65535):
        raise usage_error(f'invalid port range "{text}"')
    return f"{lo}/{proto}" if lo == hi else f"{lo}-{hi}/{proto}"


def _ports(op):
    def tool(st, ctx, argv, call):
        opts, pos = parse_args(argv, {"--endpoints": ("endpoints", True)})
        if len(pos) != 1:
            raise usage_error("no port or range specified" if not pos else "unrecognized args")
        ctx["pending"]["ports"].append([op, _port_spec(pos[0])])
        return ""
    return tool


def t_opened_ports(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT, **{"--endpoints": ("endpoints", False)}))
    return render(sorted(st["units"][ctx["unit"]]["ports"]), out_format(opts))


def _action(ctx):
    action = ctx.get("action")
    if action is None:
        raise run_error("not running an action")
    return action


def t_action_get(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    action = _action(ctx)
    value = action["params"]
    if pos:
        for part in pos[0].split("."):
            value = value.get(part) if isinstance(value, dict) else None
    return render(value, out_format(opts))


def t_action_set(st, ctx, argv, call):
    opts, pos = parse_args(argv, {})
    action = _action(ctx)
    if not pos:
        raise usage_error("no key=value pairs specified")
    for arg in pos:
        if "=" not in arg:
            raise usage_error(f'argument "{arg}" must be of the form key...=value')
        key, _, value = arg.partition("=")
        node = action["results"]
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return ""


def t_action_fail(st, ctx, argv, call):
    opts, pos = parse_args(argv, {})
    action = _action(ctx)
    action["failed"] = (pos[0] if pos else
                        "action failed without reason given, check action for errors")
    return ""


def t_action_log(st, ctx, argv, call):
    opts, pos = parse_args(argv, {})
    action = _action(ctx)
    if not pos:
        raise usage_error("no message specified")
    action["log"].append(" ".join(pos))
    st.setdefault("action_logs", []).append([ctx["unit"], action["name"], " ".join(pos)])
    return ""


# No wall clock in the simulator: a status without a recorded time shows this "since"
# (Juju's format, cmd/juju/common/format.go FormatTime(t, true): UTC "2006-01-02 15:04:05Z").
GOAL_SINCE = "1970-01-01 00:00:00Z"


def t_goal_state(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts, "yaml")
    if fmt == "smart":
        raise usage_error('invalid value "smart" for option --format: unknown format "smart"')
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    own = ctx_app(st, ctx)
    relations = {}
    for rid in known_relations(st, ctx):
        rel = st["relations"].get(rid)
        if rel is None or rel.get("peer", True) or not in_relation(rel, own):
            continue  # goalStateRelations leaves peer relations out
        other = remote_app(rel, own)
        entry = relations.setdefault(relation_endpoint(rel, own), {})
        entry[other] = {"status": "joined", "since": GOAL_SINCE}
        entry.update(_goal_units(st, other))
    return render({"units": _goal_units(st, own), "relations": relations}, fmt)


def _goal_units(st, app):
    """goalStateUnits: the application's Alive and Dying units, a dying one as ``dying``."""
    units = {}
    for name, v in st["units"].items():
        if unit_app(name) != app or v.get("dead") or not (v["alive"] or v.get("dying")):
            continue
        status = "dying" if not v["alive"] else v["status"]["status"]
        units[name] = {"status": status, "since": v["status"].get("since") or GOAL_SINCE}
    return units


def t_jujud(st, ctx, argv, call):
    if argv != ["version"]:
        raise usage_error("fake jujud only knows `jujud version`")
    return "{}-ubuntu-amd64\n".format(st["juju_version"])


TOOLS = {
    "relation-ids": t_relation_ids, "relation-list": t_relation_list,
    "relation-get": t_relation_get, "relation-set": t_relation_set,
    "is-leader": t_is_leader, "leader-get": t_leader_get, "leader-set": t_leader_set,
    "config-get": t_config_get, "unit-get": t_unit_get, "network-get": t_network_get,
    "status-set": t_status_set, "status-get": t_status_get,
    "application-version-set": t_application_version_set, "juju-log": t_juju_log,
    "open-port": _ports("open"), "close-port": _ports("close"), "opened-ports": t_opened_ports,
    "action-get": t_action_get, "action-set": t_action_set, "action-fail": t_action_fail,
    "action-log": t_action_log,
    "secret-add": _secrets.t_secret_add, "secret-get": _secrets.t_secret_get,
    "secret-set": _secrets.t_secret_set, "secret-remove": _secrets.t_secret_remove,
    "secret-ids": _secrets.t_secret_ids, "secret-info-get": _secrets.t_secret_info_get,
    "secret-grant": _secrets.grant_tool("grant"), "secret-revoke": _secrets.grant_tool("revoke"),
    "goal-state": t_goal_state, "jujud": t_jujud,
}
SECRET_TOOLS = tuple(t for t in TOOLS if t.startswith("secret-"))


class Call:
    """One tool call's I/O besides argv: the hook's working directory (relative --file
    paths), its stdin (read only when a tool asks for it: ``--file -``) and extra stderr."""

    def __init__(self, cwd: str = "", stdin: Callable[[], str] = lambda: ""):
        self.cwd = cwd
        self.stdin = stdin
        self.err: List[str] = []


def run_tool(st: dict, ctx_id: str, name: str, argv: List[str], call: Call
             ) -> Tuple[int, str, str]:
    """Run hook tool ``name`` with ``argv`` in hook context ``ctx_id`` on the state
    ``st`` (changed in place); returns (exit code, stdout, stderr) as the tool prints them."""
    if name not in TOOLS:
        return 2, "", f"ERROR unknown hook tool {name!r} (not simulated)\n"
    if not ctx_id:
        return 1, "", "ERROR JUJU_CONTEXT_ID not set: hook tools only work in a hook\n"
    if name != "relation-set" and ("--help" in argv or "-h" in argv):
        return 0, f"Usage: {name} [options]\n", ""
    ctx = st["contexts"].get(ctx_id)
    try:
        if ctx is None:
            raise run_error(f"bad context id {ctx_id!r}: not in a running hook")
        if name.startswith("secret-") and not st.get("secrets_supported", True):
            return 127, "", f"{name}: command not found\n"
        output = TOOLS[name](st, ctx, argv, call)
        ctx.setdefault("calls", []).append([name] + list(argv))  # for tests
    except ToolError as e:
        return e.code, "", "".join(call.err) + f"ERROR {e.message}\n"
    return 0, output, "".join(call.err)
