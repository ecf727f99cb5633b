"""`make bench` section "hooks": what a hook in which layer:tls has nothing to do costs,
against the same hook of the same model running a charm without layer:tls.

Both charms (tests/layers/baseline/plain and tests/layers/baseline/tls-only) are built with
tests/model/build.py and deployed to 3 simulated units (seed 1) until settled; then quiet
hooks run again and again on the leader and on a non-leader, the two charms' in turn (so
both see the same load of the shared machine). Every hook is a real process of the built
charm. A probe (bench/hookprobe/sitecustomize.py, first on the hook's PYTHONPATH) measures
the time the hook spends waiting for hook-tool processes, so the table separates the
in-process time (interpreter start, imports, charms.reactive, the layers' handlers) from
the tool calls, and marks charms.reactive's phases, so a second table says where the
in-process time goes: interpreter start, the simulator's sitecustomize, the hook's
imports, ``bus.discover()``, the atstart callbacks (layer:basic's config flags, the
Endpoints' start-up), the dispatch (flag tests and handlers), the atexit callbacks,
unitdata's flush and the interpreter's teardown.

By hand, the probe also times named functions (``BENCH_TIME="module:Qual.name;..."``, the
medians in the probe's JSON lines under "timed") or writes a cProfile of charms.reactive's
``main()`` (``BENCH_PROFILE=/path/to/file``); ``make bench`` sets neither.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

from benchlib import HERE, ROOT, environment_lines, loadavg, markdown_table, write_data

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
            for name in ("BENCH_PROFILE", "BENCH_TIME"):  # by hand: see the probe
                if os.environ.get(name):
                    env[name] = os.environ[name]
            if self.importtime:
                env["PYTHONPROFILEIMPORTTIME"] = "1"
            return env

        def _exec(self, u, path, env, inject):
            """Note when the hook process was started and when it ended (time.monotonic(),
            the clock of the probe's perf_counter marks)."""
            self.spawned = time.monotonic()
            got = super()._exec(u, path, env, inject)
            self.ended = time.monotonic()
            return got

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


# Where a hook's in-process time goes: (label, first mark, last mark, what it is). The
# marks are the probe's (bench/hookprobe/sitecustomize.py); "spawn" and "end" are the
# bench's own, when it started the hook process and when the process had ended.
PHASES = (
    ("interpreter start", "spawn", "probe",
     "fork/exec of the hook, Python start-up, `site` and the venv's .pth files"),
    ("simulator's sitecustomize", "probe", "site-end",
     "the model's host shim (tests/model/hostshim): it imports charmhelpers.core.hookenv "
     "(distutils, setuptools, yaml), which a hook on Juju imports in the next row"),
    ("hook script imports", "site-end", "main",
     "the hook file: charms.layer.basic, charms.reactive"),
    ("bus.discover()", "discover", "discover-end",
     "charms.reactive imports every reactive/ and hooks/relations/ module (with what they "
     "import: charms.layer.tls) and registers their handlers"),
    ("atstart", "atstart", "atstart-end",
     "layer:basic's config flags (3 per config option), the Endpoints' start-up (each "
     "interface's flag management)"),
    ("dispatch", "dispatch", "dispatch-end",
     "handler tests (flags read from unitdata), the handlers run, charms.reactive's "
     "tracer"),
    ("atexit", "atexit", "atexit-end",
     "end-of-hook callbacks: layer:tls's transfer and status, layer:basic's config flags"),
    ("unitdata flush", "flush", "flush-end", "the sqlite commit of unitdata"),
    ("interpreter teardown", "exit", "end",
     "after the last atexit callback: module and object deallocation, process exit"),
)


def _phases(probe: Dict, spawned: float, ended: float) -> Dict[str, float]:
    """Seconds of in-process time per phase (tool waits taken out), from the probe's
    marks; "other" is what no phase covers (between them, a few ms at most)."""
    marks: Dict[str, List] = {"spawn": ["spawn", spawned, 0.0, 0, 0.0],
                              "end": ["end", ended, probe["tool_seconds"], 0, 0.0]}
    for mark in probe.get("marks", []):
        if mark[0] in ("flush", "flush-end") and mark[0] in marks:
            continue  # the first flush after atexit is main()'s own
        if mark[0] == "flush" and "atexit-end" not in marks:
            continue  # a flush before the end of main() is not main()'s
        if mark[0] == "flush-end" and "flush" not in marks:
            continue
        marks[mark[0]] = mark
    out: Dict[str, float] = {}
    for label, first, last, _ in PHASES:
        if first in marks and last in marks:
            a, b = marks[first], marks[last]
            out[label] = (b[1] - a[1]) - (b[2] - a[2])
    inproc = (ended - spawned) - probe["tool_seconds"]
    out["other"] = inproc - sum(out.values())
    out["sql statements"] = probe.get("sql", {}).get("statements", 0)
    out["sql seconds"] = probe.get("sql", {}).get("seconds", 0.0)
    return out


def _deploy(name: str, layer: Path, config: Config, work: str):
    _tests_on_path()
    from model import build_charm

    model = _model_class()(build_charm(layer), Path(work) / name, seed=1)
    model.probe_out = os.path.join(work, name + ".probe")
    model.deploy(config.units)
    return model, model.settle().hooks


def _sample(model, role: str, hook_name: str) -> Dict:
    unit, hook = _hook(model, role, hook_name)
    run = model._run(model.unit(unit), (hook, _no_agenda_entry))
    assert run.ok, run.stderr[-2000:]
    probe = _last_probe(model.probe_out)
    queued = model.pending()
    if queued:
        model.settle()
    return {"wall": run.duration, "tools": probe["tool_seconds"],
            "tool_calls": probe["tool_calls"], "inproc": run.duration - probe["tool_seconds"],
            "crypto": probe["cryptography"], "queued": bool(queued),
            "phases": _phases(probe, model.spawned, model.ended),
            "handlers": probe.get("handlers", {}),
            "calls": [c[0] if isinstance(c, list) else str(c).split()[0] for c in run.calls]}


def _summary(samples: List[Dict]) -> Dict:
    phases = sorted({k for s in samples for k in s["phases"]})
    return {"wall": statistics.median(s["wall"] for s in samples),
            "tools": statistics.median(s["tools"] for s in samples),
            "inproc": statistics.median(s["inproc"] for s in samples),
            "tool_calls": statistics.median(s["tool_calls"] for s in samples),
            "crypto": any(s["crypto"] for s in samples),
            "queued": sum(s["queued"] for s in samples),
            "phases": {k: statistics.median(s["phases"].get(k, 0.0) for s in samples)
                       for k in phases},
            "calls": samples[-1]["calls"]}


def _handler_costs(samples: List[Dict]) -> Dict[str, List[float]]:
    """Per handler over the samples: median tests, test ms, runs, in-process run ms."""
    names = sorted({h for s in samples for h in s["handlers"]})
    out = {}
    for name in names:
        rows = [s["handlers"].get(name, [0, 0.0, 0, 0.0, 0.0]) for s in samples]
        out[name] = [statistics.median(r[0] for r in rows),
                     statistics.median(r[1] for r in rows) * 1000,
                     statistics.median(r[2] for r in rows),
                     statistics.median(r[3] - r[4] for r in rows) * 1000]
    return out


def measure(config: Config, work: str) -> Dict[str, Dict]:
    """Deploy both charms, then run each quiet hook on both in turn (baseline, tls-only,
    baseline, ...), so the two see the same load of the shared machine."""
    models, out = {}, {}
    for name, layer in CHARMS:
        print(f"hooks: {name}: deploy {config.units} units ...", file=sys.stderr)
        models[name], settled = _deploy(name, layer, config, work)
        out[name] = {"settle_hooks": settled, "hooks": {}}
    print(f"hooks: {config.repeats} x {len(QUIET)} quiet hooks on each charm, in turn ...",
          file=sys.stderr)
    every: Dict[str, List[Dict]] = {name: [] for name in models}
    for role, hook_name in QUIET:
        samples: Dict[str, List[Dict]] = {name: [] for name in models}
        for _ in range(config.repeats):
            for name, model in models.items():
                samples[name].append(_sample(model, role, hook_name))
        for name in models:
            out[name]["hooks"][f"{role} {hook_name}"] = _summary(samples[name])
            every[name] += samples[name]
    for name, model in models.items():
        out[name]["all quiet hooks"] = _summary(every[name])
        out[name]["handlers"] = _handler_costs(every[name])
        model.importtime = True
        unit, hook = _hook(model, "non-leader", "update-status")
        run = model._run(model.unit(unit), (hook, _no_agenda_entry))
        out[name]["importtime"] = _importtime(run.stderr)
    return out


def _calls_summary(calls: List[str]) -> str:
    counts: Dict[str, int] = {}
    for c in calls:
        name = os.path.basename(c)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def run_section(config: Optional[Config] = None) -> str:
    config = config or Config()
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as work:
        data = measure(config, work)
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
    b_all, t_all = data["baseline"]["all quiet hooks"], data["tls-only"]["all quiet hooks"]
    phase_rows = []
    for label, *_, what in PHASES + (("other", "", "", "between the phases above"),):
        b_ms, t_ms = b_all["phases"].get(label, 0) * 1000, t_all["phases"].get(label, 0) * 1000
        phase_rows.append([label, f"{b_ms:.1f} ms", f"{t_ms:.1f} ms", f"{t_ms - b_ms:+.1f} ms",
                           what])
    b_sum = sum(v for k, v in b_all["phases"].items() if not k.startswith("sql")) * 1000
    t_sum = sum(v for k, v in t_all["phases"].items() if not k.startswith("sql")) * 1000
    phase_rows.append(["**sum of the medians**", f"{b_sum:.1f} ms", f"{t_sum:.1f} ms",
                       f"**{t_sum - b_sum:+.1f} ms**", "(the median of the in-process time: "
                       f"{b_all['inproc'] * 1000:.0f} / {t_all['inproc'] * 1000:.0f} ms)"])
    phase_rows.append(["unitdata SQL statements (time in sqlite)",
                       f"{b_all['phases'].get('sql statements', 0):.0f} "
                       f"({b_all['phases'].get('sql seconds', 0) * 1000:.1f} ms)",
                       f"{t_all['phases'].get('sql statements', 0):.0f} "
                       f"({t_all['phases'].get('sql seconds', 0) * 1000:.1f} ms)",
                       "", "part of the rows above (charms.reactive reads every flag from "
                       "unitdata for each flag test, set and clear)"])
    handler_rows = [[f"`{h}`", f"{v[0]:.0f}", f"{v[1]:.2f} ms", f"{v[2]:.0f}",
                     f"{v[3]:.2f} ms"]
                    for h, v in sorted(data["tls-only"]["handlers"].items(),
                                       key=lambda kv: -(kv[1][1] + kv[1][3]))]
    per_tool = t_all["tools"] / t_all["tool_calls"] * 1000 if t_all["tool_calls"] else 0.0
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
        f"program of the simulator ({per_tool:.1f} ms each here, median), in real Juju a Go "
        "binary talking to the unit agent (a few ms). The two charms' hooks run in turn "
        "(baseline, tls, baseline, ...), so both see the same load of the shared machine. "
        f"Target: in-process extra <= {TARGET_MS} ms. Load average before the run: "
        f"{load_before}.",
        "",
        markdown_table(
            ["hook", "in-process: baseline", "in-process: tls", "extra (tls - baseline)",
             "tool calls: baseline / tls", "tls: the tools it called",
             "wall incl. simulator tools: baseline / tls", "tls imported cryptography",
             "tls: hooks it queued"],
            rows),
        "",
        "### Where the in-process time goes (all quiet hooks above, medians)",
        "",
        "Marks set in the hook process by the probe around charms.reactive's phases "
        "(bench/hookprobe/sitecustomize.py); the tool waits inside a phase are taken out. "
        "Interpreter start and teardown are measured from the bench's own clock (the same "
        "CLOCK_MONOTONIC): when it started the process and when the process had ended.",
        "",
        markdown_table(["phase", "baseline", "tls", "extra (tls - baseline)", "what it is"],
                       phase_rows),
        "",
        "layer:tls's handlers in these hooks (medians per hook; in-process, tool waits out):",
        "",
        markdown_table(["handler", "tests", "time in tests", "runs", "time in its runs"],
                       handler_rows),
        "",
        "### `python -X importtime` of a non-leader update-status",
        "",
        markdown_table(["charm", "imports (cumulative, top level)", "cryptography imported",
                        "charms.layer.tls modules imported", "top 5 imports"], imp_rows),
        "",
        *environment_lines(),
    ])
