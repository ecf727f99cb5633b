"""Fast start (``Model(fast_start=True)``, tests/model/zygote.py) against an exec of the hook.

The same model run both ways must give the same hooks, tool calls, relation data, statuses,
exit codes and output: a hook forked from the zygote has to look, from inside and outside,
like ``python3 hooks/<name>`` started afresh.
"""
import json
import re
import textwrap
import time
from pathlib import Path

import pytest
from model import HookFailed, Model, build_charm

TLS_ONLY = Path(__file__).resolve().parent / "layers" / "baseline" / "tls-only"

META = """\
name: py
summary: py
description: py
peers:
  ring:
    interface: py-ring
"""
HOOKS = ("install", "leader-elected", "leader-settings-changed", "config-changed", "start",
         "update-status", "ring-relation-created", "ring-relation-joined",
         "ring-relation-changed", "ring-relation-departed")
# Every hook: record what the process sees, then do what $CHARM_DIR/mode says.
HOOK = textwrap.dedent('''\
    #!/usr/bin/env python3
    """A stdlib-only hook."""
    import atexit, json, os, signal, socket, subprocess, sys, threading, time

    root = os.environ["SIM_UNIT_ROOT"]
    hook = os.environ["JUJU_HOOK_NAME"]
    facts = {
        "argv": sys.argv, "path": sys.path, "name": __name__, "file": __file__,
        "cwd": os.getcwd(), "env": dict(os.environ), "host": socket.gethostname(),
        "fqdn": socket.getfqdn(), "executable": sys.executable, "prefix": sys.prefix,
        "flags": list(sys.flags), "stdout_tty": sys.stdout.isatty(),
        "stdout_encoding": sys.stdout.encoding,
        "main": sys.modules["__main__"].__dict__ is globals(),
        "sigint": repr(signal.getsignal(signal.SIGINT)),
        "sigpipe": repr(signal.getsignal(signal.SIGPIPE)),
        "sigchld": repr(signal.getsignal(signal.SIGCHLD)),
        "leader": subprocess.run(["is-leader", "--format=json"], capture_output=True,
                                 text=True).stdout,
    }
    with open(os.path.join(root, "facts-" + hook + ".json"), "w") as f:
        json.dump(facts, f)
    print("hook", hook, "on", os.environ["JUJU_UNIT_NAME"])
    print("to stderr", file=sys.stderr)
    mode = ""
    if os.path.exists("mode"):
        with open("mode") as f:
            mode = f.read().strip()
    if hook != "update-status" or not mode:
        sys.exit(0)
    if mode == "exit3":
        sys.exit(3)
    if mode == "message":
        sys.exit("leaving with a message")
    if mode == "raise":
        def inner():
            raise ValueError("boom")
        inner()
    if mode == "sleep":
        time.sleep(60)
    if mode == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
    if mode == "late":  # what only the interpreter's exit makes visible
        KEPT = open(os.path.join(root, "unclosed.txt"), "w")
        KEPT.write("buffered, never closed")
        atexit.register(lambda: open(os.path.join(root, "atexit.txt"), "w").write("ran"))
        def later():
            time.sleep(0.3)
            with open(os.path.join(root, "thread.txt"), "w") as f:
                f.write("joined")
        threading.Thread(target=later).start()
        sys.exit(0)
''')


def make_py_charm(path: Path) -> Path:
    (path / "hooks").mkdir(parents=True)
    (path / "metadata.yaml").write_text(META)
    for name in HOOKS:
        (path / "hooks" / name).write_text(HOOK)
        (path / "hooks" / name).chmod(0o755)
    (path / "actions").mkdir()
    (path / "actions.yaml").write_text("do: {}\n")
    (path / "actions" / "do").write_text(HOOK)
    (path / "actions" / "do").chmod(0o755)
    return path


def _norm(text, m):
    """The two models differ in their directory and their tool server's socket only."""
    return str(text).replace(str(m.dir), "<MODEL>").replace(m.server.address, "<SOCKET>")


def _facts(m):
    out = {}
    for unit in m.unit_names:
        for f in sorted(m.unit(unit).root.glob("facts-*.json")):
            out[(unit, f.name)] = json.loads(_norm(f.read_text(), m))
    return out


def _runs(m):
    return [(r.unit, r.hook, r.relation_id, r.remote_unit, r.rc, r.ok, _norm(r.stdout, m),
             _norm(r.stderr, m), r.calls) for r in m.history]


def _both(tmp_path, charm, run, **kw):
    models = {}
    for fast in (False, True):
        m = Model(charm, tmp_path / ("fast" if fast else "exec"), fast_start=fast, **kw)
        run(m)
        models[fast] = m
    return models[False], models[True]


def test_a_fresh_process_and_a_forked_one_see_the_same(tmp_path):
    charm = make_py_charm(tmp_path / "charm")

    actions = {}

    def run(m):
        m.deploy(2)
        m.settle()
        m.tick_update_status()
        done = m.run_action("py/1", "do")
        actions[m] = {k: _norm(v, m) for k, v in done.items() if k != "run"}

    slow, fast = _both(tmp_path, charm, run, seed=4)
    assert actions[fast] == actions[slow] and actions[fast]["status"] == "completed"
    assert fast.zygote.served == len(fast.history) > 0 and fast.zygote.fallbacks == 0
    assert _runs(fast) == _runs(slow)
    facts = _facts(fast)
    assert facts == _facts(slow)
    seen = facts[("py/1", "facts-update-status.json")]
    assert seen["argv"] == ["<MODEL>/units/py-1/charm/hooks/update-status"]
    assert seen["path"][0] == "<MODEL>/units/py-1/charm/hooks"
    assert seen["host"] == fast.unit("py/1").hostname  # the host shim ran for this unit
    assert seen["main"] and seen["name"] == "__main__"
    action = facts[("py/1", "facts-.json")]  # an action: JUJU_HOOK_NAME is empty
    assert action["argv"] == ["<MODEL>/units/py-1/charm/actions/do"]
    assert action["path"][0] == "<MODEL>/units/py-1/charm/actions"
    for m in (slow, fast):
        m.close()


