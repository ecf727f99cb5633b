"""Small shared pieces for `make bench` sections: timing, the environment line, tables."""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Callable, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
LIB = os.path.join(ROOT, "layer-tls", "lib")


def ensure_lib_path() -> None:
    """Make ``charms.layer.tls`` importable (the layer's lib directory)."""
    if LIB not in sys.path:
        sys.path.insert(0, LIB)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (wall clock, perf_counter)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(fn: Callable[[], Optional[float]], repeats: int) -> float:
    """Median over ``repeats`` runs. ``fn`` returns its own measure in seconds, or None to
    have its whole call timed."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        measured = fn()
        samples.append(measured if measured is not None else time.perf_counter() - start)
    return statistics.median(samples)


def run(cmd: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr if it fails."""
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): "
                           f"{result.stderr.strip()[-400:]}")
    return result


def fmt_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def fmt_ratio(other: Optional[float], ours: Optional[float]) -> str:
    if other is None or not ours:
        return "n/a"
    return f"{other / ours:.0f}x" if other / ours >= 10 else f"{other / ours:.1f}x"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def openssl_version() -> str:
    if not shutil.which("openssl"):
        return "openssl: not installed"
    return run(["openssl", "version"]).stdout.strip()


def environment_lines(extra: Sequence[str] = ()) -> List[str]:
    import cryptography
    return [f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}",
            f"- load average at the end: {_loadavg()} (a busy machine slows the CLI "
            "rows most: ratios say more than absolute times)",
            f"- Python {platform.python_version()}, cryptography {cryptography.__version__} "
            f"(OpenSSL {_cryptography_openssl()}), CLI {openssl_version()}",
            *extra]


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    return _loadavg()


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cryptography_openssl() -> str:
    from cryptography.hazmat.backends.openssl import backend
    return backend.openssl_version_text().replace("OpenSSL ", "")


def write_result(name: str, markdown: str) -> str:
    """Write results/<name>.md; return its path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".md")
    with open(path, "w") as f:
        f.write(markdown.rstrip() + "\n")
    return path


def write_index(order: Sequence[str]) -> str:
    """results/README.md: every section result present, known sections first (a run of one
    section keeps the others' last results)."""
    present = sorted(f[:-3] for f in os.listdir(RESULTS)
                     if f.endswith(".md") and f != "README.md")
    names = [n for n in order if n in present] + [n for n in present if n not in order]
    parts = ["# Benchmark results (`make bench`)", "",
             "Each section below is also in its own file in this directory; re-run one "
             "with `.venv/bin/python bench/run.py SECTION`.", ""]
    for name in names:
        with open(os.path.join(RESULTS, name + ".md")) as f:
            parts += [f.read().rstrip(), ""]
    path = os.path.join(RESULTS, "README.md")
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return path


# Set by bench/run.py --quick: a smoke run writes no raw figures (its tables are printed
# only), so results/*.json always match the published results/*.md.
SMOKE_RUN = False


def write_data(name: str, data: object) -> str:
    """results/<name>.json: a section's raw figures (the plot reads them); nothing in a
    smoke run (``SMOKE_RUN``)."""
    import json

    if SMOKE_RUN:
        return ""

    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".json")
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def read_data(name: str) -> Optional[object]:
    import json

    try:
        with open(os.path.join(RESULTS, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
