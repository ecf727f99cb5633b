#!/usr/bin/env python3
"""Fake Juju hook tools: one script, installed once per model and symlinked per tool name.

Called as ``relation-get``, ``leader-set``, ... (argv[0] picks the tool). The model's state is
one JSON file behind an fcntl lock; the hook context (unit, hook, relation, pending writes) is
``state["contexts"][$JUJU_CONTEXT_ID]``. Behaviour follows Juju 3.6's source: the
conformance table in tests/model/README.md names, for each rule, the Juju file that says so
and the test that pins it.

The simulator (tests/model/sim.py) imports this module for the state helpers and
``commit_context``, so the rules live in one place. Keep imports minimal: the tools run on every
hook's hot path with ``python -I -S`` (no site-packages), and yaml is imported lazily, only for
``relation-set --file`` / ``secret-* --file``, from the path baked in at install time.
"""
import base64
import fcntl
import json
import os
import re
import sys

# Replaced when the model installs this script into its bin dir (see install_tools()).
BAKED = {}

STATUS_STATES = ("maintenance", "blocked", "waiting", "active")
SECRET_KEY_RE = re.compile(r"^([a-z](?:-?[a-z0-9]){2,})$")
ROTATE_POLICIES = ("never", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly")


class ToolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def usage_error(message):
    return ToolError(2, message)


def run_error(message):
    return ToolError(1, message)


# ---------------------------------------------------------------- state file

class Locked:
    """``with Locked(path) as st:`` loads the state under an exclusive lock; ``st.save()``."""

    def __init__(self, path):
        self.path = path
        self.data = None
        self._fd = None
        self.dirty = False

    def __enter__(self):
        self._fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        with open(self.path, encoding="utf-8") as f:
            self.data = json.load(f)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.dirty and exc_type is None:
                write_state(self.path, self.data)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)


def write_state(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


# ---------------------------------------------------------------- output formats

def go_json(value):
    """Go's json.Marshal: compact, sorted keys, <>& escaped, non-ASCII kept."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./ -]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_scalar(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if (_PLAIN.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(" ")
            and not re.match(r"^[-+.]?[0-9]", text)):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def yaml_dump(value, indent=0):
    """Block-style YAML for str/int/float/bool/None/list/dict (what the tools print)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key in sorted(value):
            item = value[key]
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_yaml_scalar(key)}:\n{yaml_dump(item, indent + 2)}")
            else:
                out.append(f"{pad}{_yaml_scalar(key)}: {yaml_dump(item).strip()}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = yaml_dump(item, indent + 2)
                out.append(pad + "- " + body[indent + 2:])
            else:
                out.append(f"{pad}- {yaml_dump(item).strip()}\n")
        return "".join(out)
    return pad + _yaml_scalar(value) + "\n"


def render(value, fmt):
    if fmt == "json":
        return go_json(value) + "\n"
    if fmt == "yaml":
        return "" if value is None else yaml_dump(value)
    # smart
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("True" if value else "False") + "\n"
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, list):
        return "".join(f"{v}\n" for v in value)
    if isinstance(value, dict):
        return yaml_dump(value)
    return f"{value}\n"


