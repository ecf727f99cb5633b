"""`make bench` section "model": hooks to settle a deploy of N units in the simulated model
(tests/model), for the charm without layer:tls and for the same charm with layer:tls, and
the bytes each unit and the application publish once settled.

A peer relation alone costs N*(N-1) joined + N*(N-1) changed hooks for any charm; what
layer:tls adds must grow at most linearly in N. The simulator runs one hook at a time and
draws the next unit with ``random.Random(seed)``; pending relation-changed events coalesce
as in Juju, so the counts depend on the seed (the schedule), not on the machine's speed.

The hooks are forked from the model's zygote (``Model(fast_start=True)``,
tests/model/zygote.py; tests/test_model_sim_fast_start.py checks that it gives the same
hooks as an exec): N = 30 takes minutes instead of an hour.
N = 1, 3, 10, 30 by default; N = 100 on request (``BENCH_MODEL_MAX_N=100 make bench``).

Charms (built with tests/model/build.py, cached under build/charms/):
- ``baseline`` (tests/layers/baseline/plain): layer:basic + a `certificates` peer relation
  with no interface layer;
- ``tls-only`` (tests/layers/baseline/tls-only): layer:basic + layer:tls, nothing else.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from benchlib import (
    ROOT,
    environment_lines,
    fmt_seconds,
    markdown_table,
    read_data,
    write_data,
    write_result,
)

BASELINE_LAYER = Path(ROOT) / "tests" / "layers" / "baseline" / "plain"
TLS_LAYER = Path(ROOT) / "tests" / "layers" / "baseline" / "tls-only"
CHARMS = (("baseline", BASELINE_LAYER), ("tls-only", TLS_LAYER))


class Config(NamedTuple):
    ns: Tuple[int, ...] = (1, 3, 10, 30, 100)
    max_n: int = 30                        # N = 100 only on request (--model-max-n 100)
    seeds: Tuple[int, ...] = (1, 2, 3)    # schedules for the small deploys
    big_n: int = 30                        # from this N on, only the first seed
    workers: int = 2                       # models run side by side (threads: hooks are
                                           # processes; hook counts do not depend on speed)
    fast_start: bool = True                # hooks forked from the model's zygote

    @classmethod
    def quick(cls) -> Config:
        return cls(ns=(1, 3), seeds=(1,))


def _tests_on_path() -> None:
    tests = os.path.join(ROOT, "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def _bag_bytes(bag: Dict[str, str]) -> int:
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in bag.items())


def run_model(charm_dir: str, n: int, seed: int, fast_start: bool = True) -> dict:
    """Deploy ``n`` units, settle; what it took and what is published."""
    _tests_on_path()
    from model import Model

    with tempfile.TemporaryDirectory(prefix=f"bench-model-{n}-{seed}-") as work:
        model = Model(Path(charm_dir), Path(work), seed=seed, fast_start=fast_start)
        start = time.monotonic()
        model.deploy(n)
        stats = model.settle(max_hooks=50000)
        seconds = time.monotonic() - start
        unit_bytes = {u: _bag_bytes(model.relation_data(u)) for u in model.unit_names}
        app = model.app_data()
        calls = sum(len(r.calls) for r in model.history)
        certificates = len(json.loads(app.get("certificates", "{}")))
        forked = model.zygote.served if model.zygote is not None else 0
        model.close()
        return {"forked": forked, "load": os.getloadavg(),
                "n": n, "seed": seed, "hooks": stats.hooks, "seconds": seconds,
                "per_hook": dict(stats.per_hook), "tool_calls": calls,
                "unit_bytes": unit_bytes, "app_bytes": _bag_bytes(app),
                "app_keys": {k: len(str(v).encode()) for k, v in app.items()},
                "certificates": certificates,
                "hook_seconds_median": statistics.median(r.duration for r in model.history)}


def _jobs(config: Config, max_n: Optional[int]) -> List[Tuple[str, int, int]]:
    jobs = []
    max_n = config.max_n if max_n is None else max_n
    for n in config.ns:
        if max_n is not None and n > max_n:
            continue
        for seed in (config.seeds[:1] if n >= config.big_n else config.seeds):
            for name, _ in CHARMS:
                jobs.append((name, n, seed))
    # smallest first (partial results are written as they come), tls first at equal N
    return sorted(jobs, key=lambda j: (j[1], j[0] != "tls-only", j[2]))


def _key(r: dict) -> Tuple[str, int, int]:
    return r["charm"], r["n"], r["seed"]


def measure(config: Config, max_n: Optional[int] = None, only_n: Sequence[int] = (),
            on_result=None) -> List[dict]:
    """Run the deploys; with ``only_n``, only those N, merged with the runs of the same
    charm builds already in results/model.json (so a long N can be run on its own)."""
    _tests_on_path()
    from model import build_charm

    charms = {name: str(build_charm(layer)) for name, layer in CHARMS}
    builds = {name: os.path.basename(os.path.dirname(os.path.dirname(path)))
              for name, path in charms.items()}
    results = []
    if only_n:
        old = (read_data("model") or {}).get("runs", [])
        results = [r for r in old if r.get("build") == builds.get(r.get("charm"))
                   and r["n"] not in only_n]
    jobs = [j for j in _jobs(config, max_n) if not only_n or j[1] in only_n]
    with concurrent.futures.ThreadPoolExecutor(config.workers) as pool:
        futures = {pool.submit(run_model, charms[name], n, seed, config.fast_start):
                   (name, n, seed)
                   for name, n, seed in jobs}
        for future in concurrent.futures.as_completed(futures):
            name, n, seed = futures[future]
            result = future.result()
            result["charm"] = name
            result["build"] = builds[name]
            print(f"model: {name} N={n} seed={seed}: {result['hooks']} hooks in "
                  f"{result['seconds']:.0f} s", file=sys.stderr)
            results = [r for r in results if _key(r) != _key(result)] + [result]
            results.sort(key=lambda r: (r["n"], r["seed"], r["charm"]))
            if on_result is not None:
                on_result(results)
    return results


def _by(results: Sequence[dict], charm: str, n: int) -> List[dict]:
    return [r for r in results if r["charm"] == charm and r["n"] == n]


def _extra_rows(results: Sequence[dict]) -> Tuple[List[List[str]], List[dict]]:
    rows, points = [], []
    for n in sorted({r["n"] for r in results}):
        for base in _by(results, "baseline", n):
            tls = [r for r in _by(results, "tls-only", n) if r["seed"] == base["seed"]]
            if not tls:
                continue
            t = tls[0]
            extra = t["hooks"] - base["hooks"]
            kinds = {k: t["per_hook"].get(k, 0) - base["per_hook"].get(k, 0)
                     for k in set(t["per_hook"]) | set(base["per_hook"])}
            kinds = {k: v for k, v in sorted(kinds.items()) if v}
            points.append({"n": n, "seed": base["seed"], "baseline": base["hooks"],
                           "tls": t["hooks"], "extra": extra})
            rows.append([
                str(n), str(base["seed"]), str(base["hooks"]), str(t["hooks"]), str(extra),
                f"{extra / n:.1f}",
                ", ".join(f"{k.replace('certificates-relation-', 'rel-')} {v:+d}"
                          for k, v in kinds.items()) or "-",
                f"{t['certificates']}/{n}",
                f"{base['tool_calls']} / {t['tool_calls']}",
                f"{base['tool_calls'] / base['hooks']:.1f} / {t['tool_calls'] / t['hooks']:.1f}",
                f"{fmt_seconds(base['seconds'])} / {fmt_seconds(t['seconds'])}"])
    return rows, points


def _bytes_rows(results: Sequence[dict]) -> List[List[str]]:
    rows = []
    for n in sorted({r["n"] for r in results}):
        for r in _by(results, "tls-only", n)[:1]:
            if n < 10:
                continue
            per_unit = sorted(r["unit_bytes"].values())
            leader = max(per_unit)
            others = per_unit[:-1] or [0]
            keys = ", ".join(f"`{k}` {v:,}" for k, v in sorted(r["app_keys"].items()))
            rows.append([str(n), f"{statistics.median(others):,.0f}", f"{leader:,}",
                         f"{r['app_bytes']:,} ({r['app_bytes'] / n:,.0f} per unit)", keys])
    return rows


def run_section(config: Optional[Config] = None, max_n: Optional[int] = None,
                only_n: Sequence[int] = (), save: bool = True) -> str:
    config = config or Config()

    def save_partial(results: List[dict]) -> None:
        if save:
            write_data("model", {"runs": results, "extra": _extra_rows(results)[1]})
            write_result("model", render(config, results, max_n))

    results = measure(config, max_n, only_n, save_partial)
    save_partial(results)
    return render(config, results, max_n)


def render(config: Config, results: List[dict], max_n: Optional[int]) -> str:
    rows, _ = _extra_rows(results)
    done = {r["n"] for r in results}
    skipped = [n for n in config.ns if n not in done]
    limit = config.max_n if max_n is None else max_n
    forked = [r for r in results if r.get("forked") == r["hooks"]]
    wall = ("every hook exec'd" if not forked else
            "every hook forked from the model's zygote (`fast_start`)"
            if len(forked) == len(results) else
            f"hooks forked from the model's zygote (`fast_start`) in {len(forked)} of "
            f"{len(results)} runs, exec'd in the others")
    return "\n".join([
        "## Model: hooks to settle a deploy of N units, with and without layer:tls",
        "",
        "Simulated model (tests/model: every hook a real process of the built charm, "
        "Juju's coalescing of pending relation-changed events). `baseline` = layer:basic + "
        "a `certificates` peer relation, no layer:tls (tests/layers/baseline/plain); `tls` "
        "= layer:basic + layer:tls (tests/layers/baseline/tls-only). Both deploy N units "
        "(the first is the leader) and run until no hook is queued. Counts depend on the "
        "seed (the schedule the simulator draws), never on the machine. Wall times: "
        f"{wall}; two models ran side by side on a shared machine (load below).",
        "",
        markdown_table(
            ["N", "seed", "hooks: baseline", "hooks: tls", "extra hooks", "extra / N",
             "extra by hook (rel- = certificates-relation-)", "certificates issued",
             "tool calls: baseline / tls", "tool calls per hook: baseline / tls",
             "wall (simulator): baseline / tls"],
            rows),
        "",
        "### Relation data published once settled (layer:tls charm)",
        "",
        "Bytes of keys + values. A unit publishes its CSR, its claimed names and Juju's "
        "addresses; the leader's unit bag mirrors certificates under the legacy "
        "`<unit>_signed_certificate` keys only for legacy peers (none here); the application "
        "bag holds the CA bundle, every certificate and the CSR digests.",
        "",
        markdown_table(["N", "non-leader unit bag (median)", "leader unit bag",
                        "application bag", "application keys"], _bytes_rows(results)),
        "",
        *environment_lines(),
        "- seeds: " + ", ".join(f"N={n}: {sorted({r['seed'] for r in results if r['n'] == n})}"
                                for n in sorted(done)),
        *(f"- not run: N={n} ("
          + (f"on request: BENCH_MODEL_MAX_N={n} make bench" if n > limit else "not finished")
          + ")" for n in skipped),
        "- load average at the end of each run: " + ", ".join(
            f"{r['charm']} N={r['n']} seed {r['seed']}: {r['load'][0]:.1f}"
            for r in results if r.get("load")),
    ])
