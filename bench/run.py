"""`make bench`: run the benchmark sections, print their tables, write bench/results/.

    .venv/bin/python bench/run.py [--quick] [SECTION ...]

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


# name -> function(quick) returning the section's markdown; run in this order.
SECTIONS: Dict[str, Callable[[bool], str]] = {
    "pki": _pki,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help="sections to run, of: " + ", ".join(SECTIONS) + " (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer units and one repetition: a smoke run, not a result")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error("unknown section(s): " + ", ".join(unknown))
    for name in args.sections or list(SECTIONS):
        start = time.perf_counter()
        markdown = SECTIONS[name](args.quick)
        print(markdown)
        if not args.quick:
            path = write_result(name, markdown)
            print(f"\n[{name}: {time.perf_counter() - start:.0f} s, written to "
                  f"{os.path.relpath(path)}]\n", file=sys.stderr)
    if not args.quick:
        write_index(list(SECTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
