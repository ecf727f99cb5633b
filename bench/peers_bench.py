"""`make bench` section "peers": what the hooks of the peer relation read, with the
interface as it was (every joined unit's bag in every relation hook) and as it is now
(the bag of the hook's remote unit), in the same run on the same machine.

charms.reactive 1.5.3's ``Endpoint._manage_flags`` reads every joined unit's bag in every
hook of the endpoint, to set ``endpoint.<name>.changed.*``; interface:tls also looked for
its certificate under the legacy key in every bag until the certificate arrived. So a
non-leader's relation hook made N+1 ``relation-get`` calls, and a deploy, with its N^2
relation hooks, N^3. Since Juju runs relation-changed for a peer whenever its bag changed
(worker/uniter/relation/resolver.go ``nextHookForRelation``), a hook about peer X now reads
X's bag, its own and the app bag (interface-tls/peers.py ``_manage_endpoint_flags``,
``_legacy_offers``), on the leader too: it keeps every peer's bag in unitdata
(``_remote_bags``) and reads them all again only in hooks of other kinds (update-status).
*before* has neither (the leader's kept bags came later than 992b4fd).

Both variants are the tls-demo example charm (examples/tls-demo) built once with
tests/model/build.py; *before* is that build with ``hooks/relations/tls/peers.py`` replaced
by the file of commit ``BEFORE_COMMIT`` (the last one before the change), nothing else.
Each deploys N units (seed 1, hooks forked from the model's zygote) and settles; the
schedule is the same for both (same hooks, same order), so the counts compare one to one.
"""
from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from benchlib import ROOT, environment_lines, fmt_seconds, markdown_table, write_data

BEFORE_COMMIT = "992b4fd"
DEMO_LAYER = Path(ROOT) / "examples" / "tls-demo"
PEER_HOOKS = ("certificates-relation-joined", "certificates-relation-changed")
KINDS = ("relation-get", "relation-list", "relation-ids", "relation-set", "is-leader",
         "config-get", "goal-state", "leader-get", "leader-set", "network-get",
         "unit-get", "status-set", "open-port", "secret-get", "secret-add")


class Config(NamedTuple):
    ns: Tuple[int, ...] = (3, 10, 30)
    seed: int = 1

    @classmethod
    def quick(cls) -> Config:
        return cls(ns=(3,))


def _tests_on_path() -> None:
    for path in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "shim"),
                 os.path.join(ROOT, "layer-tls", "lib"),
                 os.path.join(ROOT, "tests", "layers", "basic", "lib")):
        if path not in sys.path:
            sys.path.insert(0, path)


def charms(work: str) -> Dict[str, str]:
    """{"before": dir, "after": dir}: the built tls-demo, and a copy of it with the peer
    interface of BEFORE_COMMIT."""
    _tests_on_path()
    from model import build_charm

    after = str(build_charm(DEMO_LAYER))
    before = os.path.join(work, "tls-demo-before")
    shutil.copytree(after, before, symlinks=True)
    old = subprocess.run(["git", "-C", ROOT, "show", f"{BEFORE_COMMIT}:interface-tls/peers.py"],
                         capture_output=True, text=True, check=True).stdout
    Path(before, "hooks", "relations", "tls", "peers.py").write_text(old)
    return {"before": before, "after": after}


def run_model(charm_dir: str, n: int, seed: int) -> dict:
    """Deploy ``n`` units of ``charm_dir`` and settle; hooks and tool calls by kind."""
    _tests_on_path()
    from model import Model
    from model_checks import free_port, stop_services

    with tempfile.TemporaryDirectory(prefix=f"bench-peers-{n}-") as work:
        model = Model(Path(charm_dir), Path(work), seed=seed, fast_start=True,
                      config={"echo_port": free_port()})
        start = time.monotonic()
        model.deploy(n)
        stats = model.settle(max_hooks=50000)
        seconds = time.monotonic() - start
        groups: Dict[str, dict] = collections.defaultdict(
            lambda: {"hooks": 0, "calls": collections.Counter(), "max_get": 0})
        for run in model.history:
            role = "leader" if run.unit == model.leader else "others"
            kind = "peer" if run.hook in PEER_HOOKS and run.remote_unit else "other"
            for key in (f"{role} {kind}", "all"):
                g = groups[key]
                g["hooks"] += 1
                g["calls"].update(c[0] for c in run.calls)
                g["max_get"] = max(g["max_get"], sum(c[0] == "relation-get"
                                                     for c in run.calls))
        failed = sum(not r.ok for r in model.history)
        stop_services(model)
        model.close()
    return {"n": n, "seed": seed, "hooks": stats.hooks, "seconds": seconds,
            "failed": failed, "load": os.getloadavg()[0],
            "groups": {k: dict(v, calls=dict(v["calls"])) for k, v in groups.items()}}