def load_yaml_text(text):
    """relation-set/secret --file content (charmhelpers writes it with yaml.safe_dump)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for path in BAKED.get("yaml_path", []):
        if path not in sys.path:
            sys.path.append(path)
    import yaml  # lazy: only --file needs it

    return yaml.safe_load(text)


# ---------------------------------------------------------------- argument parsing (gnuflag-like)

def parse_args(argv, spec):
    """spec: {"-r": ("relation", True), "--app": ("app", False), ...} -> (opts, positionals)."""
    opts, pos = {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            pos.extend(argv[i:])
            break
        if arg == "-" or not arg.startswith("-") or len(arg) == 1:
            pos.append(arg)
            continue
        name, eq, val = arg.partition("=")
        if name not in spec:
            raise usage_error(f"option provided but not defined: {name}")
        key, takes_value = spec[name]
        if takes_value:
            if not eq:
                if i >= len(argv):
                    raise usage_error(f"option needs an argument: {name}")
                val = argv[i]
                i += 1
            opts[key] = val
        else:
            if eq:
                if val.lower() not in ("true", "false", "1", "0"):
                    raise usage_error(f'invalid boolean value "{val}" for option {name}')
                opts[key] = val.lower() in ("true", "1")
            else:
                opts[key] = True
    return opts, pos


FORMAT = {"--format": ("format", True)}
RELATION = {"-r": ("relation", True), "--relation": ("relation", True)}
APP = {"--app": ("app", False)}


def out_format(opts, default="smart"):
    fmt = opts.get("format", default)
    if fmt not in ("json", "yaml", "smart"):
        raise usage_error(f'invalid value "{fmt}" for option --format: unknown format')
    return fmt


# ---------------------------------------------------------------- model helpers

def unit_app(unit):
    return unit.rsplit("/", 1)[0]


def is_leader(st, ctx):
    return st["leader"] == ctx["unit"]


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


def apply_writes(bag, writes):
    out = dict(bag)
    for key, value in writes.items():
        if value == "":
            out.pop(key, None)
        else:
            out[key] = value
    return out


def own_unit_bag(st, ctx, rid):
    bag = st["relations"][rid]["units"].get(ctx["unit"], {})
    return apply_writes(bag, ctx["pending"]["unit"].get(rid, {}))


def own_app_bag(st, ctx, rid):
    rel = st["relations"][rid]
    if is_leader(st, ctx):
        return apply_writes(rel["app_data"], ctx["pending"]["app"].get(rid, {}))
    if not rel.get("peer", True):
        raise run_error("permission denied")
    return dict(rel["app_data"])


def remote_unit_bag(st, ctx, rid, unit):
    """Remote bags: committed data, cached the way the unit agent caches them."""
    rel = st["relations"][rid]
    if unit_app(unit) != st["app"]:
        raise run_error("permission denied")
    view = st["views"].setdefault(ctx["unit"], {}).setdefault(rid, {"members": [], "cache": {}})
    if unit in view["members"]:
        cached = view["cache"].get(unit)
        if cached is None:
            cached = dict(rel["units"].get(unit, {}))
            view["cache"][unit] = cached
            ctx["_dirty"] = True
        return dict(cached)
    others = ctx.setdefault("others", {}).setdefault(rid, {})
    if unit not in others:
        if unit not in rel["units"] and unit not in st["units"]:
            raise run_error(f'unit "{unit}" not found')
        others[unit] = dict(rel["units"].get(unit, {}))
        ctx["_dirty"] = True
    return dict(others[unit])


# ---------------------------------------------------------------- relation tools

def t_relation_ids(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    name = pos[0] if pos else ctx.get("endpoint")
    if not name:
        raise usage_error("no endpoint name specified")
    ids = sorted("{}:{}".format(r["endpoint"], rid) for rid, r in st["relations"].items()
                 if r["endpoint"] == name and rid in known_relations(st, ctx))
    return render(ids, fmt)


def t_relation_list(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT, **RELATION, **APP))
    fmt = out_format(opts)
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    rid = relation_id(st, ctx, opts)
    if opts.get("app"):
        return render(st["app"], fmt)
    return render(sorted(ctx["members"].get(rid, [])), fmt)


# juju/names: ApplicationSnippet, UnitSnippet (application.go, unit.go)
APP_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]*[a-z][a-z0-9]*)*$")
UNIT_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]*[a-z][a-z0-9]*)*/(?:0|[1-9][0-9]*)$")


def t_relation_get(st, ctx, argv):
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
    if use_app:
        app = unit_app(target) if "/" in target else target
        if app != st["app"]:
            raise run_error("permission denied")
        if is_leader(st, ctx):
            bag = own_app_bag(st, ctx, rid)
        else:
            cache = ctx.setdefault("app_cache", {})
            if rid not in cache:
                cache[rid] = own_app_bag(st, ctx, rid)
                ctx["_dirty"] = True
            bag = dict(cache[rid])
    elif target == ctx["unit"]:
        bag = own_unit_bag(st, ctx, rid)
    else:
        bag = remote_unit_bag(st, ctx, rid, target)
    if key == "-":
        return render(bag, fmt)
    return render(bag.get(key), fmt)


def read_settings_file(path):
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise run_error(f"cannot read settings file: {e}") from None
    data = load_yaml_text(text) if text.strip() else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise run_error("expected YAML map in settings file")
    out = {}
    for k, v in data.items():
        if v is None:
            out[str(k)] = ""
        elif isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        else:
            out[str(k)] = str(v)
    return out


def t_relation_set(st, ctx, argv):
    if "--help" in argv or "-h" in argv:
        return RELATION_SET_HELP
    spec = dict(FORMAT, **RELATION, **APP)
    spec["--file"] = ("file", True)
    opts, pos = parse_args(argv, spec)
    rid = relation_id(st, ctx, opts)
    settings = {}
    if "file" in opts:
        settings.update(read_settings_file(opts["file"]))
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
        if not is_leader(st, ctx):
            raise run_error("cannot write relation settings")
        ctx["pending"]["app"].setdefault(rid, {}).update(settings)
    else:
        ctx["pending"]["unit"].setdefault(rid, {}).update(settings)
    ctx["_dirty"] = True
    if msg:
        sys.stderr.write(msg)
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


# ---------------------------------------------------------------- leadership, config, network

def t_is_leader(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT))
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    return render(is_leader(st, ctx), out_format(opts))


def t_leader_get(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    key = pos[0] if pos else "-"
    if "=" in key:
        raise usage_error(f'invalid key "{key}"')
    settings = st["leader_settings"]
    return render(dict(settings) if key == "-" else settings.get(key), fmt)


def t_leader_set(st, ctx, argv):
    spec = {"--file": ("file", True)}
    opts, pos = parse_args(argv, spec)
    settings = {}
    if "file" in opts:
        settings.update(read_settings_file(opts["file"]))
    for arg in pos:
        if "=" not in arg:
            raise usage_error(f'expected "key=value", got "{arg}"')
        k, _, v = arg.partition("=")
        settings[k] = v
    if not is_leader(st, ctx):
        raise run_error("cannot write leadership settings: cannot write settings: not the leader")
    st["leader_settings"] = apply_writes(st["leader_settings"], settings)
    return ""


def t_config_get(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT, **{"--all": ("all", False), "-a": ("all", False)}))
    fmt = out_format(opts)
    config = st["config"]
    if opts.get("all"):
        if pos:
            raise usage_error(f"cannot use argument --all together with key \"{pos[0]}\"")
        return render(dict(config), fmt)
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    if pos:
        return render(config.get(pos[0]), fmt)
    return render({k: v for k, v in config.items() if v is not None}, fmt)


def t_unit_get(st, ctx, argv):
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


def t_network_get(st, ctx, argv):
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
    endpoints = set(st.get("bindings", [])) | {r["endpoint"] for r in st["relations"].values()}
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


def t_status_set(st, ctx, argv):
    opts, pos = parse_args(argv, {"--application": ("application", False)})
    if not pos or len(pos) > 2:
        raise usage_error("invalid args, require <status> [message] [data]")
    if pos[0] not in STATUS_STATES:
        raise usage_error(f'invalid status "{pos[0]}", expected one of {list(STATUS_STATES)}')
    value = {"status": pos[0], "message": pos[1] if len(pos) > 1 else ""}
    if opts.get("application"):
        if not is_leader(st, ctx):
            raise run_error("this unit is not the leader")
        st["app_status"] = value
    else:
        st["units"][ctx["unit"]]["status"] = value
    st.setdefault("status_history", []).append([ctx["unit"], bool(opts.get("application")),
                                                value["status"], value["message"]])
    return ""


def t_status_get(st, ctx, argv):
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
        app = st.get("app_status") or {"status": "unknown", "message": ""}
        if not data and fmt == "smart":
            return render(app["status"], fmt)
        body = shape(app)
        body["units"] = {u: shape(v["status"]) for u, v in st["units"].items() if v["alive"]}
        return render({"application-status": body}, fmt)
    unit = st["units"][ctx["unit"]]["status"]
    if not data and fmt == "smart":
        return render(unit["status"], fmt)
    return render(shape(unit), fmt)


def t_application_version_set(st, ctx, argv):
    opts, pos = parse_args(argv, {})
    if len(pos) != 1:
        raise usage_error("no version specified" if not pos else "unrecognized args")
    st["units"][ctx["unit"]]["workload_version"] = pos[0]
    return ""


def t_juju_log(st, ctx, argv):
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


# ---------------------------------------------------------------- ports

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
    def tool(st, ctx, argv):
        opts, pos = parse_args(argv, {"--endpoints": ("endpoints", True)})
        if len(pos) != 1:
            raise usage_error("no port or range specified" if not pos else "unrecognized args")
        ctx["pending"]["ports"].append([op, _port_spec(pos[0])])
        ctx["_dirty"] = True
        return ""
    return tool


def t_opened_ports(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT, **{"--endpoints": ("endpoints", False)}))
    return render(sorted(st["units"][ctx["unit"]]["ports"]), out_format(opts))


# ---------------------------------------------------------------- actions

def _action(ctx):
    action = ctx.get("action")
    if action is None:
        raise run_error("not running an action")
    return action


def t_action_get(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT))
    action = _action(ctx)
    value = action["params"]
    if pos:
        for part in pos[0].split("."):
            value = value.get(part) if isinstance(value, dict) else None
    return render(value, out_format(opts))


def t_action_set(st, ctx, argv):
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
    ctx["_dirty"] = True
    return ""


def t_action_fail(st, ctx, argv):
    opts, pos = parse_args(argv, {})
    action = _action(ctx)
    action["failed"] = (pos[0] if pos else
                        "action failed without reason given, check action for errors")
    ctx["_dirty"] = True
    return ""


def t_action_log(st, ctx, argv):
    opts, pos = parse_args(argv, {})
    action = _action(ctx)
    if not pos:
        raise usage_error("no message specified")
    action["log"].append(" ".join(pos))
    st.setdefault("action_logs", []).append([ctx["unit"], action["name"], " ".join(pos)])
    ctx["_dirty"] = True
    return ""


# ---------------------------------------------------------------- secrets

def parse_secret_ref(text):
    """secret:<xid>, secret://<model-uuid>/<xid> or a bare xid; else exit 2 (as Juju)."""
    xid = text
    if text.startswith("secret://"):
        xid = text.rsplit("/", 1)[-1]
    elif text.startswith("secret:"):
        xid = text[len("secret:"):]
    if not re.fullmatch(r"[0-9a-v]{20}", xid):
        raise usage_error(f'secret URI "{text}" not valid')
    return xid


