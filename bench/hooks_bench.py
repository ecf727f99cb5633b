"""`make bench` section "hooks": what a hook in which layer:tls has nothing to do costs,
against the same hook of the same model running a charm without layer:tls.

Both charms (tests/layers/baseline/plain and tests/layers/baseline/tls-only) are built with
tests/model/build.py and deployed to 3 simulated units (seed 1) until settled; then quiet
hooks run again and again on the leader and on a non-leader. Every hook is a real process
of the built charm. A probe (bench/hookprobe/sitecustomize.py, first on the hook's
PYTHONPATH) measures the time the hook spends waiting for hook-tool processes, so the
table separates the in-process time (interpreter start, imports, charms.reactive, the
layers' handlers) from the tool calls: the simulator's tools are Python scripts (tens of ms
each), real Juju's are a Go binary talking to the agent (a few ms each).
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

from benchlib import HERE, ROOT, environment_lines, markdown_table, write_data

PROBE = os.path.join(HERE, "hookprobe")
CHARMS = (("baseline", Path(ROOT) / "tests" / "layers" / "baseline" / "plain"),
          ("tls-only", Path(ROOT) / "tests" / "layers" / "baseline" / "tls-only"))
QUIET = (("leader", "update-status"), ("leader", "certificates-relation-changed"),
         ("non-leader", "update-status"), ("non-leader", "leader-settings-changed"),
         ("non-leader", "certificates-relation-changed"))
TARGET_MS = 20


class Config(NamedTuple):
    units: int = 3
    repeats: int = 15

    @classmethod
    def quick(cls) -> Config:
        return cls(repeats=2)


def _tests_on_path() -> None:
    tests = os.path.join(ROOT, "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def _model_class():
    _tests_on_path()
    from model import Model
    from model.sim import HOSTSHIM

    class ProbeModel(Model):
        """The simulated model with the probe on every hook's PYTHONPATH."""

        probe_out = ""
        importtime = False

        def __init__(self, *args, **kwargs):
            kwargs["fast_start"] = False  # import timings need exec'd hooks (a fresh process)
            super().__init__(*args, **kwargs)

        def _env(self, *args, **kwargs):
            env = super()._env(*args, **kwargs)
            env["PYTHONPATH"] = PROBE + os.pathsep + env.get("PYTHONPATH", "")
            env["BENCH_NEXT_SITECUSTOMIZE"] = str(Path(HOSTSHIM) / "sitecustomize.py")
            env["BENCH_PROBE_OUT"] = self.probe_out
            if self.importtime:
                env["PYTHONPROFILEIMPORTTIME"] = "1"
            return env

    return ProbeModel


def _no_agenda_entry() -> None:
    """The hooks run here are not on a unit's agenda: nothing to take off it."""


def _hook(model, role: str, hook_name: str):
    from model.sim import Hook

    leader = model.leader
    unit = leader if role == "leader" else next(u for u in model.unit_names if u != leader)
    other = next(u for u in model.unit_names if u != unit)
    if hook_name == "update-status":
        return unit, Hook("update-status")
    if hook_name == "leader-settings-changed":
        return unit, Hook("leader")  # the simulator names it by leadership
    return unit, Hook("relation-changed", model._rid("certificates"), remote=other)


def _last_probe(path: str) -> Dict:
    with open(path) as f:
        return json.loads(f.read().splitlines()[-1])