@pytest.mark.parametrize("mode, rc", [("exit3", 3), ("message", 1), ("raise", 1),
                                      ("signal", -15), ("sleep", -9), ("late", 0)])
def test_exit_codes_output_and_the_interpreters_exit_are_the_same(tmp_path, mode, rc):
    charm = make_py_charm(tmp_path / "charm")

    def run(m):
        m.deploy(1)
        m.settle()
        (m.unit("py/0").charm_dir / "mode").write_text(mode)
        m.tick_update_status(settle=False)
        if rc == 0:
            m.settle()
        else:
            with pytest.raises(HookFailed, match="update-status"):
                m.settle(max_failures=1)

    slow, fast = _both(tmp_path, charm, run, seed=1, hook_timeout=3)
    assert fast.zygote.served == len(fast.history)
    assert [r.rc for r in fast.history][-1] == rc
    assert _runs(fast) == _runs(slow)
    last = fast.history[-1]
    if mode == "raise":  # the traceback starts at the hook file, as a script's does
        lines = last.stderr.splitlines()
        assert lines[lines.index("Traceback (most recent call last):") + 1].startswith(
            f'  File "{fast.unit("py/0").charm_dir}/hooks/update-status"')
        assert last.stderr.rstrip().endswith("ValueError: boom")
    if mode == "late":
        for m in (slow, fast):
            root = m.unit("py/0").root
            assert (root / "unclosed.txt").read_text() == "buffered, never closed"
            assert (root / "atexit.txt").read_text() == "ran"
            assert (root / "thread.txt").read_text() == "joined"
    for m in (slow, fast):
        m.close()


def test_what_the_zygote_cannot_start_is_exec_d(tmp_path):
    charm = make_py_charm(tmp_path / "charm")
    (charm / "hooks" / "start").write_text("#!/bin/sh\necho shell start\n")

    m = Model(charm, tmp_path, seed=1, fast_start=True)
    m.deploy(1)
    m.settle()
    start = m.runs("py/0", "start")[0]
    assert start.ok and start.stdout == "shell start\n"
    assert m.zygote.fallbacks == 1 and m.zygote.served == len(m.history) - 1
    m.close()


_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)
_TMP = re.compile(r"/tmp/tmp\w+")
_DATES = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( UTC|Z)?")
_HEX = re.compile(r"\b[0-9a-f]{32,}\b")


def _scrub(value):
    """Fresh keys, serials, dates and temporary files differ between any two runs."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = _PEM.sub(lambda mo: f"<{mo.group(1)}>", text.replace("\\n", "\n"))
    return _TMP.sub("<TMP>", _HEX.sub("<HEX>", _DATES.sub("<DATE>", text)))


def _model_view(m):
    return {
        "runs": [(r.unit, r.hook, r.relation_id, r.remote_unit, r.rc, r.ok,
                  _scrub(_norm(r.stderr, m)), [_scrub(c) for c in r.calls])
                 for r in m.history],
        "units": {u: {k: _scrub(v) for k, v in m.relation_data(u).items()}
                  for u in m.unit_names},
        "app": {k: _scrub(v) for k, v in m.app_data().items()},
        "status": {u: _scrub(m.status(u)) for u in m.unit_names},
        "leader": m.leader,
    }


@pytest.mark.model
def test_the_tls_charm_settles_the_same_both_ways(tmp_path):
    charm = build_charm(TLS_ONLY)

    def run(m):
        m.deploy(3)
        m.settle()
        m.tick_update_status()

    slow, fast = _both(tmp_path, charm, run, seed=2)
    assert fast.zygote.served == len(fast.history) and fast.zygote.fallbacks == 0
    view = _model_view(fast)
    assert view == _model_view(slow)
    assert all(s.startswith('{"message": "certificate valid until')
               for s in view["status"].values())
    for m in (slow, fast):
        m.close()


def test_a_forked_hook_sees_the_model_clock(tmp_path):
    """libfaketime (the model's clock) is loaded at process start through LD_PRELOAD, which a
    fork of the zygote never gets: a hook on a moved clock must be exec'd."""
    charm = make_py_charm(tmp_path / "charm")
    (charm / "hooks" / "update-status").write_text(
        "#!/usr/bin/env python3\nimport time\nprint(int(time.time()))\n")
    m = Model(charm, tmp_path, seed=2, fast_start=True)
    m.deploy(1)
    m.settle()
    m.tick_update_status()
    served = m.zygote.served
    assert served == len(m.history) > 0, "the zygote ran the hooks on the machine's clock"
    m.advance_clock(30 * 86400)
    before = time.time()
    m.tick_update_status()
    seen = int(m.runs("py/0", "update-status")[-1].stdout)
    assert before + 30 * 86400 - 5 < seen < time.time() + 30 * 86400 + 5
    assert m.zygote.served == served and m.zygote.fallbacks == 1
    m.close()