def secrets_view(st, ctx):
    """Committed secrets with this hook's pending operations applied (for reads in the hook)."""
    view = {k: json.loads(json.dumps(v)) for k, v in st["secrets"].items()}
    renew = not juju_at_least(st["juju_version"], 3, 6)
    for op in ctx["pending"]["secrets"]:
        apply_secret_op(view, op, renew)
    return view


def apply_secret_op(secrets, op, new_revision_if_unchanged=False):
    kind = op["op"]
    if kind == "add":
        secrets[op["id"]] = {
            "owner": op["owner"], "owner_id": op["owner_id"], "label": op.get("label") or "",
            "description": op.get("description") or "", "expire": op.get("expire") or "",
            "rotate": op.get("rotate") or "", "revisions": {"1": op["content"]},
            "revision": 1, "grants": [], "consumers": {},
        }
        return
    secret = secrets.get(op["id"])
    if secret is None:
        return
    if kind == "set":
        if op.get("content") is not None:
            latest = secret["revisions"][str(secret["revision"])]
            # secret-set with the content unchanged: a new revision on Juju 3.1-3.5, none
            # from 3.6 (apiserver/facades/agent/secretsmanager: the checksum is compared)
            if op["content"] != latest or new_revision_if_unchanged:
                secret["revision"] += 1
                secret["revisions"][str(secret["revision"])] = op["content"]
        for field in ("label", "description", "expire", "rotate"):
            if op.get(field) is not None:
                secret[field] = op[field]
    elif kind == "remove":
        if op.get("revision"):
            secret["revisions"].pop(str(op["revision"]), None)
            if not secret["revisions"]:
                secrets.pop(op["id"], None)
        else:
            secrets.pop(op["id"], None)
    elif kind == "grant":
        grant = {"target": op["target"], "scope": op["scope"], "role": "view"}
        if grant not in secret["grants"]:
            secret["grants"].append(grant)
    elif kind == "revoke":
        secret["grants"] = [g for g in secret["grants"] if g["target"] != op["target"]]