def _importtime(stderr: str) -> Dict:
    """From -X importtime lines: total, cryptography?, the layer's modules, the top 5."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    top = sorted((r for r in rows if r[1] == 1), reverse=True)[:5]
    return {"total_ms": sum(r[0] for r in rows if r[1] == 1) / 1000,
            "cryptography": any(r[2].startswith("cryptography") for r in rows),
            "tls_modules": sorted(r[2] for r in rows if r[2].startswith("charms.layer.tls")),
            "top": [(name, us / 1000) for us, _, name in top]}


def measure_charm(name: str, layer: Path, config: Config, work: str) -> Dict:
    _tests_on_path()
    from model import build_charm

    charm = build_charm(layer)
    model = _model_class()(charm, Path(work) / name, seed=1)
    model.probe_out = os.path.join(work, name + ".probe")
    model.deploy(config.units)
    settled = model.settle()
    out: Dict = {"settle_hooks": settled.hooks, "hooks": {}}
    for role, hook_name in QUIET:
        samples = []
        for _ in range(config.repeats):
            unit, hook = _hook(model, role, hook_name)
            run = model._run(model.unit(unit), (hook, _no_agenda_entry))
            assert run.ok, run.stderr[-2000:]
            probe = _last_probe(model.probe_out)
            queued = model.pending()
            if queued:
                model.settle()
            samples.append({"wall": run.duration, "tools": probe["tool_seconds"],
                            "tool_calls": probe["tool_calls"], "inproc":
                            run.duration - probe["tool_seconds"],
                            "crypto": probe["cryptography"], "queued": bool(queued),
                            "calls": [c[0] if isinstance(c, list) else str(c).split()[0]
                                      for c in run.calls]})
        out["hooks"][f"{role} {hook_name}"] = {
            "wall": statistics.median(s["wall"] for s in samples),
            "tools": statistics.median(s["tools"] for s in samples),
            "inproc": statistics.median(s["inproc"] for s in samples),
            "tool_calls": statistics.median(s["tool_calls"] for s in samples),
            "crypto": any(s["crypto"] for s in samples),
            "queued": sum(s["queued"] for s in samples),
            "calls": samples[-1]["calls"]}
    model.importtime = True
    unit, hook = _hook(model, "non-leader", "update-status")
    run = model._run(model.unit(unit), (hook, _no_agenda_entry))
    out["importtime"] = _importtime(run.stderr)
    return out


def _calls_summary(calls: List[str]) -> str:
    counts: Dict[str, int] = {}
    for c in calls:
        name = os.path.basename(c)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def run_section(config: Optional[Config] = None) -> str:
    config = config or Config()
    data: Dict[str, Dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as work:
        for name, layer in CHARMS:
            print(f"hooks: {name}: deploy {config.units} units, then {config.repeats} x "
                  f"{len(QUIET)} quiet hooks ...", file=sys.stderr)
            data[name] = measure_charm(name, layer, config, work)
    write_data("hooks", data)
    base, tls = data["baseline"]["hooks"], data["tls-only"]["hooks"]
    rows = []
    for role, hook_name in QUIET:
        key = f"{role} {hook_name}"
        b, t = base[key], tls[key]
        extra_ms = (t["inproc"] - b["inproc"]) * 1000
        rows.append([
            key, f"{b['inproc'] * 1000:.0f} ms", f"{t['inproc'] * 1000:.0f} ms",
            f"**{extra_ms:+.0f} ms**" + (" (met)" if extra_ms <= TARGET_MS else " (missed)"),
            f"{b['tool_calls']:.0f} / {t['tool_calls']:.0f}",
            _calls_summary(t["calls"]),
            f"{b['wall'] * 1000:.0f} / {t['wall'] * 1000:.0f} ms",
            "yes" if t["crypto"] else "no",
            f"{t['queued']}/{config.repeats}"])
    imp = {n: data[n]["importtime"] for n in data}
    imp_rows = [[n, f"{imp[n]['total_ms']:.0f} ms", "yes" if imp[n]["cryptography"] else "no",
                 ", ".join(f"`{m}`" for m in imp[n]["tls_modules"]) or "-",
                 ", ".join(f"{m} {ms:.0f} ms" for m, ms in imp[n]["top"])] for n in imp]
    return "\n".join([
        "## Quiet hooks: what layer:tls adds when it has nothing to do",
        "",
        f"Simulated model, {config.units} units settled (seed 1), then each quiet hook run "
        f"{config.repeats} times on the same unit; medians. `baseline` = layer:basic + a "
        "`certificates` peer relation, no layer:tls; `tls` = layer:basic + layer:tls. "
        "*In-process* = hook process wall time minus the time spent waiting for hook-tool "
        "processes (measured in the hook by bench/hookprobe): interpreter start, imports, "
        "charms.reactive and the handlers. Tool calls are counted apart: here each is a "
        "Python script (~20-40 ms), in real Juju a Go binary (a few ms). Target: in-process "
        f"extra <= {TARGET_MS} ms.",
        "",
        markdown_table(
            ["hook", "in-process: baseline", "in-process: tls", "extra (tls - baseline)",
             "tool calls: baseline / tls", "tls: the tools it called",
             "wall incl. simulator tools: baseline / tls", "tls imported cryptography",
             "tls: hooks it queued"],
            rows),
        "",
        "### `python -X importtime` of a non-leader update-status",
        "",
        markdown_table(["charm", "imports (cumulative, top level)", "cryptography imported",
                        "charms.layer.tls modules imported", "top 5 imports"], imp_rows),
        "",
        *environment_lines(),
    ])
