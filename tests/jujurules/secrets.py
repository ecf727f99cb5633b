"""Juju secrets: the secret-* hook tools, the owner/leader rules, revision tracking and how
a hook's pending secret operations apply (at commit, or as the hook's own view)."""
import base64
import json
import re

from .args import FORMAT, RELATION, out_format, parse_args, run_error, usage_error
from .formats import open_in, read_settings_file, render
from .state import (
    ctx_app,
    is_leader,
    juju_at_least,
    relation_endpoint,
    relation_id,
    remote_app,
    unit_app,
)

SECRET_KEY_RE = re.compile(r"^([a-z](?:-?[a-z0-9]){2,})$")
ROTATE_POLICIES = ("never", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly")


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
        return secret["owner_id"] == ctx_app(st, ctx)
    return secret["owner_id"] == ctx["unit"]


def may_manage(st, ctx, secret):
    if secret["owner"] == "application":
        return secret["owner_id"] == ctx_app(st, ctx) and is_leader(st, ctx)
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


def parse_content(pos, opts, call):
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
        for key, value in read_settings_file(opts["file"], call).items():
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
                with open_in(call.cwd, value, "rb") as f:
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


def t_secret_add(st, ctx, argv, call):
    spec = dict(SECRET_META, **{"--owner": ("owner", True)})
    opts, pos = parse_args(argv, spec)
    _check_rotate(opts)
    owner = opts.get("owner", "application")
    if owner not in ("application", "unit"):
        raise usage_error(f'secret owner "{owner}" not valid')
    content = parse_content(pos, opts, call)
    if not content:
        raise usage_error("missing secret value or filename")
    if owner == "application" and not is_leader(st, ctx):
        raise run_error("this unit is not the leader")
    view = secrets_view(st, ctx)
    label = opts.get("label")
    if label:
        owner_id = ctx_app(st, ctx) if owner == "application" else ctx["unit"]
        for s in view.values():
            if s["owner_id"] == owner_id and s["label"] == label:
                raise run_error(f'secret with label "{label}" already exists')
    xid = new_secret_id(st)
    ctx["pending"]["secrets"].append({
        "op": "add", "id": xid, "owner": owner,
        "owner_id": ctx_app(st, ctx) if owner == "application" else ctx["unit"],
        "content": content, "label": label, "description": opts.get("description"),
        "expire": opts.get("expire"), "rotate": opts.get("rotate")})
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


def t_secret_get(st, ctx, argv, call):
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


def _managed_secret(st, ctx, ref, denied="permission denied"):
    """The id of the secret ``ref`` names, which this unit may manage (the owning unit, or
    the leader for an app secret); the run errors Juju's secret tools give otherwise."""
    view = secrets_view(st, ctx)
    xid = parse_secret_ref(ref)
    if xid not in view:
        raise run_error(f'secret "{xid}" not found')
    if not may_manage(st, ctx, view[xid]):
        raise run_error(denied(view[xid]) if callable(denied) else denied)
    return xid


def t_secret_set(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(SECRET_META, **{"--owner": ("owner", True)}))
    _check_rotate(opts)
    if not pos:
        raise usage_error("missing secret URI")
    # a non-leader of the owning application: ErrIsNotLeader in the context
    # (worker/uniter/runner/context/context.go UpdateSecret); any other secret it does not
    # own (a unit's, another application's, the model's): the facade's ErrPerm (CanManage)
    xid = _managed_secret(st, ctx, pos[0], lambda secret: "this unit is not the leader"
                          if secret["owner"] == "application"
                          and secret["owner_id"] == ctx_app(st, ctx) else "permission denied")
    content = parse_content(pos[1:], opts, call) if (pos[1:] or "file" in opts) else None
    ctx["pending"]["secrets"].append({
        "op": "set", "id": xid, "content": content, "label": opts.get("label"),
        "description": opts.get("description"), "expire": opts.get("expire"),
        "rotate": opts.get("rotate")})
    return ""


def t_secret_remove(st, ctx, argv, call):
    opts, pos = parse_args(argv, {"--revision": ("revision", True)})
    if len(pos) != 1:
        raise usage_error("missing secret URI" if not pos else "unrecognized args")
    xid = _managed_secret(st, ctx, pos[0])
    revision = opts.get("revision")
    if revision is not None:
        try:
            revision = int(revision)
        except ValueError:
            raise usage_error(f'invalid value "{revision}" for option --revision') from None
    ctx["pending"]["secrets"].append({"op": "remove", "id": xid, "revision": revision})
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


def t_secret_ids(st, ctx, argv, call):
    opts, pos = parse_args(argv, dict(FORMAT))
    fmt = out_format(opts)
    if pos:
        raise usage_error('unrecognized args: ["{}"]'.format('" "'.join(pos)))
    ids = sorted(secret_metadata(st, ctx))
    # A Go nil []string: smart prints nothing, yaml "[]", json "null".
    return render(ids or (None if fmt == "json" else []), fmt)


def _access_tag(st, ctx, grant):
    target = grant["target"]
    target = ("unit-" + target.replace("/", "-")) if "/" in target else "application-" + target
    scope = grant["scope"]
    rid = scope[len("relation-"):] if scope.startswith("relation-") else None
    if rid in st["relations"]:
        rel = st["relations"][rid]
        if rel.get("key"):  # names.NewRelationTag of the key "app:ep app:ep"
            scope = "relation-" + rel["key"].replace(":", ".").replace(" ", "#")
        else:
            owner = ctx_app(st, ctx)  # a peer relation: "app:ep"
            scope = f"relation-{owner}.{relation_endpoint(rel, owner)}"
    return {"target": target, "scope": scope, "role": grant["role"]}


def t_secret_info_get(st, ctx, argv, call):
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
        info["access"] = [_access_tag(st, ctx, g) for g in s["grants"]]
    return render({xid: info}, fmt)


def grant_tool(kind):
    def tool(st, ctx, argv, call):
        spec = dict(RELATION, **{"--unit": ("unit", True), "--app": ("app", True)})
        opts, pos = parse_args(argv, spec)
        if len(pos) != 1:
            raise usage_error("missing secret URI" if not pos else "unrecognized args")
        if kind == "grant" or "relation" in opts:
            rid = relation_id(st, ctx, opts)
        else:
            rid = None
        xid = _managed_secret(st, ctx, pos[0])
        # no --unit / --app: the application at the other end of the relation
        own = ctx_app(st, ctx)
        target = opts.get("unit") or opts.get("app") or (
            remote_app(st["relations"][rid], own) if rid is not None else own)
        scope = f"relation-{rid}" if rid is not None else ""
        ctx["pending"]["secrets"].append({"op": kind, "id": xid, "target": target,
                                          "scope": scope})
        return ""
    return tool


# ---------------------------------------------------------------- user (model-owned) secrets
#
# What the operator's ``juju add-secret`` / ``update-secret`` / ``grant-secret`` /
# ``revoke-secret`` / ``remove-secret`` do (cmd/juju/secrets/*.go call the client facade,
# apiserver/facades/client/secrets/secrets.go). The secret is owned by the model (owner
# tag model-<uuid>); no unit manages it. Units read it only once the operator granted it
# to their application (apiserver/common/secrets/access.go CanRead: a view role for the
# unit or its application; else ErrPerm, "permission denied", secret-get exit 1).

USER_VALUE_MAX = 8 * 1024     # core/secrets/createsecret.go maxValueSizeBytes
USER_CONTENT_MAX = 64 * 1024  # core/secrets/createsecret.go maxContentSizeBytes


class UserSecretError(ValueError):
    """What the juju client would print for a refused user-secret command."""


def _user_content(content):
    """{key: text} -> {key: base64}, refused as core/secrets/createsecret.go
    (encodeBase64) refuses: an empty content, a key outside keyRegExp, a value over
    8 KiB, a content over 64 KiB."""
    if not content:
        raise UserSecretError("empty secret value not valid")
    encoded, total = {}, 0
    for key, value in content.items():
        value = str(value)
        size = len(value.encode("utf-8"))
        if size > USER_VALUE_MAX:
            raise UserSecretError(f'secret content for key "{key}" too large: {size} bytes')
        total += size
        if not SECRET_KEY_RE.match(key):
            raise UserSecretError(f'key "{key}" not valid')
        encoded[key] = base64.b64encode(value.encode("utf-8")).decode("ascii")
    if total > USER_CONTENT_MAX:
        raise UserSecretError(f"secret content too large: {total} bytes")
    return encoded


def check_secret_uri(text, option):
    """A value for a config option of ``type: secret``: a secret URI (core/secrets/secret.go
    ParseURI: scheme ``secret``, an optional source model UUID, a 20-character xid), else
    UserSecretError as ``juju config`` refuses it."""
    xid = text
    if text.startswith("secret://"):
        host, _, xid = text[len("secret://"):].partition("/")
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                            host):
            raise UserSecretError(f'invalid secret URI for option "{option}": host '
                                  f'controller UUID "{host}" not valid')
    elif text.startswith("secret:"):
        xid = text[len("secret:"):]
    if not re.fullmatch(r"[0-9a-v]{20}", xid):
        raise UserSecretError(f'invalid secret URI for option "{option}": secret URI '
                              f'"{text}" not valid')