def owns(st, ctx, secret):
    if secret["owner"] == "application":
        return secret["owner_id"] == st["app"]
    return secret["owner_id"] == ctx["unit"]


def may_manage(st, ctx, secret):
    if secret["owner"] == "application":
        return secret["owner_id"] == st["app"] and is_leader(st, ctx)
    return secret["owner_id"] == ctx["unit"]


def find_secret(st, ctx, view, ref, label):
    if ref:
        xid = parse_secret_ref(ref)
        if xid not in view:
            raise run_error(f'secret "{xid}" not found')
        return xid
    for xid, s in view.items():
        if owns(st, ctx, s) and s["label"] == label:
            return xid
        if s["consumers"].get(ctx["unit"], {}).get("label") == label:
            return xid
    raise run_error(f'secret "{label}" not found')


def parse_content(pos, opts):
    """key=value | key#base64=B64 | key#file=PATH | --file YAML -> {key: base64 value}."""
    encoded = {}

    def put(key, b64value):
        if not SECRET_KEY_RE.match(key):
            raise usage_error(f'key "{key}" not valid')
        if key in encoded:
            raise usage_error(f'key "{key}" specified more than once')
        encoded[key] = b64value

    def b64(text):
        return base64.b64encode(str(text).encode("utf-8")).decode("ascii")

    if "file" in opts:
        for key, value in read_settings_file(opts["file"]).items():
            put(key, b64(value))
    for arg in pos:
        if "=" not in arg:
            raise usage_error(f'key value "{arg}" not valid')
        key, _, value = arg.partition("=")
        if key.endswith("#base64"):
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise usage_error(f'invalid base64 value for key "{key}"') from None
            put(key[:-len("#base64")], value)
        elif key.endswith("#file"):
            try:
                with open(value, "rb") as f:
                    put(key[:-len("#file")], base64.b64encode(f.read()).decode("ascii"))
            except OSError as e:
                raise usage_error(str(e)) from None
        else:
            put(key, b64(value))
    return encoded


