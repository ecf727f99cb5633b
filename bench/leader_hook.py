"""Child process of the "leader" bench section: one leader hook of layer:tls on the real
charms.reactive, with the hook tools answered in process (tests/reactive_harness.FakeJuju)
and counted by hook-tool name (every call charmhelpers or the layer makes, as the
command line ``jujurules.tools.run_tool`` answers).

    python bench/leader_hook.py prepare DIR N [warm]  # leader booted + N peers with CSRs
    python bench/leader_hook.py hook DIR        # the timed hook; prints JSON on stdout
    python bench/leader_hook.py profile DIR     # the same hook under cProfile (top entries)

``prepare`` runs the leader's own boot hooks (install, relation-created, leader-elected,
config-changed, start: it makes the CA, its key and its own certificate) in a throw-away
process and saves the leader's unitdata, the relation data, leader settings and the CA
secret to DIR/state.json, with N peers each holding a P-256 CSR and its claims. With
``warm`` the leader has seen the peers' data before (the endpoint keeps a hash of every
key of every peer in unitdata for charms.reactive's ``changed`` flags, updated in the hooks
about that peer): only the CSRs are unsigned. Without it, this hook is the first to see any
of it, and the endpoint's first look compares every peer's data (the worst case).
``hook`` starts from that state in a fresh interpreter: the cost of interpreter start and
imports is real, the setup of the fake model is timed apart and left out.
"""
import time

T0 = time.perf_counter()
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTS = os.path.join(ROOT, "tests")
# What tests/conftest.py puts on sys.path (without pytest): the charmhelpers Debian shim,
# the layer's lib (a built charm's lib/), the stand-in layer:basic lib, the harness.
sys.path[:0] = [os.path.join(TESTS, "shim"), os.path.join(ROOT, "layer-tls", "lib"),
                os.path.join(TESTS, "layers", "basic", "lib"), TESTS]
import charmhelpers_debian_shim  # noqa: E402,F401  (applied on import)
from charmhelpers.core import hookenv, unitdata  # noqa: E402,F401
from charms import reactive  # noqa: E402,F401

T_IMPORTS = time.perf_counter()

LEADER = "tls/0"
RID = "certificates:0"
# Writing tools: everything else only reads.
WRITES = {"relation-set", "leader-set", "status-set", "application-version-set",
          "open-port", "close-port", "secret-add", "secret-set"}


def _peer(i):
    # names the layer's default tls_permitted_names (auto) lets the CA vouch for
    return f"tls/{i}", f"unit-{i}.bench.internal", f"10.1.{i // 256 % 256}.{i % 256}"


class Counting:
    """Records the hook-tool command lines of the harness (FakeJuju._tool) and of the
    layer's ``run_tool`` seam (secrets): (tool name, repr of its arguments, "")."""

    def __init__(self):
        self.calls = []

    def wrap(self, fn):
        def counted(argv, *args, **kwargs):
            self.calls.append((argv[0], repr(argv[1:]), ""))
            return fn(argv, *args, **kwargs)
        return counted


def make_juju(workdir, counting=None):
    """tests/tls_harness.TlsJuju with its FakeSecrets (jujurules' rules, not a copy), the
    layer's ``run_tool`` seam and every hook tool the harness answers counted (its names:
    reactive_harness.TOOL_NAMES)."""
    import pathlib

    from charms.layer.tls import ca_store
    from tls_harness import FakeSecrets, TlsJuju

    secrets = FakeSecrets()

    def run_tool(argv):
        if counting is not None:
            counting.calls.append((argv[0], repr(argv[1:]), ""))
        return secrets.run(argv)

    ca_store.run_tool = run_tool
    pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
    juju = TlsJuju(pathlib.Path(workdir), secrets)
    if counting is not None:
        juju._tool = counting.wrap(juju._tool)
    return juju, secrets


def _see_peer_data(juju, rid):
    """Leave in the leader's unitdata the hashes charms.reactive keeps of every peer's data
    (as after earlier relation hooks): Endpoint start-up of a relation hook, no handler."""
    from charms.reactive import bus

    last = sorted(juju.relations[rid].members)[-1]
    with juju.hook_context(LEADER, "certificates-relation-changed", rid=rid,
                           remote_unit=last):
        bus.discover()
        hookenv._run_atstart()


