"""Handlers of the simulator's test charm: relation data, leader data, status, a secret."""
import json
import shutil
import socket
import subprocess
import sys

from charmhelpers.core import hookenv
from charms.layer import options
from charms.reactive import when_not

SECRET_LABEL = "echo-token"


def _peer_rid():
    rids = hookenv.relation_ids("echo")
    return rids[0] if rids else None


def _secret_uri():
    """Leader: find the app secret by label, or create it (in this hook: pending)."""
    found = subprocess.run(["secret-get", "--label", SECRET_LABEL, "--format=json"],
                           capture_output=True, text=True)
    if found.returncode == 0:
        info = json.loads(subprocess.check_output(
            ["secret-info-get", "--label", SECRET_LABEL, "--format=json"]))
        return "secret:" + next(iter(info))
    return subprocess.check_output(
        ["secret-add", "--label", SECRET_LABEL, "token=s3cret-" + hookenv.local_unit()],
        text=True).strip()


@when_not("peer-echo.never")
def every_hook():
    hook = hookenv.hook_name()
    config = hookenv.config()
    if config.get("fail-hook") and config.get("fail-hook") == hook:
        hookenv.log(f"failing {hook} on purpose (config fail-hook)", level=hookenv.ERROR)
        sys.exit(1)
    rid = _peer_rid()
    if rid is None:
        hookenv.status_set("waiting", "no peer relation yet")
        return
    me = hookenv.local_unit()
    hookenv.relation_set(rid, {
        "message": config.get("message"),
        "hostname": socket.gethostname(),
        "address": hookenv.unit_get("private-address"),
        "greeting": options.get("peer-echo", "greeting"),
    })
    peers = sorted(hookenv.related_units(rid))
    seen = {u: hookenv.relation_get("hostname", u, rid) for u in peers}
    secrets = shutil.which("secret-add") is not None
    if hookenv.is_leader():
        hookenv.leader_set({"leader": me})
        members = sorted([f"{u}={h}" for u, h in seen.items() if h]
                         + [f"{me}={socket.gethostname()}"])
        app = {"members": json.dumps(members)}
        if secrets:
            app["secret-uri"] = _secret_uri()
        hookenv.relation_set(rid, app, app=True)
    app_data = hookenv.relation_get(app=hookenv.service_name(), rid=rid) or {}
    token = ""
    if secrets and app_data.get("secret-uri"):
        token = subprocess.check_output(
            ["secret-get", app_data["secret-uri"], "token"], text=True).strip()
    members = json.loads(app_data.get("members") or "[]")
    leader = hookenv.leader_get("leader")
    hookenv.status_set("active", f"peers={len(peers)} members={len(members)} "
                                 f"leader={leader} token={token or '-'}")