SECRET_META = {"--label": ("label", True), "--description": ("description", True),
               "--expire": ("expire", True), "--rotate": ("rotate", True),
               "--file": ("file", True)}


def _check_rotate(opts):
    if "rotate" in opts and opts["rotate"] not in ROTATE_POLICIES:
        raise usage_error('rotate policy "{}" not valid'.format(opts["rotate"]))


def t_secret_add(st, ctx, argv):
    spec = dict(SECRET_META, **{"--owner": ("owner", True)})
    opts, pos = parse_args(argv, spec)
    _check_rotate(opts)
    owner = opts.get("owner", "application")
    if owner not in ("application", "unit"):
        raise usage_error(f'secret owner "{owner}" not valid')
    content = parse_content(pos, opts)
    if not content:
        raise usage_error("missing secret value or filename")
    if owner == "application" and not is_leader(st, ctx):
        raise run_error("this unit is not the leader")
    view = secrets_view(st, ctx)
    label = opts.get("label")
    if label:
        owner_id = st["app"] if owner == "application" else ctx["unit"]
        for s in view.values():
            if s["owner_id"] == owner_id and s["label"] == label:
                raise run_error(f'secret with label "{label}" already exists')
    xid = new_secret_id(st)
    ctx["pending"]["secrets"].append({
        "op": "add", "id": xid, "owner": owner,
        "owner_id": st["app"] if owner == "application" else ctx["unit"],
        "content": content, "label": label, "description": opts.get("description"),
        "expire": opts.get("expire"), "rotate": opts.get("rotate")})
    ctx["_dirty"] = True
    return secret_uri(st, xid) + "\n"


def new_secret_id(st):
    """20 characters of xid's alphabet (0-9a-v), from the model's counter (reproducible)."""
    st["secret_seq"] = st.get("secret_seq", 0) + 1
    seed = st["uuid"].replace("-", "")
    n = int(seed[:16], 16) * 1000003 + st["secret_seq"] * 2654435761
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    chars = []
    for _ in range(20):
        n, r = divmod(n * 31 + 7, 32)
        chars.append(alphabet[r])
        n = n or st["secret_seq"] * 977
    return "".join(chars)