def _user_secret(st, uri):
    """The xid of the model-owned secret ``uri`` names (secret:<xid>, the long form or a
    bare xid), or UserSecretError as the client facade's not-found/permission errors."""
    try:
        xid = parse_secret_ref(uri)
    except Exception:  # noqa: BLE001 - the usage error of the hook tools
        raise UserSecretError(f'secret URI "{uri}" not valid') from None
    secret = st["secrets"].get(xid)
    if secret is None:
        raise UserSecretError(f'secret "{xid}" not found')
    if secret["owner"] != "model":
        # RemoveSecrets and the grant/update paths act on model-owned secrets only
        raise UserSecretError("permission denied")
    return xid


def add_user_secret(st, content, label=None, description=None):
    """``juju add-secret <name> key=value...``: a model-owned secret at revision 1; the
    name is its label, unique among the model's secrets (state.LabelExists -> "secret
    with name %q already exists"). Prints ``secret:<xid>``: the client facade makes the
    URI with no source model (core/secrets/secret.go NewURI, URI.String)."""
    encoded = _user_content(content)
    if label:
        for s in st["secrets"].values():
            if s["owner"] == "model" and s["label"] == label:
                raise UserSecretError(f'secret with name "{label}" already exists')
    xid = new_secret_id(st)
    apply_secret_op(st["secrets"], {"op": "add", "id": xid, "owner": "model",
                                    "owner_id": st["uuid"], "label": label or "",
                                    "description": description or "", "content": encoded})
    return f"secret:{xid}"


