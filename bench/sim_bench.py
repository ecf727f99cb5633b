"""`make bench` section "sim": the model simulator with the hook tools served from memory
(tests/jujurules: thin clients over a socket) against the simulator it replaced (commit
316d07b: one Python process per tool call, the JSON state loaded and saved under a lock), in
the same run on the same machine.

- a hook-tool call: wall time of one call as a hook makes it (process start to exit), the
  median over ``calls`` calls of three read tools, on the tiny shell-script charm of
  tests/test_model_sim.py;
- a tls-demo deploy of N units: wall time from deploy to settled, same seed, so both run the
  same schedule (same hooks, same order: the fingerprint column shows it); the new simulator
  twice, its hooks exec'd (the default) and forked from its zygote (``fast_start=True``,
  tests/model/zygote.py);
- a tls-demo deploy of 30 units with the fast start only (the old simulator stays at N <= 10:
  it would take hours). Issue 13's targets: 10 units at least 3x faster than the old
  simulator, 30 units settled within 10 minutes.

Each simulator runs in its own child process (``python bench/sim_bench.py child ...``) with
its own ``tests/`` on sys.path; the old one comes from ``git archive 316d07b tests/``.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from benchlib import ROOT, environment_lines, markdown_table, read_data, write_data

OLD_COMMIT = "316d07b"
SPAWN = "/bin/true"
TOOLS = (("relation-get", "-r", "0", "--format=json", "-", "fake/0"),
         ("is-leader", "--format=json"), ("config-get", "--format=json"))


class Config(NamedTuple):
    calls: int = 100          # per tool, per simulator
    ns: Tuple[int, ...] = (10,)           # old, new (exec) and new (fast start)
    fast_ns: Tuple[int, ...] = (30,)      # new (fast start) only
    seed: int = 1
    tools_only: bool = False  # time the tool calls again, keep the deploys of sim.json

    @classmethod
    def quick(cls) -> Config:
        return cls(calls=20, ns=(2,), fast_ns=(3,))


def _old_tests(tmp: str) -> str:
    """``tests/`` of the old simulator, extracted from git into ``tmp``."""
    archive = os.path.join(tmp, "old.tar")
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", ROOT, "archive", OLD_COMMIT, "tests/"], stdout=f,
                       check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(os.path.join(tmp, "old"))  # noqa: S202 - our own repository
    return os.path.join(tmp, "old", "tests")


def _child(tests: str, mode: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "child", tests, mode,
                          *args], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"bench child {mode} ({tests}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(tests: str, mode: str, *args: str) -> dict:
    """In the child: the simulator under ``tests`` on sys.path."""
    sys.path[:0] = [tests, os.path.join(tests, "shim"),
                    os.path.join(ROOT, "layer-tls", "lib"),
                    os.path.join(tests, "layers", "basic", "lib")]
    from model import Model

    work = tempfile.mkdtemp(prefix="bench-sim-")
    atexit.register(shutil.rmtree, work, True)  # 30 units leave 30 charm copies otherwise
    if mode == "tools":
        from test_model_sim import make_charm

        calls = int(args[0])
        m = Model(make_charm(Path(work) / "charm"), Path(work), seed=0, first_leader="first")
        m.deploy(2)
        m.settle()
        times = []
        spawn = []
        with m.hook_context("fake/0", relation="ring") as tool:
            for argv in TOOLS:
                for _ in range(calls):
                    t = time.perf_counter()
                    r = tool(*argv)
                    times.append(time.perf_counter() - t)
                    assert r.returncode == 0, r.stderr
            for _ in range(calls):  # the floor: starting a process that does nothing
                t = time.perf_counter()
                tool(SPAWN)
                spawn.append(time.perf_counter() - t)
        return {"median_ms": statistics.median(times) * 1000, "calls": len(times),
                "spawn_median_ms": statistics.median(spawn) * 1000,
                "load": os.getloadavg()}
    charm, venv, n, seed, port, fast = args
    extra = {"fast_start": True} if fast == "1" else {}  # the old Model has no such option
    m = Model(Path(charm), Path(work), seed=int(seed), venv=venv,
              config={"echo_port": int(port)}, **extra)
    start = time.monotonic()
    m.deploy(int(n))
    stats = m.settle(max_hooks=50000)
    seconds = time.monotonic() - start
    for unit in m.units.values():  # stop the echo services (they outlive hooks)
        try:
            os.kill(int((unit.charm_dir / "echo.pid").read_text()), 15)
        except (OSError, ValueError):
            pass
    order = hashlib.sha256("\n".join(stats.order).encode()).hexdigest()[:12]
    result = {"seconds": seconds, "hooks": stats.hooks, "order": order,
              "tool_calls": sum(len(r.calls) for r in m.history),
              "hook_median_s": statistics.median(r.duration for r in m.history),
              "failed_hooks": sum(1 for r in m.history if not r.ok)}
    zygote = getattr(m, "zygote", None)
    if zygote is not None:
        result.update(served=zygote.served, fallbacks=zygote.fallbacks)
    if hasattr(m, "close"):
        m.close()
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_section(cfg: Config) -> str:
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from model import build_charm, ensure_charm_venv

    charm_layer = Path(ROOT) / "examples" / "tls-demo"

    charm = build_charm(charm_layer)
    venv = ensure_charm_venv(charm)
    new_tests = os.path.join(ROOT, "tests")
    data = {"tools": {}, "deploys": [], "load": {}}
    if cfg.tools_only:
        data = dict(read_data("sim") or data, tools={}, tools_apart=True)
    else:
        data["tools_apart"] = False
    data["load"]["start"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        sims = (("old", _old_tests(tmp), "0"), ("new", new_tests, "0"),
                ("fast", new_tests, "1"))
        for label, tests, _ in sims[:2]:
            data["tools"][label] = _child(tests, "tools", str(cfg.calls))
        jobs = [] if cfg.tools_only else (
            [(n, sims) for n in cfg.ns] + [(n, sims[2:]) for n in cfg.fast_ns])
        for n, which in jobs:
            row = {"n": n, "seed": cfg.seed}
            for label, tests, fast in which:
                row[label] = _child(tests, "deploy", str(charm), str(venv), str(n),
                                    str(cfg.seed), str(_free_port()), fast)
                row[label]["load"] = os.getloadavg()
                print(f"sim: {label} N={n}: {row[label]['hooks']} hooks in "
                      f"{row[label]['seconds']:.0f} s", file=sys.stderr)
            data["deploys"].append(row)
            write_data("sim", data)  # partial results survive an interrupted run
    data["load"]["end"] = os.getloadavg()
    write_data("sim", data)
    return render(data, cfg)


def _ms(value: Optional[float]) -> str:
    return "not measured" if value is None else f"{value:.1f} ms"


def _ratio(a: dict, b: dict) -> str:
    return f"{a['seconds'] / b['seconds']:.1f}x" if a and b else "-"


def _secs(d: dict) -> str:
    return f"{d['seconds']:.1f} s" if d else "not run"


def render(data: dict, cfg: Config) -> str:
    old, new = data["tools"]["old"], data["tools"]["new"]
    deploys = data["deploys"]
    lines: List[str] = [
        "## Simulator: hook tools served from memory, and hooks forked from a zygote",
        "",
        "Both simulators in the same run, on the same machine: the old one (commit "
        f"{OLD_COMMIT}: a Python process per tool call, the JSON state loaded and saved under "
        "a lock) and the new one (tests/jujurules: the state in memory, the tools thin "
        "clients over a socket), the new one twice: every hook exec'd (the default) and every "
        "hook forked from the model's zygote (`Model(fast_start=True)`, tests/model/zygote.py: "
        "the venv's modules imported once, each hook still a fresh process). A tool call is "
        "timed as a hook makes it (process start to exit); a deploy from `deploy(N)` to "
        "settled, with the same seed: the same hooks in the same order (the fingerprint is "
        "a hash of the order). One run of each deploy (they take minutes): the load average "
        "at its end is given, the machine being shared.",
        "",
        markdown_table(
            ["measure", f"old ({OLD_COMMIT})", "new: exec", "new: fast start",
             "old / exec", "old / fast start"],
            [["hook-tool call, median", f"{old['median_ms']:.1f} ms",
              f"{new['median_ms']:.1f} ms", "(same tools)",
              f"{old['median_ms'] / new['median_ms']:.1f}x", "-"]]
            + [[f"a process that does nothing ({SPAWN}), median, the floor of any call",
                _ms(old.get("spawn_median_ms")), _ms(new.get("spawn_median_ms")), "-",
                "-", "-"]]
            + [[f"tls-demo deploy of {d['n']} units, settled (seed {d['seed']})",
                _secs(d.get("old")), _secs(d.get("new")), _secs(d.get("fast")),
                _ratio(d.get("old"), d.get("new")), _ratio(d.get("old"), d.get("fast"))]
               for d in deploys]),
        "",
        markdown_table(
            ["N", "simulator", "hooks", "tool calls", "median hook", "failed hooks",
             "hooks forked / exec'd", "schedule fingerprint", "load average at its end"],
            [[d["n"], label, d[label]["hooks"], d[label]["tool_calls"],
              f"{d[label]['hook_median_s'] * 1000:.0f} ms"
              if "hook_median_s" in d[label] else "-",
              d[label].get("failed_hooks", "-"),
              f"{d[label]['served']} / {d[label]['fallbacks']}"
              if "served" in d[label] else "-",
              d[label]["order"],
              " ".join(f"{x:.1f}" for x in d[label].get("load", ()))]
             for d in deploys for label in ("old", "new", "fast") if label in d]),
        "",
        f"- tool calls timed: {new['calls']} per simulator "
        f"({', '.join(t[0] for t in TOOLS)}; {cfg.calls} each), then {cfg.calls} starts of "
        f"`{SPAWN}` the same way; load average (1 min) at the end of each: "
        + ", ".join(f"{label} {data['tools'][label]['load'][0]:.1f}"
                    for label in ("old", "new") if "load" in data["tools"][label]),
    ]
    if data.get("tools_apart"):
        lines.append("- the tool calls were timed again on their own (`bench/run.py sim "
                     "--sim-tools-only`); the deploy rows are from the section's last full "
                     "run")
    if data.get("load"):
        lines.append("- load average (1, 5, 15 min) at the section's start: "
                     + " ".join(f"{x:.1f}" for x in data["load"].get("start", ())))
    lines += environment_lines()
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        print(json.dumps(child(*sys.argv[2:])))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        print(run_section(Config.quick() if "--quick" in sys.argv else Config()))