def t_secret_get(st, ctx, argv):
    spec = dict(FORMAT, **{"--label": ("label", True), "--peek": ("peek", False),
                           "--refresh": ("refresh", False)})
    opts, pos = parse_args(argv, spec)
    fmt = out_format(opts, "yaml")
    if opts.get("peek") and opts.get("refresh"):
        raise usage_error("specify one of --peek or --refresh but not both")
    if len(pos) > 2:
        raise usage_error("unrecognized args")
    ref = pos[0] if pos else None
    key = pos[1] if len(pos) > 1 else None
    if not ref and not opts.get("label"):
        raise usage_error("require either a secret URI or label")
    view = secrets_view(st, ctx)
    xid = find_secret(st, ctx, view, ref, opts.get("label"))
    content = read_secret_content(st, ctx, view, xid, opts)
    if key is None:
        return render({k: base64.b64decode(v).decode("utf-8") for k, v in content.items()}, fmt)
    raw = key.endswith("#base64")
    name = key[:-len("#base64")] if raw else key
    if name not in content:
        raise run_error(f'secret key value "{name}" not found')
    value = content[name] if raw else base64.b64decode(content[name]).decode("utf-8")
    return render(value, fmt)


def read_secret_content(st, ctx, view, xid, opts):
    """What secret-get returns, and the revision tracking it implies.

    apiserver/facades/agent/secretsmanager/secrets.go getSecretContent: every reader (the
    owner's units, the leader included, and grantees) gets the revision it tracks
    (getConsumedRevision): the latest at its first read, then that one until it passes
    --refresh (track the latest from now on) or --peek (the latest, this once). The
    tracking is saved at once, not at hook end. worker/uniter/runner/context/context.go
    GetSecret/getPendingSecretValue: a secret created in this hook shows its pending
    content; a pending secret-set of this hook shows only with --refresh or --peek, and
    --refresh then tracks the revision it makes once the hook commits."""
    secret = view[xid]
    committed = st["secrets"].get(xid)
    if committed is None:  # created in this hook
        if opts.get("label") and owns(st, ctx, secret):
            for op in ctx["pending"]["secrets"]:
                if op["op"] == "add" and op["id"] == xid:
                    op["label"] = opts["label"]
        return secret["revisions"][str(secret["revision"])]
    owner_side = owns(st, ctx, secret)
    if not owner_side and not any(g["target"] in (ctx["unit"], unit_app(ctx["unit"]))
                                  for g in secret["grants"]):
        raise run_error("permission denied")
    pending_set = secret["revision"] != committed["revision"]
    if opts.get("label"):
        if owner_side and may_manage(st, ctx, secret):
            if secret.get("label") != opts["label"]:
                ctx["pending"]["secrets"].append({"op": "set", "id": xid,
                                                  "label": opts["label"]})
        elif not owner_side:
            committed["consumers"].setdefault(ctx["unit"], {})["label"] = opts["label"]
    if pending_set and (opts.get("refresh") or opts.get("peek")):
        if opts.get("refresh"):
            ctx.setdefault("track_latest", []).append(xid)
        return secret["revisions"][str(secret["revision"])]
    record = committed["consumers"].setdefault(ctx["unit"], {})
    if opts.get("peek"):
        revision = committed["revision"]
    else:
        if opts.get("refresh") or "revision" not in record:
            record["revision"] = committed["revision"]
        revision = record["revision"]
    return committed["revisions"].get(str(revision), {})


def secret_uri(st, xid):
    """What secret-add prints: ``secret://<model-uuid>/<xid>`` from Juju 3.1.3 on
    (worker/uniter/runner/jujuc/secret-add.go prints the URI with its source model,
    core/secrets/secret.go URI.String), ``secret:<xid>`` before."""
    if juju_at_least(st["juju_version"], 3, 1, 3):
        return f"secret://{st['uuid']}/{xid}"
    return f"secret:{xid}"