def update_user_secret(st, uri, content):
    """``juju update-secret <uri> key=value...``: a new revision with the new content,
    none when its checksum equals the latest's (client facade updateSecret: "no new
    revision for user secret with checksum"). Returns the latest revision."""
    xid = _user_secret(st, uri)
    apply_secret_op(st["secrets"], {"op": "set", "id": xid,
                                    "content": _user_content(content)})
    return st["secrets"][xid]["revision"]


def grant_user_secret(st, uri, app):
    """``juju grant-secret <uri> <app>``: the application gets the view role, scoped to
    the model (client facade secretsGrantRevoke: Scope model tag, Subject the
    application tag, RoleView). Applications only: there is no unit form."""
    xid = _user_secret(st, uri)
    apply_secret_op(st["secrets"], {"op": "grant", "id": xid, "target": app,
                                    "scope": f"model-{st['uuid']}"})


def revoke_user_secret(st, uri, app):
    """``juju revoke-secret <uri> <app>``: the view role goes; the units' consumer records
    (the revision each tracks) stay, but secret-get is "permission denied" from now on
    (CanRead). No hook tells the units (state/secrets.go RevokeSecretAccess)."""
    xid = _user_secret(st, uri)
    apply_secret_op(st["secrets"], {"op": "revoke", "id": xid, "target": app})


def remove_user_secret(st, uri):
    """``juju remove-secret <uri>``: every revision and every consumer record go; the
    units' trackers forget it without a hook (worker/uniter/secrets/secrets.go
    SecretsRemoved); a later secret-get is 'secret "<xid>" not found'."""
    xid = _user_secret(st, uri)
    apply_secret_op(st["secrets"], {"op": "remove", "id": xid})