def measure(config: Config) -> List[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as work:
        built = charms(work)
        for n in config.ns:
            for variant in ("before", "after"):
                result = run_model(built[variant], n, config.seed)
                result["variant"] = variant
                print(f"peers: {variant} N={n}: {result['hooks']} hooks in "
                      f"{result['seconds']:.0f} s", file=sys.stderr)
                results.append(result)
    return results


def _per_hook(group: dict, kind: Optional[str] = None, digits: int = 1) -> str:
    hooks = group["hooks"] or 1
    calls = group["calls"]
    count = sum(calls.values()) if kind is None else calls.get(kind, 0)
    return f"{count / hooks:.{digits}f}"


def render(config: Config, results: List[dict]) -> str:
    by = {(r["variant"], r["n"]): r for r in results}
    ns = sorted({r["n"] for r in results})
    rows = []
    for n in ns:
        b, a = by.get(("before", n)), by.get(("after", n))
        if not (a and b):
            continue
        cells = [str(n), f"{b['hooks']} / {a['hooks']}", f"{b['failed']} / {a['failed']}"]
        for key in ("others peer", "leader peer", "all"):
            gb, ga = b["groups"].get(key), a["groups"].get(key)
            if not (gb and ga):
                cells += ["-", "-"]
                continue
            cells.append(f"{_per_hook(gb)} / {_per_hook(ga)}")
            cells.append(f"{_per_hook(gb, 'relation-get')} / {_per_hook(ga, 'relation-get')}")
        ab, aa = b["groups"]["all"], a["groups"]["all"]
        cells.append(f"{sum(ab['calls'].values()):,} / {sum(aa['calls'].values()):,}")
        cells.append(f"{ab['calls'].get('relation-get', 0):,} / "
                     f"{aa['calls'].get('relation-get', 0):,}")
        cells.append(f"{b['groups']['others peer']['max_get']} / "
                     f"{a['groups']['others peer']['max_get']}")
        cells.append(f"{fmt_seconds(b['seconds'])} / {fmt_seconds(a['seconds'])}")
        rows.append(cells)
    kind_rows = []
    n = max((n for n in ns if ("before", n) in by and ("after", n) in by), default=None)
    if n is not None:
        for key, label in (("others peer", "non-leader, peer joined/changed"),
                           ("leader peer", "leader, peer joined/changed"),
                           ("others other", "non-leader, other hooks"),
                           ("leader other", "leader, other hooks")):
            gb, ga = by[("before", n)]["groups"].get(key), by[("after", n)]["groups"].get(key)
            if not (gb and ga):
                continue
            kinds = [k for k in KINDS if gb["calls"].get(k) or ga["calls"].get(k)]
            kinds += sorted(k for k in set(gb["calls"]) | set(ga["calls"]) if k not in KINDS)
            kind_rows.append([label, f"{gb['hooks']} / {ga['hooks']}",
                              f"{_per_hook(gb)} / {_per_hook(ga)}",
                              ", ".join(f"{k} {_per_hook(gb, k, 2)} / {_per_hook(ga, k, 2)}"
                                        for k in kinds)])
    return "\n".join([
        "## Peer relation hooks: what each one reads, before and after",
        "",
        "Simulated model, the tls-demo example charm, N units deployed and settled (seed "
        f"{config.seed}, hooks forked from the model's zygote). *before*: the same build "
        f"with the peer interface of commit {BEFORE_COMMIT} (every joined unit's bag read "
        "in every relation hook: charms.reactive's `Endpoint._manage_flags`, and the "
        "legacy-certificate fallback until the unit's certificate arrived); *after*: a "
        "hook about peer X reads X's bag, its own and the app bag, on the leader too (it "
        "keeps every peer's bag in unitdata and reads them all only in hooks of other "
        "kinds, such as update-status). Cells: before / after. Calls per hook are hook-tool "
        "calls (`juju-log` not counted: the model's shell fast path records none); on "
        "Juju each is a process start plus a round trip to the agent.",
        "",
        markdown_table(
            ["N", "hooks", "failed hooks",
             "non-leader peer hook: calls", "non-leader peer hook: relation-get",
             "leader peer hook: calls", "leader peer hook: relation-get",
             "any hook: calls", "any hook: relation-get",
             "tool calls (deploy)", "relation-get (deploy)",
             "most relation-get in a non-leader peer hook", "wall"],
            rows),
        "",
        f"### Tool calls per hook by kind, N = {n}" if n is not None else "",
        "",
        markdown_table(["hooks", "count", "calls per hook", "by kind, per hook"],
                       kind_rows),
        "",
        *environment_lines(),
        "- load average (1 min) at the end of each run: " + ", ".join(
            f"{r['variant']} N={r['n']}: {r['load']:.1f}" for r in results),
    ])


def rerender() -> str:
    """The markdown again from results/peers.json (no model run)."""
    from benchlib import read_data

    return render(Config(), (read_data("peers") or {}).get("runs", []))


def run_section(config: Optional[Config] = None, save: bool = True) -> str:
    config = config or Config()
    results = measure(config)
    if save:
        write_data("peers", {"runs": results})
    return render(config, results)