def t_secret_set(st, ctx, argv):
    opts, pos = parse_args(argv, dict(SECRET_META, **{"--owner": ("owner", True)}))
    _check_rotate(opts)
    if not pos:
        raise usage_error("missing secret URI")
    view = secrets_view(st, ctx)
    xid = parse_secret_ref(pos[0])
    if xid not in view:
        raise run_error(f'secret "{xid}" not found')
    if not may_manage(st, ctx, view[xid]):
        raise run_error("permission denied" if view[xid]["owner"] == "unit"
                        else "this unit is not the leader")
    content = parse_content(pos[1:], opts) if (pos[1:] or "file" in opts) else None
    ctx["pending"]["secrets"].append({
        "op": "set", "id": xid, "content": content, "label": opts.get("label"),
        "description": opts.get("description"), "expire": opts.get("expire"),
        "rotate": opts.get("rotate")})
    ctx["_dirty"] = True
    return ""


def t_secret_remove(st, ctx, argv):
    opts, pos = parse_args(argv, {"--revision": ("revision", True)})
    if len(pos) != 1:
        raise usage_error("missing secret URI" if not pos else "unrecognized args")
    view = secrets_view(st, ctx)
    xid = parse_secret_ref(pos[0])
    if xid not in view:
        raise run_error(f'secret "{xid}" not found')
    if not may_manage(st, ctx, view[xid]):
        raise run_error("permission denied")
    revision = opts.get("revision")
    if revision is not None:
        try:
            revision = int(revision)
        except ValueError:
            raise usage_error(f'invalid value "{revision}" for option --revision') from None
    ctx["pending"]["secrets"].append({"op": "remove", "id": xid, "revision": revision})
    ctx["_dirty"] = True
    return ""


def secret_metadata(st, ctx):
    """What the unit agent's SecretMetadata() holds in this hook: secrets owned by the unit,
    and by the app if the unit is the leader, with this hook's pending creates and updates;
    a pending remove (even of one revision) hides the secret until a later set in the hook."""
    view = secrets_view(st, ctx)
    hidden = set()
    for op in ctx["pending"]["secrets"]:
        if op["op"] == "remove":
            hidden.add(op["id"])
        elif op["op"] in ("add", "set"):
            hidden.discard(op["id"])
    return {x: s for x, s in view.items() if x not in hidden and may_manage(st, ctx, s)}


def t_secret_ids(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    ids = sorted(secret_metadata(st, ctx))
    # A Go nil []string: smart prints nothing, yaml "[]", json "null".
    return render(ids or (None if fmt == "json" else []), fmt)


def _access_tag(st, grant):
    target = grant["target"]
    target = ("unit-" + target.replace("/", "-")) if "/" in target else "application-" + target
    scope = grant["scope"]
    rid = scope[len("relation-"):] if scope.startswith("relation-") else None
    if rid in st["relations"]:
        scope = "relation-{}.{}".format(st["app"], st["relations"][rid]["endpoint"])
    return {"target": target, "scope": scope, "role": grant["role"]}


def t_secret_info_get(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT, **{"--label": ("label", True)}))
    fmt = out_format(opts, "yaml")
    if fmt == "smart":
        raise usage_error('invalid value "smart" for option --format: unknown format "smart"')
    xid = parse_secret_ref(pos[0]) if pos else None
    label = opts.get("label", "")
    if xid is None and not label:
        raise usage_error("require either a secret URI or label")
    if xid is not None and label:
        raise usage_error("specify either a secret URI or label but not both")
    if len(pos) > 1:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos[1:])))
    mine = secret_metadata(st, ctx)
    if xid is None:
        xid = next((x for x, s in sorted(mine.items()) if s["label"] == label), None)
    if xid not in mine:
        raise run_error(f'secret "{label or xid}" not found')
    s = mine[xid]
    info = {"revision": s["revision"], "label": s.get("label") or "", "owner": s["owner"]}
    if s.get("description"):
        info["description"] = s["description"]
    if s.get("expire"):
        info["expiry"] = s["expire"]
    if s.get("rotate"):
        info["rotation"] = s["rotate"]
    if s["grants"]:
        info["access"] = [_access_tag(st, g) for g in s["grants"]]
    return render({xid: info}, fmt)


