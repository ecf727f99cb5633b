"""Hook-process probe of the "hooks" bench section (bench/hooks_bench.py), put first on a
simulated hook's PYTHONPATH: chains to the simulator's own sitecustomize, then measures the
time the process spends waiting for child processes (hook tools) and, at exit, appends one
JSON line to $BENCH_PROBE_OUT: tool processes, seconds in them, seconds since this module
loaded, and whether ``cryptography`` was imported."""
import atexit
import importlib.util
import json
import os
import subprocess
import sys
import time

_T0 = time.perf_counter()
_NEXT = os.environ.get("BENCH_NEXT_SITECUSTOMIZE")
if _NEXT:
    _spec = importlib.util.spec_from_file_location("_sim_sitecustomize", _NEXT)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)

_STATS = {"tool_calls": 0, "tool_seconds": 0.0}
_init, _wait = subprocess.Popen.__init__, subprocess.Popen.wait


def _probe_init(self, *args, **kwargs):
    self._bench_t0 = time.perf_counter()
    _init(self, *args, **kwargs)


def _probe_wait(self, *args, **kwargs):
    result = _wait(self, *args, **kwargs)
    started = self.__dict__.pop("_bench_t0", None)
    if started is not None:
        _STATS["tool_calls"] += 1
        _STATS["tool_seconds"] += time.perf_counter() - started
    return result


subprocess.Popen.__init__ = _probe_init
subprocess.Popen.wait = _probe_wait


@atexit.register
def _report():
    out = os.environ.get("BENCH_PROBE_OUT")
    if not out:
        return
    line = dict(_STATS, seconds=time.perf_counter() - _T0,
                cryptography="cryptography" in sys.modules,
                tls_modules=sorted(m for m in sys.modules if m.startswith("charms.layer.tls")))
    with open(out, "a") as handle:
        handle.write(json.dumps(line) + "\n")
