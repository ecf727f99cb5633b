"""Hook-process probe of the "hooks" bench section (bench/hooks_bench.py), put first on a
simulated hook's PYTHONPATH: chains to the simulator's own sitecustomize, then measures the
time the process spends waiting for child processes (hook tools) and, at exit, appends one
JSON line to $BENCH_PROBE_OUT: tool processes, seconds in them, seconds since this module
loaded, and whether ``cryptography`` was imported.

It also marks where the hook's time goes (``marks``: name, time.perf_counter(), tool
seconds and unitdata SQL statements so far), by wrapping, once each module is imported,
charms.reactive's ``main``, ``bus.discover``, ``bus.dispatch``, ``Handler.test`` /
``Handler.invoke``, charmhelpers' ``hookenv._run_atstart`` / ``_run_atexit`` and
``unitdata.Storage.flush``; unitdata's cursor is timed and its statements counted.
perf_counter is CLOCK_MONOTONIC, the clock of the simulator's time.monotonic(), so the bench
(which notes the time it started the process in $BENCH_T_SPAWN and the time it ended)
can also tell interpreter start and teardown. The probe's own cost is a few perf_counter
calls per handler test and per SQL statement."""
import atexit
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time

_T0 = time.perf_counter()
_STATS = {"tool_calls": 0, "tool_seconds": 0.0}
_SQL = {"statements": 0, "seconds": 0.0}
_MARKS = [["probe", _T0, 0.0, 0, 0.0]]
_HANDLERS = {}  # handler id -> [tests, test seconds, invocations, invoke seconds, tool s]


def _mark(name):
    _MARKS.append([name, time.perf_counter(), _STATS["tool_seconds"], _SQL["statements"],
                   _SQL["seconds"]])


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


def _around(owner, attr, before, after):
    """Replace owner.attr by a function marking ``before`` and ``after`` around it."""
    real = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        _mark(before)
        try:
            return real(*args, **kwargs)
        finally:
            _mark(after)

    setattr(owner, attr, wrapper)