def prepare(workdir, n, warm):
    from charms.layer.tls import pki

    juju, secrets = make_juju(workdir)
    juju.add_unit(LEADER)
    juju.set_leader(LEADER)
    rid = juju.add_peer_relation()
    juju.run_hook(LEADER, "install")
    juju.enter(rid, LEADER)
    for hook in ("leader-elected", "config-changed", "start"):
        juju.run_hook(LEADER, hook)
    juju.settle()
    assert juju.kv(LEADER).get("layer.tls.installed.certificate"), "leader has no certificate"
    peers = {}
    for i in range(1, n + 1):
        name, host, ip = _peer(i)
        key = pki.generate_private_key("ecdsa-p256")
        csr = pki.csr_to_pem(pki.build_csr(key, name, dns_names=[host], ip_addresses=[ip]))
        peers[name] = {"private-address": ip, "ingress-address": ip,
                       "egress-subnets": ip + "/32", "csr": csr,
                       "tls-hostnames": json.dumps([host]),
                       "tls-addresses": json.dumps([ip])}
    rel = juju.relations[rid]
    for name, bag in peers.items():
        rel.members.append(name)
        rel.unit_bags[name] = bag
    if warm:
        _see_peer_data(juju, rid)
    state = {"kv": juju.kv(LEADER).getrange(""), "leader_settings": juju.leader_settings,
             "leader_bag": rel.unit_bags[LEADER], "app_bag": juju.app_bag(rid),
             "secrets": secrets.committed, "peers": peers, "warm": warm,
             "leader_address": juju.units[LEADER].address}
    with open(os.path.join(workdir, "state.json"), "w") as f:
        json.dump(state, f)


def load(workdir, counting):
    with open(os.path.join(workdir, "state.json")) as f:
        state = json.load(f)
    juju, secrets = make_juju(os.path.join(workdir, f"run-{os.getpid()}"), counting)
    juju.add_unit(LEADER, address=state["leader_address"])
    juju.set_leader(LEADER)
    rid = juju.add_peer_relation()
    rel = juju.relations[rid]
    rel.members.append(LEADER)
    rel.unit_bags[LEADER] = state["leader_bag"]
    juju.set_app_data(rid, **state["app_bag"])
    for name, bag in state["peers"].items():
        rel.members.append(name)
        rel.unit_bags[name] = bag
    kv = juju.kv(LEADER)
    kv.update(state["kv"])
    kv.flush()
    juju.leader_settings.update(state["leader_settings"])
    secrets.committed.update(state["secrets"])
    return juju, rid, len(state["peers"])


def hook(workdir, profile=False):
    counting = Counting()
    juju, rid, n = load(workdir, counting)
    last = _peer(n)[0]
    counting.calls.clear()
    t_setup = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    run = juju.run_hook(LEADER, "certificates-relation-changed", rid=rid, remote_unit=last)
    t_hook = time.perf_counter()
    if profile:
        prof.disable()
        stats = pstats.Stats(prof)
        rows = []
        for (file, line, func), (_cc, nc, tt, ct, _) in stats.stats.items():
            where = os.path.relpath(file, ROOT) if file.startswith(ROOT) else \
                os.path.basename(file)
            rows.append({"where": f"{where}:{line}({func})", "calls": nc, "tottime": tt,
                         "cumtime": ct})
        rows.sort(key=lambda r: -r["tottime"])
        print(json.dumps({"top": rows[:15], "total": t_hook - t_setup}))
        return
    certs = json.loads(juju.app_bag(rid).get("certificates", "{}"))
    by_kind = {}
    distinct = set()
    for name, args, kwargs in counting.calls:
        by_kind[name] = by_kind.get(name, 0) + 1
        distinct.add((name, args, kwargs))
    cached = {}  # distinct command lines (charmhelpers already caches relation-get and co.)
    for name, _args, _kwargs in distinct:
        cached[name] = cached.get(name, 0) + 1
    unit_reads = {}
    for name, args, kwargs in counting.calls:
        if name == "relation-get":
            for peer in ("'tls/",):
                if peer in args + kwargs:
                    unit = (args + kwargs).split(peer, 1)[1].split("'", 1)[0]
                    unit_reads["tls/" + unit] = unit_reads.get("tls/" + unit, 0) + 1
    published = sum(len(k) + len(v or "") for _, _, values in run.relation_sets
                    for k, v in values.items())
    leader_set_bytes = sum(len(k) + len(v or "") for values in run.leader_sets
                           for k, v in values.items())
    reads = sorted(unit_reads.values())
    print(json.dumps({
        "ok": run.ok, "n": n, "signed": len(certs),
        "imports": T_IMPORTS - T0, "setup": t_setup - T_IMPORTS, "hook": t_hook - t_setup,
        "since_t0": t_hook - T0,
        "calls": by_kind, "distinct_calls": cached,
        # charmhelpers' ``relation-set --help`` (does it take --file?) writes nothing
        "writes": sum(1 for name, args, _ in counting.calls
                      if name in WRITES and args != repr(["--help"])),
        "relation_sets": [(rid_, owner, len(values)) for rid_, owner, values in
                          run.relation_sets],
        "published_bytes": published, "leader_set_bytes": leader_set_bytes,
        "unit_reads_min": reads[0] if reads else 0,
        "unit_reads_max": reads[-1] if reads else 0,
        "cryptography_loaded": "cryptography" in sys.modules,
        "rejections": [m for lvl, m in run.logs if "refused" in m][:3],
    }))


if __name__ == "__main__":
    mode, workdir = sys.argv[1], sys.argv[2]
    if mode == "prepare":
        prepare(workdir, int(sys.argv[3]), warm=sys.argv[4:] == ["warm"])
    elif mode == "hook":
        hook(workdir)
    elif mode == "profile":
        hook(workdir, profile=True)
    else:
        raise SystemExit(f"unknown mode {mode}")