def _grant(kind):
    def tool(st, ctx, argv):
        spec = dict(RELATION, **{"--unit": ("unit", True), "--app": ("app", True)})
        opts, pos = parse_args(argv, spec)
        if len(pos) != 1:
            raise usage_error("missing secret URI" if not pos else "unrecognized args")
        if kind == "grant" or "relation" in opts:
            rid = relation_id(st, ctx, opts)
        else:
            rid = None
        view = secrets_view(st, ctx)
        xid = parse_secret_ref(pos[0])
        if xid not in view:
            raise run_error(f'secret "{xid}" not found')
        if not may_manage(st, ctx, view[xid]):
            raise run_error("permission denied")
        target = opts.get("unit") or opts.get("app") or st["app"]
        scope = f"relation-{rid}" if rid is not None else ""
        ctx["pending"]["secrets"].append({"op": kind, "id": xid, "target": target,
                                          "scope": scope})
        ctx["_dirty"] = True
        return ""
    return tool


# ---------------------------------------------------------------- goal-state, jujud

# No wall clock in the simulator: a status without a recorded time shows this "since"
# (Juju's format, cmd/juju/common/format.go FormatTime(t, true): UTC "2006-01-02 15:04:05Z").
GOAL_SINCE = "1970-01-01 00:00:00Z"


def t_goal_state(st, ctx, argv):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts, "yaml")
    if fmt == "smart":
        raise usage_error('invalid value "smart" for option --format: unknown format "smart"')
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    units = {}
    for name, v in st["units"].items():
        if v.get("dead") or not (v["alive"] or v.get("dying")):
            continue  # Juju lists Alive and Dying units only
        status = "dying" if not v["alive"] else v["status"]["status"]
        units[name] = {"status": status, "since": v["status"].get("since") or GOAL_SINCE}
    # "relations" leaves peer relations out, and the simulator has no other kind.
    return render({"units": units, "relations": {}}, fmt)


def t_jujud(st, ctx, argv):
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
    "secret-add": t_secret_add, "secret-get": t_secret_get, "secret-set": t_secret_set,
    "secret-remove": t_secret_remove, "secret-ids": t_secret_ids,
    "secret-info-get": t_secret_info_get, "secret-grant": _grant("grant"),
    "secret-revoke": _grant("revoke"),
    "goal-state": t_goal_state, "jujud": t_jujud,
}
SECRET_TOOLS = tuple(t for t in TOOLS if t.startswith("secret-"))


# ---------------------------------------------------------------- commit (used by the model)

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
    for rid, writes in ctx["pending"]["app"].items():
        rel = st["relations"][rid]
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


def juju_at_least(version, *wanted):
    """``version`` (``3.6.4``) is at least ``wanted`` (3, 6)."""
    try:
        have = tuple(int(x) for x in version.split(".")[:len(wanted)])
    except ValueError:
        return True
    return have >= wanted


# ---------------------------------------------------------------- entry point

def main(argv):
    name = os.path.basename(argv[0])
    if name.endswith(".py"):
        name = argv[1] if len(argv) > 1 else ""
        argv = argv[1:]
    tool = TOOLS.get(name)
    if tool is None:
        sys.stderr.write(f"ERROR unknown hook tool {name!r} (not simulated)\n")
        return 2
    state_path = BAKED.get("state") or os.environ.get("JUJU_SIM_STATE")
    ctx_id = os.environ.get("JUJU_CONTEXT_ID")
    if not state_path or not ctx_id:
        sys.stderr.write("ERROR JUJU_CONTEXT_ID not set: hook tools only work in a hook\n")
        return 1
    args = argv[1:]
    if name != "relation-set" and ("--help" in args or "-h" in args):
        sys.stdout.write(f"Usage: {name} [options]\n")
        return 0
    try:
        with Locked(state_path) as locked:
            st = locked.data
            ctx = st["contexts"].get(ctx_id)
            if ctx is None:
                raise run_error(f"bad context id {ctx_id!r}: not in a running hook")
            if name.startswith("secret-") and not st.get("secrets_supported", True):
                sys.stderr.write(f"{name}: command not found\n")
                return 127
            output = tool(st, ctx, args)
            ctx.pop("_dirty", None)
            ctx.setdefault("calls", []).append([name] + args)  # for tests; always saved
            locked.dirty = True
    except ToolError as e:
        sys.stderr.write(f"ERROR {e.message}\n")
        return e.code
    sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