class _TimedCursor:
    """unitdata's sqlite cursor, its execute/fetch calls timed and its statements counted."""

    def __init__(self, cursor):
        self._cursor = cursor

    def _timed(self, name, *args):
        t = time.perf_counter()
        try:
            return getattr(self._cursor, name)(*args)
        finally:
            _SQL["seconds"] += time.perf_counter() - t

    def execute(self, *args):
        _SQL["statements"] += 1
        return self._timed("execute", *args)

    def executemany(self, *args):
        _SQL["statements"] += 1
        return self._timed("executemany", *args)

    def fetchone(self):
        return self._timed("fetchone")

    def fetchall(self):
        return self._timed("fetchall")

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def _patch_unitdata(mod):
    storage = mod.Storage
    init, flush = storage.__init__, storage.flush

    def _init_storage(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.cursor = _TimedCursor(self.cursor)

    def _flush(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return flush(self, *args, **kwargs)
        finally:
            _SQL["seconds"] += time.perf_counter() - t

    storage.__init__ = _init_storage
    storage.flush = _flush


def _patch_hookenv(mod):
    _around(mod, "_run_atstart", "atstart", "atstart-end")
    _around(mod, "_run_atexit", "atexit", "atexit-end")


def _patch_bus(mod):
    _around(mod, "discover", "discover", "discover-end")
    _around(mod, "dispatch", "dispatch", "dispatch-end")
    handler = mod.Handler
    test, invoke = handler.test, handler.invoke

    def _row(self):
        try:
            key = self.id()
        except Exception:  # noqa: BLE001  (a probe never breaks the hook)
            key = repr(self)
        return _HANDLERS.setdefault(key, [0, 0.0, 0, 0.0, 0.0])

    def _test(self):
        t = time.perf_counter()
        try:
            return test(self)
        finally:
            row = _row(self)
            row[0] += 1
            row[1] += time.perf_counter() - t

    def _invoke(self):
        t, tools = time.perf_counter(), _STATS["tool_seconds"]
        try:
            return invoke(self)
        finally:
            row = _row(self)
            row[2] += 1
            row[3] += time.perf_counter() - t
            row[4] += _STATS["tool_seconds"] - tools

    handler.test, handler.invoke = _test, _invoke


def _profiled(real, path):
    def main(*args, **kwargs):
        import cProfile

        profile = cProfile.Profile()
        try:
            return profile.runcall(real, *args, **kwargs)
        finally:
            profile.dump_stats(path)

    return main


def _patch_reactive(mod):
    if os.environ.get("BENCH_PROFILE"):  # a cProfile of main() to that file (by hand)
        mod.main = _profiled(mod.main, os.environ["BENCH_PROFILE"])
    _around(mod, "main", "main", "main-end")
    # main() ends with unitdata._KV.flush(): the last thing before the interpreter exits
    unitdata = sys.modules.get("charmhelpers.core.unitdata")
    if unitdata is not None:
        _around(unitdata.Storage, "flush", "flush", "flush-end")


_PATCHES = {"charmhelpers.core.unitdata": _patch_unitdata,
            "charmhelpers.core.hookenv": _patch_hookenv,
            "charms.reactive.bus": _patch_bus,
            "charms.reactive": _patch_reactive}


_TIMED = {}  # "module:Qual.name" -> [calls, in-process seconds]


def _timed(spec):
    """A patch timing ``Qual.name`` of the module (calls, seconds less tool waits)."""
    qualname = spec.split(":", 1)[1]

    def patch(mod):
        owner = mod
        *path, attr = qualname.split(".")
        for part in path:
            owner = getattr(owner, part)
        raw = owner.__dict__.get(attr) if isinstance(owner, type) else None
        real = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else \
            getattr(owner, attr)
        row = _TIMED.setdefault(spec, [0, 0.0])

        def wrapper(*args, **kwargs):
            t, tools = time.perf_counter(), _STATS["tool_seconds"]
            try:
                return real(*args, **kwargs)
            finally:
                row[0] += 1
                row[1] += time.perf_counter() - t - (_STATS["tool_seconds"] - tools)

        setattr(owner, attr, type(raw)(wrapper) if isinstance(
            raw, (classmethod, staticmethod)) else wrapper)

    return patch


def _chain(first, second):
    def patch(mod):
        first(mod)
        second(mod)

    return patch


# BENCH_TIME="module:Qual.name;...": time those functions too (by hand, not in make bench)
for _spec in filter(None, os.environ.get("BENCH_TIME", "").split(";")):
    _modname = _spec.split(":", 1)[0]
    _PATCHES[_modname] = (_chain(_PATCHES[_modname], _timed(_spec)) if _modname in _PATCHES
                          else _timed(_spec))


class _PatchAfterImport:
    """A meta path finder that patches the modules of _PATCHES right after they load."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader.exec_module

        def exec_module(module):
            real(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


for _name, _patch in list(_PATCHES.items()):
    if _name in sys.modules:  # pragma: no cover - not so in a fresh hook process
        _patch(sys.modules[_name])
        del _PATCHES[_name]
sys.meta_path.insert(0, _PatchAfterImport)

_NEXT = os.environ.get("BENCH_NEXT_SITECUSTOMIZE")
if _NEXT:
    _spec = importlib.util.spec_from_file_location("_sim_sitecustomize", _NEXT)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
_mark("site-end")


@atexit.register
def _report():
    out = os.environ.get("BENCH_PROBE_OUT")
    if not out:
        return
    _mark("exit")
    line = dict(_STATS, seconds=time.perf_counter() - _T0,
                cryptography="cryptography" in sys.modules,
                tls_modules=sorted(m for m in sys.modules if m.startswith("charms.layer.tls")),
                marks=_MARKS, handlers=_HANDLERS, timed=_TIMED, sql=_SQL, modules=len(sys.modules),
                sys_path=len(sys.path))
    with open(out, "a") as handle:
        handle.write(json.dumps(line) + "\n")
