"""`make bench`: run the benchmark sections, print their tables, write bench/results/.

    .venv/bin/python bench/run.py [--quick] [--skip SECTION] [--model-max-n N] [SECTION ...]

Sections: pki (this library vs the openssl CLI and easy-rsa), leader (one leader hook
signing 1,000 pending CSRs, in-process fake hook tools), hooks (quiet hooks of a charm with
and without layer:tls in the simulated model), model (hooks to settle N = 1, 3, 10, 30
units, tool calls per hook, bytes published; N = 100 with `--model-max-n 100`; the slow one:
`--skip model` or BENCH_SKIP=model leaves it out), peers (what the peer relation hooks
of tls-demo read, N = 3, 10, 30, with the interface before and after it read only the
hook's remote unit), sim (the simulator's hook-tool call and a
10-unit tls-demo deploy against the previous simulator, exec'd and fast-started, and a
30-unit deploy fast-started).

Each section is a function returning markdown; its result goes to
bench/results/<section>.md and all present results are gathered in bench/results/README.md.
To add a section (hook timings, model runs, ...): write bench/<name>_bench.py with a
``run_section(quick: bool) -> str`` style function and register it in SECTIONS below.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import write_index, write_result  # noqa: E402


def _pki(quick: bool) -> str:
    import pki_bench
    return pki_bench.run_section(pki_bench.Config.quick() if quick else pki_bench.Config())


def _leader(quick: bool) -> str:
    import leader_bench
    return leader_bench.run_section(leader_bench.Config.quick() if quick
                                    else leader_bench.Config())


def _hooks(quick: bool) -> str:
    import hooks_bench
    return hooks_bench.run_section(hooks_bench.Config.quick() if quick
                                   else hooks_bench.Config())


def _model(quick: bool) -> str:
    import model_bench
    max_n = os.environ.get("BENCH_MODEL_MAX_N")
    only = os.environ.get("BENCH_MODEL_ONLY_N")
    return model_bench.run_section(model_bench.Config.quick() if quick
                                   else model_bench.Config(),
                                   max_n=int(max_n) if max_n else None,
                                   only_n=[int(n) for n in only.split(",")] if only else (),
                                   save=not quick)


def _peers(quick: bool) -> str:
    import peers_bench
    return peers_bench.run_section(peers_bench.Config.quick() if quick
                                   else peers_bench.Config(), save=not quick)


def _sim(quick: bool) -> str:
    import sim_bench
    config = sim_bench.Config.quick() if quick else sim_bench.Config()
    return sim_bench.run_section(config._replace(
        tools_only=os.environ.get("BENCH_SIM_TOOLS_ONLY") == "1"))


# name -> function(quick) returning the section's markdown; run in this order.
SECTIONS: Dict[str, Callable[[bool], str]] = {
    "pki": _pki,
    "leader": _leader,
    "hooks": _hooks,
    "model": _model,
    "peers": _peers,
    "sim": _sim,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help="sections to run, of: " + ", ".join(SECTIONS) + " (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer units and one repetition: a smoke run, not a result")
    parser.add_argument("--skip", action="append", default=[], metavar="SECTION",
                        help="leave a section out (repeatable; also BENCH_SKIP=a,b), e.g. "
                             "--skip model: the simulated model runs take the longest")
    parser.add_argument("--model-max-n", type=int, metavar="N",
                        help="model section: only deploys of at most N units (default "
                             "30; 100 adds the N = 100 deploys; also BENCH_MODEL_MAX_N)")
    parser.add_argument("--model-only-n", metavar="N[,N]",
                        help="model section: run only these N, keep the other N of the "
                             "same charm builds from results/model.json (BENCH_MODEL_ONLY_N)")
    parser.add_argument("--sim-tools-only", action="store_true",
                        help="sim section: time the hook-tool calls again and keep the "
                             "deploys of results/sim.json (BENCH_SIM_TOOLS_ONLY=1)")
    args = parser.parse_args(argv)
    if args.sim_tools_only:
        os.environ["BENCH_SIM_TOOLS_ONLY"] = "1"
    if args.quick:
        import benchlib
        benchlib.SMOKE_RUN = True
    if args.model_only_n:
        os.environ["BENCH_MODEL_ONLY_N"] = args.model_only_n
    if args.model_max_n is not None:
        os.environ["BENCH_MODEL_MAX_N"] = str(args.model_max_n)
    skip = set(args.skip) | {s for s in os.environ.get("BENCH_SKIP", "").split(",") if s}
    unknown = [s for s in list(args.sections) + sorted(skip) if s not in SECTIONS]
    if unknown:
        parser.error("unknown section(s): " + ", ".join(unknown))
    for name in [s for s in args.sections or list(SECTIONS) if s not in skip]:
        start = time.perf_counter()
        markdown = SECTIONS[name](args.quick)
        print(markdown)
        if not args.quick:
            path = write_result(name, markdown)
            print(f"\n[{name}: {time.perf_counter() - start:.0f} s, written to "
                  f"{os.path.relpath(path)}]\n", file=sys.stderr)
    if not args.quick:
        write_index(list(SECTIONS))
        import plots
        path = plots.draw()
        if path:
            print(f"[plot written to {os.path.relpath(path)}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
